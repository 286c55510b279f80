"""Automation endpoint: a synchronous automation (`set` + `response`) against a plain Django view
returning the same JSON, on the same server (gunicorn), with the same client, in one run, on the
benchmark database (PostgreSQL) and broker (Redis) of bench/harness.py. The two endpoints are hit
in alternating rounds so that drift hits both alike; it prints requests/s and p50/p99 of each and
their ratio. Target (automations issue): the flow answers at >= 50 % of the plain view's rate.

Run: .venv/bin/python bench/automations.py [--requests 2000] [--concurrency 4] [--smoke]"""

import time
from concurrent.futures import ThreadPoolExecutor

import harness
import requests

PAYLOAD = {"name": "Ann", "n": 3}
EXPECTED = {"hello": "Ann", "n": 3}
FLOW = {
    "steps": [
        {"action": "set", "name": "who", "value": "{{ payload.name }}"},
        {"action": "response", "status": 200, "body": {"hello": "{{ who }}", "n": "{{ payload.n }}"}},
    ]
}


def make_automation() -> str:
    """The benchmark's automation, in a project of its own; returns its webhook id."""
    from django.contrib.auth import get_user_model

    from automations.flow import validate_flow
    from automations.models import Automation
    from support.models import Project

    user, _ = get_user_model().objects.get_or_create(username="bench")
    project, _ = Project.objects.get_or_create(name="bench automations", created_by=user)
    automation, _ = Automation.objects.update_or_create(
        project=project, name="bench: set + response", defaults={"flow": validate_flow(FLOW).flow}
    )
    return automation.webhook_id


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


def summary(wall: float, latencies: list[float]) -> dict:
    figures = harness.summary(latencies)
    return {"requests": len(latencies), "seconds": round(wall, 3), "rps": round(len(latencies) / wall, 1),
            "p50_ms": figures["p50"], "p99_ms": figures["p99"]}  # fmt: skip


def options(parser) -> None:
    parser.add_argument("--requests", type=int, help="per endpoint, split into rounds: 2000, or 40 with --smoke")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (2 workers)")


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.requests = args.requests or (40 if args.smoke else 2000)
    harness.ensure_database()
    harness.setup_django("redis")
    webhook_id = make_automation()
    web, base = harness.start_web(
        "redis",
        threads=args.threads,
        DJANGO_SETTINGS_MODULE="bench.automations_settings",
        AUTOMATION_THROTTLE_RATE="100000000/sec",
        LOG_LEVEL="WARNING",
    )
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
        web.stop()
    result = {
        "server": web.server,
        "database": "postgresql",
        "concurrency": args.concurrency,
        "gunicorn": f"2 workers x {args.threads} threads",
        "plain": summary(walls["plain"], latencies["plain"]),
        "flow": summary(walls["flow"], latencies["flow"]),
    }
    result["ratio_rps"] = round(result["flow"]["rps"] / result["plain"]["rps"], 3)
    for name in ("plain", "flow"):
        figures = result[name]
        print(f"{name:>5}: {figures['rps']:8.1f} req/s   p50 {figures['p50_ms']:7.2f} ms   "
              f"p99 {figures['p99_ms']:7.2f} ms   (n={figures['requests']})")  # fmt: skip
    print(f"ratio flow/plain: {result['ratio_rps']:.3f} (target >= 0.5)   server: {web.server}")
    harness.write_result("automations", result, args)


if __name__ == "__main__":
    main()
