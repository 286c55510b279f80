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


def test_deliveries_committed_while_the_worker_was_down_are_sent_when_it_starts(api, project, httpserver, start_worker):
    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post(
        f"/api/projects/{project.pk}/subscriptions/",
        {"event": "lead.create", "target": httpserver.url_for("/hook")},
        format="json",
    )
    for name in ("Ann", "Bob", "Cy"):
        api.post(f"/api/projects/{project.pk}/leads/", {"fullname": name}, format="json")
    assert Delivery.objects.filter(status="pending").count() == 3
    start_worker()
    got = wait_for(lambda: len(received(httpserver, "/hook")) >= 3 and received(httpserver, "/hook"), timeout=30)
    assert sorted(g["json"]["payload"]["fullname"] for g in got) == ["Ann", "Bob", "Cy"]
