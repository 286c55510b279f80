"""One table of actions: what the validation of flows accepts is exactly what the engine runs, and
each handler reads exactly the fields its action declares."""

import ast
import inspect
import textwrap
from pathlib import Path

import pytest

from automations import actions, engine, flow
from automations.actions import ACTIONS
from automations.flow import validate_flow

PACKAGE = Path(actions.__file__).parent
# Fields the engine reads itself rather than the handler.
ENGINE_FIELDS = {"condition": {"then", "else"}, "for_each": {"steps"}}


def fields_read(handler) -> set[str]:
    """The step fields a handler's source reads: step["x"], step.get("x"), "x" in step, and the
    names given to _fields(step, (...))."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "step":
            found.add(node.slice.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            if getattr(node.func.value, "id", None) == "step":
                found.add(node.args[0].value)
        elif isinstance(node, ast.Compare) and getattr(node.comparators[0], "id", None) == "step":
            found.add(node.left.value)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_fields":
            found.update(element.value for element in node.args[1].elts)
    return found


def test_validation_and_engine_read_the_same_table():
    assert flow.ACTIONS is ACTIONS and engine.ACTIONS is ACTIONS
    checked = validate_flow({"steps": [{"action": "nope"}]})
    assert checked.problems == [
        f"steps[0] (action 'nope'): unknown action 'nope'; expected one of: {', '.join(ACTIONS)}."
    ]


@pytest.mark.parametrize("name", ACTIONS)
def test_each_handler_reads_exactly_the_fields_its_action_declares(name):
    action = ACTIONS[name]
    assert fields_read(action.handler) | ENGINE_FIELDS.get(name, set()) == set(action.fields)


@pytest.mark.parametrize("name", ACTIONS)
def test_a_step_with_only_its_required_fields_passes_the_field_checks(name):
    samples = {"if": {"left": "1", "op": "exists"}, "lead": {"fullname": "Ann"}, "status": 200,
               "url": "https://example.com/", "name": "order.paid" if name == "emit_event" else "x",
               "save_as": "out", "items": "{{ payload.items }}", "steps": []}  # fmt: skip
    step = {"action": name, **{field: samples.get(field, "text") for field in ACTIONS[name].required}}
    assert validate_flow({"steps": [step]}).problems == []


def imports_of(path: Path) -> set[str]:
    """Modules of this package that `path` imports, anywhere in the file (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            found.update(name.split(".")[0] for name in names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("automations."):
            found.add(node.module.split(".")[1])
    return found & {path.stem for path in PACKAGE.glob("*.py")}


def test_the_automations_modules_import_each_other_without_a_cycle():
    graph = {path.stem: imports_of(path) for path in PACKAGE.glob("*.py")}

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail, module))
        for imported in graph.get(module, ()):
            visit(imported, (*trail, module))

    for module in graph:
        visit(module, ())
