"""Typed events: each catalog entry carries the JSON Schema of its payload (draft 2020-12,
standalone, generated from the serializers), every example validates against it, and the OpenAPI
document describes every event in its `webhooks`."""

import json

import jsonschema
import pytest
from django.core.management import call_command

from subscriptions import events


@pytest.fixture(scope="module")
def catalog(django_db_blocker) -> list[dict]:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        return APIClient().get("/api/events/").json()


def test_every_catalog_entry_has_a_standalone_draft_2020_12_schema(catalog):
    for row in catalog:
        schema = row["schema"]
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", row["name"]
        assert "$ref" not in json.dumps(schema), row["name"]
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_example_validates_against_its_schema(catalog):
    invalid = {}
    for row in catalog:
        errors = list(jsonschema.Draft202012Validator(row["schema"]).iter_errors(row["example"]))
        if errors:
            invalid[row["name"]] = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:3]]
    assert invalid == {}


def test_a_schema_is_not_satisfied_by_any_object(catalog):
    request_schema = next(row["schema"] for row in catalog if row["name"] == "request.create")
    wrong = {**next(row["example"] for row in catalog if row["name"] == "request.create"), "status": "open"}
    assert not jsonschema.Draft202012Validator(request_schema).is_valid(wrong)


def test_the_openapi_document_describes_every_event_as_a_webhook(db, tmp_path):
    path = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(path))
    document = json.loads(path.read_text())

    assert document["openapi"].startswith("3.1")
    assert set(document["webhooks"]) == {event.name for event in events.CATALOG}
    body = document["webhooks"]["request.create"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    envelope = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert {"hook", "timestamp", "payload", "token", "sequence"} <= set(envelope["properties"])
