"""Browser forms calling an automation from another site: `cors_origins` per automation, and a
preflight (`OPTIONS`) answered by the endpoint itself, never by the flow."""

import requests

from automations.models import Run
from support.models import Event

SITE = "https://site.example"
FLOW = [
    {"id": "emit", "action": "emit_event", "name": "form.sent"},
    {"id": "answer", "action": "response", "status": 200, "body": {"ok": True}},
]


def preflight(url: str, origin: str = SITE) -> requests.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    return requests.options(url, headers=headers, timeout=10)


def test_a_preflight_from_an_allowed_origin_is_answered_without_running_the_flow(make_automation, hook):
    automation = make_automation(FLOW, cors_origins=[SITE])
    response = preflight(hook(automation))
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"
    assert not Run.objects.exists() and not Event.objects.exists()


def test_a_preflight_without_cors_origins_gets_no_cross_origin_headers_and_makes_no_run(make_automation, hook):
    automation = make_automation(FLOW)
    response = preflight(hook(automation, dev=True))
    assert response.status_code == 204 and "Access-Control-Allow-Origin" not in response.headers
    assert not Run.objects.exists() and not Event.objects.exists()


def test_the_post_from_an_allowed_origin_carries_the_cross_origin_header(make_automation, hook):
    automation = make_automation(FLOW, cors_origins=[SITE, "https://other.example"])
    response = requests.post(hook(automation), json={}, headers={"Origin": SITE}, timeout=10)
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert response.headers["Access-Control-Allow-Origin"] == SITE and "Origin" in response.headers["Vary"]


def test_an_origin_not_listed_gets_no_cross_origin_header(make_automation, hook):
    automation = make_automation(FLOW, cors_origins=[SITE])
    response = requests.post(hook(automation), json={}, headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_star_allows_every_origin(make_automation, hook):
    automation = make_automation(FLOW, cors_origins=["*"])
    response = requests.post(hook(automation), json={}, headers={"Origin": "https://any.example"}, timeout=10)
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_origins_are_set_through_the_api(api, project):
    url = f"/api/projects/{project.pk}/automations/"
    created = api.post(url, {"name": "Form", "flow": {"steps": FLOW}, "cors_origins": [SITE]}, format="json")
    assert created.status_code == 201 and created.json()["cors_origins"] == [SITE]


def test_an_origin_with_a_path_is_400_on_cors_origins(api, project):
    url = f"/api/projects/{project.pk}/automations/"
    body = {"name": "Form", "flow": {"steps": FLOW}, "cors_origins": ["https://site.example/form"]}
    response = api.post(url, body, format="json")
    assert response.status_code == 400 and "not an origin" in response.json()["cors_origins"][0]
