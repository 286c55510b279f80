"""The event catalog (GET /api/events/): every name a subscription may use, with an example payload
that has the very keys and types its serializer gives a real object."""

import json
from datetime import timedelta

import pytest

from automations.failures import failed_run_payload
from automations.models import Automation
from subscriptions import events, operational
from subscriptions.operator_select import build_payload
from subscriptions.signals import payload_of, project_payload
from support import conversation_serializers, routing, serializers
from support.models import Department, Event, Faq, FaqKb, Group, Lead, Message, ProjectUser, Request
from tests.factories import failed_delivery, logged_attempt, subscription


def test_event_catalog_is_public_json_array(client, db):
    response = client.get("/api/events/")
    assert response.status_code == 200
    names = [event["name"] for event in response.json()]
    assert "request.create" in names and "operator.select" in names


def json_shape(value):
    """Keys and JSON types, all the way down; a list by its first item (a list's items are alike)."""
    if isinstance(value, dict):
        return {key: json_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture
def real_payloads(api, client, project, owner, add_member) -> dict[str, dict]:
    """One real object of each kind, in the situation its catalog example shows (a conversation of
    the Sales department assigned to an agent, a teammate with no chat limit...), serialized as
    each event publishes it, by catalog payload kind."""
    bob, carol = add_member("bob"), add_member("carol")
    group = Group.objects.create(project=project, name="Tier 1", members=[str(bob.pk), str(carol.pk)])
    sales = Department.objects.create(project=project, name="Sales", routing="assigned", group=group, default=True)
    bot = FaqKb.objects.create(project=project, name="Orders bot", description="Answers order questions")
    faq = Faq.objects.create(project=project, faq_kb=bot, question="Where?", answer="Here.")
    created = api.post(
        f"/api/projects/{project.pk}/requests/",
        {"first_text": "Hi", "lead": {"fullname": "Ann", "email": "ann@example.com"}, "sourcePage": "https://x.io"},
        format="json",
    ).json()
    conversation = Request.objects.get(pk=created["id"])
    message = Message.objects.create(project=project, request=conversation, sender=str(bob.pk), text="Hello")
    event = Event.objects.create(project=project, name="typing.start", attributes={"text": "Hel"}, created_by=bob)
    closed = Request.objects.get(pk=created["id"])
    closed.status, closed.closed_at = Request.Status.CLOSED, closed.updated_at
    unrouted = Request.objects.create(
        project=project, lead=conversation.lead, first_text="Hi", request_id="r-new", department=sales
    )
    stopped = subscription(project, enabled=False, disabled_reason="The target answered 410 Gone.", created_by=owner)
    last_attempt = logged_attempt(
        failed_delivery(stopped, timedelta(minutes=1)),
        status_code=410,
        duration_ms=42,
        error="subscription disabled: The target answered 410 Gone.",
        response_body="Gone",
        response_headers={"Content-Type": "text/plain"},
        request_headers={
            name: "x"
            for name in (
                "Content-Type",
                "User-Agent",
                "x-hook-id",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "x-hook-secret",
            )
        },
    )
    failing = Automation.objects.create(
        project=project,
        name="Inbound lead",
        flow={"steps": [{"id": "create", "action": "create_request", "lead": {"fullname": "Ann"}}]},
        created_by=owner,
    )
    assert client.post(f"/webhook/{failing.webhook_id}", {}, content_type="application/json").status_code == 200
    failed_run = failing.runs.get(status="failed")  # fire-and-forget: it failed after the answer
    return {
        "automation_run": failed_run_payload(failed_run, failing),
        "subscription_disabled": operational.disabled_payload(stopped, stopped.disabled_reason, last_attempt),
        "subscription_enabled": operational.enabled_payload(stopped),
        "request": payload_of(conversation_serializers.RequestSerializer, conversation),
        "request.close": payload_of(conversation_serializers.ClosedRequestSerializer, closed),
        "message": payload_of(conversation_serializers.MessageSerializer, message),
        "lead": payload_of(serializers.LeadSerializer, Lead.objects.get(pk=conversation.lead_id)),
        "faq": payload_of(serializers.FaqSerializer, faq),
        "faq_kb": payload_of(serializers.FaqKbSerializer, bot),
        "department": payload_of(serializers.DepartmentSerializer, sales),
        "project_user": payload_of(serializers.ProjectUserSerializer, ProjectUser.objects.get(user=carol)),
        "group": payload_of(serializers.GroupSerializer, group),
        "event": payload_of(conversation_serializers.EventSerializer, event),
        "project": project_payload(project),
        "operator_selection": json.loads(
            json.dumps(build_payload(routing.build_question(project.pk, sales, unrouted)))
        ),
    }


def test_every_catalog_example_has_the_keys_and_types_of_a_real_payload(client, real_payloads):
    rows = client.get("/api/events/").json()
    different = {}
    for row in rows:
        kind = "request.close" if row["name"] == "request.close" else row["payload"]
        if json_shape(row["example"]) != json_shape(real_payloads[kind]):
            different[row["name"]] = (json_shape(row["example"]), json_shape(real_payloads[kind]))
    assert different == {}


def test_a_channel_example_names_its_channel_on_the_message_and_its_request():
    example = events.example_payload("message.create.request.channel.telegram")
    assert example["channel"] == example["request"]["channel"] == {"name": "telegram"}
