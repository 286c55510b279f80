"""Publishing cost: latency of `POST /api/projects/{pid}/requests/` with 0 and with 20 matching
subscriptions, through a real WSGI server (gunicorn if installed, else runserver).

The two cases alternate in blocks of `--block` requests (the 20 subscriptions are enabled or
disabled between blocks), so that a busy moment of the machine hits both alike. Publishing must
only write the event's row (a worker routes it into deliveries: subscriptions/routing.py) and wake
a worker after commit; no worker runs, nothing is sent. Target: < 5 ms added at p50.

Run: .venv/bin/python bench/publishing.py [--requests 300] [--smoke]"""

import time

import harness


def options(parser) -> None:
    parser.add_argument("--requests", type=int, help="per case: 300, or 20 with --smoke")
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument(
        "--events-and-filter",
        action="store_true",
        help="subscriptions with several `events` (a wildcard among them) and a `filter` the event meets",
    )


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.requests = args.requests or (20 if args.smoke else 300)
    harness.ensure_database()
    harness.setup_django("redis")
    harness.reset_state()
    import requests

    from subscriptions.models import EventPayload, Subscription

    receiver = harness.Receiver()
    project, token = harness.make_project()
    for i in range(args.subscriptions):
        fields = harness.EVENTS_AND_FILTER if args.events_and_filter else {}
        harness.subscribe(project, receiver.url(f"/fast/publishing/{i}"), **fields)
    # The case without subscriptions keeps them in another project: a disabled subscription of the
    # project would still get its (skipped) delivery rows.
    elsewhere, _ = harness.make_project("elsewhere")
    web, base = harness.start_web("redis")
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Token {token}"
    url = f"{base}/api/projects/{project.pk}/requests/"

    def post(i: int) -> float:
        lead = {"fullname": f"Customer {i}", "email": "c@example.com"}
        body = {"first_text": f"Where is my order {i}?", "lead": lead}
        started = time.perf_counter()
        response = session.post(url, json=body, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 201:
            raise SystemExit(f"POST {url} answered {response.status_code}: {response.text[:500]}")
        return elapsed

    for i in range(10):  # warm up the server's workers and connections
        post(i)
    samples: dict[int, list[float]] = {0: [], args.subscriptions: []}
    n = 0
    try:
        while min(len(v) for v in samples.values()) < args.requests:
            for matching in samples:
                Subscription.objects.filter(project__in=[project, elsewhere]).update(
                    project=project if matching else elsewhere
                )
                for _ in range(args.block):
                    n += 1
                    samples[matching].append(post(n))
        written = EventPayload.objects.filter(project=project).count()
        Subscription.objects.filter(project=elsewhere).update(project=project)
    finally:
        web.stop()
    rows = []
    for matching, values in samples.items():
        rows.append({"matching_subscriptions": matching, "latency_ms": harness.summary(values)})
    added = rows[1]["latency_ms"]["p50"] - rows[0]["latency_ms"]["p50"]
    for row in rows:
        lat = row["latency_ms"]
        print(
            f"{row['matching_subscriptions']:>2} matching subscriptions: p50 {lat['p50']} ms, p95 {lat['p95']} ms, "
            f"p99 {lat['p99']} ms ({lat['n']} requests)"
        )
    print(f"added at p50 by {args.subscriptions} subscriptions: {added:.2f} ms; events written: {written}")
    harness.write_result(
        "publishing_events_filter" if args.events_and_filter else "publishing",
        {"server": web.server, "requests": args.requests, "rows": rows, "added_p50_ms": round(added, 2),
         "events_written": written},
        args,
    )  # fmt: skip


if __name__ == "__main__":
    main()
