"""Scale of the logs: the logs API over 1,000,000 attempt rows, and purging them while deliveries go on.

1. Loads `--rows` attempt rows (two per delivery, ~10 % failed, 10 subscriptions, spread over 30
   days that all lie more than 30 days back) with PostgreSQL COPY, then VACUUM ANALYZE.
2. `GET /api/projects/{pid}/subscriptions/logs/` through a real WSGI server, `--queries` times per
   shape, each with a random subscription and day: filtered by subscription + outcome + a one-day
   window (the target: p99 < 100 ms), by subscription + outcome alone, and unfiltered (page 1).
3. `purge_attempts(now - 30 days)` (the function behind `manage.py purge_logs`) removes all of
   them in batches, while a worker keeps delivering new events at `--rate`/s to a fast receiver;
   the live deliveries' commit-to-receipt latency during the purge is compared with before it.
   Target: under a minute, and deliveries keep flowing.

Run: .venv/bin/python bench/logs_scale.py [--rows 1000000] [--smoke]"""

import random
import threading
import time
from datetime import timedelta

import harness

SUBSCRIPTIONS = 10
SPAN_DAYS = 30


def options(parser) -> None:
    parser.add_argument("--rows", type=int, help="attempt rows: 1000000, or 20000 with --smoke")
    parser.add_argument("--queries", type=int, help="requests per query shape: 200, or 20 with --smoke")
    parser.add_argument("--rate", type=float, default=20.0, help="live events per second during the purge")


def load(project, subscriptions, rows: int) -> tuple[float, object, object]:
    """COPY the deliveries and attempts; returns the seconds it took and the span of the rows.
    Columns and defaults come from the models, so the loader follows schema changes."""
    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from subscriptions.envelope import envelope_bytes, request_headers
    from subscriptions.models import Attempt, Delivery, EventPayload

    payload = EventPayload.objects.create(project=project, payload=harness.sample_payload())
    sample = Delivery.objects.create(project=project, subscription=subscriptions[0], event=harness.EVENT,
                                     event_payload=payload)  # fmt: skip
    body = envelope_bytes(sample)
    headers = request_headers(sample, body, int(time.time()))
    body_text = body.decode()
    end = timezone.now() - timedelta(days=SPAN_DAYS + 1)
    start = end - timedelta(days=SPAN_DAYS)
    step = (end - start) / rows
    rng = random.Random(9)
    started = time.monotonic()

    def copy(model, make_rows) -> None:
        fields = model._meta.concrete_fields
        defaults = [f.get_default() for f in fields]
        columns = ", ".join(f'"{f.column}"' for f in fields)
        sql = f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN'
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as cp:
            for row in make_rows():
                values = [row.get(f.attname, d) for f, d in zip(fields, defaults, strict=True)]
                cp.write_row([Jsonb(v) if isinstance(v, dict | list) else v for v in values])

    delivery_ids = [f"{i:024x}" for i in range(rows // 2 + 1)]

    def deliveries():
        for i, pk in enumerate(delivery_ids):
            at = start + step * (2 * i)
            yield {"id": pk, "project_id": project.pk, "subscription_id": subscriptions[i % SUBSCRIPTIONS].pk,
                   "event": harness.EVENT, "event_payload_id": payload.pk, "status": "success", "attempt_count": 2,
                   "next_attempt_at": None, "created_at": at, "updated_at": at}  # fmt: skip

    def attempts():
        redacted = {k: ("[redacted]" if k == "x-hook-secret" else v) for k, v in headers.items()}
        for i in range(rows):
            failed = rng.random() < 0.1
            d = i // 2
            yield {"id": f"a{i:023x}", "project_id": project.pk, "delivery_id": delivery_ids[d],
                   "subscription_id": subscriptions[d % SUBSCRIPTIONS].pk, "event": harness.EVENT,
                   "attempt": i % 2 + 1, "target": subscriptions[d % SUBSCRIPTIONS].target,
                   "request_headers": redacted, "request_body": body_text,
                   "status_code": 503 if failed else 200, "response_headers": {"Content-Type": "application/json"},
                   "response_body": "" if failed else '{"ok":true}', "error": "", "duration_ms": rng.randint(2, 80),
                   "outcome": "failed" if failed else "success", "created_at": start + step * i}  # fmt: skip

    with transaction.atomic():
        with connection.cursor() as cursor:
            # Bulk load only: the rows are consistent by construction, so skip per-row FK triggers.
            cursor.execute("SET LOCAL session_replication_role = replica")
        copy(Delivery, deliveries)
        copy(Attempt, attempts)
    with connection.cursor() as cursor:
        # What autovacuum does to a table in steady state (statistics, visibility map for
        # index-only scans); a freshly COPYed table has neither yet.
        cursor.execute("VACUUM ANALYZE subscriptions_delivery")
        cursor.execute("VACUUM ANALYZE subscriptions_attempt")
    return time.monotonic() - started, start, end


def query_latencies(base: str, token: str, project, subscriptions, start, n: int) -> list[dict]:
    import requests

    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Token {token}"
    url = f"{base}/api/projects/{project.pk}/subscriptions/logs/"
    rng = random.Random(3)

    def window() -> dict:
        day = start + timedelta(days=rng.randrange(SPAN_DAYS))
        return {"since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat()}

    shapes = {
        "subscription+outcome+1 day": lambda: {"subscription": rng.choice(subscriptions).pk,
                                               "outcome": rng.choice(["failed", "success"]), **window()},
        "subscription+outcome": lambda: {"subscription": rng.choice(subscriptions).pk,
                                         "outcome": rng.choice(["failed", "success"])},
        "unfiltered": lambda: {},
    }  # fmt: skip
    out = []
    for name, params in shapes.items():
        session.get(url, params=params(), timeout=60)  # warm
        times, counts = [], []
        for _ in range(n):
            t = time.perf_counter()
            response = session.get(url, params=params(), timeout=60)
            times.append((time.perf_counter() - t) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"logs API answered {response.status_code}: {response.text[:300]}")
            counts.append(response.json()["count"])
        out.append({"shape": name, "latency_ms": harness.summary(times), "mean_count": round(sum(counts) / n)})
    return out


def live_deliveries(project, receiver, rate: float, stop: threading.Event, committed: dict) -> None:
    """Publish events at `rate` until `stop`, recording commit times (runs in a thread)."""
    from django.db import connection

    payload = harness.sample_payload()
    start, i = time.monotonic(), 0
    try:
        while not stop.is_set():
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            ids, times = harness.publish(project.pk, payload)
            committed.update(zip(ids, times, strict=True))
            i += 1
    finally:
        connection.close()


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.rows = args.rows or (20_000 if args.smoke else 1_000_000)
    args.queries = args.queries or (20 if args.smoke else 200)
    harness.ensure_database()
    harness.setup_django("redis")
    harness.reset_state()
    from django.utils import timezone

    from subscriptions.maintenance import purge_attempts
    from subscriptions.models import Attempt

    receiver = harness.Receiver()
    project, token = harness.make_project()
    # The logged subscriptions are disabled: the live deliveries of step 3 go to one of their own.
    subscriptions = [
        harness.subscribe(project, receiver.url(f"/fast/logs/{i}"), enabled=False) for i in range(SUBSCRIPTIONS)
    ]
    harness.subscribe(project, receiver.url("/fast/live"))
    seconds, start, _ = load(project, subscriptions, args.rows)
    print(f"loaded {args.rows} attempt rows in {seconds:.1f} s", flush=True)

    web, base = harness.start_web("redis")
    try:
        shapes = query_latencies(base, token, project, subscriptions, start, args.queries)
    finally:
        web.stop()
    for row in shapes:
        lat = row["latency_ms"]
        print(f"logs API, {row['shape']}: p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms "
              f"(~{row['mean_count']} matching rows)", flush=True)  # fmt: skip

    # Purge while deliveries go on: the same live load before and during the purge.
    cluster = harness.start_cluster(2)
    stop, committed = threading.Event(), {}
    try:
        ids, _ = harness.publish(project.pk, harness.sample_payload())
        harness.wait_until(lambda: receiver.count() >= len(ids), 60)
        receiver.reset()
        publisher = threading.Thread(target=live_deliveries, args=(project, receiver, args.rate, stop, committed))
        publisher.start()
        time.sleep(3 if args.smoke else 10)
        purge_started = time.time()
        batches: list[float] = []  # when each batch of attempt rows was deleted
        removed = purge_attempts(
            timezone.now() - timedelta(days=SPAN_DAYS), progress=lambda n: batches.append(time.time())
        )
        purge_ended = time.time()
        time.sleep(1)
        stop.set()
        publisher.join(30)
        harness.wait_until(lambda: receiver.count() >= len(committed), 30)
        received = receiver.dump()
    finally:
        stop.set()
        cluster.stop()
    arrivals: dict[str, float] = {}
    for t, _, hook_id in received:
        if hook_id in committed:
            arrivals.setdefault(hook_id, t)
    before = [(t - committed[d]) * 1000 for d, t in arrivals.items() if committed[d] < purge_started]
    during = [(t - committed[d]) * 1000 for d, t in arrivals.items() if purge_started <= committed[d] <= purge_ended]
    purge = {
        "removed": removed,
        "seconds": round(purge_ended - purge_started, 2),
        "attempt_rows_seconds": round(batches[-1] - purge_started, 2) if batches else None,
        "batches": len(batches),
        "left": Attempt.objects.filter(project=project, subscription__in=subscriptions).count(),
        "live_delivered": len(arrivals),
        "live_published": len(committed),
        "live_latency_before_ms": harness.summary(before),
        "live_latency_during_ms": harness.summary(during),
    }
    b, d = purge["live_latency_before_ms"], purge["live_latency_during_ms"]
    print(
        f"purge_attempts removed {removed} rows in {purge['seconds']} s ({len(batches)} batches; the attempt rows "
        f"took {purge['attempt_rows_seconds']} s, the rest is finished deliveries and payloads); live deliveries "
        f"{len(arrivals)}/{len(committed)}: p50/p99 before {b.get('p50')}/{b.get('p99')} ms, during the purge "
        f"{d.get('p50')}/{d.get('p99')} ms ({d['n']} delivered)",
        flush=True,
    )
    harness.write_result(
        "logs_scale", {"rows": args.rows, "load_seconds": round(seconds, 1), "queries": shapes, "purge": purge}, args
    )


if __name__ == "__main__":
    main()
