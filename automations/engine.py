"""Running a flow: steps in order, each traced, within the run's bounds.

The steps are walked by a generator that pauses when a `response` step has produced the answer:
the web view sends it to the caller and only then lets the rest of the flow run. Bounds are checked
before every step (runtime, executed steps) and inside every step: templates are evaluated under
the run's deadline (automations/limits.py), HTTP timeouts and regular expressions are capped by the
runtime left. So a run ends within about a second of AUTOMATION_MAX_RUNTIME_S."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from .actions import ACTIONS
from .context import Context, Inbound, Result, RunFailed, RunTimedOut, StepFailed
from .failures import publish_failed_run
from .models import Automation, Run
from .project_secrets import Scrubber, mentions_secrets, values_of
from .recording import snapshot
from .templating import TemplateProblem

logger = logging.getLogger(__name__)

# Trace entries a run keeps (each holds its variables): the steps of a long loop past this are
# counted, and the count is the trace's last entry.
TRACE_MAX_ENTRIES = 1000


def run_steps(ctx: Context, steps: list, last: bool = True) -> Iterator[dict]:
    """Execute `steps`, yielding the response when the first `response` step runs. `last`: no step
    can follow these (so a response that is their last step leaves nothing to do after it)."""
    for index, step in enumerate(steps):
        final = last and index == len(steps) - 1
        if ctx.stopped:
            return
        if ctx.remaining() <= 0:
            raise RunTimedOut(f"the run reached AUTOMATION_MAX_RUNTIME_S ({settings.AUTOMATION_MAX_RUNTIME_S:g} s)")
        if ctx.executed >= settings.AUTOMATION_MAX_STEPS:
            raise RunFailed(f"the run executed AUTOMATION_MAX_STEPS ({settings.AUTOMATION_MAX_STEPS}) steps")
        ctx.executed += 1
        action = step["action"]
        entry: dict[str, Any] = {"id": step["id"], "action": action, "at": timezone.now().isoformat()}
        if ctx.iterations:
            entry["iteration"] = list(ctx.iterations)
        if len(ctx.trace) < TRACE_MAX_ENTRIES:
            ctx.trace.append(entry)
        else:
            ctx.untraced += 1
        started = time.monotonic()
        ctx.missing = []
        try:
            if action == "response" and ctx.responded:
                result = Result(output="ignored: the caller already has its response", end=step.get("end") is True)
            else:
                result = ACTIONS[action].handler(step, ctx)
        except (StepFailed, TemplateProblem) as exc:
            _close(entry, ctx, started, error=str(exc))
            raise RunFailed(f"step {step['id']!r} ({action}) failed: {exc}") from None
        except RunTimedOut as exc:
            _close(entry, ctx, started, error=str(exc))
            raise
        except DatabaseError as exc:
            _close(entry, ctx, started, error=f"the database refused it: {exc}")
            raise RunFailed(f"step {step['id']!r} ({action}) failed: the database refused it: {exc}") from None
        entry["input"] = snapshot(result.input)
        if result.branch is not None:
            entry["branch"] = result.branch
        ctx.outputs[step["id"]] = {"output": result.output}
        _close(entry, ctx, started, output=result.output)
        if result.response is not None:
            ctx.responded = True
            ctx.nothing_after = result.end or final
            yield result.response
        if result.end or action == "stop":
            ctx.stopped = True
            return
        if result.branch is not None:
            yield from run_steps(ctx, step.get(result.branch) or [], last=final)
        elif result.items is not None:
            yield from _each(ctx, step, result.items)
            if ctx.stopped:
                return


def _each(ctx: Context, step: dict, items: list) -> Iterator[dict]:
    """The body once per item; the item is the run's variable `as` (a `set` in the body changes
    the run's variables, so a sum made in the loop is read after it)."""
    for index, item in enumerate(items):
        ctx.assign(step["as"], item)
        ctx.iterations.append(index)
        try:
            yield from run_steps(ctx, step["steps"], last=False)
        finally:
            ctx.iterations.pop()
        if ctx.stopped:
            return


def _close(entry: dict, ctx: Context, started: float, output: Any = None, error: str | None = None) -> None:
    if ctx.missing:
        entry["missing"] = sorted(set(ctx.missing))[:50]
    entry["output"] = snapshot(output)
    entry["error"] = error
    entry["variables"] = snapshot(ctx.variables)
    entry["duration_ms"] = round((time.monotonic() - started) * 1000, 2)
    if ctx.on_step is not None:
        ctx.on_step()


class Execution:
    """One run of an automation's flow, driven by the web view (synchronous flows) or the worker."""

    def __init__(self, run: Run, automation: Automation, inbound: Inbound, started: float | None = None):
        self.run = run
        self.started = started if started is not None else time.monotonic()
        self.live = run.mode == Run.Mode.DEVELOPMENT
        self.ctx = Context(
            automation=automation,
            inbound=inbound,
            deadline=self.started + settings.AUTOMATION_MAX_RUNTIME_S,
            on_step=self._save_trace if self.live else None,
        )
        if mentions_secrets(automation.flow):
            self.ctx.secrets = values_of(automation.project_id)
            run.scrub = Scrubber(self.ctx.secrets)
        run.trace = self.ctx.trace
        self._steps = run_steps(self.ctx, (automation.flow or {}).get("steps", []))
        self.done = False

    def next_response(self) -> dict | None:
        """Run until the flow responds (the response) or ends (None). Never raises."""
        if self.done:
            return None
        try:
            return next(self._steps)
        except StopIteration:
            self.finish(Run.Status.SUCCEEDED)
        except RunTimedOut as exc:
            self.finish(Run.Status.TIMED_OUT, str(exc))
        except RunFailed as exc:
            self.finish(Run.Status.FAILED, str(exc))
        except Exception as exc:  # a bug must not take the caller down with a 500
            logger.exception("automation %s run %s crashed", self.ctx.automation.pk, self.run.pk)
            self.finish(Run.Status.FAILED, f"internal error: {type(exc).__name__}")
        return None

    def run_to_end(self) -> None:
        while not self.done:
            self.next_response()

    def finish(self, status: str, error: str = "") -> None:
        self.done = True
        self._steps.close()
        if self.ctx.untraced:
            self.ctx.trace.append(
                {"id": "untraced", "action": "log", "output": f"{self.ctx.untraced} more steps ran, not traced"}
            )
        run = self.run
        run.status, run.error = status, run.scrub(error)[:2000]
        run.finished_at = timezone.now()
        run.duration_ms = int((time.monotonic() - self.started) * 1000)
        run.write()
        if status != Run.Status.SUCCEEDED:
            try:
                publish_failed_run(run, self.ctx.automation)
            except DatabaseError:
                logger.exception("could not publish the failure of automation run %s", run.pk)

    def _save_trace(self) -> None:
        """Development runs are written after every step, so the debug page can show them live."""
        if self.run._state.adding:
            Run.objects.insert(self.run)
        else:
            Run.objects.filter(pk=self.run.pk).update(
                trace=self.run.recordable(self.ctx.trace), updated_at=timezone.now()
            )
