"""A worker's claim commits without waiting for the disk, on PostgreSQL: only the claim's own
transaction, never the connection's later ones nor a caller's transaction that a task run inline
claims in."""

import pytest
from django.db import connection, transaction

from subscriptions import transitions
from tests.factories import pending_delivery, subscription

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")


def wal_positions() -> tuple[int, int]:
    """(flushed, written) positions of the write-ahead log, in bytes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn, pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
        flushed, written = cursor.fetchone()
    return int(flushed), int(written)


def test_a_claim_commits_before_its_record_reaches_the_disk(project):
    """A synchronous commit returns once the log is flushed past its record, so right after it the
    flushed position is never behind what was written (nothing else writes here); the claim's is,
    until the WAL writer's next round (it may be woken by the first one: five claims are made)."""
    hook = subscription(project, "https://hooks.example.com/a")
    behind = 0
    for _ in range(5):
        delivery = pending_delivery(hook)
        assert [d.pk for d in transitions.claim_due(10)] == [delivery.pk]
        flushed, written = wal_positions()
        behind += flushed < written
    assert behind > 0


def test_a_commit_after_a_claim_waits_for_the_disk(project):
    hook = subscription(project, "https://hooks.example.com/a")
    pending_delivery(hook)
    assert transitions.claim_due(10)
    pending_delivery(hook)  # the connection's next transaction
    flushed, written = wal_positions()
    assert flushed >= written
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_a_claim_inside_a_callers_transaction_leaves_its_commit_alone(project):
    hook = subscription(project, "https://hooks.example.com/a")
    pending_delivery(hook)
    with transaction.atomic():
        assert transitions.claim_due(10)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
