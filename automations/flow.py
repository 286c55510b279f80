"""The flow document and the checks made when a flow is saved (the actions and their fields are
actions.ACTIONS, the table the engine runs from).

A flow is `{"steps": [...]}`; steps run top to bottom, a `condition` runs one of its two nested
lists, a `for_each` its `steps` once per item. There is no `goto`, and a loop runs over a list of at
most AUTOMATION_MAX_ITEMS items, so every flow ends: the "cycle that can never end" cannot be
written. Each problem names the step (its path and id) so the author can find it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import regex

from subscriptions.targets import url_problem

from . import answer_headers, templating
from .actions import ACTIONS, HTTP_METHODS, OPS

MAX_FLOW_STEPS = 200
MAX_DEPTH = 8
RESERVED_NAMES = frozenset(
    {"payload", "query", "method", "headers", "steps", "run", "range", "dict", "loop", "secrets", "raw_body", "path"}
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_STEP_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
COMMON_FIELDS = frozenset({"action", "id", "description"})


# The lists of steps an action holds and runs itself.
NESTED = {"condition": ("then", "else"), "for_each": ("steps",)}
# Actions that change something outside the run (a receiver, the support domain).
SIDE_EFFECTS = frozenset({"http_request", "create_request", "send_message", "close_request", "emit_event"})


def problem(path: str, step_id: str | None, message: str) -> dict:
    """One error or warning as the API answers it: where (`path`, `step_id`) and what."""
    return {"path": path, "step_id": step_id, "message": message}


@dataclass
class Checked:
    """The flow with generated step ids, every error found, and the warnings (a flow with
    warnings is saved; one with errors is not)."""

    flow: dict
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    count: int = 0
    ids: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    labels: dict = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """The errors as sentences naming their step (the admin's form, the seed)."""
        return [_sentence(error, self.labels) for error in self.errors]


def _sentence(item: dict, labels: dict) -> str:
    label = labels.get(item["path"], item["path"])
    return f"{label}: {item['message']}" if label else item["message"]


def validate_flow(document: Any) -> Checked:
    if not isinstance(document, dict) or not isinstance(document.get("steps"), list):
        message = 'A flow is an object like {"steps": [{"action": "log", ...}]}.'
        return Checked(flow={}, errors=[problem("", None, message)])
    extra = set(document) - {"steps", "description"}
    checked = Checked(flow={**document})
    if extra:
        checked.errors.append(problem("", None, f"Unknown flow field(s): {', '.join(sorted(extra))}."))
    _collect_ids(document["steps"], checked.ids)
    checked.flow["steps"] = _check_list(document["steps"], "steps", 1, checked)
    if checked.count > MAX_FLOW_STEPS:
        message = f"A flow has at most {MAX_FLOW_STEPS} steps; this one has {checked.count}."
        checked.errors.append(problem("steps", None, message))
    if not checked.errors:
        checked.warnings = flow_warnings(checked.flow)
    return checked


def flow_warnings(flow: dict) -> list[dict]:
    """What a flow allows but its author most likely did not mean (see _after_error_answer)."""
    found: dict[str, dict] = {}
    _after_error_answer(flow.get("steps", []), "steps", False, found)
    return list(found.values())


def _after_error_answer(steps: list, path: str, answered_error: bool, found: dict) -> tuple[bool, bool]:
    """Side effects that can run after the caller was answered with a status >= 400: work goes on
    after a `response` (unless it says `"end": true`), so a form told "email is required" would
    still create its conversation. Returns whether the path goes on past `steps`, and whether an
    error answer may have been given by then. A templated status counts as a possible error."""
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        action, here = step.get("action"), f"{path}[{i}]"
        if answered_error and action in SIDE_EFFECTS and here not in found:
            message = (
                f"'{action}' can run after the caller was answered with an error status; "
                'give that response "end": true if the flow should stop there.'
            )
            found[here] = problem(here, step.get("id"), message)
        if action == "response":
            status = step.get("status")
            if step.get("end") is True:
                return False, answered_error
            answered_error = answered_error or not (isinstance(status, int) and status < 400)
        elif action == "stop":
            return False, answered_error
        elif action == "condition":
            outcomes = [
                _after_error_answer(step.get(branch) or [], f"{here}.{branch}", answered_error, found)
                for branch in ("then", "else")
            ]
            going = [error for goes_on, error in outcomes if goes_on]
            if not going:
                return False, answered_error
            answered_error = any(going)
        elif action == "for_each":
            goes_on, error = _after_error_answer(step.get("steps") or [], f"{here}.steps", answered_error, found)
            if error and not answered_error:
                # The next item runs the body again, now after that answer.
                _after_error_answer(step.get("steps") or [], f"{here}.steps", True, found)
            answered_error = answered_error or error
    return True, answered_error


def _collect_ids(steps: Any, ids: set[str]) -> None:
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict):
            if isinstance(step.get("id"), str):
                ids.add(step["id"])
            for branch in NESTED.get(step.get("action"), ()) if isinstance(step.get("action"), str) else ():
                _collect_ids(step.get(branch), ids)


def _check_list(steps: Any, path: str, depth: int, checked: Checked) -> list:
    if not isinstance(steps, list):
        checked.errors.append(problem(path, None, "must be a list of steps."))
        return []
    if depth > MAX_DEPTH:
        checked.errors.append(problem(path, None, f"steps may be nested at most {MAX_DEPTH} deep."))
        return steps
    return [_check_step(step, f"{path}[{i}]", depth, checked) for i, step in enumerate(steps)]


def _new_id(action: str, checked: Checked) -> str:
    n = 1
    while f"{action}_{n}" in checked.ids:
        n += 1
    checked.ids.add(f"{action}_{n}")
    return f"{action}_{n}"


def _check_step(step: Any, path: str, depth: int, checked: Checked) -> Any:
    checked.count += 1
    if not isinstance(step, dict):
        checked.errors.append(problem(path, None, 'a step is an object like {"action": "log", "message": "hi"}.'))
        return step
    action = step.get("action")
    label = f"{path} (id {step['id']!r}, action {action!r})" if "id" in step else f"{path} (action {action!r})"
    problems: list[str] = []
    step = dict(step)
    if "id" in step:
        if not isinstance(step["id"], str) or not _STEP_ID.match(step["id"]):
            problems.append("id must be 1-64 letters, digits, '_', '-', '.' or ':'")
        elif step["id"] in checked.seen:
            problems.append(f"id {step['id']!r} is used by more than one step")
        else:
            checked.seen.add(step["id"])
    else:
        step["id"] = _new_id(action if isinstance(action, str) and action in ACTIONS else "step", checked)
    spec = ACTIONS.get(action) if isinstance(action, str) else None
    if spec is None:
        problems.append(f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}")
    else:
        for name in spec.required:
            if name not in step:
                problems.append(f"missing field '{name}'")
        for name in sorted(set(step) - COMMON_FIELDS - spec.fields):
            hint = " (flows run top to bottom; use a condition)" if name == "goto" else ""
            problems.append(f"unknown field '{name}' for '{action}'{hint}")
        problems += _field_problems(action, step)
        for name, value in step.items():
            if name in ("id", "action") or name in NESTED.get(action, ()):
                continue
            for text in templating.walk_strings(value):
                try:
                    templating.check(text)
                except templating.TemplateProblem as exc:
                    problems.append(f"field '{name}': {exc}")
                    break
    checked.labels[path] = label
    step_id = step["id"] if isinstance(step["id"], str) else None
    checked.errors += [problem(path, step_id, f"{message.rstrip('.')}.") for message in problems]
    for branch in NESTED.get(action, ()) if spec is not None else ():
        if branch in step:
            step[branch] = _check_list(step[branch], f"{path}.{branch}", depth + 1, checked)
    return step


def _is_literal(value: Any) -> bool:
    return not (isinstance(value, str) and templating.has_template(value))


def _field_problems(action: str, step: dict) -> list[str]:
    problems: list[str] = []
    for name in ("name", "save_as") if action in ("set",) else ("save_as",):
        if name in step and not (isinstance(step[name], str) and _NAME.match(step[name])):
            problems.append(f"'{name}' must be a variable name (letters, digits, _; not starting with a digit)")
        elif name in step and step[name] in RESERVED_NAMES:
            problems.append(f"'{name}' cannot be {step[name]!r}: that name is reserved")
    if action == "condition":
        problems += _condition_problems(step.get("if"))
    if action == "for_each":
        name = step.get("as")
        if not (isinstance(name, str) and _NAME.match(name)):
            problems.append("'as' must be a variable name (letters, digits, _; not starting with a digit)")
        elif name in RESERVED_NAMES:
            problems.append(f"'as' cannot be {name!r}: that name is reserved")
        if "items" in step and not (isinstance(step["items"], list) or not _is_literal(step["items"])):
            problems.append("'items' must be a list or a template such as \"{{ payload.items }}\"")
    if action == "http_request":
        method = step.get("method", "GET")
        if not isinstance(method, str) or (_is_literal(method) and method.upper() not in HTTP_METHODS):
            problems.append(f"'method' must be one of {', '.join(HTTP_METHODS)}")
        url = step.get("url")
        if not isinstance(url, str):
            problems.append("'url' must be a string")
        elif _is_literal(url) and (problem := url_problem(url)):
            problems.append(f"'url': {problem}")
        if "headers" in step and not isinstance(step["headers"], dict):
            problems.append("'headers' must be an object")
        timeout = step.get("timeout_s", 1)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 300:
            problems.append("'timeout_s' must be a number of seconds between 0 and 300")
    if action == "response":
        status = step.get("status")
        if _is_literal(status) and not (
            isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599
        ):
            problems.append("'status' must be an HTTP status code (100-599)")
        if "headers" in step and not isinstance(step["headers"], dict):
            problems.append("'headers' must be an object")
        elif "headers" in step:
            problems += _response_header_problems(step["headers"])
        if "end" in step and not isinstance(step["end"], bool):
            problems.append("'end' must be true or false")
    if action == "create_request":
        lead = step.get("lead")
        if isinstance(lead, dict):
            if "fullname" not in lead:
                problems.append("'lead' needs 'fullname'")
        elif not isinstance(lead, str):
            problems.append('\'lead\' must be {"fullname", "email"} or a lead id')
    if action in ("emit_event", "create_request", "send_message"):
        attributes = step.get("attributes", {})
        if not isinstance(attributes, dict | str):
            problems.append("'attributes' must be an object")
    if action == "emit_event" and _is_literal(step.get("name")):
        name = step.get("name")
        if not isinstance(name, str) or not name.strip() or any(ch.isspace() for ch in name):
            problems.append("'name' must be one word such as order.shipped")
    return problems


def _condition_problems(condition: Any) -> list[str]:
    if not isinstance(condition, dict):
        return ['\'if\' must be an object like {"left": "{{ payload.x }}", "op": "==", "right": 1}']
    problems = []
    op = condition.get("op")
    if op not in OPS:
        problems.append(f"'if.op' must be one of {', '.join(OPS)}")
    if "left" not in condition:
        problems.append("'if' needs 'left'")
    if op != "exists" and "right" not in condition:
        problems.append(f"'if' with op {op!r} needs 'right'")
    extra = set(condition) - {"left", "op", "right"}
    if extra:
        problems.append(f"unknown field(s) in 'if': {', '.join(sorted(extra))}")
    if op == "matches" and isinstance(condition.get("right"), str) and _is_literal(condition["right"]):
        try:
            regex.compile(condition["right"])
        except regex.error as exc:
            problems.append(f"'if.right' is not a valid regular expression: {exc}")
    return problems


def _response_header_problems(headers: dict) -> list[str]:
    """Headers an automation's answer may not carry (answer_headers.refusal), named; a Location
    template is checked once rendered, at run time."""
    problems = []
    for name, value in headers.items():
        literal = value if isinstance(value, str) and _is_literal(value) else None
        if (reason := answer_headers.refusal(name, literal)) is not None:
            problems.append(f"'headers': {reason}")
    return problems


def has_response(steps: list) -> bool:
    """Whether a `response` step can be reached (anywhere, in any branch): then the caller waits."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        if step.get("action") == "response":
            return True
        nested = NESTED.get(step.get("action"), ()) if isinstance(step.get("action"), str) else ()
        if any(isinstance(step.get(name), list) and has_response(step[name]) for name in nested):
            return True
        if step.get("action") == "stop":
            return False
    return False
