"""Fixtures for the fault scenarios: they run only on PostgreSQL with the Redis broker (as
production does), each on its own Redis queue, with real qcluster processes and a real receiver."""

import os

import pytest
from django.conf import settings
from django.db import connection
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Schedule

from .hooks import Receiver


@pytest.fixture
def fault_queue(transactional_db, monkeypatch):
    """Make this test process enqueue to a fresh Redis queue of its own (instead of running tasks
    inline as the rest of the suite does) and return the environment for workers on that queue."""
    if connection.vendor != "postgresql" or not settings.Q_BROKER.startswith("redis"):
        pytest.fail(
            "the reliability scenarios need DATABASE_URL=postgres://... and Q_BROKER=redis://... "
            f"(got {connection.vendor} and {settings.Q_BROKER})"
        )
    assert Schedule.objects.filter(func="subscriptions.tasks.retry_pending").exists()  # the safety net

    def make(scenario: str, **env) -> dict:
        name = f"{os.environ.get('Q_NAME', 'reliability')}_{scenario}"
        monkeypatch.setattr(Conf, "SYNC", False)
        monkeypatch.setattr(Conf, "PREFIX", name)
        monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
        get_broker(name).delete_queue()
        return {
            "Q_NAME": name,
            "Q_WORKERS": 3,
            "HOOKS_TIMEOUT_S": 5,
            "HOOKS_CLAIM_LEASE_S": 12,
            "HOOKS_SWEEP_GRACE_S": 10,
            "LOG_LEVEL": "WARNING",
            **env,
        }

    return make


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.down()
