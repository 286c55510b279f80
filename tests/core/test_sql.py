"""core/sql.py's transaction without a disk flush: for a lease only, never for the caller's work."""

import pytest
from django.db import connection, transaction

from core import sql

pytestmark = pytest.mark.django_db(transaction=True)


def synchronous_commit() -> str:
    return sql.select("SHOW synchronous_commit", [])[0][0]


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")


def test_a_commit_without_flush_turns_synchronous_commit_off_for_its_own_transaction_only():
    with sql.commit_without_flush():
        inside = synchronous_commit()

    assert inside == "off"
    assert synchronous_commit() == "on"


def test_inside_a_callers_transaction_it_leaves_that_transactions_commit_alone():
    with transaction.atomic():
        with sql.commit_without_flush():
            inside = synchronous_commit()

    assert inside == "on"
