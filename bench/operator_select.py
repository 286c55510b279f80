#!/usr/bin/env python3
"""Request-creation latency with the synchronous operator.select webhook.

Three scenarios, each on a fresh project (an owner and three agents in an `assigned` department),
each `--n` creates through the real API stack (Django's handler, DRF, routing, the database) with
DRF's in-process client:
  1. no operator.select subscription (built-in routing only),
  2. a fast local receiver (a separate process on 127.0.0.1 answering at once),
  3. a receiver that sleeps past HOOKS_OPERATOR_SELECT_TIMEOUT_S (built-in fallback).
Prints p50/p99 per scenario and writes bench/results/operator_select.json.

    .venv/bin/python bench/operator_select.py                  # 500 creates each, SQLite in a temp dir
    .venv/bin/python bench/operator_select.py --n 50           # while developing
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/operator_select.py

The timeout scenario costs n x timeout seconds, hence a short default timeout (--timeout)."""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "operator_select.json"
WARMUP = 10


# --- the receivers (run as a child process: `operator_select.py --receiver fast|slow`) ----------


def serve(mode: str, sleep_s: float) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one segment: two small writes would meet Nagle and delayed ACKs
        # (a 40 ms stall per call that measures the receiver, not the platform).
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if mode == "slow":
                time.sleep(sleep_s)
            # Choose the last available agent: a real overrule, not an echo of the suggestion.
            available = body["payload"]["available_agents"]
            answer = json.dumps({"operators": [{"id_user": available[-1]["id_user"]}] if available else []}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller stopped waiting (the timeout scenario)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def start_receiver(mode: str, sleep_s: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--receiver", mode, "--sleep", str(sleep_s)], stdout=subprocess.PIPE, text=True
    )
    port = proc.stdout.readline().strip()
    return proc, f"http://127.0.0.1:{port}/operator-select"


# --- the benchmark ---------------------------------------------------------------------------


def configure(timeout_s: float, workdir: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir}/bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tiledesk_hooks.settings"
    os.environ["HOOKS_OPERATOR_SELECT_TIMEOUT_S"] = str(timeout_s)
    os.environ["HOOKS_ALLOW_PRIVATE_TARGETS"] = "1"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + "x" * 50)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def new_project(label: str):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from support.models import Department, Group, Project, ProjectUser, Role

    suffix = f"{label}-{time.monotonic_ns()}"
    User = get_user_model()
    owner = User.objects.create_user(f"owner-{suffix}", f"owner-{suffix}@example.com")
    project = Project.objects.create(name=f"bench {label}", created_by=owner)
    ProjectUser.objects.create(project=project, user=owner, email=owner.email, role=Role.OWNER)
    agents = []
    for i in range(3):
        agent = User.objects.create_user(f"agent{i}-{suffix}", f"agent{i}-{suffix}@example.com")
        ProjectUser.objects.create(project=project, user=agent, email=agent.email, role=Role.AGENT)
        agents.append(str(agent.pk))
    group = Group.objects.create(project=project, name="Agents", members=agents)
    Department.objects.create(project=project, name="Sales", routing="assigned", group=group, default=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    return project, client


def measure(label: str, n: int, target: str | None) -> dict:
    from subscriptions.models import Delivery

    project, client = new_project(label)
    if target:
        created = client.post(
            f"/api/projects/{project.pk}/subscriptions/", {"event": "operator.select", "target": target}, format="json"
        )
        assert created.status_code == 201, created.content
    url = f"/api/projects/{project.pk}/requests/"
    body = {"first_text": "Where is my order?", "lead": {"fullname": "Ann", "email": "ann@example.com"}}
    timings, routed_by = [], {}
    for i in range(WARMUP + n):
        started = time.perf_counter()
        response = client.post(url, body, format="json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 201, response.content
        if i >= WARMUP:
            timings.append(elapsed * 1000)
            key = response.json()["routed_by"]
            routed_by[key] = routed_by.get(key, 0) + 1
    decisions = {}
    for decision in Delivery.objects.filter(project=project, event="operator.select").values_list(
        "decision", flat=True
    ):
        decisions[decision] = decisions.get(decision, 0) + 1
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return {
        "n": n,
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(cuts[98], 2),
        "mean_ms": round(statistics.fmean(timings), 2),
        "max_ms": round(max(timings), 2),
        "routed_by": routed_by,
        "decisions": decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="creates per scenario (default 500)")
    parser.add_argument("--timeout", type=float, default=0.25, help="HOOKS_OPERATOR_SELECT_TIMEOUT_S for the run")
    parser.add_argument("--timeout-n", type=int, default=None, help="creates for the timeout scenario (default --n)")
    parser.add_argument("--receiver", choices=("fast", "slow"), help=argparse.SUPPRESS)
    parser.add_argument("--sleep", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        serve(args.receiver, args.sleep)
        return

    with tempfile.TemporaryDirectory() as workdir:
        configure(args.timeout, workdir)
        from django.db import connection

        fast, fast_url = start_receiver("fast", 0)
        slow, slow_url = start_receiver("slow", args.timeout + 1)
        try:
            results = {
                "no_subscription": measure("none", args.n, None),
                "fast_receiver": measure("fast", args.n, fast_url),
                "timing_out_receiver": measure("slow", args.timeout_n or args.n, slow_url),
            }
        finally:
            fast.terminate()
            slow.terminate()
            fast.wait(5)
            slow.wait(5)
        engine = connection.vendor

    report = {
        "benchmark": "operator_select: request-creation latency (POST /api/projects/{pid}/requests/)",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": engine,
        "python": platform.python_version(),
        "operator_select_timeout_s": args.timeout,
        "client": "DRF APIClient in-process (full Django/DRF stack, no socket to the app)",
        "scenarios": results,
        "fast_receiver_overhead_p50_ms": round(
            results["fast_receiver"]["p50_ms"] - results["no_subscription"]["p50_ms"], 2
        ),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in results.items():
        print(f"{name:22s} n={figures['n']:<4d} p50={figures['p50_ms']:8.2f} ms  p99={figures['p99_ms']:8.2f} ms")
    print(f"fast receiver overhead (p50): {report['fast_receiver_overhead_p50_ms']:.2f} ms; timeout {args.timeout:g} s")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
