"""End to end with a real django-q2 worker process (ORM broker): API call -> commit -> queue ->
worker -> HTTP POST to a receiver on 127.0.0.1."""

import pytest

from subscriptions.models import Attempt, Delivery
from tests.conftest import received, wait_for

pytestmark = pytest.mark.e2e


def test_a_request_created_through_the_api_reaches_the_receiver_via_the_worker(api, project, httpserver, start_worker):
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    subscription = api.post(
        f"/api/projects/{project.pk}/subscriptions/",
        {"event": "request.create", "target": httpserver.url_for("/hook")},
        format="json",
    ).json()
    start_worker()
    created = api.post(
        f"/api/projects/{project.pk}/requests/", {"first_text": "hello", "lead": {"fullname": "Ann"}}, format="json"
    ).json()

    got = wait_for(lambda: received(httpserver, "/hook"), timeout=30)
    assert len(got) == 1
    assert got[0]["headers"]["x-hook-secret"] == subscription["secret"]
    assert got[0]["json"]["payload"] == created
    assert wait_for(lambda: Delivery.objects.filter(status="success").count() == 1)
    assert Attempt.objects.get().outcome == "success"


def test_events_committed_while_the_worker_was_down_are_sent_when_it_starts(api, project, httpserver, start_worker):
    from subscriptions.models import EventPayload

    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post(
        f"/api/projects/{project.pk}/subscriptions/",
        {"event": "lead.create", "target": httpserver.url_for("/hook")},
        format="json",
    )
    for name in ("Ann", "Bob", "Cy"):
        api.post(f"/api/projects/{project.pk}/leads/", {"fullname": name}, format="json")
    assert EventPayload.objects.filter(names__isnull=False).count() == 3  # waiting to be routed
    start_worker()
    got = wait_for(lambda: len(received(httpserver, "/hook")) >= 3 and received(httpserver, "/hook"), timeout=30)
    assert sorted(g["json"]["payload"]["fullname"] for g in got) == ["Ann", "Bob", "Cy"]


def test_a_healthy_target_that_paused_once_is_forgotten_as_slow_and_gets_every_delivery(api, project, start_worker):
    """One answer past the slow threshold marks the target slow (one delivery in flight, the rest
    parked); its first quick answer afterwards ends that, and the parked ones go at once rather
    than one by one, or after PARK_S."""
    from subscriptions.models import Subscription
    from tests.reliability.hooks import Receiver

    receiver = Receiver(delay_s=1.5).start()
    try:
        api.post(
            f"/api/projects/{project.pk}/subscriptions/",
            {"event": "lead.create", "target": receiver.url},
            format="json",
        )
        subscription = Subscription.objects.get()
        start_worker()
        for name in ("Ann", "Bob", "Cy"):
            api.post(f"/api/projects/{project.pk}/leads/", {"fullname": name}, format="json")
        assert wait_for(lambda: Subscription.objects.get(pk=subscription.pk).slow_until is not None, timeout=30)
        for i in range(10):
            api.post(f"/api/projects/{project.pk}/leads/", {"fullname": f"Later {i}"}, format="json")
        receiver.delay_s = 0.0  # the pause is over

        assert wait_for(lambda: Delivery.objects.count() == 13, timeout=30)  # every event routed
        made = set(Delivery.objects.values_list("pk", flat=True))
        assert wait_for(lambda: {r.hook_id for r in receiver.receipts} == made, timeout=30)
        assert wait_for(lambda: Subscription.objects.get(pk=subscription.pk).slow_until is None, timeout=10)
        assert wait_for(lambda: set(Delivery.objects.values_list("status", flat=True)) == {"success"})
        assert not Delivery.objects.filter(parked_at__isnull=False).exists()
    finally:
        receiver.down()
