"""API-shaped traffic: one event per transaction, as each API call (a message, a request, a lead)
commits its own, published by several processes as a web tier would, side by side with the raw
ceiling, at 2 and 4 workers.

`throughput.py` publishes in transactions of 100 events, which lets a worker's task carry many
deliveries; real traffic commits one event at a time. For each worker count W, in one run:
- ceiling: N POSTs of a real delivery's bytes and headers from a plain pooled `requests.Session`
  on W threads to the same receiver (as in throughput.py);
- for each shape (below), against that ceiling:
  - end to end: N deliveries' events published one per transaction by `--publishers` processes as
    fast as they can, delivered by `manage.py qcluster` (Q_WORKERS=W, Redis broker); deliveries/s
    from the first commit to the last 2xx received, and commit->receipt percentiles;
  - backlog: the same events published while no worker runs, then drained (first to last receipt);
  - open loop: events published at a fixed rate, 25 % and 50 % of the ceiling in deliveries/s
    (on an absolute schedule shared by the publishers, not as fast as they can) for
    `--open-seconds`; commit->receipt p50/p95/p99 once every event is received.
Shapes: `one` (1 subscription per event, N events), `twenty` (20 subscriptions, N/20 events: the
same N deliveries), `slow` (20 subscriptions of which one target sleeps past HOOKS_TIMEOUT_S, 2 s
here; N/20 events; only the 19 fast targets' deliveries are counted, and they are what the rates,
the ceiling fraction and the latencies are of). The slow target's deliveries are left pending.
Targets: end to end >= 50 % of the ceiling, backlog >= 80 %, open-loop p99 < 250 ms below 50 %.

The ceiling and every end-to-end phase also report the machine's busy CPU per request or
delivery, every process counted, and how busy the phase kept the cores (`harness.MachineCPU`,
Linux). They tell what bound a phase: end to end keeps the cores busy, so its rate is the cores
divided by what an event costs, publishing included, and swings with how fast the shared machine
runs that minute; the ceiling, one client process's threads and the receiver, leaves them partly
idle.

The default of 4 publishing processes is a small web tier (gunicorn's 2 x cores): one process
committing one event per transaction waits for each commit, so it cannot offer the load alone.

Run: .venv/bin/python bench/traffic.py [--deliveries 10000] [--workers 2,4] [--publishers 4]
     [--shapes one,twenty,slow] [--smoke]"""

import multiprocessing
import time

import harness
from throughput import ceiling

SHAPES = {"one": (1, False), "twenty": (20, False), "slow": (20, True)}
SLOW_TIMEOUT_S = 2.0
FRACTIONS = (0.25, 0.5)


def options(parser) -> None:
    parser.set_defaults(max_seconds=5400)  # the full sizes take long on 2 cores
    parser.add_argument("--deliveries", type=int, help="per phase: 10000, or 100 with --smoke")
    parser.add_argument("--workers", help="worker counts: 2,4, or 2 with --smoke")
    parser.add_argument("--publishers", type=int, default=4, help="publishing processes (a web tier's)")
    parser.add_argument("--shapes", default="one,twenty,slow")
    parser.add_argument(
        "--events-and-filter",
        action="store_true",
        help="subscriptions with several `events` (a wildcard among them) and a `filter` the event meets",
    )
    parser.add_argument("--open-seconds", type=float, help="seconds of offered load per open-loop rate: 10, or 1")
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="NAME=VALUE", help="extra environment of the worker"
    )


# --- publishing ----------------------------------------------------------------------------------
def publish(project_id: str, payload: dict, events: int, publishers: int, rate: float | None = None) -> dict:
    """Publish `events` events, one per transaction, from `publishers` forked processes; as fast as
    they can, or at `rate` events/s in total on an absolute schedule (event k is due at start +
    k / rate, whichever process publishes it). Returns {delivery id: commit time}."""
    from django.db import connections

    context = multiprocessing.get_context("fork")
    connections.close_all()  # each publisher opens its own connection
    start = time.time() + 0.3  # every process forked and connected before the first is due
    children = []
    for i in range(publishers):
        receiving, sending = context.Pipe(duplex=False)
        indexes = list(range(i, events, publishers))
        process = context.Process(target=_publisher, args=(sending, project_id, payload, indexes, start, rate))
        process.start()
        sending.close()
        children.append((process, receiving))
    committed: dict[str, float] = {}
    for process, receiving in children:
        committed.update(receiving.recv())
        process.join()
    return committed


def _publisher(results, project_id: str, payload: dict, indexes: list[int], start: float, rate: float | None) -> None:
    from django.db import connections

    committed: dict[str, float] = {}
    try:
        connections["default"].ensure_connection()
        for k in indexes:
            due = start + (k / rate if rate else 0)
            if (pause := due - time.time()) > 0:
                time.sleep(pause)
            ids, times = harness.publish(project_id, payload)
            committed.update(zip(ids, times, strict=True))
    finally:
        connections.close_all()
        results.send(committed)


# --- measuring -----------------------------------------------------------------------------------
def arrivals_of(receiver: harness.Receiver, committed: dict[str, float]) -> dict[str, float]:
    """First receipt of each fast delivery of `committed` (a slow target's are not counted)."""
    first: dict[str, float] = {}
    for t, path, hook_id in receiver.dump():
        if path.startswith("/fast/") and hook_id in committed:
            first.setdefault(hook_id, t)
    return first


def wait_for(receiver: harness.Receiver, expected: int, timeout: float) -> None:
    """Until the receiver has `expected` fast receipts (a cheap count first: it also counts the slow
    target's requests, so only a count past `expected` is worth a dump)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if receiver.count() >= expected:
            fast = sum(1 for _, path, _ in receiver.dump() if path.startswith("/fast/"))
            if fast >= expected:
                return
        time.sleep(0.25)


def start_cluster(workers: int, slow: bool, args) -> harness.Child:
    env = dict(e.split("=", 1) for e in args.worker_env)
    if slow:
        env["HOOKS_TIMEOUT_S"] = SLOW_TIMEOUT_S
    return harness.start_cluster(workers, **env)


def warm_up(cluster: harness.Child, receiver: harness.Receiver, project, payload: dict, workers: int, fast: int):
    """A few events first: the workers are up, their connections open (and a slow target, if any,
    has been met and marked before the measured part)."""
    receiver.reset()
    for _ in range(2 * workers):
        harness.publish(project.pk, payload)
    wait_for(receiver, 2 * workers * fast, 60)
    if not any(path.startswith("/fast/") for _, path, _ in receiver.dump()):
        raise RuntimeError(f"the worker did not deliver the warm-up events; see {cluster.log_path}")


def end_to_end(cluster, receiver, project, payload, events: int, fast: int, args, rate: float | None = None) -> dict:
    receiver.reset()
    cpu = harness.MachineCPU()
    committed = publish(project.pk, payload, events, args.publishers, rate)
    published = time.time()
    expected = events * fast
    wait_for(receiver, expected, max(60, expected / 20))
    spent = cpu.per(expected)
    arrivals = arrivals_of(receiver, committed)
    first_commit = min(committed.values())
    last = max(arrivals.values()) if arrivals else float("nan")
    return {
        "events": events,
        "deliveries": expected,
        "received": len(arrivals),
        "publish_per_s": round(events / (published - first_commit), 1),
        "seconds": round(last - first_commit, 3),
        "per_s": round(len(arrivals) / (last - first_commit), 1),
        "latency_ms": harness.summary([(t - committed[d]) * 1000 for d, t in arrivals.items()]),
        **spent,
    }


def backlog(receiver, project, payload, events: int, fast: int, workers: int, slow: bool, args) -> dict:
    """The delivery side alone: published while no worker runs, then drained (first to last receipt)."""
    harness.clear_outbox()
    publish(project.pk, payload, events, args.publishers)
    receiver.reset()
    cluster = start_cluster(workers, slow, args)
    try:
        expected = events * fast
        wait_for(receiver, expected, max(60, expected / 20))
        received = [t for t, path, _ in receiver.dump() if path.startswith("/fast/")]
    finally:
        cluster.stop()
    seconds = max(received) - min(received) if len(received) > 1 else float("nan")
    return {"deliveries": expected, "received": len(received), "seconds": round(seconds, 3),
            "per_s": round(len(received) / seconds, 1)}  # fmt: skip


def shape(name: str, receiver, payload, workers: int, raw: dict, args) -> dict:
    subscriptions, slow = SHAPES[name]
    fast = subscriptions - 1 if slow else subscriptions
    harness.reset_state()
    project, _ = harness.make_project(f"traffic-{name}")
    fields = harness.EVENTS_AND_FILTER if args.events_and_filter else {}
    for i in range(fast):
        harness.subscribe(project, receiver.url(f"/fast/traffic/{i}"), **fields)
    if slow:
        harness.subscribe(project, receiver.url(f"/slow/traffic?sleep={SLOW_TIMEOUT_S + 1}"), **fields)
    events = max(1, args.deliveries // subscriptions)
    harness.clear_outbox()
    cluster = start_cluster(workers, slow, args)
    try:
        warm_up(cluster, receiver, project, payload, workers, fast)
        e2e = end_to_end(cluster, receiver, project, payload, events, fast, args)
        open_loop = []
        for fraction in FRACTIONS:
            rate = fraction * raw["per_s"] / fast  # events/s that offer this fraction in fast deliveries/s
            count = max(1, int(rate * args.open_seconds))
            row = end_to_end(cluster, receiver, project, payload, count, fast, args, rate=rate)
            open_loop.append({"fraction": fraction, "offered_deliveries_per_s": round(rate * fast, 1),
                              "offered_events_per_s": round(rate, 1), **row})  # fmt: skip
    finally:
        cluster.stop()
    drained = backlog(receiver, project, payload, events, fast, workers, slow, args)
    return {
        "subscriptions": subscriptions,
        "slow_target": slow,
        "fast_per_event": fast,
        "end_to_end": {**e2e, "ratio": round(e2e["per_s"] / raw["per_s"], 3)},
        "backlog": {**drained, "ratio": round(drained["per_s"] / raw["per_s"], 3)},
        "open_loop": open_loop,
    }


def percentiles(summary: dict) -> str:
    return f"{summary.get('p50')}/{summary.get('p95')}/{summary.get('p99')}"


def cpu_cost(phase: dict) -> str:
    """The machine's CPU per item of a phase, and how busy it kept the machine."""
    if "cpu_ms_per_item" not in phase:
        return "-"
    return f"{phase['cpu_ms_per_item']} ms ({phase['machine_busy']:.0%} busy)"


def table(rows: list[dict]) -> str:
    lines = [
        "| workers | shape | ceiling | end to end | backlog drain | open loop 25 %: p50/p95/p99 ms | "
        "open loop 50 %: p50/p95/p99 ms | CPU per delivery: end to end / ceiling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for name, s in row["shapes"].items():
            e, b = s["end_to_end"], s["backlog"]
            cells = [f"{percentiles(o['latency_ms'])} at {o['offered_deliveries_per_s']:.0f}/s" for o in s["open_loop"]]
            lines.append(
                f"| {row['workers']} | {name} | {row['ceiling']['per_s']:.0f}/s | {e['per_s']:.0f}/s "
                f"({e['ratio']:.0%}), p50 {e['latency_ms'].get('p50')} ms | {b['per_s']:.0f}/s ({b['ratio']:.0%}) "
                f"| {' | '.join(cells)} | {cpu_cost(e)} / {cpu_cost(row['ceiling'])} |"
            )
    return "\n".join(lines)


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.deliveries = args.deliveries or (100 if args.smoke else 10_000)
    args.open_seconds = args.open_seconds or (1 if args.smoke else 10)
    args.workers = args.workers or ("2" if args.smoke else "2,4")
    harness.ensure_database()
    harness.setup_django()
    harness.reset_state()
    receiver = harness.Receiver()
    payload = harness.sample_payload()

    project, _ = harness.make_project("traffic-sample")
    sample_target = receiver.url("/fast/traffic/0")
    harness.subscribe(project, sample_target)
    body, headers = harness.sample_request(project.pk, payload)

    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        raw = ceiling(receiver, sample_target, body, headers, args.deliveries, workers)
        shapes = {}
        for name in args.shapes.split(","):
            shapes[name] = result = shape(name, receiver, payload, workers, raw, args)
            e, b = result["end_to_end"], result["backlog"]
            latencies = ", ".join(
                f"{o['fraction']:.0%} ({o['offered_deliveries_per_s']:.0f}/s offered, {o['received']}/"
                f"{o['deliveries']} received): p50/p95/p99 {percentiles(o['latency_ms'])} ms"
                for o in result["open_loop"]
            )
            print(
                f"workers={workers} {name}: ceiling {raw['per_s']:.0f}/s; end to end {e['per_s']:.0f}/s "
                f"({e['ratio']:.0%}, published {e['publish_per_s']:.0f} events/s, received {e['received']}/"
                f"{e['deliveries']}); backlog {b['per_s']:.0f}/s ({b['ratio']:.0%}); open loop {latencies}; "
                f"machine CPU per delivery {cpu_cost(e)} end to end, per request {cpu_cost(raw)} at the ceiling",
                flush=True,
            )
        rows.append({"workers": workers, "ceiling": raw, "shapes": shapes})
    print(table(rows))
    harness.write_result(
        "traffic_events_filter" if args.events_and_filter else "traffic",
        {"deliveries": args.deliveries, "publishers": args.publishers, "open_seconds": args.open_seconds,
         "events_and_filter": args.events_and_filter,
         "slow_timeout_s": SLOW_TIMEOUT_S, "body_bytes": len(body), "worker_env": args.worker_env, "rows": rows},
        args,
    )  # fmt: skip
    short = [
        (r["workers"], name)
        for r in rows
        for name, s in r["shapes"].items()
        for phase in (s["end_to_end"], s["backlog"], *s["open_loop"])
        if phase["received"] < phase["deliveries"]
    ]
    if short:
        raise SystemExit(f"not every delivery was received: {short}")


if __name__ == "__main__":
    main()
