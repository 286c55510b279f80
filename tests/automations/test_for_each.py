"""`for_each`: the body once per item, with the run's variables (a sum made in the loop is read
after it), each iteration traced, bounded by AUTOMATION_MAX_ITEMS and AUTOMATION_MAX_STEPS."""

import requests

from tests.conftest import received

from .conftest import finished_run

ORDER = {"items": [{"sku": "a", "qty": 2, "price": 5}, {"sku": "b", "qty": 1, "price": 7.5}]}
SUM = [
    {"id": "start", "action": "set", "name": "total", "value": 0},
    {
        "id": "each",
        "action": "for_each",
        "items": "{{ payload.items }}",
        "as": "item",
        "steps": [{"id": "add", "action": "set", "name": "total", "value": "{{ total + item.qty * item.price }}"}],
    },
    {"id": "answer", "action": "response", "status": 200, "body": {"total": "{{ total }}", "last": "{{ item.sku }}"}},
]


def test_a_set_in_the_body_changes_the_variable_read_after_the_loop(make_automation, hook):
    automation = make_automation(SUM)
    response = requests.post(hook(automation), json=ORDER, timeout=10)
    assert response.status_code == 200 and response.json() == {"total": 17.5, "last": "b"}


def test_each_iteration_is_traced_with_its_index(make_automation, hook):
    automation = make_automation(SUM)
    requests.post(hook(automation), json=ORDER, timeout=10)
    trace = finished_run(automation).trace
    assert [(entry["id"], entry.get("iteration")) for entry in trace] == [
        ("start", None),
        ("each", None),
        ("add", [0]),
        ("add", [1]),
        ("answer", None),
    ]
    assert trace[1]["output"] == 2 and trace[3]["variables"]["total"] == 17.5


def test_an_http_request_per_item_reaches_the_receiver(make_automation, hook, httpserver):
    httpserver.expect_request("/stock", method="POST").respond_with_data("ok")
    automation = make_automation(
        [
            {
                "id": "each",
                "action": "for_each",
                "items": "{{ payload.items }}",
                "as": "item",
                "steps": [
                    {
                        "id": "notify",
                        "action": "http_request",
                        "method": "POST",
                        "url": httpserver.url_for("/stock"),
                        "body": {"sku": "{{ item.sku }}"},
                        "save_as": "sent",
                    }
                ],
            }
        ]
    )
    requests.post(hook(automation), json=ORDER, timeout=10)
    assert finished_run(automation).status == "succeeded"
    assert [call["json"] for call in received(httpserver)] == [{"sku": "a"}, {"sku": "b"}]


def test_more_items_than_automation_max_items_fails_the_run(make_automation, hook, settings):
    settings.AUTOMATION_MAX_ITEMS = 3
    automation = make_automation(SUM)
    order = {"items": [{"sku": str(i), "qty": 1, "price": 1} for i in range(4)]}
    response = requests.post(hook(automation, dev=True), json=order, timeout=10)
    assert response.status_code == 502 and "AUTOMATION_MAX_ITEMS is 3" in response.json()["detail"]


def test_the_steps_of_every_iteration_count_toward_automation_max_steps(make_automation, hook, settings):
    settings.AUTOMATION_MAX_STEPS = 5
    automation = make_automation(SUM)
    order = {"items": [{"sku": str(i), "qty": 1, "price": 1} for i in range(10)]}
    response = requests.post(hook(automation), json=order, timeout=10)
    run = finished_run(automation)
    assert response.status_code == 502 and "AUTOMATION_MAX_STEPS" in run.error


def test_a_full_loop_fits_the_default_bounds(make_automation, hook, settings):
    assert settings.AUTOMATION_MAX_STEPS == 5000 and settings.AUTOMATION_MAX_ITEMS == 1000
    automation = make_automation(SUM)
    order = {"items": [{"sku": str(i), "qty": 1, "price": 1} for i in range(1000)]}
    response = requests.post(hook(automation), json=order, timeout=30)
    assert response.status_code == 200 and response.json()["total"] == 1000
    trace = finished_run(automation).trace
    assert trace[-1]["id"] == "untraced" and "more steps ran" in trace[-1]["output"]


def test_a_response_in_the_body_answers_once_and_the_loop_goes_on(make_automation, hook):
    automation = make_automation(
        [
            {
                "id": "each",
                "action": "for_each",
                "items": [1, 2, 3],
                "as": "n",
                "steps": [{"id": "answer", "action": "response", "status": 200, "body": {"n": "{{ n }}"}}],
            },
            {"id": "after", "action": "log", "message": "done at {{ n }}"},
        ]
    )
    assert requests.post(hook(automation), json={}, timeout=10).json() == {"n": 1}
    assert finished_run(automation).trace[-1]["output"] == "done at 3"


def test_items_that_are_not_a_list_fail_the_step(make_automation, hook):
    automation = make_automation([{"action": "for_each", "items": "{{ payload.x }}", "as": "i", "steps": []}])
    requests.post(hook(automation), json={"x": {"a": 1}}, timeout=10)
    assert "'items' must be a list" in finished_run(automation).error


def test_a_reserved_name_or_literal_text_as_items_is_400(api, project):
    url = f"/api/projects/{project.pk}/automations/"
    bad_as = {"steps": [{"action": "for_each", "items": "{{ payload.x }}", "as": "payload", "steps": []}]}
    bad_items = {"steps": [{"action": "for_each", "items": "payload.x", "as": "x", "steps": []}]}
    for flow, fragment in ((bad_as, "reserved"), (bad_items, "'items' must be a list or a template")):
        response = api.post(url, {"name": "Loop", "flow": flow}, format="json")
        assert response.status_code == 400 and fragment in response.json()["flow"][0]["message"]


def test_a_bad_step_in_the_body_is_named_by_its_path(api, project):
    flow = {"steps": [{"action": "for_each", "items": [1], "as": "x", "steps": [{"id": "bad", "action": "log"}]}]}
    errors = api.post(f"/api/projects/{project.pk}/automations/validate/", {"flow": flow}, format="json").json()[
        "errors"
    ]
    assert errors == [{"path": "steps[0].steps[0]", "step_id": "bad", "message": "missing field 'message'."}]
