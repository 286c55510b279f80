"""The stale-run sweep: runs left `running` by a dead process are closed, nothing else is touched."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from automations.maintenance import MAX_DURATION_MS, fail_stale_runs
from automations.models import Run
from automations.tasks import execute_run

STALE_AFTER_S = 600


@pytest.fixture(autouse=True)
def stale_after(settings):
    settings.AUTOMATION_RUN_STALE_AFTER_S = STALE_AFTER_S


@pytest.fixture
def make_run(project, make_automation):
    automation = make_automation([{"action": "log", "message": "hi"}])

    def make(age: timedelta, **fields) -> Run:
        run = Run.objects.create(automation=automation, project=project, method="POST", **fields)
        Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - age)
        run.refresh_from_db()
        return run

    return make


def test_a_run_running_past_the_limit_is_failed_with_the_reason_finished_at_and_duration(make_run):
    run = make_run(timedelta(seconds=STALE_AFTER_S + 60))
    now = run.created_at + timedelta(seconds=STALE_AFTER_S + 61, milliseconds=250)
    assert fail_stale_runs(now=now) == 1
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error.startswith("abandoned: still running 600 s after the call came in")
    assert run.finished_at == now
    assert run.duration_ms == (STALE_AFTER_S + 61) * 1000 + 250


def test_a_recent_running_run_is_left_alone(make_run):
    run = make_run(timedelta(seconds=STALE_AFTER_S - 60))
    assert fail_stale_runs() == 0
    run.refresh_from_db()
    assert (run.status, run.error, run.finished_at, run.duration_ms) == (Run.Status.RUNNING, "", None, None)


@pytest.mark.parametrize("status", [Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.TIMED_OUT])
def test_finished_runs_are_never_touched(make_run, status):
    finished_at = timezone.now() - timedelta(days=2)
    run = make_run(timedelta(days=2), status=status, error="its own", finished_at=finished_at, duration_ms=42)
    before = Run.objects.filter(pk=run.pk).values().get()
    assert fail_stale_runs() == 0
    assert Run.objects.filter(pk=run.pk).values().get() == before


def test_a_run_stuck_longer_than_duration_ms_can_hold_is_still_closed(make_run):
    run = make_run(timedelta(days=29))
    assert fail_stale_runs() == 1
    run.refresh_from_db()
    assert (run.status, run.duration_ms) == (Run.Status.FAILED, MAX_DURATION_MS)


def test_a_closed_run_is_not_executed_when_its_task_arrives_late(make_run):
    run = make_run(timedelta(seconds=STALE_AFTER_S + 60))
    fail_stale_runs()
    assert execute_run(run.pk) == "gone or done"
    run.refresh_from_db()
    assert (run.status, run.trace) == (Run.Status.FAILED, [])


def test_the_sweep_is_scheduled_every_five_minutes_once_after_each_migrate(db):
    Schedule.objects.filter(name="automations.fail_stale_runs").delete()
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    schedule = Schedule.objects.get(name="automations.fail_stale_runs")
    assert schedule.func == "automations.maintenance.fail_stale_runs"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 5, -1)


def test_the_command_prints_how_many_runs_it_closed(make_run):
    make_run(timedelta(seconds=STALE_AFTER_S + 60))
    make_run(timedelta(hours=3))
    make_run(timedelta(seconds=10))
    out = StringIO()
    call_command("fail_stale_runs", stdout=out)
    assert out.getvalue() == "Marked 2 run(s) running for more than 600 s as failed.\n"
    assert Run.objects.filter(status=Run.Status.RUNNING).count() == 1
