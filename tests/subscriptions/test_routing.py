"""What routing makes of a published event (subscriptions/routing.py): one delivery per matching
subscription of the project that existed when the event was published, pending and due at once
(`skipped` for a disabled one), numbered, stored exactly as the ORM would store it; the deliveries
a draining worker routes come back leased to it; an event waits, unrouted and counted by the sweep,
until a routing commits."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from subscriptions import maintenance, routing, tasks
from subscriptions.models import Delivery, EventPayload
from subscriptions.publishing import publish_event
from support.models import Project
from tests.factories import subscription

PAYLOAD = {"text": "Grüße", "big": 2**53, "channel": {"name": "chat21"}}


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Published events wait for the test's routing: no worker is woken after commit."""
    from subscriptions import queue

    monkeypatch.setattr(queue, "wake", lambda *args, **kwargs: None)


def publish(project, names=("request.create",), occurred_at=None) -> str:
    return publish_event(project.pk, list(names), PAYLOAD, occurred_at)


def test_an_event_gets_one_pending_delivery_per_matching_enabled_subscription_and_a_skipped_one_per_disabled(
    project, make_user
):
    taking = [subscription(project, target=f"https://hooks.example.com/{n}") for n in range(2)]
    paused = subscription(project, enabled=False)
    subscription(project, event="lead.create")
    subscription(Project.objects.create(name="Other", created_by=make_user("other")))
    occurred_at = datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)
    event_id = publish(project, occurred_at=occurred_at)

    assert routing.route(10) == []  # nothing leased: left due for any worker's claim

    made = {d.subscription_id: d for d in Delivery.objects.all()}
    assert sorted(made) == sorted(s.pk for s in [*taking, paused])
    assert made.pop(paused.pk).status == "skipped"
    for delivery in made.values():
        assert (delivery.project_id, delivery.event, delivery.status) == (project.pk, "request.create", "pending")
        assert delivery.event_payload_id == event_id
        assert (delivery.attempt_count, delivery.round_started_after, delivery.locked_until) == (0, 0, None)
        assert delivery.next_attempt_at == delivery.created_at == occurred_at
        assert (delivery.sequence, delivery.last_error, delivery.decision) == (1, "", "")
        assert delivery.updated_at is not None
    assert EventPayload.objects.get().names is None  # routed


def test_plain_filtered_and_many_event_subscriptions_of_one_event_share_its_payload_row(project):
    taking = [
        subscription(project, target="https://hooks.example.com/plain"),
        subscription(project, target="https://hooks.example.com/filtered", filter={"big": {"$gt": 1}}),
        subscription(project, target="https://hooks.example.com/many", events=["message.*", "request.create"]),
    ]
    subscription(project, target="https://hooks.example.com/not-met", filter={"big": {"$lt": 1}})
    event_id = publish(project)

    routing.route(10)

    made = Delivery.objects.all()
    assert sorted(d.subscription_id for d in made) == sorted(s.pk for s in taking)
    assert {(d.event_payload_id, d.event, d.status) for d in made} == {(event_id, "request.create", "pending")}
    assert EventPayload.objects.get().payload == PAYLOAD


def test_a_many_event_subscription_takes_the_most_specific_name_it_matches(project):
    many = subscription(project, events=["message.*", "lead.create"])

    publish(project, names=["message.create", "message.create.chat21"])
    routing.route(10)

    assert Delivery.objects.get(subscription=many).event == "message.create.chat21"


def test_an_event_no_filter_lets_through_is_routed_into_no_delivery(project):
    subscription(project, filter={"big": {"$lt": 1}})
    subscription(project, events=["message.*", "request.create"], filter={"text": "other"})
    publish(project)

    routing.route(10)

    assert not Delivery.objects.exists()
    assert EventPayload.objects.get().names is None


def test_more_subscriptions_than_one_insert_statement_carries_all_get_their_delivery(project):
    subscriptions = [subscription(project, target=f"https://hooks.example.com/{n}") for n in range(150)]
    publish(project)  # SQLite: 999 parameters a statement

    routing.route(10)

    assert sorted(Delivery.objects.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)


def test_a_deliverys_id_is_its_event_and_subscriptions_and_begins_with_the_events_time(project):
    hook = subscription(project)
    event_id = publish(project)

    routing.route(10)

    (delivery,) = Delivery.objects.all()
    assert delivery.pk == routing.delivery_id(event_id, hook.pk)
    assert len(delivery.pk) == 24 and set(delivery.pk) <= set("0123456789abcdef")
    assert delivery.pk[:8] == event_id[:8]


def test_an_event_routed_again_after_its_routing_rolled_back_makes_the_same_deliveries(project):
    """What a database crash that undid a routing amounts to: the receiver may get the delivery
    again, with the same webhook-id and number."""
    subscription(project)
    publish(project)

    class Undone(Exception):
        pass

    with pytest.raises(Undone), transaction.atomic():
        routing.route(10)
        first = list(Delivery.objects.values_list("id", "sequence"))
        raise Undone
    assert EventPayload.objects.get().names == ["request.create"]  # unrouted again
    routing.route(10)

    assert list(Delivery.objects.values_list("id", "sequence")) == first


def test_a_subscription_made_after_an_event_was_published_gets_none_of_it(project):
    publish(project, names=["request.create"])  # taken by nobody yet: not written
    early = subscription(project)
    waiting = publish(project)
    subscription(project, target="https://hooks.example.com/late")

    routing.route(10)

    assert list(Delivery.objects.values_list("subscription_id", "event_payload_id")) == [(early.pk, waiting)]


def test_a_subscription_deleted_before_the_event_is_routed_gets_none_of_it(project):
    gone = subscription(project)
    kept = subscription(project, target="https://hooks.example.com/kept")
    publish(project)
    gone.delete()

    routing.route(10)

    assert list(Delivery.objects.values_list("subscription_id", flat=True)) == [kept.pk]


def test_the_oldest_events_are_routed_first_a_batch_at_a_time_and_numbered_in_that_order(project):
    hook = subscription(project)
    published = [publish(project) for _ in range(5)]

    routing.route(2)
    assert EventPayload.objects.filter(names__isnull=False).count() == 3
    routing.route(10)

    numbers = dict(Delivery.objects.filter(subscription=hook).values_list("event_payload_id", "sequence"))
    assert [numbers[event_id] for event_id in published] == [1, 2, 3, 4, 5]


def test_numbers_follow_the_order_events_were_published_when_some_are_matched_in_python(project):
    plain = subscription(project)
    subscription(project, target="https://hooks.example.com/many", events=["message.*", "lead.create"])
    published = [
        publish(project),
        publish(project, names=["request.create", "message.create"]),  # the wildcard takes this one
        publish(project),
    ]

    routing.route(10)

    numbers = dict(Delivery.objects.filter(subscription=plain).values_list("event_payload_id", "sequence"))
    assert [numbers[event_id] for event_id in published] == [1, 2, 3]


def test_a_draining_worker_gets_the_deliveries_it_routes_leased_with_their_subscription_and_payload(project):
    plain = subscription(project)
    ordered = subscription(project, target="https://hooks.example.com/ordered", ordering="fifo")
    subscription(project, target="https://hooks.example.com/paused", enabled=False)
    publish(project)

    (leased,) = routing.route(10, lease=True)

    assert leased.subscription_id == plain.pk
    assert leased.locked_until > timezone.now()
    assert (leased.subscription.target, leased.event_payload.payload) == (plain.target, PAYLOAD)
    waiting = Delivery.objects.get(subscription=ordered)  # one at a time: the claim decides
    assert (waiting.status, waiting.locked_until) == ("pending", None)


@pytest.mark.parametrize("events", [None, ["request.*"]], ids=["one-statement routing", "routing matched in Python"])
def test_a_worker_leases_one_batch_of_what_it_routes_and_leaves_the_rest_due_for_any_worker(project, events):
    for n in range(5):
        subscription(project, target=f"https://hooks.example.com/{n}", **({"events": events} if events else {}))
    publish(project)

    leased = routing.route(3, lease=True)

    assert len(leased) == 3 and all(d.locked_until for d in leased)
    rest = Delivery.objects.exclude(pk__in=[d.pk for d in leased])
    assert [(d.status, d.locked_until) for d in rest] == [("pending", None)] * 2


def test_an_event_left_unrouted_is_counted_by_the_sweep_which_wakes_a_worker_for_it(project, monkeypatch):
    from subscriptions import queue

    woken = []
    monkeypatch.setattr(queue, "wake", lambda workers=1: woken.append(workers))
    subscription(project)
    publish(project)
    EventPayload.objects.update(published_at=timezone.now() - timedelta(minutes=5))

    assert routing.overdue(60) == 1
    assert tasks.retry_pending(grace_s=60) == 1
    assert woken == [1]
    routing.route(10)
    assert routing.overdue(60) == 0


def test_the_purge_keeps_an_event_still_waiting_to_be_routed(project, settings):
    subscription(project)
    publish(project, occurred_at=timezone.now() - timedelta(days=settings.HOOKS_EVENT_RETENTION_DAYS + 1))

    maintenance.purge_attempts(timezone.now())

    assert EventPayload.objects.filter(names__isnull=False).count() == 1
