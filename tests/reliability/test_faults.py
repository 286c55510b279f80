"""Fault scenarios: real qcluster processes on PostgreSQL and the Redis broker deliver
to a real HTTP receiver while workers are killed, the receiver goes away, two clusters compete
(for the same deliveries, and routing the same events), and PostgreSQL restarts. Each prints its
counts; none may lose a delivery or send one twice without a reason (a recorded failure, or a
sender killed before it could record its success).

Run with `pytest -m reliability -s` (see .ci/run); they are excluded from the main suite."""

import signal
import subprocess
import time

import pytest
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

from subscriptions import routing
from subscriptions.models import Attempt, Delivery
from support.models import Event
from tests.factories import subscribed

from .hooks import wait_until
from .tally import tally

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def publish(project, owner, count: int, start: int = 0) -> None:
    """`count` custom events, each its own committed transaction (as API calls would be)."""
    for n in range(start, start + count):
        with transaction.atomic():
            Event.objects.create(project=project, name="load", attributes={"n": n}, created_by=owner)


def delivered(receiver, at_least: int):
    return len(receiver.ok_counts()) >= at_least


def test_a_worker_killed_mid_run_loses_nothing(fault_queue, start_worker, receiver, api, project, owner):
    env = fault_queue("kill")
    subscribed(api, project.pk, receiver.url, "event.emit")
    began = time.monotonic()
    publish(project, owner, 1000)  # a backlog, so that the kill comes mid-run
    first = start_worker(**env)
    wait_until(lambda: delivered(receiver, 300), 120, "300 deliveries before the kill")
    first.stop(signal.SIGKILL)  # kill -9 the whole cluster, mid-delivery
    assert len(receiver.ok_counts()) < 1000
    publish(project, owner, 1000, start=1000)  # events keep coming while no worker runs
    # Until the new cluster starts, only the killed one can have sent: a request it sent just
    # before the kill may still be answered a moment after it.
    replaced_at = time.time()
    start_worker(**env)
    wait_until(lambda: delivered(receiver, 2000), 300, "all 2000 deliveries after the restart", required=False)
    time.sleep(3)  # let any straggling resend arrive before counting
    result = tally(receiver, disrupted_at=replaced_at)
    print("\n" + result.line("a: kill -9 + restart", 2000, time.monotonic() - began))
    assert result.deliveries == 2000 and result.lost == []
    assert result.unexplained == []
    # At most what the killed cluster had sent and not yet recorded: a batch per worker.
    assert result.after_worker_crash <= int(env["Q_WORKERS"]) * settings.HOOKS_BATCH_SIZE
    assert Delivery.objects.exclude(status="success").count() == 0


def test_a_receiver_down_for_a_while_gets_everything_when_back(
    fault_queue, start_worker, receiver, api, project, owner
):
    env = fault_queue("down", HOOKS_RETRY_DELAYS_S="1,2,4,8,15,30,60,60")
    subscribed(api, project.pk, receiver.url, "event.emit")
    began = time.monotonic()
    start_worker(**env)
    receiver.down()
    publish(project, owner, 200)
    wait_until(lambda: Delivery.objects.filter(attempt_count__gte=1).count() == 200, 60, "a first (failed) try of each")
    wait_until(  # down for a while: a scheduled retry round fails too
        lambda: Attempt.objects.filter(outcome="failed").count() >= 400, 90, "a failed retry of each"
    )
    receiver.up()
    wait_until(lambda: delivered(receiver, 200), 180, "all 200 deliveries after the receiver is back", required=False)
    time.sleep(3)
    result = tally(receiver)
    print("\n" + result.line("b: receiver down, then back", 200, time.monotonic() - began))
    assert result.lost == [] and result.failed_attempts >= 400
    assert result.duplicates == 0


def two_clusters_deliver(start_worker, env: dict, receiver, scenario: str, events: int):
    """Start two clusters on the scenario's queue, wait for `events` deliveries, print and return
    the tally."""
    began = time.monotonic()
    start_worker(**env)
    start_worker(**env)
    wait_until(lambda: delivered(receiver, events), 180, f"all {events} deliveries", required=False)
    time.sleep(5)
    result = tally(receiver)
    print("\n" + result.line(scenario, events, time.monotonic() - began))
    return result


def test_two_clusters_at_once_never_send_twice(fault_queue, start_worker, receiver, api, project, owner):
    env = fault_queue("two", Q_WORKERS=2)
    subscribed(api, project.pk, receiver.url, "event.emit")
    receiver.delay_s = 0.02  # a receiver taking a little time widens the window for a double send
    publish(project, owner, 500)
    # Every delivery is handed out twice, side by side in the queue (as a sweep or a redelivery
    # racing a queued task may do): the two clusters' workers take both copies at about the same
    # time, and only the claim keeps them from both sending.
    queue = get_broker()
    assert queue.queue_size() == 1  # the 500 commits' wake-ups, coalesced while none is taken
    queue.purge_queue()
    routing.route(500)  # their deliveries made, as a worker first does, and left unsent
    for delivery_id in Delivery.objects.order_by("created_at").values_list("pk", flat=True):
        for _ in range(2):
            async_task("subscriptions.tasks.deliver", delivery_id, group="deliveries")
    result = two_clusters_deliver(start_worker, env, receiver, "c: two clusters, every task queued twice", 500)
    assert result.lost == [] and result.duplicates == 0 and result.receipts == 500


def test_two_clusters_routing_one_backlog_make_and_send_each_delivery_once(
    fault_queue, start_worker, receiver, api, project, owner
):
    env = fault_queue("route", Q_WORKERS=2)
    subscribed(api, project.pk, receiver.url, "event.emit")
    receiver.delay_s = 0.01
    publish(project, owner, 500)
    # Every worker of both clusters is woken at once on the same unrouted events: only routing's
    # row locks keep them from making (and sending) an event's deliveries twice.
    for _ in range(2 * int(env["Q_WORKERS"])):
        async_task("subscriptions.tasks.deliver_due", helping=True, group="deliveries")
    result = two_clusters_deliver(start_worker, env, receiver, "e: two clusters routing one backlog", 500)
    assert result.deliveries == 500 and result.lost == [] and result.duplicates == 0 and result.receipts == 500


def restart_postgresql() -> None:
    version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True, check=True).stdout.split()[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, timeout=120)
    subprocess.run(["pg_isready", "-h", "127.0.0.1", "-t", "60"], check=True, timeout=90)


def test_postgresql_restarting_during_delivery_recovers_by_itself(
    fault_queue, start_worker, receiver, api, project, owner
):
    env = fault_queue("pg")
    subscribed(api, project.pk, receiver.url, "event.emit")
    # A backlog that takes the workers (a batch of 50 in flight each) several seconds, so that the
    # restart comes mid-run.
    receiver.delay_s = 0.5
    began = time.monotonic()
    publish(project, owner, 2000)
    start_worker(**env)
    wait_until(lambda: delivered(receiver, 100), 120, "100 deliveries before the restart")
    restart_postgresql()
    restarted_at = time.time()
    assert len(receiver.ok_counts()) < 2000  # restarted mid-run
    connection.close()  # this test process's own connection died with the server, like the workers'
    close_old_connections()
    publish(project, owner, 100, start=2000)  # and the system keeps taking new events
    wait_until(lambda: delivered(receiver, 2100), 240, "all 2100 deliveries after the restart", required=False)
    time.sleep(3)
    result = tally(receiver, disrupted_at=restarted_at)
    print("\n" + result.line("d: PostgreSQL restarted mid-run", 2100, time.monotonic() - began))
    assert result.deliveries == 2100 and result.lost == []
    assert result.unexplained == []
    # At most the sends in flight at the restart: a batch per worker.
    assert result.after_worker_crash <= int(env["Q_WORKERS"]) * settings.HOOKS_BATCH_SIZE
    assert Delivery.objects.exclude(status="success").count() == 0
