"""No duplicates, no loss, at the level of one delivery: two workers racing for the same delivery
send it once; a worker that claimed a delivery and died leaves it to be taken again once its
lease expires. (Fast; the process-level fault scenarios are in test_faults.py.)"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection
from werkzeug import Response

from subscriptions import tasks, transitions
from subscriptions.models import Delivery
from tests.factories import subscribed

from ..conftest import REPO, retries_come_due
from .hooks import emit

# A path of this module's own: the receiver is shared by the whole session, and a late request
# from another test must not be counted here.
HOOK_PATH = "/claims-hook"


def sent(httpserver) -> list:
    return [response for request, response in httpserver.log if request.path == HOOK_PATH]


def failed_once_then_slow_ok(httpserver) -> None:
    """The first try fails (so a retry is pending); later tries take 0.5 s to answer 200, long
    enough for racing workers to overlap."""
    httpserver.expect_ordered_request(HOOK_PATH).respond_with_data("no", status=500)

    def slow_ok(request):
        time.sleep(0.5)
        return Response("{}", status=200)

    httpserver.expect_request(HOOK_PATH).respond_with_handler(slow_ok)


def pending_retry(api, project, httpserver, on_commit, clock) -> Delivery:
    subscribed(api, project.pk, httpserver.url_for(HOOK_PATH), "event.emit")
    with on_commit():
        emit(api, project.pk)
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempt_count == 1
    retries_come_due(clock)
    return delivery


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_delivery_send_it_once(api, project, httpserver, on_commit, clock):
    failed_once_then_slow_ok(httpserver)
    delivery = pending_retry(api, project, httpserver, on_commit, clock)
    start = threading.Barrier(4)
    results: list[str] = []

    def worker():
        try:
            start.wait()
            results.append(tasks.deliver(delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(results) == ["not due or taken"] * 3 + ["success"]
    assert [response.status_code for response in sent(httpserver)] == [500, 200]
    delivery.refresh_from_db()
    assert delivery.status == "success" and delivery.attempt_count == 2


def test_a_claimed_delivery_is_not_sent_by_another_worker(api, project, httpserver, on_commit, clock):
    failed_once_then_slow_ok(httpserver)
    delivery = pending_retry(api, project, httpserver, on_commit, clock)
    assert transitions.claim([delivery.pk])  # a worker took it ...
    assert tasks.deliver(delivery.pk) == "not due or taken"  # ... so another one does not send
    assert tasks.retry_pending(grace_s=0) == 0  # nor does the sweep hand it out again
    assert len(sent(httpserver)) == 1


def test_a_crashed_workers_lease_expires_and_the_delivery_is_taken_again(
    api, project, httpserver, on_commit, settings, clock
):
    settings.HOOKS_CLAIM_LEASE_S = 1
    failed_once_then_slow_ok(httpserver)
    delivery = pending_retry(api, project, httpserver, on_commit, clock)
    assert transitions.claim([delivery.pk])  # the worker that claimed it dies here
    assert tasks.deliver(delivery.pk) == "not due or taken"
    time.sleep(1.1)
    assert tasks.retry_pending(grace_s=0) == 1  # the sweep finds it and the queue delivers it
    assert [response.status_code for response in sent(httpserver)] == [500, 200]
    delivery.refresh_from_db()
    assert delivery.status == "success" and delivery.locked_until is None


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HOOKS_TIMEOUT_S": "120", "AUTOMATION_MAX_RUNTIME_S": "5"},
        {"HOOKS_TIMEOUT_S": "2", "AUTOMATION_MAX_RUNTIME_S": "300"},
    ],
)
@pytest.mark.e2e
def test_queue_timings_cannot_hand_one_task_to_two_workers(env):
    """django-q2 re-queues a task not acknowledged within `retry` seconds, so `retry` must exceed
    the task `timeout` (its documented pitfall), and the task timeout and the claim's lease must
    exceed one HTTP attempt, whatever the deployment configures."""
    code = (
        "import json; from tiledesk_hooks import settings as s; "
        "print(json.dumps([s.Q_CLUSTER['timeout'], s.Q_CLUSTER['retry'], s.HOOKS_TIMEOUT_S, s.HOOKS_CLAIM_LEASE_S]))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKS_", "AUTOMATION_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, check=True
    )
    timeout, retry, http_timeout, lease = json.loads(out.stdout)
    assert retry > timeout > http_timeout
    assert lease > http_timeout
