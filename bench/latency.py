"""Commit-to-receipt latency at a steady light load, on the Redis broker and on the ORM broker.

Events are published one per transaction through the real outbox path at `--rate` events/s (on an
absolute schedule, so a slow publish does not lower the rate) for `--seconds`, and delivered by
`manage.py qcluster` (Q_WORKERS=`--workers`) to a fast receiver. Latency = the receiver's receipt
time - the commit time. Each broker runs in a child process of this script, because the broker is
fixed when Django starts. Target on Redis: p50 < 50 ms, p99 < 250 ms.

Run: .venv/bin/python bench/latency.py [--rate 20] [--seconds 30] [--smoke]"""

import argparse
import json
import subprocess
import sys
import time

import harness


def options(parser) -> None:
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--seconds", type=float, help="30, or 3 with --smoke")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--brokers", default="redis,orm")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: measure one broker, print JSON


def measure(broker: str, args) -> dict:
    harness.setup_django(broker)
    harness.reset_state()
    receiver = harness.Receiver()
    project, _ = harness.make_project()
    harness.subscribe(project, receiver.url("/fast/latency"))
    payload = harness.sample_payload()
    cluster = harness.start_cluster(args.workers, broker)
    try:
        ids, _ = harness.publish(project.pk, payload, 3)
        if not harness.wait_until(lambda: receiver.count() >= len(ids), 60):
            raise RuntimeError(f"the worker did not deliver the warm-up events; see {cluster.log_path}")
        receiver.reset()
        committed: dict[str, float] = {}
        count = int(args.rate * args.seconds)
        start = time.monotonic()
        for i in range(count):
            pause = start + i / args.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            ids, times = harness.publish(project.pk, payload)
            committed.update(zip(ids, times, strict=True))
        achieved = count / (time.monotonic() - start)
        harness.wait_until(lambda: receiver.count() >= count, 30, interval=0.1)
        received = receiver.dump()
    finally:
        cluster.stop()
    arrivals: dict[str, float] = {}
    for t, _, hook_id in received:
        if hook_id in committed:
            arrivals.setdefault(hook_id, t)
    latencies = [(arrivals[d] - committed[d]) * 1000 for d in arrivals]
    return {
        "broker": broker,
        "events": count,
        "received": len(arrivals),
        "rate_achieved": round(achieved, 1),
        "latency_ms": harness.summary(latencies),
        "series_ms": [round(x, 2) for x in latencies],
    }


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.seconds = args.seconds or (3 if args.smoke else 30)
    if args.only:
        print(json.dumps(measure(args.only, args)))
        return
    harness.ensure_database()
    rows = []
    for broker in args.brokers.split(","):
        argv = [sys.executable, __file__, "--only", broker, "--rate", str(args.rate), "--seconds", str(args.seconds)]
        argv += ["--workers", str(args.workers), "--max-seconds", str(args.max_seconds)]
        child = subprocess.run(argv, capture_output=True, text=True, cwd=harness.ROOT)
        if child.returncode:
            sys.stderr.write(child.stdout[-3000:] + child.stderr[-3000:])
            raise SystemExit(f"the {broker} measurement failed")
        row = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append(row)
        lat = row["latency_ms"]
        print(
            f"{broker}: {row['received']}/{row['events']} at {row['rate_achieved']}/s; commit->receipt "
            f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, max {lat['max']} ms",
            flush=True,
        )
    harness.write_result(
        "latency", {"rate": args.rate, "seconds": args.seconds, "workers": args.workers, "rows": rows}, args
    )
    if any(r["received"] < r["events"] for r in rows):
        raise SystemExit("not every event was delivered")


if __name__ == "__main__":
    main()
