"""Shared fixtures: users with tokens, a project with teammates, real HTTP receivers on 127.0.0.1,
and a real django-q2 worker process for end-to-end tests."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from support.models import Project, ProjectUser, Role

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config) -> None:
    """Passwords hashed with PBKDF2 at its production cost take ~0.5 s of CPU per user made; a
    test's users need no such protection. (Child processes keep the real hasher.)"""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _deliveries_numbered_as_made_in_tests_that_never_commit(request):
    """On PostgreSQL a delivery takes its `sequence` when its transaction commits; a test on
    pytest-django's `db` runs in a transaction that is rolled back, never committed, so there the
    number is taken as each row is made (`SET CONSTRAINTS ... IMMEDIATE`). Tests that commit
    (`transactional_db`, the end-to-end ones) see it taken at commit."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction"))
    if transactional or not (marker or "db" in request.fixturenames):
        return
    request.getfixturevalue("db")
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS subscriptions_delivery_numbered IMMEDIATE")


@pytest.fixture(autouse=True)
def _forget_failed_signins():
    """Failed sign-ins are counted per address (all tests call from 127.0.0.1) and per account: each
    test starts with none. On Redis (the Redis broker's server) only the sign-in keys go: clearing
    the cache would empty the whole Redis database, queue included."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    cache = caches["signin"]
    if isinstance(cache, LocMemCache):
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=cache.make_key("*")))
    if keys:
        client.delete(*keys)


@pytest.fixture
def clock():
    """The tests' clock: it runs from the real time, and a test that must wait out a window moves it
    on with `clock.shift(seconds)` instead of sleeping (time-machine patches `time.time()` and
    `datetime.now()` in this process, receivers' threads included)."""
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield traveller


def retries_come_due(clock) -> None:
    """Move the clock past the longest retry delay, jitter included: every retry scheduled so far
    is due."""
    from django.conf import settings

    clock.shift(max(settings.HOOKS_RETRY_DELAYS_S) * (1 + settings.HOOKS_RETRY_JITTER) + 0.1)


@pytest.fixture
def make_user(db):
    def make(username: str, **extra):
        user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", **extra)
        Token.objects.create(user=user)
        return user

    return make


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def project(owner) -> Project:
    project = Project.objects.create(name="Acme", created_by=owner)
    ProjectUser.objects.create(project=project, user=owner, email=owner.email, role=Role.OWNER)
    return project


@pytest.fixture
def add_member(project, make_user):
    def add(username: str, role: str = Role.AGENT, **extra):
        user = make_user(username)
        ProjectUser.objects.create(project=project, user=user, email=user.email, role=role, **extra)
        return user

    return add


@pytest.fixture
def api(owner) -> APIClient:
    """The project owner's API client."""
    return client_for(owner)


@pytest.fixture
def agent_api(add_member) -> APIClient:
    return client_for(add_member("agent", Role.AGENT))


@pytest.fixture
def stranger_api(make_user) -> APIClient:
    """A logged-in user who is not a member of the project."""
    return client_for(make_user("stranger"))


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run what the code defers to after commit (enqueueing deliveries) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def received(httpserver, path: str | None = None) -> list[dict]:
    """What a pytest-httpserver receiver got: method, path, lower-cased headers, parsed JSON. The
    server is shared by the session, so a request that an earlier test left hanging may still
    arrive; `path` keeps only what this test's receiver was sent."""
    out = []
    for request, _response in httpserver.log:
        if path is not None and request.path != path:
            continue
        body = request.get_data()
        out.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "raw": body,
                "json": json.loads(body) if body else None,
            }
        )
    return out


class RawReceiver:
    """A receiver on 127.0.0.1 that answers with exactly the bytes a test writes to the socket,
    for answers no well-behaved HTTP server would give (a trickle, a NUL in a header). `answer`
    gets each connection after its request (head and body) has been read."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._stopped = threading.Event()
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:  # stopped
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                if not (chunk := conn.recv(65536)):
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            try:
                self.answer(conn)
            except OSError:  # the client hung up: what a cut-off request looks like from here
                pass

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()


@pytest.fixture
def raw_receiver():
    started: list[RawReceiver] = []

    def start(answer) -> RawReceiver:
        started.append(RawReceiver(answer))
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


def database_url_for_subprocess() -> str:
    """The URL of the database the tests are using (the test database), for child processes."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}@" if s.get("PASSWORD") else f"{user}@"
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def child_env(**extra) -> dict:
    env = dict(os.environ)
    env.pop("Q_SYNC", None)
    env["HOOKS_RETRY_DELAYS_S"] = "0.2,0.2,0.2"  # real workers' retries come due while a test waits
    env.update({"DATABASE_URL": database_url_for_subprocess(), "PYTHONUNBUFFERED": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Worker:
    """A real `manage.py qcluster` process on the test database."""

    def __init__(self, tmp_path: Path, **env):
        self.log_path = tmp_path / f"qcluster-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=REPO,
            env=child_env(**env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, sig=signal.SIGTERM) -> None:
        """Ask the cluster's sentinel to stop (it stops its own workers); whatever is left of the
        process group after that is killed."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait(5)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(transactional_db, tmp_path, monkeypatch):
    """Start real qcluster processes; the test process then enqueues through the real broker
    instead of running tasks inline."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    workers: list[Worker] = []

    def start(**env) -> Worker:
        worker = Worker(tmp_path, **env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_gunicorn(transactional_db, tmp_path):
    """Serve the app with gunicorn (the production web server) on the test database; returns its
    base URL. Stopped after the test."""
    import socket

    import requests

    procs: list[tuple[subprocess.Popen, object]] = []

    def start(**env) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log_path = tmp_path / f"gunicorn-{port}.log"
        log = log_path.open("w")
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "tiledesk_hooks.wsgi", "-b", f"127.0.0.1:{port}",
             "-w", "1", "--threads", "4", "--log-level", "warning"],
            cwd=REPO, env=child_env(**env), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append((proc, log))
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=1).status_code in (200, 503)
            except requests.RequestException:
                return False

        assert wait_for(up, timeout=30), log_path.read_text()
        return base

    yield start
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def in_another_connection(work) -> tuple[threading.Thread, dict]:
    """Run `work()` in a thread with its own database connection (another worker process, as far
    as the database can tell). Returns the thread and a dict that gets `result` and `ended_at`
    (time.monotonic()) once `work` has returned."""
    done: dict = {}

    def run() -> None:
        try:
            done["result"] = work()
            done["ended_at"] = time.monotonic()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done


def deliver_batch_in_another_worker(delivery_ids: list[str]) -> tuple[threading.Thread, dict[str, str]]:
    """`tasks.deliver_batch` in another connection's thread. Returns the thread and the outcome it
    fills in."""
    from subscriptions import tasks

    outcome: dict[str, str] = {}
    thread, _ = in_another_connection(lambda: outcome.update(tasks.deliver_batch(delivery_ids)))
    return thread, outcome


def wait_for(predicate, timeout: float = 20, interval: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
