"""Isolation: one subscription's target sleeps past HOOKS_TIMEOUT_S while the others are fast; the
fast targets' commit-to-receipt p99 should stay within 2x of the baseline without the slow one.

Each event matches `--fast` fast subscriptions and one slow one (`/slow/?sleep=timeout+1`). Two
phases with the same load, one cluster (Q_WORKERS=`--workers`, Redis broker), HOOKS_TIMEOUT_S =
`--timeout`: baseline (the slow subscription disabled), then slow (enabled). In each phase the
first `--warmup` seconds are published but not measured (the slow phase's warm-up is when the
worker first meets the slow target); fast targets' latencies are measured after it.

A third phase plays a healthy target's one pause (the slow subscription disabled again): at
`--pause-rate` events/s, the receiver holds every answer for `--pause` seconds (past the slow
threshold, 1 s) at the end of the warm-up; the fast targets' p99 from 2 s after the pause on, again
against the baseline, and how long after the last commit the last delivery came. A target that
answers quickly again is no longer treated as slow (subscriptions/isolation.py).

Run: .venv/bin/python bench/isolation.py [--rate 20] [--seconds 30] [--smoke]"""

import time

import harness


def options(parser) -> None:
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--seconds", type=float, help="measured seconds per phase: 30, or 4 with --smoke")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds first: 8, or 3 with --smoke")
    parser.add_argument("--fast", type=int, default=3, help="fast subscriptions")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=2.0, help="HOOKS_TIMEOUT_S of the worker")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds the receiver holds its answers once")
    parser.add_argument("--pause-rate", type=float, default=60.0, help="events per second of the pause phase")


def phase(project, payload, receiver, args, rate: float | None = None, seconds: float | None = None,
          pause_s: float = 0.0) -> dict:  # fmt: skip
    """Publish for warm-up + measured seconds at `rate`; fast latencies of the measured part. With
    `pause_s`, the receiver holds its answers that long at the end of the warm-up, and the measured
    part starts 2 s after the pause."""
    from subscriptions.isolation import PARK_S  # how long a parked delivery may wait for the sweep

    rate, seconds = rate or args.rate, seconds or args.seconds
    receiver.reset()
    committed: dict[str, float] = {}
    measured_from = None
    count = int(rate * (args.warmup + seconds))
    start = time.monotonic()
    for i in range(count):
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if measured_from is None and i >= rate * args.warmup:
            if pause_s:
                receiver.pause_for(pause_s)
            measured_from = time.time() + (pause_s + 2 if pause_s else 0)
        ids, times = harness.publish(project.pk, payload)
        committed.update(zip(ids, times, strict=True))
    last_commit = max(committed.values())
    expected = count * args.fast
    harness.wait_until(lambda: len(_fast_arrivals(receiver, committed)) >= expected, 30 + PARK_S, interval=0.2)
    arrivals = _fast_arrivals(receiver, committed)
    measured = [(t - committed[d]) * 1000 for d, t in arrivals.items() if committed[d] >= measured_from]
    warmup = [(t - committed[d]) * 1000 for d, t in arrivals.items() if committed[d] < measured_from]
    received = receiver.dump()
    slow_hits = sum(1 for _, path, _ in received if path.startswith("/slow/"))
    # Per second since the first commit: the fast targets' worst latency, and slow requests begun.
    t0 = min(committed.values())
    timeline: dict[int, dict] = {}
    for d, t in arrivals.items():
        second = timeline.setdefault(int(committed[d] - t0), {"fast_max_ms": 0.0, "slow_requests": 0})
        second["fast_max_ms"] = round(max(second["fast_max_ms"], (t - committed[d]) * 1000), 1)
    for t, path, _ in received:
        if path.startswith("/slow/") and int(t - t0) in timeline:
            timeline[int(t - t0)]["slow_requests"] += 1
    return {
        "events": count,
        "rate": rate,
        "pause_s": pause_s,
        "last_receipt_after_last_commit_s": round(max(arrivals.values()) - last_commit, 2),
        "fast_received": len(arrivals),
        "fast_expected": expected,
        "slow_requests": slow_hits,
        "fast_latency_ms": harness.summary(measured),
        "warmup_fast_latency_ms": harness.summary(warmup),
        "measured_from_s": round(measured_from - t0, 1),
        "timeline": [{"second": s, **timeline[s]} for s in sorted(timeline)],
    }


def back_to_normal(paused: dict, normal_ms: float, args) -> float | None:
    """Seconds from the end of the pause until events committed in every later second all arrived
    within `normal_ms` (None: never, within the phase)."""
    ended = args.warmup + args.pause
    late = [row["second"] for row in paused["timeline"] if row["fast_max_ms"] > normal_ms]
    last_late = max(late, default=None)
    if last_late is not None and last_late + 1 >= paused["timeline"][-1]["second"]:
        return None
    return round(max(0.0, (last_late + 1 if last_late is not None else 0) - ended), 1)


def _fast_arrivals(receiver, committed) -> dict[str, float]:
    arrivals: dict[str, float] = {}
    for t, path, hook_id in receiver.dump():
        if path.startswith("/fast/") and hook_id in committed:
            arrivals.setdefault(hook_id, t)
    return arrivals


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.seconds = args.seconds or (4 if args.smoke else 30)
    args.warmup = args.warmup if args.warmup is not None else (3 if args.smoke else 8)
    harness.ensure_database()
    harness.setup_django("redis")
    harness.reset_state()
    receiver = harness.Receiver()
    project, _ = harness.make_project()
    for i in range(args.fast):
        harness.subscribe(project, receiver.url(f"/fast/isolation/{i}"))
    slow = harness.subscribe(project, receiver.url(f"/slow/isolation?sleep={args.timeout + 1}"), enabled=False)
    payload = harness.sample_payload()
    cluster = harness.start_cluster(args.workers, HOOKS_TIMEOUT_S=args.timeout)
    try:
        ids, _ = harness.publish(project.pk, payload, 2)
        if not harness.wait_until(lambda: receiver.count() >= len(ids), 60):
            raise RuntimeError(f"the worker did not deliver the warm-up events; see {cluster.log_path}")
        baseline = phase(project, payload, receiver, args)
        slow.enabled = True
        slow.save(update_fields=["enabled"])
        slowed = phase(project, payload, receiver, args)
        slow.enabled = False
        slow.save(update_fields=["enabled"])
        paused = phase(project, payload, receiver, args, args.pause_rate, max(args.seconds, 6), args.pause)
    finally:
        cluster.stop()
    ratio = slowed["fast_latency_ms"]["p99"] / baseline["fast_latency_ms"]["p99"]
    pause_ratio = paused["fast_latency_ms"]["p99"] / baseline["fast_latency_ms"]["p99"]
    paused["back_to_normal_s"] = back_to_normal(paused, 2 * baseline["fast_latency_ms"]["p99"], args)
    for name, row in (("baseline", baseline), ("slow target", slowed), ("one pause", paused)):
        lat, warm = row["fast_latency_ms"], row["warmup_fast_latency_ms"]
        print(
            f"{name}: fast p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms "
            f"({row['fast_received']}/{row['fast_expected']} fast received, {row['slow_requests']} slow requests); "
            f"warm-up p99 {warm.get('p99')} ms, max {warm.get('max')} ms",
            flush=True,
        )
    print(f"fast p99 with a slow target / baseline: {ratio:.2f}x (target <= 2x)")
    print(
        f"one pause of {args.pause} s at {args.pause_rate:g} events/s: p99 from 2 s after it / baseline: "
        f"{pause_ratio:.2f}x; every second's worst latency under 2x the baseline p99 from "
        f"{paused['back_to_normal_s']} s after the pause ended; last delivery "
        f"{paused['last_receipt_after_last_commit_s']} s after the last commit"
    )
    harness.write_result(
        "isolation",
        {"rate": args.rate, "seconds": args.seconds, "warmup": args.warmup, "fast_subscriptions": args.fast,
         "workers": args.workers, "timeout_s": args.timeout, "baseline": baseline, "slow": slowed,
         "p99_ratio": round(ratio, 2), "pause": paused, "pause_p99_ratio": round(pause_ratio, 2)},
        args,
    )  # fmt: skip


if __name__ == "__main__":
    main()
