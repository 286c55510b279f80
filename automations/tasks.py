"""The worker side: fire-and-forget runs (flows without a `response` step) execute here.

A task carries the run's id only; the call itself (body, headers) is read from the run's
RunRequest row, which is deleted once the run has ended."""

import logging

from django.utils import timezone

from .engine import Execution
from .failures import publish_failed_run
from .inbound import InboundRefused, replayed
from .models import Run, RunRequest

logger = logging.getLogger(__name__)

EXECUTE = "automations.tasks.execute_run"


def execute_run(run_id: str) -> str:
    """Run a recorded call's flow to its end. A run that is no longer `running` was already done
    (a task delivered twice, or closed by the stale-run sweep) and is left alone."""
    run = Run.objects.select_related("automation__project", "automation__created_by").filter(pk=run_id).first()
    if run is None or run.status != Run.Status.RUNNING:
        return "gone or done"
    call = RunRequest.objects.filter(run_id=run_id).first()
    try:
        if call is None:
            _fail(run, "the call of this run is no longer kept; it cannot be executed")
        else:
            try:
                inbound = replayed(call)
            except InboundRefused as refused:
                _fail(run, refused.detail)
            else:
                Execution(run, run.automation, inbound).run_to_end()
    finally:
        RunRequest.objects.filter(run_id=run_id).delete()
    logger.info("automation %s run %s: %s", run.automation_id, run.pk, run.status)
    return run.status


def _fail(run: Run, error: str) -> None:
    run.status, run.error, run.finished_at = Run.Status.FAILED, error, timezone.now()
    run.save(update_fields=["status", "error", "finished_at", "updated_at"])
    publish_failed_run(run, run.automation)
