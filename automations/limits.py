"""The bounds a template is evaluated under: time, the size of each value, and the memory it takes.

Jinja2's sandbox refuses private attributes but lets a template spend any amount of CPU and memory:
an 800-character chain of `split`, `join` and `sort` held a thread 44.7 s past a 30 s runtime bound,
and 30 characters grew the process by 57 MB. Checking the runtime between steps cannot stop that,
and a process per call would cost the endpoint most of its speed. So every operation a template
performs goes through a hook of the sandbox (attribute and item access, calls, filters, tests,
operators, comparisons, `~`, list and dict literals, output, the final copy), and each hook:
- checks the run's deadline (`Budget.tick`): past it, the render stops with `RenderTimedOut`;
- refuses, before the work is done, what would build a value larger than MAX_VALUE (as written
  out, shared parts counted each time they appear, so `[x, x]` nested thirty times is huge), a
  list of more than MAX_ITEMS, or a text operation allocating more than MAX_GROWTH bytes;
- charges the bytes it allocated to the render's RENDER_BUDGET (`Budget.spend`).
Every single operation is then bounded in time by the size of its inputs (tens of ms at the
limits), so a render ends within one such operation of the deadline; and one render allocates at
most RENDER_BUDGET bytes (as CPython sizes objects) plus one operation's MAX_GROWTH."""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any, NamedTuple

from jinja2.sandbox import SecurityError

# Size of one value as written out (characters of strings plus one per item), for one template or
# one step's rendered fields: twice the largest inbound body.
MAX_VALUE = 2_500_000
# Items in a list built by one operation (`*`, `+`, `split`, `list` of a string...).
MAX_ITEMS = 100_000
# Bytes one render may allocate for the values it builds (strings, lists, dicts, the final copy).
RENDER_BUDGET = 24 * 1024 * 1024
# Bytes one text operation may allocate on the way to its result (escaping, case changes and repr
# can make a text several times longer, in characters of up to 4 bytes).
MAX_GROWTH = 16 * 1024 * 1024
# Bytes of a new one-character string outside Latin-1 (CPython caches the others), the worst case
# of `list`, `sort`, `map`... over a string.
CHARACTER_BYTES = 80
# How often (in units measured) a long measurement checks the deadline: some 25 ms of work.
_TICK_EVERY = 65_536

_SCALARS = frozenset({int, float, bool, type(None)})


class Sizes(NamedTuple):
    units: int  # written out: characters of strings plus one per item
    nbytes: int  # in memory, about
    wide: int  # characters of the strings that are not ASCII


class RenderTimedOut(Exception):
    """The run's deadline passed while a template was being evaluated."""


class Budget:
    """What the render in progress may still spend: time until `deadline` (time.monotonic()), and
    bytes of new values. It also remembers the sizes of the values the render composed, so that
    measuring `[a, a]` after `a` costs two lookups, not a walk through `a`."""

    __slots__ = ("deadline", "left", "known")

    def __init__(self, deadline: float, nbytes: int = RENDER_BUDGET):
        self.deadline = deadline
        self.left = nbytes
        self.known: dict[int, tuple[Any, Sizes]] = {}

    def sizes(self, value: Any, limit: int = MAX_VALUE) -> Sizes:
        return sizes(value, limit, self.deadline, self.known)

    def measure(self, value: Any, limit: int = MAX_VALUE) -> int:
        return self.sizes(value, limit).units

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderTimedOut("the run reached AUTOMATION_MAX_RUNTIME_S while evaluating a template")

    def spend(self, nbytes: int) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise SecurityError(f"this template takes more than {RENDER_BUDGET // (1024 * 1024)} MB of memory")
        self.tick()


_local = threading.local()


def current() -> Budget:
    """The budget of the render running in this thread (templating.render sets it)."""
    return _local.budget


def set_current(budget: Budget | None) -> Budget | None:
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    return previous


def sizes(value: Any, limit: int = MAX_VALUE, deadline: float | None = None, known: dict | None = None) -> Sizes:
    """The sizes of `value`, counting shared parts each time they appear; SecurityError as soon as
    its size written out passes `limit` (so measuring a huge value costs no more than the limit),
    and RenderTimedOut once past `deadline`. `known` maps id() of values to (value, their Sizes)."""
    total, nbytes, wide, stack, next_tick = 0, 0, 0, [value], _TICK_EVERY
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 1
            nbytes += text_bytes(item)
            if not item.isascii():
                wide += len(item)
        elif known and id(item) in known:
            found = known[id(item)][1]
            total, nbytes, wide = total + found.units, nbytes + found.nbytes, wide + found.wide
        elif isinstance(item, dict):
            total += 1 + len(item)
            nbytes += sys.getsizeof(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += 1 + len(item)
            nbytes += sys.getsizeof(item)
            if total <= limit:
                stack.extend([child for child in item if child.__class__ not in _SCALARS])
        else:
            total += 1
            nbytes += 32
        if total > limit:
            raise SecurityError(f"a value in this template is larger than {limit} characters")
        if total > next_tick:
            next_tick = total + _TICK_EVERY
            if deadline is not None and time.monotonic() > deadline:
                raise RenderTimedOut("the run reached AUTOMATION_MAX_RUNTIME_S while measuring a value")
    return Sizes(total, nbytes, wide)


def measure(value: Any, limit: int = MAX_VALUE, deadline: float | None = None) -> int:
    """Size of `value` written out (characters of strings plus one per item), as `sizes`."""
    return sizes(value, limit, deadline)[0]


def text_bytes(text: str) -> int:
    """Bytes of a string, at most (CPython stores 1, 2 or 4 bytes a character)."""
    return 49 + len(text) * (1 if text.isascii() else 4)


def built(value: Any) -> Any:
    """Check and charge a value an operation has just built: its own size (what is new; the items
    it refers to exist already), within MAX_ITEMS and MAX_VALUE."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE:
            raise SecurityError(f"a string in this template would be longer than {MAX_VALUE} characters")
        current().spend(sys.getsizeof(value))
    elif isinstance(value, list | tuple | dict):
        if len(value) > MAX_ITEMS:
            raise SecurityError(f"a list in this template would have more than {MAX_ITEMS} items")
        current().spend(sys.getsizeof(value))
    else:
        current().tick()
    return value


def composed(value: Any) -> Any:
    """Check a value made of references to other values (a literal, `dict(...)`): what it would
    be written out as stays within MAX_VALUE, so no traversal of it (comparing, copying,
    printing) can take long."""
    budget = current()
    budget.known[id(value)] = (value, budget.sizes(value))
    return built(value)


def check_growth(what: str, value: Any, per_ascii_character: int, per_character: int) -> None:
    """Refuse a text operation on `value` that would allocate more than MAX_GROWTH bytes, given
    how many bytes it can allocate per character of an ASCII text, and of any other (a container
    counts as its size written out)."""
    if isinstance(value, str):
        growth = len(value) * (per_ascii_character if value.isascii() else per_character)
    else:
        found = current().sizes(value)
        growth = (found.units - found.wide) * per_ascii_character + found.wide * per_character
    if growth > MAX_GROWTH:
        raise SecurityError(f"{what} would take more than {MAX_GROWTH // (1024 * 1024)} MB of memory")


def check_product(left: Any, right: Any) -> None:
    """`*` repeats strings and lists: the result stays within MAX_ITEMS characters or items, and
    MAX_VALUE written out."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            times = max(times, 0)
            if len(seq) * times > MAX_ITEMS:
                raise SecurityError(f"the result of * would be longer than {MAX_ITEMS}")
            if not isinstance(seq, str) and current().measure(seq) * times > MAX_VALUE:
                raise SecurityError(f"the result of * would be larger than {MAX_VALUE} characters")
            return
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 8192:
        raise SecurityError("the result of * would be too large")


def check_sum(left: Any, right: Any) -> None:
    """`+` joins strings or lists: bounded in length (what list items refer to is measured when
    the result is written out)."""
    if isinstance(left, str) and isinstance(right, str) and len(left) + len(right) > MAX_VALUE:
        raise SecurityError(f"the result of + would be longer than {MAX_VALUE} characters")
    if isinstance(left, list | tuple) and isinstance(right, list | tuple) and len(left) + len(right) > MAX_ITEMS:
        raise SecurityError(f"the result of + would have more than {MAX_ITEMS} items")


def check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int | float) and isinstance(exponent, int | float):
        size = max(abs(base), 2) if isinstance(base, int) else 2
        if abs(exponent) > 1024 or math.log2(size) * abs(exponent) > 4096:
            raise SecurityError("the result of ** would be too large")


def split(text: str, sep: str | None = None, maxsplit: int = -1) -> list[str]:
    """`str.split` that never builds more than MAX_ITEMS pieces: it stops splitting there, and a
    string with more pieces is refused. The pieces are new strings, charged as such."""
    capped = maxsplit < 0 or maxsplit >= MAX_ITEMS
    limit = MAX_ITEMS - 1 if capped else maxsplit
    parts = text.split(sep, limit)
    if capped and len(parts) > limit and len(parts[-1].split(sep, 1)) > 1:
        raise SecurityError(f"split would give more than {MAX_ITEMS} pieces")
    current().spend(text_bytes(text) + 49 * len(parts))
    return built(parts)
