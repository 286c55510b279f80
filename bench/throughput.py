"""Delivery throughput against the raw HTTP ceiling, at 1, 2 and 4 workers.

For each worker count W, side by side in one run:
- ceiling: the same N POSTs (the real envelope bytes and headers of a delivery) sent by a plain
  pooled `requests.Session` from W threads to the same receiver; rate = N / (first send -> last
  receipt);
- hooks: N events published through the real outbox path (`publish_event`, in transactions of
  `--batch`, from `--publishers` processes as several web processes would), delivered by
  `manage.py qcluster` with Q_WORKERS=W on the Redis broker; rate = N / (first commit -> last 2xx
  received). Commit-to-receipt latencies are reported too. The publishing rate is printed beside
  it: when it is not above the delivery rate, the publishers, not the deliveries, were measured.
  One publishing process publishes 1,200-1,350 events/s here, ahead of what the workers deliver,
  and more processes only take the 2 cores from the workers (4 processes: 50/63/52 % instead of
  67/74/62 % at 1/2/4 workers).
Then the same N events as a backlog, published while no worker runs and drained by the cluster:
the delivery side's own rate, without the publishers' share of the machine's cores.
Target: hooks >= 50 % of the ceiling.

Run: .venv/bin/python bench/throughput.py [--events 10000] [--workers 1,2,4] [--smoke]"""

import time
from concurrent.futures import ThreadPoolExecutor

import harness


def options(parser) -> None:
    parser.add_argument("--events", type=int, help="10000, or 100 with --smoke")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--batch", type=int, default=100, help="events per publishing transaction")
    parser.add_argument(
        "--publishers", type=int, default=1, help="publishing processes (1 keeps ahead of the workers here)"
    )
    parser.add_argument("--broker", default="redis", choices=("redis", "orm"))
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="NAME=VALUE", help="extra environment of the worker"
    )


def ceiling(receiver: harness.Receiver, url: str, body: bytes, headers: dict, n: int, concurrency: int) -> dict:
    import requests

    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, max_retries=0)
    session.mount("http://", adapter)

    def send(_) -> int:
        return session.post(url, data=body, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(concurrency * 2)))  # open the connections
        receiver.reset()
        started, cpu = time.time(), harness.MachineCPU()
        statuses = list(pool.map(send, range(n)))
    received = receiver.dump()
    last = max(t for t, _, _ in received)
    return {
        "requests": n,
        "ok": sum(200 <= s < 300 for s in statuses),
        "seconds": round(last - started, 3),
        "per_s": round(n / (last - started), 1),
        **cpu.per(n),
    }


def start_cluster(workers: int, args) -> harness.Child:
    """The cluster under test, with the `--worker-env` settings."""
    return harness.start_cluster(workers, args.broker, **dict(e.split("=", 1) for e in args.worker_env))


def hooks(receiver: harness.Receiver, project, payload: dict, n: int, workers: int, args) -> dict:
    from subscriptions.models import Delivery

    harness.clear_outbox()
    cluster = start_cluster(workers, args)
    try:
        receiver.reset()
        warm_ids, _ = harness.publish(project.pk, payload, 2 * workers)
        if harness.wait_until(lambda: receiver.count() >= len(warm_ids), 60) is False:
            raise RuntimeError(f"the worker did not deliver the warm-up events; see {cluster.log_path}")
        receiver.reset()
        committed = publish_all(project, payload, n, args)
        published = time.time()
        harness.wait_until(lambda: receiver.count() >= n, max(60, n / 15), interval=0.2)
        received = receiver.dump()
    finally:
        cluster.stop()
    first_commit = min(committed.values())
    arrivals: dict[str, float] = {}
    for t, _, hook_id in received:
        if hook_id in committed:
            arrivals.setdefault(hook_id, t)
    last = max(arrivals.values()) if arrivals else float("nan")
    return {
        "events": n,
        "received": len(arrivals),
        "other_requests": len(received) - len(arrivals),
        "succeeded_in_db": Delivery.objects.filter(pk__in=list(committed), status=Delivery.Status.SUCCESS).count(),
        "publish_per_s": round(n / (published - first_commit), 1),
        "seconds": round(last - first_commit, 3),
        "per_s": round(len(arrivals) / (last - first_commit), 1),
        "latency_ms": harness.summary([(arrivals[d] - committed[d]) * 1000 for d in arrivals]),
    }


def backlog(receiver: harness.Receiver, project, payload: dict, n: int, workers: int, args) -> dict:
    """The delivery side alone: n events published while no worker runs, then drained by a
    cluster of `workers`; rate from the first receipt to the last (the cluster's start excluded).
    On a shared 2-core machine this separates what the workers can do from the publishers' share
    of the CPU in the end-to-end figure."""
    harness.clear_outbox()
    publish_all(project, payload, n, args)
    receiver.reset()
    cluster = start_cluster(workers, args)
    try:
        harness.wait_until(lambda: receiver.count() >= n, max(60, n / 15), interval=0.2)
        received = [t for t, _, _ in receiver.dump()]
    finally:
        cluster.stop()
    seconds = max(received) - min(received) if len(received) > 1 else float("nan")
    return {
        "events": n,
        "received": len(received),
        "seconds": round(seconds, 3),
        "per_s": round(len(received) / seconds, 1),
    }


def publish_all(project, payload: dict, n: int, args) -> dict[str, float]:
    """Publish n events from `args.publishers` processes, as that many web processes would (threads
    of one process would measure its GIL); returns {delivery id: commit time}."""
    import multiprocessing

    from django.db import connections

    sizes = [min(args.batch, n - start) for start in range(0, n, args.batch)]
    context = multiprocessing.get_context("fork")
    connections.close_all()  # a forked publisher opens its own connection
    publishers = []
    for i in range(args.publishers):
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(target=_publisher, args=(sending, project.pk, payload, sizes[i :: args.publishers]))
        process.start()
        sending.close()
        publishers.append((process, receiving))
    committed: dict[str, float] = {}
    for process, receiving in publishers:
        committed.update(receiving.recv())
        process.join()
    if len(committed) != n:
        raise RuntimeError(f"published {len(committed)} of {n} events")
    return committed


def _publisher(results, project_id: str, payload: dict, sizes: list[int]) -> None:
    from django.db import connections

    committed: dict[str, float] = {}
    try:
        for size in sizes:
            ids, times = harness.publish(project_id, payload, size)
            committed.update(zip(ids, times, strict=True))
    finally:
        connections.close_all()
        results.send(committed)


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.events = args.events or (100 if args.smoke else 10_000)
    harness.ensure_database()
    harness.setup_django(args.broker)
    harness.reset_state()
    receiver = harness.Receiver()
    project, _ = harness.make_project()
    subscription = harness.subscribe(project, receiver.url("/fast/throughput"))
    payload = harness.sample_payload()

    body, headers = harness.sample_request(project.pk, payload)

    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        raw = ceiling(receiver, subscription.target, body, headers, args.events, workers)
        hooked = hooks(receiver, project, payload, args.events, workers, args)
        drained = backlog(receiver, project, payload, args.events, workers, args)
        ratio = hooked["per_s"] / raw["per_s"]
        rows.append({
            "workers": workers, "ceiling": raw, "hooks": hooked, "ratio": round(ratio, 3),
            "backlog": drained, "backlog_ratio": round(drained["per_s"] / raw["per_s"], 3),
        })  # fmt: skip
        print(
            f"workers={workers}: ceiling {raw['per_s']:.0f}/s, hooks {hooked['per_s']:.0f}/s "
            f"(published {hooked['publish_per_s']:.0f}/s), ratio {ratio:.0%}; commit->receipt "
            f"p50 {hooked['latency_ms']['p50']} ms p99 {hooked['latency_ms']['p99']} ms; "
            f"received {hooked['received']}/{args.events}; a backlog drains at {drained['per_s']:.0f}/s "
            f"({rows[-1]['backlog_ratio']:.0%})",
            flush=True,
        )
    harness.write_result(
        "throughput",
        {
            "broker": args.broker,
            "events": args.events,
            "batch": args.batch,
            "publishers": args.publishers,
            "body_bytes": len(body),
            "worker_env": args.worker_env,
            "rows": rows,
        },
        args,
    )
    missing = [r["workers"] for r in rows if min(r["hooks"]["received"], r["backlog"]["received"]) < args.events]
    if missing:
        raise SystemExit(f"not every event was delivered at workers={missing}")


if __name__ == "__main__":
    main()
