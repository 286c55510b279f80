"""`ordering: "fifo"` with four real workers on PostgreSQL and the Redis broker, each event its own
API call: a receiver that fails at first and then recovers gets every event once, in publish
order, and each failure is followed by the same delivery again, never by a later one."""

import json
import time

import pytest

from tests.factories import subscribed

from .hooks import emit, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

EVENTS = 60


def test_a_fifo_subscription_receives_in_publish_order_across_a_failing_then_healthy_receiver(
    fault_queue, start_worker, receiver, api, project
):
    env = fault_queue("fifo", Q_WORKERS=4, HOOKS_RETRY_DELAYS_S="1,1,1,1,1,1,1,1,1,1")
    subscribed(api, project.pk, receiver.url, "event.emit", ordering="fifo")
    receiver.status = 500
    start_worker(**env)
    began = time.monotonic()
    for n in range(EVENTS):
        emit(api, project.pk, "load", n=n)
        if n == EVENTS // 3:
            wait_until(lambda: len(receiver.receipts) >= 3, 60, "the first failures")
            receiver.status = 200  # healthy again while events keep coming

    wait_until(lambda: len(receiver.ok_counts()) >= EVENTS, 180, "every delivery")
    time.sleep(1)  # anything sent after the last one would show up now
    with receiver.lock:
        got = [(json.loads(receipt.body)["sequence"], receipt.status) for receipt in receiver.receipts]
    failures = sum(status != 200 for _, status in got)
    print(f"\nfifo: {EVENTS} events, {len(got)} POSTs ({failures} answered 500), 4 workers, "
          f"{time.monotonic() - began:.1f} s")  # fmt: skip
    assert failures >= 3
    assert [sequence for sequence, status in got if status == 200] == list(range(1, EVENTS + 1))
    after_failures = [got[i + 1][0] - sequence for i, (sequence, status) in enumerate(got[:-1]) if status != 200]
    assert set(after_failures) == {0}
