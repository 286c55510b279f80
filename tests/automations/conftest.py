"""Fixtures for automations: automations made through the real validation, their webhook URLs on
the live server, and a clean throttle for each test."""

import pytest
from django.core.cache import cache

from automations import after_answer
from automations.flow import validate_flow
from automations.models import Automation, Run


@pytest.fixture(autouse=True)
def fresh_throttle():
    """The throttle counts calls in the cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_automation(project, owner):
    """Automations saved through the real validation. Their runs may still be written after the
    test saw the answer: the test waits for that before its database is emptied."""

    def make(steps: list, name: str = "flow", target_project=None, **extra) -> Automation:
        checked = validate_flow({"steps": steps})
        assert not checked.problems, checked.problems
        return Automation.objects.create(
            project=target_project or project, name=name, flow=checked.flow, created_by=owner, **extra
        )

    yield make
    assert after_answer.wait_idle(timeout_s=30), "a run was still being written after its answer"


@pytest.fixture
def hook(live_server):
    """URL of an automation's production (or development) endpoint on the live server. The steps
    after a flow's answer run in a thread of the server: the test waits for them to end before its
    database is emptied (one still writing would hold locks the flush waits for)."""

    def url(automation: Automation, dev: bool = False) -> str:
        return f"{live_server.url}/webhook/{automation.webhook_id}{'/dev' if dev else ''}"

    yield url
    assert after_answer.wait_idle(timeout_s=30), "a run's steps after its answer did not end"


def finished_run(automation: Automation, count: int = 1) -> Run:
    """The newest run once `count` runs have finished. A synchronous flow's run is written after
    its response has gone out, so a caller may look a moment before it is there."""
    from tests.conftest import wait_for

    done = Run.objects.filter(automation=automation, finished_at__isnull=False)
    wait_for(lambda: done.count() >= count, timeout=10)
    return done.latest("created_at")
