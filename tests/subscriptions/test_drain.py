"""A woken worker drains the outbox: it claims the longest-waiting due deliveries a batch at a
time, for as long as there are more; never one that is not due, parked or held by another worker;
and two workers claiming at the same moment never get the same delivery."""

import itertools
import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from subscriptions import tasks, transitions
from subscriptions.models import Attempt, Delivery
from tests.factories import pending_delivery, subscription


def test_a_woken_worker_sends_every_due_delivery_in_batches(project, httpserver, settings):
    settings.HOOKS_BATCH_SIZE = 10
    httpserver.expect_request("/hook").respond_with_json({})
    hook = subscription(project, httpserver.url_for("/hook"))
    deliveries = [pending_delivery(hook) for _ in range(25)]

    tasks.deliver_due()  # a full batch wakes another worker (here, in-process) for the rest

    assert sorted(request.headers["x-hook-id"] for request, _ in httpserver.log) == sorted(d.pk for d in deliveries)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"success"}
    assert Attempt.objects.count() == 25


def test_the_claim_takes_the_longest_waiting_first(project):
    hook = subscription(project)
    now = timezone.now()
    oldest, newest, middle = (pending_delivery(hook) for _ in range(3))
    for delivery, age_s in ((oldest, 30), (middle, 20), (newest, 10)):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now - timedelta(seconds=age_s))

    assert [d.pk for d in transitions.claim_due(2)] == [oldest.pk, middle.pk]
    assert [d.pk for d in transitions.claim_due(2)] == [newest.pk]


def test_a_claim_reads_its_batch_not_the_backlog_even_on_a_generic_plan(project):
    """PostgreSQL plans a prepared statement once for all its runs after its fifth: a plan that
    could not see the claim's constants hashed every pending delivery to pick a batch."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements' generic plans are PostgreSQL's")
    hook = subscription(project)
    for _ in range(150):
        pending_delivery(hook)
    statements = []

    def keep(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        transitions.claim_due(10)
    text, params = next((sql, params) for sql, params in statements if "chosen" in sql)
    numbers = itertools.count(1)
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute("PREPARE generic_claim AS " + re.sub("%s", lambda _: f"${next(numbers)}", text))
        cursor.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE generic_claim({', '.join(['%s'] * len(params))})", params
        )
        plan = cursor.fetchone()[0]
        cursor.execute("DEALLOCATE generic_claim")
        cursor.execute("RESET plan_cache_mode")

    def delivery_rows_read(node: dict) -> list[int]:
        read = []
        if node.get("Relation Name") == Delivery._meta.db_table:
            read.append((node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"])
        for child in node.get("Plans", []):
            read += delivery_rows_read(child)
        return read

    assert max(delivery_rows_read(plan[0]["Plan"])) <= 20


def test_the_claim_leaves_what_is_not_due_parked_or_held(project):
    hook = subscription(project)
    later, parked, held, done = (pending_delivery(hook) for _ in range(4))
    soon = timezone.now() + timedelta(minutes=2)
    Delivery.objects.filter(pk=later.pk).update(next_attempt_at=soon)
    Delivery.objects.filter(pk=parked.pk).update(next_attempt_at=soon, parked_at=timezone.now())
    Delivery.objects.filter(pk=held.pk).update(locked_until=soon)
    Delivery.objects.filter(pk=done.pk).update(status="success")

    assert transitions.claim_due(10) == []


def test_a_claim_whose_lease_ran_out_is_claimed_again(project):
    delivery = pending_delivery(subscription(project))
    Delivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now() - timedelta(seconds=1))

    assert [d.pk for d in transitions.claim_due(10)] == [delivery.pk]
    assert Delivery.objects.get(pk=delivery.pk).locked_until > timezone.now()


def test_workers_claiming_at_the_same_moment_never_share_a_delivery(transactional_db, project):
    hook = subscription(project)
    ids = {pending_delivery(hook).pk for _ in range(200)}
    claims: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def worker(mine: list[str]) -> None:
        start.wait()
        try:
            while batch := transitions.claim_due(7):
                mine.extend(d.pk for d in batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    everything = [pk for mine in claims for pk in mine]
    assert sorted(everything) == sorted(ids)  # each one claimed, and only once


def test_retries_due_together_share_one_scheduled_wake_up(project, httpserver, settings):
    from django_q.models import Schedule

    settings.HOOKS_RETRY_WAKE_S = 3600.0
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    hook = subscription(project, httpserver.url_for("/hook"))
    for _ in range(5):
        pending_delivery(hook)

    tasks.deliver_due()

    retries = Delivery.objects.values_list("next_attempt_at", flat=True)
    assert Delivery.objects.filter(status="pending", attempt_count=1).count() == 5
    (wake,) = Schedule.objects.filter(func="subscriptions.tasks.deliver_due")
    assert all(wake.next_run >= due for due in retries)
    assert not Schedule.objects.filter(func="subscriptions.tasks.deliver").exists()


def test_a_claim_loads_each_delivery_with_its_subscription_and_payload_as_the_orm_reads_them(project):
    hook = subscription(project)
    delivery = pending_delivery(hook, payload={"text": "héllo", "n": [1, 2.5, None], "ok": True})

    (claimed,) = transitions.load([delivery.pk])

    stored = Delivery.objects.select_related("subscription", "event_payload").get(pk=delivery.pk)
    for loaded, orm in ((claimed, stored), (claimed.subscription, stored.subscription),
                        (claimed.event_payload, stored.event_payload)):  # fmt: skip
        fields = type(orm)._meta.concrete_fields
        assert [getattr(loaded, f.attname) for f in fields] == [getattr(orm, f.attname) for f in fields]
        assert not loaded._state.adding
    assert claimed.event_payload.payload == {"text": "héllo", "n": [1, 2.5, None], "ok": True}
