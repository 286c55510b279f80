"""Telling people a run failed: the catalog event `automation.run.failed`, published to the
project's REST Hooks subscriptions like any other event.

A failure after the caller was answered is otherwise invisible (the caller got its 200). The payload
names the run, its automation, the step that failed and the error, and never carries the call's
body or headers: subscribers are often chat or alerting tools."""

from __future__ import annotations

from rest_framework.fields import DateTimeField

from subscriptions.events import AUTOMATION_RUN_FAILED
from subscriptions.publishing import publish_event

from .models import Automation, Run


def failed_step(trace: list) -> dict | None:
    """The step the run stopped at (the last one traced with an error), as `{"id", "action"}`."""
    for entry in reversed(trace or []):
        if entry.get("error"):
            return {"id": entry.get("id"), "action": entry.get("action")}
    return None


def failed_run_payload(run: Run, automation: Automation) -> dict:
    stamp = {"createdAt": _iso(run.created_at), "updatedAt": _iso(run.finished_at or run.updated_at)}
    return {
        "_id": run.pk,
        "id": run.pk,
        "run_id": run.pk,
        "automation": {"_id": automation.pk, "id": automation.pk, "name": automation.name},
        "mode": run.mode,
        "status": run.status,
        "step": failed_step(run.trace),
        "error": run.error,
        "id_project": run.project_id,
        **stamp,
    }


def publish_failed_run(run: Run, automation: Automation) -> None:
    publish_event(run.project_id, [AUTOMATION_RUN_FAILED], failed_run_payload(run, automation))


def _iso(moment) -> str | None:
    """As the API writes dates."""
    return DateTimeField().to_representation(moment) if moment is not None else None
