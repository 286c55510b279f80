"""A subscription's `filter`: conditions on the payload, checked when an event is published, so
an event that does not match makes no delivery row at all.

A filter maps dotted paths (`department.name`, `channel.name`, `attributes.vip`, `messages.0.text`)
to a literal (equality) or to an operator object (`$in`, `$nin`, `$ne`, `$exists`, `$gt`, `$gte`,
`$lt`, `$lte`, `$regex`); every condition must hold. As in MongoDB, whose query language
integrators know, a path that reaches a list matches when one of its items does. It is validated
when the subscription is saved, so publishing only evaluates, never fails: this runs inside every
domain write's transaction."""

import re
from functools import lru_cache
from typing import Any

OPERATORS = ("$in", "$nin", "$ne", "$exists", "$gt", "$gte", "$lt", "$lte", "$regex")
MAX_CONDITIONS = 20
MAX_PATH_LENGTH = 200
MAX_LIST_ITEMS = 100
# `$regex` is bounded: a short pattern, without nested quantifiers (the shape of catastrophic
# backtracking), searched in at most this much of the value.
MAX_PATTERN_LENGTH = 200
MAX_SUBJECT_LENGTH = 4096
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)[*+{?]")
_PATH = re.compile(r"^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$")
_MISSING = object()


class FilterProblem(ValueError):
    """What is wrong with a filter, naming the path or operator."""


def validate(conditions: Any) -> dict:
    """The filter as stored, or FilterProblem."""
    if not isinstance(conditions, dict):
        raise FilterProblem("A filter is an object of dotted paths to values or operator objects.")
    if len(conditions) > MAX_CONDITIONS:
        raise FilterProblem(f"At most {MAX_CONDITIONS} conditions.")
    for path, condition in conditions.items():
        if len(path) > MAX_PATH_LENGTH or not _PATH.match(path):
            raise FilterProblem(
                f"{path!r}: a path is dot-separated names (letters, digits, _ - $ @), e.g. department.name."
            )
        if _is_operator_object(condition):
            for operator, operand in condition.items():
                _validate_operator(path, operator, operand)
    return conditions


def _is_operator_object(condition: Any) -> bool:
    return isinstance(condition, dict) and any(key.startswith("$") for key in condition)


def _validate_operator(path: str, operator: str, operand: Any) -> None:
    where = f"{path}: {operator}"
    if operator not in OPERATORS:
        raise FilterProblem(f"{path}: unknown operator {operator!r}; use one of {', '.join(OPERATORS)}.")
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list) or len(operand) > MAX_LIST_ITEMS:
            raise FilterProblem(f"{where} takes a list of at most {MAX_LIST_ITEMS} values.")
    elif operator == "$exists":
        if not isinstance(operand, bool):
            raise FilterProblem(f"{where} takes true or false.")
    elif operator in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(operand, bool) or not isinstance(operand, int | float | str):
            raise FilterProblem(f"{where} takes a number or a text (an ISO-8601 date compares as text).")
    elif operator == "$regex":
        if not isinstance(operand, str) or len(operand) > MAX_PATTERN_LENGTH:
            raise FilterProblem(f"{where} takes a pattern of at most {MAX_PATTERN_LENGTH} characters.")
        if _NESTED_QUANTIFIER.search(operand):
            raise FilterProblem(
                f"{where}: nested quantifiers such as (a+)+ are refused (they can take exponential time)."
            )
        try:
            _compiled(operand)
        except re.error as error:
            raise FilterProblem(f"{where}: not a valid pattern ({error}).") from error


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def matches(conditions: dict | None, payload: Any) -> bool:
    """Whether the payload meets every condition (an empty or absent filter takes everything)."""
    if not conditions:
        return True
    return all(
        _condition_holds(_resolve(payload, path.split(".")), condition) for path, condition in conditions.items()
    )


def _resolve(value: Any, parts: list[str]) -> Any:
    """The value at the path; a list on the way yields its items' values (a list), as in MongoDB."""
    for index, part in enumerate(parts):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list):
            if part.isdigit():
                value = value[int(part)] if int(part) < len(value) else _MISSING
            else:
                found = [_resolve(item, parts[index:]) for item in value]
                found = [item for item in found if item is not _MISSING]
                return found if found else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _candidates(value: Any) -> list:
    """The value and, for a list, its items: a condition on a list holds when it holds for one."""
    return [value, *value] if isinstance(value, list) else [value]


def _condition_holds(value: Any, condition: Any) -> bool:
    if not _is_operator_object(condition):
        return value is not _MISSING and any(_equal(candidate, condition) for candidate in _candidates(value))
    return all(_operator_holds(value, operator, operand) for operator, operand in condition.items())


def _equal(left: Any, right: Any) -> bool:
    # true is not 1 here, as in JSON.
    return left == right and isinstance(left, bool) == isinstance(right, bool)


def _operator_holds(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$exists":
        return (value is not _MISSING) == operand
    if operator == "$ne":
        return value is _MISSING or not any(_equal(candidate, operand) for candidate in _candidates(value))
    if operator == "$nin":
        return value is _MISSING or not any(_equal(c, item) for c in _candidates(value) for item in operand)
    if value is _MISSING:
        return False
    candidates = _candidates(value)
    if operator == "$in":
        return any(_equal(c, item) for c in candidates for item in operand)
    if operator == "$regex":
        pattern = _compiled(operand)
        return any(isinstance(c, str) and pattern.search(c[:MAX_SUBJECT_LENGTH]) for c in candidates)
    return any(_compare(c, operator, operand) for c in candidates)


def _compare(value: Any, operator: str, operand: Any) -> bool:
    comparable = (int, float) if isinstance(operand, int | float) else (str,)
    if isinstance(value, bool) or not isinstance(value, comparable):
        return False
    if operator == "$gt":
        return value > operand
    if operator == "$gte":
        return value >= operand
    if operator == "$lt":
        return value < operand
    return value <= operand
