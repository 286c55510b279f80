"""Hostile templates against the run's bounds: a run ends within AUTOMATION_MAX_RUNTIME_S plus one
second whatever its templates do (504 and `timed_out` when time is what stopped it), and neither a
render nor a run takes more than a bounded amount of memory (automations/limits.py)."""

import time
import tracemalloc

import pytest
import requests

from automations import limits
from automations.context import VARIABLES_BYTES, Inbound
from automations.engine import Execution
from automations.models import Run
from automations.templating import TemplateProblem, check, render

from .conftest import finished_run

RUNTIME_S = 1.0
MB = 1024 * 1024
# What one render may allocate at most: its budget, and one operation's growth on the way to a result.
RENDER_PEAK = limits.RENDER_BUDGET + limits.MAX_GROWTH


def grown(text: str, length: int, name: str) -> str:
    """A template setting `name` to `text` repeated to about `length` characters (`*` stops at
    100,000 characters, `~` goes on to 2.5 million)."""
    repeat = 99_999 // len(text)
    parts = max(1, length // (repeat * len(text)))
    return f'{{% set unit = "{text}" * {repeat} %}}{{% set {name} = ' + " ~ ".join(["unit"] * parts) + " %}"


BIG_TEXT = grown("ab,", 2_400_000, "b")
HOSTILE = {
    # The chain of the incident: split, sort and join over and over, growing.
    "split_sort_join": '{% set a = "ab," * 33000 %}'
    + '{% set c = a.split(",") | sort | join(",") %}{% set a = (c ~ c).split(",") | sort | join(",") %}' * 40
    + "{{ a | length }}",
    "split_a_huge_text_twice": BIG_TEXT + '{% set c = b.split(",") %}{% set d = b.split(",") %}{{ c | length }}',
    "string_multiplication": '{{ ("x" * 99999) * 99999 }}',
    "string_growth": grown("x", 2_000_000, "s") + "{% set t = s ~ s %}{{ t | length }}",
    "wide_string_case_changes": grown("€", 2_400_000, "s")
    + "{% set u = s | upper %}{% set l = s | lower %}{% set t = s.title() %}{{ 1 }}",
    "escaping_growth": grown("<&>", 2_400_000, "s") + "{% set a = s | e %}{% set b = s | e %}" * 2 + "{{ 1 }}",
    "nested_list_growth": '{% set a = ["xxxxxxxxxx"] %}' + "{% set a = [a, a] %}" * 40 + "{{ a | length }}",
    "list_of_wide_characters": '{% set s = "€" * 99999 %}'
    + "{% set l1 = s | list %}{% set l2 = s | list %}{% set l3 = l1 | sort %}{% set l4 = l2 | sort %}" * 4
    + "{{ 1 }}",
    "huge_range": "{{ range(10 ** 9) | list | length }}",
    "shared_parts_written_out": '{% set a = ["x" * 1000] * 1000 %}{% set b = [a, a, a, a, a] %}'
    + "{% set c = [b, b, b, b, b] %}{{ c | tojson | length }}",
    "deep_recursion_through_filters": "{% set a = [1] %}"
    + "{% set a = [[[[[[[[[[a]]]]]]]]]] %}" * 150
    + "{{ a | tojson }}",
    "deep_nesting_of_values": "{% set a = [1] %}" + "{% set a = [a] %}" * 1000 + "{{ a }}",
}


def peak_bytes(work) -> int:
    tracemalloc.start()
    try:
        work()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def outcome(template: str) -> str:
    try:
        render(template, {"payload": {}}, deadline=time.monotonic() + 30)
    except TemplateProblem as exc:
        return f"refused: {exc}"
    return "rendered"


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_template_stays_within_the_render_memory_bound(name):
    results = []
    peak = peak_bytes(lambda: results.append(outcome(HOSTILE[name])))
    assert peak < RENDER_PEAK, f"{name}: {peak / MB:.1f} MB ({results})"


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_template_ends_the_run_within_its_runtime(name, make_automation, hook, settings):
    settings.AUTOMATION_MAX_RUNTIME_S = RUNTIME_S
    automation = make_automation(
        [{"action": "set", "name": "x", "value": HOSTILE[name]}, {"action": "response", "status": 200, "body": 1}]
    )
    started = time.monotonic()
    response = requests.post(hook(automation), json={}, timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < RUNTIME_S + 1, f"{name}: {elapsed:.1f} s"
    run = finished_run(automation)
    expected = {504: "timed_out", 502: "failed", 200: "succeeded"}
    assert expected[response.status_code] == run.status, run.error


def test_a_template_that_only_burns_cpu_is_stopped_at_the_deadline_with_504(make_automation, hook, settings):
    settings.AUTOMATION_MAX_RUNTIME_S = RUNTIME_S
    burn = grown("ab ", 2_400_000, "s") + "{% set n = s | wordcount %}" * 700 + "{{ n }}"
    automation = make_automation(
        [{"action": "set", "name": "n", "value": burn}, {"action": "response", "status": 200, "body": "{{ n }}"}]
    )
    started = time.monotonic()
    response = requests.post(hook(automation), json={}, timeout=120)
    assert time.monotonic() - started < RUNTIME_S + 1
    assert response.status_code == 504 and response.json()["run_id"]
    run = finished_run(automation)
    assert run.status == "timed_out" and "AUTOMATION_MAX_RUNTIME_S" in run.error
    assert run.trace[0]["id"] == "set_1" and "AUTOMATION_MAX_RUNTIME_S" in run.trace[0]["error"]


def test_a_deadline_in_the_past_stops_a_render_at_its_first_operation():
    with pytest.raises(limits.RenderTimedOut):
        render("{{ payload.name }}", {"payload": {"name": "Ann"}}, deadline=time.monotonic() - 1)


def test_a_run_filling_its_variables_fails_before_taking_much_memory(make_automation, project):
    distinct = ", ".join(f'"€" * 99999 ~ {i}' for i in range(10))
    step = {"action": "set", "value": "{{ [" + distinct + "] }}"}
    automation = make_automation([{**step, "name": f"v{i}"} for i in range(20)])
    run = Run.objects.create(automation=automation, project=project, method="POST")
    execution = Execution(run, automation, Inbound(method="POST", payload={"n": 1}))
    peak = peak_bytes(execution.run_to_end)
    run.refresh_from_db()
    assert run.status == "failed" and "the run's variables would" in run.error
    assert peak < VARIABLES_BYTES + RENDER_PEAK, f"{peak / MB:.1f} MB"


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
        "{{ 1" + " | string" * 2000 + " }}",
        "{{ [1] " + '| map("list") ' * 400 + "| list }}",
        "{% if 1 %}" * 400 + "{% endif %}" * 400,
    ],
)
def test_templates_nested_beyond_what_python_compiles_are_refused_at_save(template, api, project):
    with pytest.raises(TemplateProblem, match="nested too deeply"):
        check(template)
    flow = {"steps": [{"action": "set", "name": "x", "value": template}]}
    response = api.post(f"/api/projects/{project.pk}/automations/", {"name": "x", "flow": flow}, format="json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["flow"][0]["message"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{ "a,b,c".split(",") }}', ["a", "b", "c"]),
        ('{{ "a b  c".split() }}', ["a", "b", "c"]),
        ('{{ "a,b,c".split(",", 1) }}', ["a", "b,c"]),
        ("{{ payload.text.split() | length }}", 50_000),
        ("{{ payload.items | sort | first }}", 0),
        ("{{ payload | tojson | length > 100000 }}", True),
        ("{{ payload.text | upper | length }}", 100_000),
        ("{{ [payload.items, payload.items] | length }}", 2),
        ("{{ range(1000) | map('string') | join(',') | length }}", 3889),
    ],
)
def test_ordinary_templates_over_a_large_payload_still_work(template, expected):
    payload = {"text": "a " * 50_000, "items": list(range(50_000, 0, -1)) + [0]}
    assert render(template, {"payload": payload}) == expected
