"""The OpenAPI document is what integrators and the fuzzer read: it must be valid OpenAPI 3, cover
every URL under /api/, give every operation its bodies and an example, and the docs pages must load
their assets from this app (these machines have no internet)."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

from subscriptions import events

# Not operations of the API: the docs themselves, and DRF's browsable index of links (DRF marks it
# `schema = None`).
NOT_OPERATIONS = {"/api/schema/", "/api/docs/", "/api/redoc/", "/api/"}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    """The document as /api/schema/ serves it, generated once for these tests (it reads no rows)."""
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def api_url_patterns() -> set[str]:
    """Every Django URL pattern under /api/, written as an OpenAPI path (`{name}` parameters)."""

    def walk(patterns, prefix: str):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                yield route

    found = set()
    for route in walk(get_resolver().url_patterns, ""):
        if "format>" in route or not route.startswith("api/"):
            continue  # DRF's `.json` suffix variants are the same operations
        path = route.replace("^", "").replace("$", "")
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
        found.add("/" + path.replace("{pk}", "{id}"))  # drf-spectacular names a `pk` lookup `id`
    return found


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_every_api_url_pattern_is_in_the_schema(schema):
    patterns = api_url_patterns()
    assert "/api/projects/{project_id}/subscriptions/{id}/test/" in patterns  # the walk sees the router's routes
    assert patterns - NOT_OPERATIONS - set(schema["paths"]) == set()


def test_every_operation_has_response_schemas_with_an_example(schema):
    components = schema["components"]["schemas"]

    def has_example(content: dict) -> bool:
        if "example" in content or "examples" in content:
            return True
        ref = content["schema"].get("$ref") or content["schema"].get("items", {}).get("$ref")
        return bool(ref) and "example" in components[ref.rsplit("/", 1)[1]]

    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code == "204":
                    continue
                content = response.get("content", {}).get("application/json")
                if content is None or not has_example(content):
                    missing.append(f"{method.upper()} {path} {code}")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and not has_example(body):
                missing.append(f"{method.upper()} {path} request body")
    assert missing == []


def test_operations_document_the_contract_errors(schema):
    create = schema["paths"]["/api/projects/{project_id}/subscriptions/"]["post"]["responses"]
    assert {"201", "400", "401", "403", "404"} <= set(create)


def test_event_catalog_documents_an_example_payload_per_event(schema):
    content = schema["paths"]["/api/events/"]["get"]["responses"]["200"]["content"]["application/json"]
    examples = {row["name"]: row["example"] for row in content["example"]}
    assert examples["request.create"]["first_text"]
    assert examples["message.create.request.channel.<channel>"]["channel"] == {"name": "chat21"}


def test_event_catalog_api_gives_an_example_payload_per_event(client, db):
    rows = client.get("/api/events/").json()
    assert all(isinstance(row["example"], dict) and row["example"] for row in rows)


def test_subscription_actions_document_their_bodies(schema):
    recover = schema["paths"]["/api/projects/{project_id}/subscriptions/{id}/recover/"]["post"]
    assert recover["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecoverRequest")
    assert "202" in recover["responses"]
    test = schema["paths"]["/api/projects/{project_id}/subscriptions/{id}/test/"]["post"]
    assert "requestBody" not in test and "202" in test["responses"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_every_asset_from_this_app(client, db, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    for source in sources:
        assert not source.startswith(("http://", "https://", "//")), source
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source


def test_schema_generation_has_no_warnings(db, tmp_path):
    """A warning means drf-spectacular guessed (an untyped field, an unknown body): annotate instead."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_schema_pattern_for_event_names_matches_the_catalog_rule(schema):
    pattern = schema["components"]["schemas"]["SubscriptionRequest"]["properties"]["event"]["pattern"]
    names = ["request.create", "operator.select", "message.create.request.channel.telegram", "event.emit.typing.start"]
    for name in names + ["request.nope", "event.emit.", "message.create.request.channel.a b"]:
        assert bool(re.match(pattern, name)) == events.is_valid_event_name(name), name
