"""Which parent rows the outbox's writes lock, on PostgreSQL: a publish, a routing and a worker
logging an attempt check each row against its parent along one chain (attempt -> delivery ->
subscription -> project), so none locks the project's row, and a transaction that holds it
(erasing a deleted project locks it for update) holds up none of them; a delivery whose
subscription is gone is still refused."""

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from subscriptions.models import Attempt, Delivery
from support.models import Project
from tests.conftest import in_another_connection
from tests.factories import logged_attempt, pending_delivery, subscription

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite runs one writing transaction at a time)")


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    from subscriptions import queue

    monkeypatch.setattr(queue, "wake", lambda *args, **kwargs: None)


def while_the_project_row_is_locked_for_update(project, work) -> tuple[bool, object]:
    """Run `work` in another connection while another transaction holds the project's row FOR
    UPDATE (for up to 3 s). Returns whether it finished before the lock was let go, and its result."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            Project.objects.select_for_update().get(pk=project.pk)
            locked.set()
            release.wait(10)

    holder, _ = in_another_connection(hold)
    assert locked.wait(10)
    worker, done = in_another_connection(work)
    worker.join(3)
    finished_first = "ended_at" in done
    release.set()
    holder.join(10)
    worker.join(10)
    return finished_first, done.get("result")


def test_a_publish_commits_while_another_transaction_holds_its_project_row(project):
    from subscriptions.models import EventPayload
    from subscriptions.publishing import publish_event

    subscription(project, "https://hooks.example.com/one")

    def publish() -> str:
        with transaction.atomic():
            return publish_event(project.pk, ["request.create"], {"id": "r1"})

    finished_first, event_id = while_the_project_row_is_locked_for_update(project, publish)

    assert finished_first, "the publish's commit waited for the project's row"
    assert EventPayload.objects.filter(pk=event_id).exists()


def test_routing_commits_while_another_transaction_holds_its_project_row(project):
    from subscriptions.publishing import publish_event
    from subscriptions.routing import route

    subscription(project, "https://hooks.example.com/one")
    event_id = publish_event(project.pk, ["request.create"], {"id": "r1"})

    finished_first, _ = while_the_project_row_is_locked_for_update(project, lambda: route(10))

    assert finished_first, "the routing's commit waited for the project's row"
    assert Delivery.objects.filter(event_payload_id=event_id).count() == 1


def test_a_worker_logs_attempts_while_another_transaction_holds_their_project_row(project):
    delivery = pending_delivery(subscription(project, "https://hooks.example.com/one"))

    def log() -> None:
        with transaction.atomic():
            logged_attempt(delivery)

    finished_first, _ = while_the_project_row_is_locked_for_update(project, log)

    assert finished_first, "the worker's commit waited for the project's row"
    assert Attempt.objects.filter(delivery=delivery).count() == 1


def test_a_delivery_whose_subscription_is_gone_is_still_refused(project):
    delivery = pending_delivery(subscription(project, "https://hooks.example.com/one"))
    payload_id = delivery.event_payload_id

    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(
            project=project, subscription_id="0" * 24, event="request.create", event_payload_id=payload_id
        )
