"""How deeply a parsed JSON value nests, measured without recursion (the value may be deeper than
Python's recursion limit allows walking)."""

from typing import Any


def depth(value: Any) -> int:
    """Nesting depth of a JSON value: 0 for a scalar, 1 for a flat list or object."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
