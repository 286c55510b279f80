"""The benchmarks' shared harness: their own PostgreSQL database, the app's real processes, a fast
receiver, timing helpers and result files.

Every script imports this module first. It owns:
- the database `h_bench` (created and migrated on first use; `BENCH_DB`, `BENCH_PG` override),
  and Redis db 5 with the queue name `h_bench` (`BENCH_REDIS`, `BENCH_Q_NAME`), so a benchmark
  never touches another developer's data;
- child processes (the receiver, `manage.py qcluster`, a WSGI server), each in its own process
  group, stopped at exit, on SIGTERM, and by a hard deadline (`guard`), so nothing outlives a run;
- percentiles and result files (`bench/results/<name>.json`; smoke runs go to `results/smoke/`).

The benchmark process itself is a Django process on the same settings as the app, so it can
publish through the real outbox path (`subscriptions.publishing.publish_event`)."""

import argparse
import atexit
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB", "h_bench")
DATABASE_URL = f"{PG_SERVER}/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/5")
Q_NAME = os.environ.get("BENCH_Q_NAME", "h_bench")
EVENT = "request.create"

_children: list["Child"] = []


# --- configuration ------------------------------------------------------------------------------
def app_env(broker: str = "redis", **extra) -> dict[str, str]:
    """The environment of every app process of a benchmark (API.md's variables)."""
    env = {k: v for k, v in os.environ.items() if k not in ("Q_SYNC", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DATABASE_URL=DATABASE_URL,
        Q_BROKER=REDIS_URL if broker == "redis" else "orm",
        Q_NAME=Q_NAME,
        HOOKS_ALLOW_PRIVATE_TARGETS="1",
        DJANGO_SETTINGS_MODULE="tiledesk_hooks.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def setup_django(broker: str = "redis", **extra) -> None:
    """Make this process a Django process of the app on the benchmark database and broker."""
    os.environ.update(app_env(broker, **extra))
    os.environ.pop("Q_SYNC", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def arguments(description: str, add: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check that the script works (CI)")
    parser.add_argument("--max-seconds", type=float, default=900, help="hard deadline of the whole run")
    parser.add_argument("--tag", default="", help="write results/<name>.<tag>.json (e.g. a before/after figure)")
    if add:
        add(parser)
    args = parser.parse_args()
    guard(args.max_seconds)
    return args


# --- the database and the broker ---------------------------------------------------------------
def ensure_database() -> None:
    """Create `h_bench` if missing and migrate it (idempotent, a few seconds when up to date)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=app_env(), check=True
    )


def clear_outbox() -> None:
    """Empty the outbox, the logs, the task tables and the Redis queue db."""
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE subscriptions_attempt, subscriptions_delivery, subscriptions_eventpayload, "
            "django_q_task, django_q_ormq"
        )
        cursor.execute("DELETE FROM django_q_schedule WHERE name <> 'subscriptions.retry_pending'")
    redis.Redis.from_url(REDIS_URL).flushdb()


def reset_state() -> None:
    """`clear_outbox`, and no projects or subscriptions either; users and tokens stay."""
    from django.db import connection

    clear_outbox()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE subscriptions_subscription, support_project CASCADE")


def make_project(name: str = "bench"):
    """An owner with an API token and a project; returns (project, token key)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from support.models import Project, ProjectUser, Role

    user, _ = get_user_model().objects.get_or_create(username="bench-owner", defaults={"email": "bench@example.com"})
    token, _ = Token.objects.get_or_create(user=user)
    project = Project.objects.create(name=name, created_by=user)
    ProjectUser.objects.create(project=project, user=user, email=user.email, role=Role.OWNER)
    return project, token.key


# A subscription of several `events` (a wildcard among them) and a `filter` that a request.create
# example meets: what `--events-and-filter` subscribes, so that matching takes its longer path.
EVENTS_AND_FILTER = {
    "events": ["request.create", "message.*", "lead.create"],
    "filter": {"channel.name": {"$in": ["chat21", "whatsapp"]}, "status": {"$lt": 1000}},
}


def subscribe(project, target: str, event: str = EVENT, enabled: bool = True, **fields):
    from subscriptions.models import Subscription
    from subscriptions.signing import new_secret

    return Subscription.objects.create(
        project=project, event=event, target=target, secret=new_secret(), enabled=enabled, **fields
    )


def sample_payload() -> dict:
    from subscriptions.events import example_payload

    return example_payload(EVENT)


def publish(project_id: str, payload: dict, count: int = 1) -> tuple[list[str], list[float]]:
    """Publish `count` events in one transaction through the real outbox path. Returns the ids of
    the deliveries a worker will make of them (each event's, to each enabled subscription of the
    project taking it: `routing.delivery_id`) and, for each, the wall-clock time of the commit
    (taken by the first after-commit callback, before the enqueueing callbacks run)."""
    from django.db import transaction

    from subscriptions.publishing import publish_event
    from subscriptions.routing import delivery_id

    subscribers = _subscribers(project_id)
    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))
        events = [publish_event(project_id, [EVENT], payload) for _ in range(count)]
    ids = [delivery_id(event, subscriber) for event in events if event for subscriber in subscribers]
    return ids, [committed[0]] * len(ids)


_subscribers_of: dict[str, list[str]] = {}


def _subscribers(project_id: str) -> list[str]:
    """The enabled subscriptions of the project that take EVENT, read once per process (a script
    subscribes before it publishes)."""
    if project_id not in _subscribers_of:
        from django.db.models import Q

        from subscriptions.models import Subscription

        taking = Subscription.objects.filter(Q(event=EVENT) | Q(matches_many=True), project_id=project_id, enabled=True)
        _subscribers_of[project_id] = list(taking.values_list("pk", flat=True))
    return _subscribers_of[project_id]


def sample_request(project_id: str, payload: dict) -> tuple[bytes, dict[str, str]]:
    """The envelope bytes and headers of a real delivery of one event to the project (published,
    then routed as a worker would, not sent): what the ceiling sends, so that it sends exactly what
    a delivery does."""
    from subscriptions.envelope import envelope_bytes, request_headers
    from subscriptions.models import Delivery
    from subscriptions.routing import route

    ids, _ = publish(project_id, payload)
    route(1000)
    sample = Delivery.objects.select_related("subscription", "event_payload").get(pk=ids[0])
    body = envelope_bytes(sample)
    return body, request_headers(sample, body, int(time.time()))


# --- child processes -----------------------------------------------------------------------------
class Child:
    """A process in its own group, with its output in bench/results/logs/<name>.log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _children.append(self)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the process (a qcluster stops its own children), SIGKILL to the group after."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever of the group is left (it was started in a session of its own)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        self._log.close()
        if self in _children:
            _children.remove(self)

    def alive(self) -> bool:
        return self.proc.poll() is None


def _stop_all() -> None:
    for child in list(reversed(_children)):
        child.stop(timeout=10)


atexit.register(_stop_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def guard(max_seconds: float) -> None:
    """A hard deadline: past it the run stops (and its children with it) instead of running on."""

    def expire(*_):
        print(f"deadline of {max_seconds:.0f} s reached; stopping", flush=True)
        sys.exit(124)

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(max_seconds))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class Receiver:
    """bench/receiver.py in its own process: answers 200 at once (or after `?sleep=` under /slow/).
    Deliveries are told apart by their `x-hook-id`, or with key="mark" by the `bmk<hex>` token of
    their body (see receiver.py)."""

    def __init__(self, key: str = "header"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, str(BENCH / "receiver.py"), "--port", str(self.port), "--key", key]
        self.child = Child("receiver", argv, {**os.environ})
        if not wait_until(self._up, 10):
            raise RuntimeError(f"receiver did not start; see {self.child.log_path}")

    def _up(self) -> bool:
        try:
            self.count()
            return True
        except OSError:
            return False

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def _get(self, path: str, method: str = "GET") -> bytes:
        request = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def count(self) -> int:
        return int(self._get("/_count"))

    def dump(self) -> list[tuple[float, str, str]]:
        return [tuple(row) for row in json.loads(self._get("/_dump"))]

    def reset(self) -> None:
        self._get("/_reset", "POST")

    def fail_for(self, seconds: float) -> None:
        """Answer 500 to every delivery for the next `seconds`."""
        self._get(f"/_fail?seconds={seconds}", "POST")

    def pause_for(self, seconds: float) -> None:
        """Hold every answer until `seconds` from now."""
        self._get(f"/_pause?seconds={seconds}", "POST")

    def failed(self) -> int:
        """Deliveries answered 500 since the last reset."""
        return int(self._get("/_failed"))

    def wait_count(self, n: int, timeout: float) -> int:
        return wait_until(lambda: self.count() >= n, timeout, interval=0.1) and self.count() or self.count()


def start_cluster(workers: int, broker: str = "redis", name: str | None = None, **env) -> Child:
    """`manage.py qcluster` with Q_WORKERS=workers on the benchmark database and queue."""
    return Child(
        name or f"qcluster-{broker}-{workers}w",
        [sys.executable, "manage.py", "qcluster"],
        app_env(broker, Q_WORKERS=workers, **env),
    )


def start_web(broker: str = "redis", workers: int = 2, threads: int = 1, **env) -> tuple[Child, str]:
    """The API behind a WSGI server: gunicorn if installed (as deployed), else runserver. With
    `threads` > 1, gunicorn's threaded workers (gthread)."""
    port = free_port()
    try:
        import gunicorn  # noqa: F401

        argv = [
            sys.executable, "-m", "gunicorn", "tiledesk_hooks.wsgi", "-b", f"127.0.0.1:{port}",
            "-w", str(workers), "--threads", str(threads), "--access-logfile", "-", "--log-level", "warning",
        ]  # fmt: skip
        server = "gunicorn"
    except ImportError:
        argv = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--nothreading"]
        server = "runserver"
    child = Child(f"web-{server}", argv, app_env(broker, **env))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(base + "/api/events/", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    if not wait_until(up, 30, 0.2):
        raise RuntimeError(f"{server} did not start; see {child.log_path}")
    child.server = server
    return child, base


# --- figures -------------------------------------------------------------------------------------
def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary(values_ms: list[float]) -> dict:
    values = sorted(values_ms)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "mean": round(sum(values) / len(values), 2),
        "max": round(values[-1], 2),
    }


def machine() -> dict:
    """What the figures were measured on; the load average says how busy the shared machine was."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "commit": commit.stdout.strip(),
    }


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy so far (every core and process: user, nice,
    system, interrupts, steal), from Linux's /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class MachineCPU:
    """The machine's busy CPU over a phase, per item sent, and the share of the cores it kept busy:
    whether a rate was bound by the cores (then it is the cores over the CPU per item) or by
    something else, such as one process's threads or the round trips."""

    def __init__(self):
        self.busy, self.wall = machine_busy_s(), time.monotonic()

    def per(self, items: int) -> dict:
        busy, wall = machine_busy_s(), time.monotonic() - self.wall
        if busy is None or self.busy is None or not items:
            return {}
        spent = busy - self.busy
        return {"cpu_ms_per_item": round(1000 * spent / items, 3),
                "machine_busy": round(spent / (wall * (os.cpu_count() or 1)), 3)}  # fmt: skip


def write_result(name: str, data: dict, args: argparse.Namespace) -> Path:
    smoke = args.smoke
    folder = RESULTS / "smoke" if smoke and not args.tag else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{name}.{args.tag}.json" if args.tag else f"{name}.json")
    data = {"benchmark": name, "smoke": smoke, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(), **data}  # fmt: skip
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path
