"""The state of one run as its steps see it, and the outcomes a step can have.

Shared by the engine (which walks the steps) and the actions (which do them), so that neither
imports the other."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jinja2.sandbox import SecurityError

from . import limits, templating
from .models import Automation
from .recording import Headers

# All of a run's variables together: in characters as written out (limits.sizes), and in bytes.
VARIABLES_LIMIT = 5_000_000
VARIABLES_BYTES = 32 * 1024 * 1024


class StepFailed(Exception):
    """The step could not do its job; the run fails with this message."""


class RunTimedOut(Exception):
    """The run used up AUTOMATION_MAX_RUNTIME_S."""


class RunFailed(Exception):
    """The run cannot go on (a step failed, a bound was reached)."""


@dataclass
class Result:
    input: Any = None
    output: Any = None
    # For `condition`: the branch to run next; for `response`: the response.
    branch: str | None = None
    response: dict | None = None
    # The run stops after this step (a `response` with "end": true).
    end: bool = False
    # For `for_each`: the items whose each runs the step's `steps`.
    items: list | None = None


@dataclass
class Inbound:
    """What the caller sent, as the flow sees it."""

    method: str
    payload: Any = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    headers: Headers = field(default_factory=Headers)


@dataclass
class Context:
    automation: Automation
    inbound: Inbound
    # time.monotonic() at which the run must end (AUTOMATION_MAX_RUNTIME_S after the call came in).
    deadline: float
    variables: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    trace: list = field(default_factory=list)
    executed: int = 0
    stopped: bool = False
    responded: bool = False
    # Set when the flow responds: whether no step can run after that response.
    nothing_after: bool = False
    on_step: Callable[[], None] | None = None
    sizes: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    # The project's secrets the flow may read (`secrets.NAME`); loaded only for a flow naming them.
    secrets: dict = field(default_factory=dict)
    # Indexes of the for_each items being run (outermost first), recorded in the trace.
    iterations: list = field(default_factory=list)
    # Steps executed past TRACE_MAX_ENTRIES, counted rather than traced.
    untraced: int = 0

    @property
    def project(self):
        return self.automation.project

    def scope(self) -> dict:
        return {
            **self.variables,
            "payload": self.inbound.payload,
            "query": self.inbound.query,
            "method": self.inbound.method,
            "headers": self.inbound.headers,
            "steps": self.outputs,
            "secrets": self.secrets,
        }

    def render(self, value: Any) -> Any:
        """Render a step's field within what is left of the run's time."""
        try:
            return templating.render(value, self.scope(), deadline=self.deadline)
        except limits.RenderTimedOut as exc:
            raise RunTimedOut(str(exc)) from None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def assign(self, name: str, value: Any) -> None:
        """Set a variable; all variables together stay within VARIABLES_LIMIT and VARIABLES_BYTES."""
        try:
            size, weight, _ = limits.sizes(value, VARIABLES_LIMIT, self.deadline)
        except SecurityError:
            size, weight = VARIABLES_LIMIT + 1, 0
        except limits.RenderTimedOut as exc:
            raise RunTimedOut(str(exc)) from None
        if sum(self.sizes.values()) - self.sizes.get(name, 0) + size > VARIABLES_LIMIT:
            raise StepFailed(f"the run's variables would be larger than {VARIABLES_LIMIT} characters")
        if sum(self.weights.values()) - self.weights.get(name, 0) + weight > VARIABLES_BYTES:
            raise StepFailed(f"the run's variables would take more than {VARIABLES_BYTES // (1024 * 1024)} MB")
        self.sizes[name], self.weights[name] = size, weight
        self.variables[name] = value
