"""Templates written by users, evaluated in Jinja2's sandbox with tighter limits.

Strings in a flow are templates over JSON data (`payload`, `query`, `method`, `headers`, variables).
Jinja2's `SandboxedEnvironment` already refuses private attributes (`''.__class__`); this
environment also:
- allows only expressions and `{% if %}`/`{% set %}` (no loops, macros, includes: nothing that
  repeats work or reaches other templates), checked when the flow is saved;
- allows only a small list of attributes (a few str/dict methods), filters and globals;
- refuses `%` string formatting and `str.format`;
- evaluates under the run's deadline and within bounded sizes (automations/limits.py): every
  operation goes through a hook that checks the time, refuses values that would be too large
  before building them, and charges what it builds to the render's budget.
A string that is exactly one `{{ expr }}` keeps the JSON type of its value (number, object...)."""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from jinja2 import ChainableUndefined, Environment, TemplateError, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import do_join, do_tojson
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.utils import pass_environment, pass_eval_context

from . import limits
from .limits import MAX_ITEMS, MAX_VALUE, Budget, RenderTimedOut, measure
from .recording import RECORD_DEPTH, Headers

__all__ = ["MAX_OUTPUT", "MAX_VALUE", "RenderTimedOut", "TemplateProblem", "check", "measure", "render"]

MAX_OUTPUT = 200_000  # characters of one rendered string
MAX_RANGE = 1_000
MAX_TEMPLATE_CHARS = 20_000

SAFE_ATTRIBUTES: dict[type, frozenset[str]] = {
    str: frozenset(
        "lower upper strip lstrip rstrip startswith endswith split title capitalize isdigit isalpha "
        "isalnum islower isupper".split()
    ),
    dict: frozenset({"get", "keys", "values", "items"}),
    list: frozenset({"index", "count"}),
}

SAFE_FILTERS = frozenset(
    "abs capitalize count d default dictsort e escape first float int items join last length list lower "
    "map max min reject rejectattr reverse round select selectattr sort string sum title tojson trim "
    "truncate unique upper urlencode wordcount".split()
)
# Filters that go through their first argument item by item (a string: character by character).
_ITERATING = frozenset(
    "dictsort items join list map max min reject rejectattr reverse select selectattr sort sum unique".split()
)
# Filters that hand back a generator: consumed later, by at most MAX_ITEMS items.
_LAZY = frozenset("items map reject rejectattr select selectattr unique".split())
# Filters that hand back (part of) a value that exists already: nothing new to charge.
_EXISTING = frozenset("d default first last max min".split())
# Filters that, given a string, make a new one-character string of each character.
_PER_CHARACTER = frozenset("join list map reject rejectattr select selectattr sort sum unique".split())
# Filters that make a new string (a lower-case key) of each item, whatever the items are.
_PER_ITEM = frozenset("dictsort sort unique".split())
# Bytes a text filter or method can allocate per character of its input: (ASCII, other). Escaping
# makes `&#34;` of `"`; urlencode makes `%E2%82%AC` of `€`, through a list of one item per byte; a
# case change of non-ASCII text works in a buffer of three 4-byte characters per character.
_GROWTH = {"e": (6, 24), "escape": (6, 24), "urlencode": (12, 36), "string": (10, 40), "tojson": (6, 12),
           "upper": (1, 12), "lower": (1, 12), "title": (1, 12), "capitalize": (1, 12)}  # fmt: skip

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


class TemplateProblem(ValueError):
    """A template that cannot be used or evaluated; the message is shown to the flow's author."""


def _text_size(value: Any) -> int:
    """Characters `value` turns into as text, at most (a container's repr escapes its strings)."""
    if isinstance(value, str):
        return len(value)
    return limits.current().measure(value) * 10


def _finalize(value: Any) -> Any:
    """Each `{{ }}` of a template that is more than one expression becomes text: bounded first."""
    limits.current().tick()
    if not isinstance(value, str) and _text_size(value) > MAX_OUTPUT * 10:
        raise TemplateProblem(f"template output longer than {MAX_OUTPUT} characters")
    return value


def _capped(items: Iterable) -> Iterator:
    budget = limits.current()
    for count, item in enumerate(items):
        if count >= MAX_ITEMS:
            raise SecurityError(f"a list in this template would have more than {MAX_ITEMS} items")
        budget.tick()
        yield item


def _guard_filter(name: str, function: Callable) -> Callable:
    """Check a filter's input before it runs and what it built after."""
    growth = _GROWTH.get(name)

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        limits.current().tick()
        values = [a for a in args if not isinstance(a, Environment | EvalContext | Context)]
        subject = values[0] if values else None
        if name in _ITERATING and hasattr(subject, "__len__") and len(subject) > MAX_ITEMS:
            raise SecurityError(f"'{name}' takes at most {MAX_ITEMS} items (or characters)")
        if (name in _PER_CHARACTER and isinstance(subject, str)) or (name in _PER_ITEM and hasattr(subject, "__len__")):
            limits.current().spend(len(subject) * limits.CHARACTER_BYTES)
        if growth is not None and not (name == "string" and isinstance(subject, str)):
            limits.check_growth(f"'{name}'", subject, *growth)
        result = function(*args, **kwargs)
        if name in _LAZY and not isinstance(result, list | tuple | dict | str):
            return _capped(result)
        if name in _EXISTING:
            return result
        return limits.built(result)

    return guarded


def _guard_test(function: Callable) -> Callable:
    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        limits.current().tick()
        return function(*args, **kwargs)

    return guarded


def _bounded_join(eval_ctx, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(_capped(value))
    separator = len(str(d)) * max(len(items) - 1, 0)
    if all(isinstance(item, str) for item in items):
        size = sum(len(item) for item in items) + separator
    else:
        size = _text_size(items) + separator
    if size > MAX_VALUE:
        raise SecurityError(f"the result of join would be longer than {MAX_VALUE} characters")
    return limits.built(do_join(eval_ctx, items, d, attribute))


def _bounded_tojson(eval_ctx, value: Any, indent: int | None = None) -> Any:
    indent = None if indent is None else min(int(indent), 4)
    if indent:
        # Each item on its own line, indented by its depth (at most RECORD_DEPTH levels).
        limits.check_growth("'tojson'", value, 6 + indent * 16, 12 + indent * 16)
    return limits.built(do_tojson(eval_ctx, value, indent))


def _bounded_sum(environment, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    values = list(_capped(iterable))
    if attribute is not None:
        values = [environment.getattr(v, attribute) for v in values]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in [*values, start]):
        raise SecurityError("sum adds numbers only")
    return sum(values, start)


def _bounded_concat(parts: Any) -> str:
    """`a ~ b`: sized before the parts become text."""
    parts = list(parts)
    if sum(_text_size(part) for part in parts) > MAX_VALUE:
        raise SecurityError(f"the result of ~ would be longer than {MAX_VALUE} characters")
    return limits.built("".join(str(part) for part in parts))


def _bounded_output(chunks: Any) -> str:
    """A template's output, stopped as soon as it passes MAX_OUTPUT."""
    out, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateProblem(f"template output longer than {MAX_OUTPUT} characters")
        out.append(chunk)
    return limits.built("".join(out))


def _ticked(value: Any) -> Any:
    limits.current().tick()
    return value


class _BoundedCodeGenerator(CodeGenerator):
    """Routes the operations the sandbox has no hook for through the environment: `~`, literals
    (which can share one value many times over) and comparisons (which walk whole values)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _composed(self, visit: Callable, node: nodes.Expr, frame: Frame) -> None:
        self.write("environment.composed(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._composed(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._composed(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "load":
            self._composed(super().visit_Tuple, node, frame)
        else:
            super().visit_Tuple(node, frame)

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("environment.ticked(")
        super().visit_Compare(node, frame)
        self.write(")")


def _bounded_range(*args: int) -> list[int]:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return limits.built(list(values))


def _bounded_dict(*args: Any, **kwargs: Any) -> dict:
    return limits.composed(dict(*args, **kwargs))


class FlowSandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(_bounded_output)
    bounded_concat = staticmethod(_bounded_concat)
    composed = staticmethod(limits.composed)
    ticked = staticmethod(_ticked)

    def __init__(self) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=False, cache_size=0, finalize=_finalize)
        filters = {name: _guard_filter(name, f) for name, f in self.filters.items() if name in SAFE_FILTERS}
        filters["join"] = pass_eval_context(_guard_filter("join", _bounded_join))
        filters["tojson"] = pass_eval_context(_guard_filter("tojson", _bounded_tojson))
        filters["sum"] = pass_environment(_guard_filter("sum", _bounded_sum))
        self.filters = filters
        self.tests = {name: _guard_test(test) for name, test in self.tests.items()}
        self.globals = {"range": _bounded_range, "dict": _bounded_dict}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or not super().is_safe_attribute(obj, attr, value):
            return False
        return any(attr in names for kind, names in SAFE_ATTRIBUTES.items() if isinstance(obj, kind))

    def getattr(self, obj: Any, attribute: str) -> Any:
        limits.current().tick()
        # `payload.items` means the key "items" of a JSON object, not the dict method.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        limits.current().tick()
        value = super().getitem(obj, argument)
        return limits.built(value) if isinstance(argument, slice) else value

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        limits.current().tick()
        owner, method = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(owner, str) and method == "split":
            return limits.split(owner, *args, **kwargs)
        if isinstance(owner, str) and method in _GROWTH:
            limits.check_growth(f"'{method}'", owner, *_GROWTH[method])
        result = super().call(__context, __obj, *args, **kwargs)
        # New values come from str methods (the globals check their own); dict.get and the like
        # hand back what exists already.
        return limits.built(result) if isinstance(result, str) else result

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        limits.current().tick()
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not allowed; use ~ to join strings")
        if operator == "**":
            limits.check_power(left, right)
        if operator == "*":
            limits.check_product(left, right)
        if operator == "+":
            limits.check_sum(left, right)
        return limits.built(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> None:
        """No `str.format`: its width and precision can build strings of any size."""
        return None


ENV = FlowSandbox()


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
