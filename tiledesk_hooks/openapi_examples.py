"""The examples the OpenAPI document shows, by component name. Resources come from the event
catalog (`subscriptions.events`), whose example payloads are the resources exactly as their API
serializes them, so the docs and the webhooks show the same shapes and there is one place to keep
them right."""

from copy import deepcopy

from subscriptions import events

_STAMP = {"createdAt": "2026-11-23T10:00:00.000000Z", "updatedAt": "2026-11-23T10:00:00.000000Z"}
_PID = "6553a1f0aaaabbbbccccdddd"
_SUB_ID = "6553a1f0aaaa999988887777"
_DELIVERY_ID = "6553a1f0aaaa555544443333"


def _catalog(name: str) -> dict:
    return deepcopy(events.example_payload(name))


def _attempt() -> dict:
    return {
        "id": "6553a1f0aaaa222211110000",
        "delivery": _DELIVERY_ID,
        "subscription": _SUB_ID,
        "event": "request.create",
        "attempt": 1,
        "target": "https://hooks.example.com/tiledesk",
        "request_headers": {"Content-Type": "application/json", "x-hook-secret": "[redacted]"},
        "request_body": '{"hook":{...},"timestamp":1795432800000,"payload":{...},"token":"[redacted]"}',
        "status_code": 200,
        "response_headers": {"Content-Type": "application/json"},
        "response_body": '{"ok":true}',
        "error": "",
        "duration_ms": 42,
        "outcome": "success",
        "createdAt": "2026-11-23T10:00:01.000000Z",
    }


def examples() -> dict[str, object]:
    """Response examples by component name (request bodies are derived from them)."""
    subscription = {
        "_id": _SUB_ID,
        "id": _SUB_ID,
        "id_project": _PID,
        "event": "request.create",
        "events": ["request.create", "message.*"],
        "filter": {"department.name": "Sales", "channel.name": {"$in": ["whatsapp", "telegram"]}},
        "headers": {"X-Api-Key": "••••••••"},
        "auth": {"type": "bearer", "token": "••••••••"},
        "target": "https://hooks.example.com/tiledesk",
        "enabled": True,
        "disabled_reason": "",
        "secret": "whsec_••••a1b2",
        "createdBy": "2",
        "__v": 0,
        **_STAMP,
    }
    delivery = {
        "_id": _DELIVERY_ID,
        "id": _DELIVERY_ID,
        "id_project": _PID,
        "subscription": _SUB_ID,
        "event": "request.create",
        "status": "success",
        "sequence": 42,
        "attempt_count": 1,
        "next_attempt_at": None,
        "last_error": "",
        "decision": "",
        "timestamp": 1795432800000,
        "attempts": [_attempt()],
        **_STAMP,
    }
    automation_id = "6553a1f0aaaa111122223333"
    automation = {
        "_id": automation_id,
        "id": automation_id,
        "id_project": _PID,
        "name": "Greet new leads",
        "enabled": True,
        "flow": {
            "steps": [
                {"action": "set", "name": "who", "value": "{{ payload.name }}"},
                {"action": "response", "status": 200, "body": {"hello": "{{ who }}"}},
            ]
        },
        "webhook_id": "Jx4k2n8QpT0cW1vZy7rA9sLm3bXe5dFh",
        "production_url": "https://hooks.example.com/webhook/Jx4k2n8QpT0cW1vZy7rA9sLm3bXe5dFh",
        "development_url": "https://hooks.example.com/webhook/Jx4k2n8QpT0cW1vZy7rA9sLm3bXe5dFh/dev",
        "debug_url": "https://hooks.example.com/automations/6553a1f0aaaa111122223333/debug/",
        "createdBy": "2",
        **_STAMP,
    }
    run = {
        "_id": "6553a1f0aaaa444455556666",
        "id": "6553a1f0aaaa444455556666",
        "id_project": _PID,
        "automation": automation_id,
        "mode": "production",
        "status": "succeeded",
        "method": "POST",
        "query": {},
        "headers": {"content-type": "application/json"},
        "content_type": "application/json",
        "body": '{"name": "Ann"}',
        "body_truncated": False,
        "error": "",
        "response": {"status": 200, "headers": {}, "body": {"hello": "Ann"}},
        "trace": [{"id": "step-1", "action": "set", "output": "Ann", "error": "", "duration_ms": 0}],
        "finished_at": "2026-11-23T10:00:00.012000Z",
        "duration_ms": 12,
        **_STAMP,
    }
    project = {"_id": _PID, "id": _PID, "name": "Acme support", "createdBy": "2", "role": "owner", **_STAMP}
    return {
        "Project": project,
        "Subscription": subscription,
        "Delivery": delivery,
        "Attempt": _attempt(),
        "Request": _catalog("request.create"),
        "Message": _catalog("message.create"),
        "Lead": _catalog("lead.create"),
        "Faq": _catalog("faq.create"),
        "FaqKb": _catalog("faqbot.create"),
        "Department": _catalog("department.create"),
        "Group": _catalog("group.create"),
        "ProjectUser": _catalog("project_user.invite"),
        "Event": _catalog("event.emit"),
        "EventType": {
            "name": "request.create",
            "description": "A conversation was created.",
            "payload": "request",
            "example": _catalog("request.create"),
        },
        "SubscriptionSecret": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7wQ0xz1HfXU="},
        "Secret": {
            "_id": "6553a1f0abcd0000aaaa0001",
            "id": "6553a1f0abcd0000aaaa0001",
            "createdAt": "2026-11-23T10:00:00.000000Z",
            "updatedAt": "2026-11-23T10:00:00.000000Z",
            "id_project": "6553a1f0abcd000000000001",
            "name": "CRM_TOKEN",
        },
        "SecretRequest": {"name": "CRM_TOKEN", "value": "crm-api-token-value"},
        "AcceptedDelivery": {
            "id": _DELIVERY_ID,
            "status": "pending",
            "event": "request.create",
            "filter_matches": True,
        },
        "SubscriptionStats": {
            "subscription": _SUB_ID,
            "enabled": True,
            "at": "2026-11-23T10:00:00.000000Z",
            "windows": {
                name: {
                    "deliveries": {"pending": 0, "success": n, "failed": f, "skipped": 0},
                    "attempts": {"success": n, "failed": f * 9},
                    "latency_ms": {"p50": 41, "p95": 180},
                }
                for name, n, f in (("hour", 12, 0), ("day", 310, 1), ("week", 2140, 3))
            },
            "last_success": {
                "at": "2026-11-23T09:59:12.000000Z",
                "status_code": 200,
                "error": "",
                "duration_ms": 38,
                "delivery": _DELIVERY_ID,
            },
            "last_failure": {
                "at": "2026-11-22T17:03:40.000000Z",
                "status_code": 503,
                "error": "",
                "duration_ms": 212,
                "delivery": "6553a1f0aaaa111100009999",
            },
        },
        "ReplayMissing": {"since": "2026-11-23T00:00:00Z", "until": "2026-11-24T00:00:00Z"},
        "ReplayMissingResult": {"count": 1, "deliveries": [_DELIVERY_ID]},
        "Recover": {"since": "2026-11-23T00:00:00Z"},
        "RecoverResult": {
            "subscription": _SUB_ID,
            "since": "2026-11-23T00:00:00.000000Z",
            "count": 1,
            "deliveries": [_DELIVERY_ID],
        },
        "Participants": {"participants": ["2", "bot_6553a1f0ffff000011112222"]},
        "Error": {"detail": "Not found."},
        "Signin": {"email": "ann@example.com", "password": "correct horse battery staple"},
        "SigninAnswer": {
            "success": True,
            "token": "JWT eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJfaWQiOiIyIiwic3ViIjoidXNlciJ9.c2lnbmF0dXJl",
            "user": {"_id": "2", "id": "2", "email": "ann@example.com", "firstname": "Ann", "lastname": "Smith"},
        },
        "TiledeskError": {"success": False, "msg": "Authentication failed: wrong e-mail or password."},
        "Automation": automation,
        "Run": run,
        "ProjectSecret": {
            "_id": "6553a1f0aaaa777788889999",
            "id": "6553a1f0aaaa777788889999",
            "id_project": _PID,
            "name": "CRM_TOKEN",
            "createdAt": "2026-11-23T10:00:00.000000Z",
            "updatedAt": "2026-11-23T10:00:00.000000Z",
        },
        "ProjectSecretRequest": {"name": "CRM_TOKEN", "value": "crm-token-5f2a9c7e (write-only)"},
        "Replay": {"mode": "development"},
        "TestCall": {"method": "POST", "headers": {"X-Api-Key": "demo"}, "body": {"name": "Ann", "n": 3}},
        "FlowCheck": {"flow": {"steps": [{"id": "greet", "action": "log"}]}},
        "FlowCheckResult": {
            "errors": [{"path": "steps[0]", "step_id": "greet", "message": "missing field 'message'."}],
            "warnings": [],
        },
    }
