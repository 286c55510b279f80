"""Templates written by users, evaluated in Jinja2's sandbox with tighter limits.

Strings in a flow are templates over JSON data (`payload`, `query`, `method`, `headers`, variables).
Jinja2's `SandboxedEnvironment` already refuses private attributes (`''.__class__`), but it still
lets a template burn CPU or memory, so this environment also:
- allows only expressions and `{% if %}`/`{% set %}` (no loops, macros, includes: nothing that
  repeats work or reaches other templates), checked when the flow is saved;
- allows only a small list of attributes (a few str/dict methods), filters and globals;
- bounds `*` and `**`, refuses `%` string formatting, and caps the size of every rendered string;
- measures values before anything turns them into text or copies them (output, `~`, `+`, `*`,
  filters, the final JSON copy): a value is counted as it would be written out, so a few shared
  references cannot blow up into gigabytes (`[x, x]` nested thirty times).
A string that is exactly one `{{ expr }}` keeps the JSON type of its value (number, object...)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import do_join, do_tojson
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_SEQUENCE = 100_000  # characters or items a `*` may produce
MAX_OUTPUT = 200_000  # characters of one rendered string
MAX_RANGE = 1_000
MAX_TEMPLATE_CHARS = 20_000
# Size of a value as written out (characters of strings plus one per item), for one template or
# one step's rendered fields: twice the largest inbound body.
MAX_VALUE = 2_500_000

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


_SCALARS = frozenset({int, float, bool, type(None)})


def measure(value: Any, limit: int = MAX_VALUE) -> int:
    """Size of `value` written out, counting shared parts each time they appear; SecurityError as
    soon as it passes `limit` (so measuring a huge value costs no more than the limit)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 1
        elif isinstance(item, dict):
            total += 1 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += 1 + len(item)
            if total <= limit:
                stack.extend([child for child in item if child.__class__ not in _SCALARS])
        else:
            total += 1
        if total > limit:
            raise SecurityError(f"a value in this template is larger than {limit} characters")
    return total


def _checked(value: Any) -> Any:
    measure(value)
    return value


def _guard_filter(function: Callable) -> Callable:
    """Measure a filter's arguments before it runs (most filters turn their input into text)."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        measure([a for a in args if not hasattr(a, "environment")] + list(kwargs.values()))
        return function(*args, **kwargs)

    return guarded


def _bounded_join(eval_ctx, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)
    measure(items)
    if len(str(d)) * len(items) > MAX_VALUE:
        raise SecurityError(f"the result of join would be larger than {MAX_VALUE} characters")
    return do_join(eval_ctx, items, d, attribute)


def _bounded_tojson(eval_ctx, value: Any, indent: int | None = None) -> Any:
    measure(value)
    return do_tojson(eval_ctx, value, None if indent is None else min(int(indent), 8))


def _bounded_sum(environment, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    values = list(iterable)
    if attribute is not None:
        values = [environment.getattr(v, attribute) for v in values]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in [*values, start]):
        raise SecurityError("sum adds numbers only")
    return sum(values, start)


def _bounded_concat(parts: Any) -> str:
    """`a ~ b`: measured before the parts become text."""
    parts = list(parts)
    measure(parts)
    return "".join(str(part) for part in parts)


def _bounded_output(chunks: Any) -> str:
    """A template's output, stopped as soon as it passes MAX_OUTPUT."""
    out, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateProblem(f"template output longer than {MAX_OUTPUT} characters")
        out.append(chunk)
    return "".join(out)


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _bounded_range(*args: int) -> list[int]:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return list(values)


class FlowSandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(_bounded_output)
    bounded_concat = staticmethod(_bounded_concat)

    def __init__(self) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=False, cache_size=0, finalize=_checked)
        filters = {name: _guard_filter(f) for name, f in self.filters.items() if name in SAFE_FILTERS}
        from jinja2.utils import pass_environment, pass_eval_context

        filters["join"] = pass_eval_context(_bounded_join)
        filters["tojson"] = pass_eval_context(_bounded_tojson)
        filters["sum"] = pass_environment(_bounded_sum)
        self.filters = filters
        self.globals = {"range": _bounded_range, "dict": dict}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or not super().is_safe_attribute(obj, attr, value):
            return False
        return attr in SAFE_ATTRIBUTES.get(type(obj), frozenset())

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `payload.items` means the key "items" of a JSON object, not the dict method.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not allowed; use ~ to join strings")
        if operator == "**":
            _check_power(left, right)
        if operator == "*":
            _check_product(left, right)
        if operator == "+":
            _check_sum(left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> None:
        """No `str.format`: its width and precision can build strings of any size."""
        return None


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int | float) and isinstance(exponent, int | float):
        size = max(abs(base), 2) if isinstance(base, int) else 2
        if abs(exponent) > 1024 or math.log2(size) * abs(exponent) > 4096:
            raise SecurityError("the result of ** would be too large")


def _check_sum(left: Any, right: Any) -> None:
    """`+` joins references (lists) or characters (strings); both are bounded in length, and what
    the references point to is measured when the result is written out."""
    if isinstance(left, str) and isinstance(right, str) and len(left) + len(right) > MAX_VALUE:
        raise SecurityError(f"the result of + would be longer than {MAX_VALUE}")
    if isinstance(left, list | tuple) and isinstance(right, list | tuple) and len(left) + len(right) > MAX_SEQUENCE:
        raise SecurityError(f"the result of + would be longer than {MAX_SEQUENCE} items")


def _check_product(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            if len(seq) * times > MAX_SEQUENCE or measure(seq) * max(times, 0) > MAX_VALUE:
                raise SecurityError(f"the result of * would be longer than {MAX_SEQUENCE}")
            return
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 8192:
        raise SecurityError("the result of * would be too large")


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
        tree = ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"bad template syntax: {exc.message} (line {exc.lineno})") from None
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
    single = _single_expression(tree)
    if single is not None:
        inner = text.strip()[2:-2].strip("-").strip()
        expression = ENV.compile_expression(inner, undefined_to_none=True)
        return lambda scope: expression(**scope)
    template = ENV.from_string(tree)
    return template.render


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression if the whole template is exactly one `{{ expr }}`."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = tree.body[0].nodes
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return parts[0]


def render_string(text: str, scope: dict) -> Any:
    if not has_template(text):
        return text
    evaluate = _compile(text)
    try:
        value = evaluate(scope)
        measure(value)  # before plain() copies it: shared parts are copied out in full
    except TemplateProblem:
        raise
    except (TemplateError, SecurityError) as exc:
        raise TemplateProblem(f"template error in {_quote(text)}: {exc}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError, MemoryError) as exc:
        raise TemplateProblem(f"template error in {_quote(text)}: {type(exc).__name__}: {exc}") from None
    value = plain(value)
    if isinstance(value, str) and len(value) > MAX_OUTPUT:
        raise TemplateProblem(f"template output longer than {MAX_OUTPUT} characters")
    return value


def render(value: Any, scope: dict) -> Any:
    """Render every string inside a JSON value (object keys stay literal). All of it together is
    bounded by MAX_VALUE, like one template."""
    budget = [MAX_VALUE]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            result = render_string(item, scope)
            budget[0] -= measure(result)
            if budget[0] < 0:
                raise TemplateProblem(f"the rendered values are larger than {MAX_VALUE} characters")
            return result
        if isinstance(item, dict):
            return {key: walk(child) for key, child in item.items()}
        if isinstance(item, list):
            return [walk(child) for child in item]
        return item

    return walk(value)


def plain(value: Any) -> Any:
    """The value as JSON types (undefined is null; anything exotic becomes its text)."""
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, str) and type(value) is not str:  # Markup
            return str(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    if isinstance(value, ChainableUndefined):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | range):
        return [plain(v) for v in value]
    return str(value)


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
