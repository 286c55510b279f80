"""A subscription's `rate_limit` with real qcluster workers: a burst of API calls reaches the
receiver at the rate asked, all of it, while another subscription's deliveries go at once."""

import pytest

from tests.factories import subscribed
from tests.reliability.hooks import Receiver, emit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RATE = 5
EVENTS = 20


@pytest.fixture
def paced_receiver():
    server = Receiver().start()
    yield server
    server.down()


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 1) for start in times)


def test_a_burst_reaches_a_paced_target_at_its_rate_and_an_unpaced_one_at_once(
    start_worker, paced_receiver, api, project, httpserver
):
    httpserver.expect_request("/free").respond_with_data("ok")
    subscribed(api, project.pk, paced_receiver.url, "event.emit", rate_limit=RATE)
    subscribed(api, project.pk, httpserver.url_for("/free"), "event.emit")
    start_worker(Q_WORKERS=2)
    for n in range(EVENTS):
        emit(api, project.pk, "burst", n=n)

    wait_until(lambda: len(httpserver.log) >= EVENTS, 60, "the unpaced deliveries")
    paced_so_far = len(paced_receiver.receipts)
    wait_until(lambda: len(paced_receiver.ok_counts()) >= EVENTS, 60, "every paced delivery")

    times = [receipt.at for receipt in paced_receiver.receipts]
    assert len(times) == EVENTS
    assert paced_so_far < EVENTS  # the unpaced ones did not wait for the paced ones
    assert most_in_one_second(times) <= RATE + 1  # a burst of one second's worth, then one per 1/RATE s
    assert max(times) - min(times) >= (EVENTS - RATE) / RATE - 0.5
