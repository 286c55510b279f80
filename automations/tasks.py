"""The worker side: fire-and-forget runs (flows without a `response` step) execute here."""

import logging

from .context import Inbound
from .engine import Execution
from .models import Run

logger = logging.getLogger(__name__)

EXECUTE = "automations.tasks.execute_run"


def execute_run(run_id: str, method: str, payload, query: dict, headers: dict) -> str:
    """Run a recorded call's flow to its end. A run that is no longer `running` was already done
    (a task delivered twice) and is left alone."""
    run = Run.objects.select_related("automation__project", "automation__created_by").filter(pk=run_id).first()
    if run is None or run.status != Run.Status.RUNNING:
        return "gone or done"
    execution = Execution(run, run.automation, Inbound(method=method, payload=payload, query=query, headers=headers))
    execution.run_to_end()
    logger.info("automation %s run %s: %s", run.automation_id, run.pk, run.status)
    return run.status
