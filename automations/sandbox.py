"""The Jinja2 sandbox flows' templates run in: what they may touch, and the hooks that bound them.

Jinja2's `SandboxedEnvironment` refuses private attributes (`''.__class__`); `FlowSandbox` also
allows only a few attributes, filters and globals, refuses `%` formatting and `str.format`, and
routes every operation through a hook (attribute and item access, calls, filters, tests, binary
operators, and, through its code generator, `~`, literals and comparisons) that applies the
bounds of automations/limits.py: the run's deadline, the size of each value, the render's memory."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import ChainableUndefined, Environment, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import do_join, do_tojson
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.utils import pass_context, pass_environment, pass_eval_context

from core.nesting import depth

from . import encoding, limits, reads
from .limits import MAX_ITEMS, MAX_VALUE

MAX_OUTPUT = 200_000  # characters of one rendered string
MAX_RANGE = 1_000

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
    "truncate unique upper urlencode wordcount b64encode b64decode sha256 hmac_sha256 date".split()
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
_GROWTH = {"b64encode": (2, 8), "b64decode": (1, 4), "date": (40, 40),
           "e": (6, 24), "escape": (6, 24), "urlencode": (12, 36), "string": (10, 40), "tojson": (6, 12),
           "upper": (1, 12), "lower": (1, 12), "title": (1, 12), "capitalize": (1, 12)}  # fmt: skip


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
        # Each item on its own line, indented by `indent` characters per level of nesting.
        per_line = indent * depth(value)
        limits.check_growth("'tojson'", value, 6 + per_line, 12 + per_line)
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
        for name, function in encoding.FILTERS.items():
            filters[name] = _guard_filter(name, function)
        filters["hmac_sha256"] = pass_context(_guard_filter("hmac_sha256", encoding.hmac_sha256))
        self.filters = filters
        self.tests = {name: _guard_test(test) for name, test in self.tests.items()}
        self.globals = {"range": _bounded_range, "dict": _bounded_dict, **encoding.GLOBALS}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or not super().is_safe_attribute(obj, attr, value):
            return False
        return any(attr in names for kind, names in SAFE_ATTRIBUTES.items() if isinstance(obj, kind))

    def getattr(self, obj: Any, attribute: str) -> Any:
        limits.current().tick()
        if isinstance(obj, dict):
            # `payload.items` means the key "items" of a JSON object, not the dict method.
            value = obj[attribute] if attribute in obj else super().getattr(obj, attribute)
            reads.note(obj, attribute, value)
            return value
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        limits.current().tick()
        value = super().getitem(obj, argument)
        if isinstance(obj, dict):
            reads.note(obj, argument, value)
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
