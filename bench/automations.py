#!/usr/bin/env python3
"""Benchmark: a synchronous automation (`set` + `response`) against a plain Django view returning the
same JSON, on the same server, with the same client, in one run.

    .venv/bin/python bench/automations.py [--requests 2000] [--concurrency 4] [--server auto]

It makes a throw-away SQLite database (or uses $BENCH_DATABASE_URL), starts the server (gunicorn if
installed, else `manage.py runserver`), sends the same POST to both endpoints (warm-up first,
then alternating rounds so drift hits both alike), prints requests/s and p50/p99 of each and their
ratio, and writes bench/results/automations.json. Loopback only; bounded in count and time."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "automations.json"
PAYLOAD = {"name": "Ann", "n": 3}
EXPECTED = {"hello": "Ann", "n": 3}
FLOW = {
    "steps": [
        {"action": "set", "name": "who", "value": "{{ payload.name }}"},
        {"action": "response", "status": 200, "body": {"hello": "{{ who }}", "n": "{{ payload.n }}"}},
    ]
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(env: dict) -> str:
    """Migrate the bench database and create the automation; returns its webhook id."""
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from automations.flow import validate_flow
    from automations.models import Automation
    from support.models import Project

    user, _ = get_user_model().objects.get_or_create(username="bench")
    project, _ = Project.objects.get_or_create(name="bench", created_by=user)
    automation, _ = Automation.objects.update_or_create(
        project=project, name="bench: set + response", defaults={"flow": validate_flow(FLOW).flow}
    )
    return automation.webhook_id


def start_server(kind: str, port: int, env: dict) -> subprocess.Popen:
    venv_gunicorn = Path(sys.executable).with_name("gunicorn")
    if kind == "auto":
        kind = "gunicorn" if venv_gunicorn.exists() or shutil.which("gunicorn") else "runserver"
    if kind == "gunicorn":
        gunicorn = str(venv_gunicorn) if venv_gunicorn.exists() else "gunicorn"
        command = [gunicorn, "tiledesk_hooks.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "4"]
        command += ["--log-level", "warning"]
    else:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    proc = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    proc.kind = kind
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/bench/plain", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit("the server did not start")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def hammer(url: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    """`count` POSTs over `concurrency` pooled sessions; returns wall time and latencies (ms)."""
    per_worker = [count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]

    def worker(n: int) -> list[float]:
        latencies = []
        with requests.Session() as session:
            for _ in range(n):
                started = time.perf_counter()
                response = session.post(url, json=PAYLOAD, timeout=30)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200 or response.json() != EXPECTED:
                    raise SystemExit(f"{url} answered {response.status_code} {response.text[:200]}")
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(worker, per_worker))
    return time.perf_counter() - started, [latency for chunk in results for latency in chunk]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def summary(wall: float, latencies: list[float]) -> dict:
    return {
        "requests": len(latencies),
        "seconds": round(wall, 3),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint (split into rounds)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--server", choices=("auto", "gunicorn", "runserver"), default="auto")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-automations-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.automations_settings",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}"),
        "AUTOMATION_THROTTLE_RATE": "100000000/sec",
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        # Persistent database connections, as a production deployment would run.
        "DB_CONN_MAX_AGE": "60",
    }
    webhook_id = prepare(env)
    port = free_port()
    server = start_server(args.server, port, env)
    base = f"http://127.0.0.1:{port}"
    urls = {"plain": f"{base}/bench/plain", "flow": f"{base}/webhook/{webhook_id}"}
    try:
        for url in urls.values():
            hammer(url, min(100, args.requests), args.concurrency)  # warm-up
        walls = {name: 0.0 for name in urls}
        latencies: dict[str, list[float]] = {name: [] for name in urls}
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, url in urls.items():
                wall, lat = hammer(url, per_round, args.concurrency)
                walls[name] += wall
                latencies[name] += lat
    finally:
        stop(server)
        shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "benchmark": "automation endpoint (set + response) vs plain Django view",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "server": server.kind,
        "database": env["DATABASE_URL"].split(":", 1)[0],
        "concurrency": args.concurrency,
        "plain": summary(walls["plain"], latencies["plain"]),
        "flow": summary(walls["flow"], latencies["flow"]),
    }
    result["ratio_rps"] = round(result["flow"]["rps"] / result["plain"]["rps"], 3)
    for name in ("plain", "flow"):
        s = result[name]
        print(f"{name:>5}: {s['rps']:8.1f} req/s   p50 {s['p50_ms']:7.2f} ms   p99 {s['p99_ms']:7.2f} ms", end="")
        print(f"   (n={s['requests']})")
    print(f"ratio flow/plain: {result['ratio_rps']:.3f} (target >= 0.5)   server: {server.kind}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
