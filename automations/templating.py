"""Templates written by users: checked when a flow is saved, rendered when it runs.

Strings in a flow are templates over JSON data (`payload`, `query`, `method`, `headers`, variables),
evaluated in FlowSandbox (automations/sandbox.py):
- only expressions and `{% if %}`/`{% set %}` (no loops, macros, includes: nothing that repeats
  work or reaches other templates), checked when the flow is saved;
- only a small list of attributes (a few str/dict methods), filters and globals; no `%`
  formatting, no `str.format`;
- under the run's deadline and within bounded sizes (automations/limits.py): every operation goes
  through a hook that checks the time, refuses values that would be too large before building
  them, and charges what it builds to the render's budget.
A string that is exactly one `{{ expr }}` keeps the JSON type of its value (number, object...)."""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import SecurityError

from . import limits
from .limits import MAX_VALUE, Budget, RenderTimedOut, measure
from .recording import RECORD_DEPTH, Headers
from .sandbox import ENV, MAX_OUTPUT, SAFE_FILTERS, TemplateProblem

__all__ = ["MAX_OUTPUT", "MAX_VALUE", "RenderTimedOut", "TemplateProblem", "check", "measure", "render"]

MAX_TEMPLATE_CHARS = 20_000

FORBIDDEN_NODES = (
    nodes.For,
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.Block,
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.With,
    nodes.ScopedEvalContextModifier,
)


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def check(text: str) -> None:
    """Raise TemplateProblem if `text` is not a template this sandbox accepts."""
    _compile(text)


@functools.lru_cache(maxsize=1024)
def _compile(text: str) -> Callable[[dict], Any]:
    """Parse once, refuse what the sandbox does not allow, and return an evaluator. Cached: flows
    run the same strings over and over."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"a template is limited to {MAX_TEMPLATE_CHARS} characters")
    try:
        return _compile_checked(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"bad template syntax: {exc.message} (line {exc.lineno})") from None
    except (RecursionError, SyntaxError, MemoryError):
        # Thousands of nested brackets or filters: more than Jinja's parser or Python's compiler take.
        raise TemplateProblem("the template is nested too deeply") from None


def _compile_checked(text: str) -> Callable[[dict], Any]:
    tree = ENV.parse(text)
    for node in tree.find_all(FORBIDDEN_NODES):
        tag = type(node).__name__.lower()
        raise TemplateProblem(f"'{tag}' blocks are not allowed in templates (line {node.lineno})")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateProblem(f"'{name}' is private and cannot be read (line {node.lineno})")
    for node in tree.find_all(nodes.Filter):
        if node.name not in SAFE_FILTERS:
            raise TemplateProblem(f"the filter '{node.name}' is not available (line {node.lineno})")
    if _single_expression(tree) is not None:
        inner = text.strip()[2:-2].strip("-").strip()
        expression = ENV.compile_expression(inner, undefined_to_none=True)
        return lambda scope: expression(**scope)
    return ENV.from_string(tree).render


def unknown_names(text: str, known: frozenset | set, step_ids: set) -> list[str]:
    """Names a template reads that are neither `known` nor set inside it, and `steps.<id>` of ids
    not in `step_ids` (for the warnings of a save; the template is valid)."""
    tree = ENV.parse(text)
    stored = {node.name for node in tree.find_all(nodes.Name) if node.ctx == "store"}
    found = [
        node.name
        for node in tree.find_all(nodes.Name)
        if node.ctx == "load" and node.name not in known and node.name not in stored
    ]
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            step_id = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(step_id, str) and step_id not in step_ids:
                found.append(f"steps.{step_id}")
    return found


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression if the whole template is exactly one `{{ expr }}`."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = tree.body[0].nodes
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return parts[0]


def render_string(text: str, scope: dict) -> Any:
    """Evaluate one template under the render in progress (see render)."""
    if not has_template(text):
        return text
    budget = limits.current()
    budget.tick()
    evaluate = _compile(text)
    try:
        value = evaluate(scope)
        # Measured before plain() copies it: shared parts are copied out in full.
        budget.measure(value)
        value = plain(value, budget)
    except (TemplateProblem, RenderTimedOut):
        raise
    except (TemplateError, SecurityError) as exc:
        raise TemplateProblem(f"template error in {_quote(text)}: {exc}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError, MemoryError) as exc:
        raise TemplateProblem(f"template error in {_quote(text)}: {type(exc).__name__}: {exc}") from None
    if isinstance(value, str) and len(value) > MAX_OUTPUT:
        raise TemplateProblem(f"template output longer than {MAX_OUTPUT} characters")
    return value


def render(value: Any, scope: dict, deadline: float | None = None) -> Any:
    """Render every string inside a JSON value (object keys stay literal), all of it as one render:
    within RENDER_BUDGET, and stopped with RenderTimedOut once time.monotonic() passes `deadline`
    (by default AUTOMATION_MAX_RUNTIME_S from now)."""
    if deadline is None:
        deadline = time.monotonic() + settings.AUTOMATION_MAX_RUNTIME_S
    previous = limits.set_current(Budget(deadline))

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return render_string(item, scope)
        if isinstance(item, dict):
            return {key: walk(child) for key, child in item.items()}
        if isinstance(item, list):
            return [walk(child) for child in item]
        return item

    try:
        return walk(value)
    finally:
        limits.set_current(previous)


def plain(value: Any, budget: Budget | None = None, depth: int = 0) -> Any:
    """The value as JSON types (undefined is null; anything exotic becomes its text), at most
    RECORD_DEPTH levels deep. Header dicts stay marked as such (recording.Headers)."""
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, str) and type(value) is not str:  # Markup
            return str(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    if isinstance(value, ChainableUndefined):
        return None
    if depth >= RECORD_DEPTH:
        raise TemplateProblem(f"a value in this template is nested deeper than {RECORD_DEPTH} levels")
    if isinstance(value, dict):
        copy = {str(k): plain(v, budget, depth + 1) for k, v in value.items()}
        copy = Headers(copy) if isinstance(value, Headers) else copy
    elif isinstance(value, list | tuple | set | frozenset | range):
        copy = [plain(v, budget, depth + 1) for v in value]
    else:
        return str(value)
    if budget is not None:
        budget.spend(sys.getsizeof(copy))
    return copy


def _quote(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def walk_strings(value: Any):
    """Every string inside a JSON value (for checking templates when a flow is saved)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)
