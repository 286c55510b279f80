"""Templates: what they can read, the JSON types they keep, and hostile templates refused or harmless."""

import time

import pytest
import requests

from automations.templating import TemplateProblem, check, render

SCOPE = {
    "payload": {"name": "Ann", "n": 3, "items": [1, 2, 3], "nested": {"a": {"b": True}}, "keys": "k"},
    "query": {"q": "x"},
    "method": "POST",
    "headers": {"x-agent": "curl"},
    "total": 12.5,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ payload.n }}", 3),
        ("{{ payload.items }}", [1, 2, 3]),
        ("{{ payload.nested }}", {"a": {"b": True}}),
        ("{{ payload.nested.a.b }}", True),
        ("{{ total }}", 12.5),
        ("{{ payload.missing }}", None),
        ("{{ payload.missing.deeper }}", None),
        ("{{payload.n+1}}", 4),
        ("n={{ payload.n }}", "n=3"),
        ("{{ payload.name }} & {{ query.q }}", "Ann & x"),
        ("{{ method }} {{ headers['x-agent'] }}", "POST curl"),
        ("{{ payload.items | length }}", 3),
        ("{{ payload.name | upper }}", "ANN"),
        ("{{ payload.missing | default('none') }}", "none"),
        (
            "{{ payload | tojson }}",
            '{"items": [1, 2, 3], "keys": "k", "n": 3, "name": "Ann", "nested": {"a": {"b": true}}}',
        ),
        ("{% if payload.n > 2 %}big{% else %}small{% endif %}", "big"),
        ("{{ payload.keys }}", "k"),  # the key, not dict.keys
        ("{{ payload.items[1] }}", 2),
        ("plain text", "plain text"),
    ],
)
def test_templates_render_with_json_types(template, expected):
    assert render(template, SCOPE) == expected


def test_render_walks_objects_and_lists_keeping_keys_literal():
    value = {"{{ payload.name }}": ["{{ payload.n }}", {"x": "{{ query.q }}"}, 7, None]}
    assert render(value, SCOPE) == {"{{ payload.name }}": [3, {"x": "x"}, 7, None]}


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ payload.__init__.__globals__ }}",
        "{{ payload['__class__'] }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{% include 'admin/base.html' %}",
        "{% extends 'admin/base.html' %}",
        "{% import 'x' as y %}",
        "{{ 'x' | center(10**9) }}",
        "{{ 'x' | format(1) }}",
        "{{ 'x' | attr('__class__') }}",
    ],
)
def test_hostile_templates_are_refused_when_saved(template):
    with pytest.raises(TemplateProblem):
        check(template)


@pytest.mark.parametrize(
    "template",
    [
        "{{ range(10**9) | list }}",
        "{{ 'a' * 10**9 }}",
        "{{ [1] * 10**9 }}",
        "{{ (10 ** 1000) ** 1000 }}",
        "{{ 9 ** 999999 }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ payload.name.format(1) }}",
        "{{ ''['__cla' ~ 'ss__'].__mro__ }}",
        "{{ payload.items.__class__ }}",
        "{{ lipsum(10**6) }}",
        "{{ cycler.__init__ }}",
        "{{ payload.items.append(4) }}",
        "{{ payload.update({'x': 1}) }}",
    ],
)
def test_hostile_templates_fail_fast_without_effect(template):
    started = time.monotonic()
    try:
        result = render(template, SCOPE)
    except TemplateProblem:
        result = "refused"
    assert time.monotonic() - started < 1
    assert result in ("refused", None, "")
    assert SCOPE["payload"]["items"] == [1, 2, 3] and "x" not in SCOPE["payload"]


def test_hostile_template_is_400_on_save_and_harmless_at_run_time(api, project, make_automation, hook):
    steps = [{"action": "response", "status": 200, "body": "{{ ''.__class__.__mro__ }}"}]
    response = api.post(
        f"/api/projects/{project.pk}/automations/", {"name": "x", "flow": {"steps": steps}}, format="json"
    )
    assert response.status_code == 400 and "private" in response.json()["flow"][0]["message"]
    # Built at run time from the payload instead: the sandbox still says no.
    automation = make_automation([{"action": "response", "status": 200, "body": "{{ payload[payload.k] }}"}])
    answer = requests.post(hook(automation), json={"k": "__class__"}, timeout=10)
    assert answer.status_code == 200 and answer.json() is None


def test_huge_output_is_refused():
    big = {"payload": {"s": "x" * 60_000}}
    with pytest.raises(TemplateProblem, match="longer than"):
        render("{{ payload.s ~ payload.s ~ payload.s ~ payload.s }}", big)


BIG = {"payload": {"s": "x" * 100_000, "l": list(range(100_000))}}
DOUBLING = "".join(f"{{% set v{i + 1} = [v{i}, v{i}] %}}" for i in range(40))


@pytest.mark.parametrize(
    "template",
    [
        "{% set v0 = payload.s %}" + DOUBLING + "{{ v40 }}",
        "{% set v0 = payload.s %}" + DOUBLING + "{{ v40 | tojson }}",
        "{% set v0 = payload.s %}" + DOUBLING + "{{ v40 | length ~ v40 }}",
        "{% set v0 = payload.s %}" + DOUBLING + "{{ v40 | string }}",
        "{% set v0 = payload.s %}" + DOUBLING + "{{ v40 | join(',') }}",
        "{% set v0 = 'x' %}" + DOUBLING + "{{ v40 }}",
        "{{ range(1000) | join(payload.s) }}",
        "{{ " + " ~ ".join(["payload.s"] * 100) + " }}",
        "{{ " + " + ".join(["payload.l"] * 100) + " }}",
        "{{ ([payload.s] * 1000) | tojson }}",
        "{{ [payload.s] * 1000 }}",
        "{{ [[payload.l] * 30] | sum(start=[]) }}",
        "{{ {'a': payload.s, 'b': payload.s, 'c': payload.s} | dictsort | list | string ~ payload.s * 0 }}",
    ],
)
def test_values_that_would_blow_up_when_written_out_are_refused_fast(template):
    started = time.monotonic()
    with pytest.raises(TemplateProblem):
        render(template, BIG)
    assert time.monotonic() - started < 2


def test_doubling_a_variable_step_after_step_fails_the_run_quickly(make_automation, hook):
    steps = [{"action": "set", "name": "v", "value": "{{ payload.s }}"}]
    steps += [{"action": "set", "name": "v", "value": ["{{ v }}", "{{ v }}"]} for _ in range(40)]
    automation = make_automation([*steps, {"action": "response", "status": 200, "body": "{{ v }}"}])
    started = time.monotonic()
    response = requests.post(hook(automation, dev=True), json={"s": "x" * 100_000}, timeout=30)
    assert response.status_code == 502 and "larger than" in response.json()["detail"]
    assert time.monotonic() - started < 10
