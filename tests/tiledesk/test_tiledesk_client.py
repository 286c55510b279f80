"""Tiledesk's own Node.js client (`@tiledesk/tiledesk-client`, the version pinned in
tests/tiledesk_client/package.json) signs in, manages subscriptions and calls back as a receiver
does, against the app served by gunicorn with a real worker delivering to a receiver, through
`tests/tiledesk_client/run.js`. Marked `node`: a CI step of its own installs the client (`npm ci`)
and runs it."""

import json
import os
import shutil
import subprocess

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from rest_framework.authtoken.models import Token

from accounts import tokens
from subscriptions.models import Subscription
from support.models import FaqKb
from tests.conftest import REPO, received, wait_for

CLIENT_DIR = REPO / "tests" / "tiledesk_client"

pytestmark = pytest.mark.node


def run_client(
    base: str, user, project, *checks: str, prefix: str = "/v3", token: str = "", **extra_env: str
) -> list[dict]:
    if shutil.which("node") is None or not (CLIENT_DIR / "node_modules" / "@tiledesk" / "tiledesk-client").exists():
        pytest.fail("Install the client first: (cd tests/tiledesk_client && npm ci)")
    env = {
        "PATH": os.environ["PATH"],
        "TILEDESK_API_URL": base + prefix,
        "TILEDESK_EMAIL": user.email,
        "TILEDESK_PASSWORD": "client-pw",
        "TILEDESK_PROJECT_ID": project.pk,
        "TILEDESK_TARGET": "https://hooks.example.com/tiledesk",
    }
    if token:
        env["TILEDESK_TOKEN"] = token
    env.update(extra_env)
    done = subprocess.run(
        ["node", "run.js", *checks], cwd=CLIENT_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stdout + done.stderr
    return lines


@pytest.fixture
def account(owner):
    """The owner with a password the server process can check (the tests' own hasher is MD5, which
    the server does not load)."""
    hasher = PBKDF2PasswordHasher()
    owner.password = hasher.encode("client-pw", hasher.salt(), iterations=1000)
    owner.save()
    return owner


@pytest.mark.parametrize("prefix", ["/v3", ""])
def test_the_client_signs_in_and_manages_subscriptions(start_gunicorn, account, project, prefix):
    base = start_gunicorn()

    report = run_client(base, account, project, "signin", "subscriptions", prefix=prefix)

    assert [line["check"] for line in report] == [
        "signin.wrong_password",
        "signin",
        "client",
        "subscriptions.create",
        "subscriptions.create_again",
        "subscriptions.list",
        "subscriptions.update",
        "subscriptions.history",
        "subscriptions.delete",
    ]
    assert all(line["ok"] for line in report)
    assert report[1]["user"] == str(account.pk)
    created = next(line for line in report if line["check"] == "subscriptions.create")
    assert created["id"]
    assert not Subscription.objects.filter(pk=created["id"]).exists()  # the last check deleted it


def test_the_client_works_with_a_token_it_is_given(start_gunicorn, account, project):
    """TILEDESK_TOKEN: the client made from a JWT obtained elsewhere (here issued by this test)."""
    base = start_gunicorn()
    token = tokens.issue_user_token(account)

    report = run_client(base, account, project, "subscriptions.list", token=token)

    assert [(line["check"], line["ok"]) for line in report] == [
        ("signin", True),
        ("client", True),
        ("subscriptions.list", True),
    ]
    assert report[1]["token"] == "TILEDESK_TOKEN"


CALLBACKS = [
    "callbacks.getAllRequests",
    "callbacks.getRequestById",
    "callbacks.sendSupportMessage",
    "callbacks.updateRequestParticipants",
    "callbacks.fireEvent",
    "callbacks.getLeadById",
    "callbacks.updateLead",
    "callbacks.getAllBots",
    "callbacks.closeRequest",
]
# What the call-backs publish, each delivered once: a message, the participants set, the event, the close.
CALLBACK_EVENTS = ["message.create", "request.update", "event.emit.order.shipped", "request.close"]


@pytest.fixture
def served(start_gunicorn, start_worker, account, project, httpserver):
    """gunicorn and a worker on the test database; a receiver subscribed to what the call-backs
    publish (at /events) and to request.create (at /created); a bot; and `open_conversation()`,
    which creates a conversation through gunicorn and returns it with the envelope that announced it."""
    httpserver.expect_request("/events").respond_with_json({"ok": True})
    httpserver.expect_request("/created").respond_with_json({"ok": True})
    owner_token = Token.objects.get(user=account).key
    base = start_gunicorn()
    start_worker()
    api = requests.Session()
    api.headers["Authorization"] = f"Token {owner_token}"
    for event in CALLBACK_EVENTS:
        answer = api.post(
            f"{base}/api/projects/{project.pk}/subscriptions/",
            json={"event": event, "target": httpserver.url_for("/events")},
        )
        assert answer.status_code == 201, answer.text
    created = api.post(
        f"{base}/api/projects/{project.pk}/subscriptions/",
        json={"event": "request.create", "target": httpserver.url_for("/created")},
    )
    bot = FaqKb.objects.create(project=project, name="Orders bot")

    def open_conversation() -> tuple[dict, dict]:
        answer = api.post(
            f"{base}/api/projects/{project.pk}/requests/",
            json={"first_text": "Where is my order?", "lead": {"fullname": "Ann", "email": "ann@example.com"}},
        )
        assert answer.status_code == 201, answer.text
        conversation = answer.json()
        envelope = wait_for(
            lambda: next(
                (
                    got["json"]
                    for got in received(httpserver, "/created")
                    if got["json"]["payload"]["id"] == conversation["id"]
                ),
                None,
            ),
            timeout=30,
        )
        assert envelope, "the request.create delivery never came"
        return conversation, envelope

    return {"base": base, "bot": bot, "open": open_conversation, "request_create": created.json()}


def delivered_events(httpserver, count: int) -> list[tuple[str, dict]]:
    got = wait_for(
        lambda: len(received(httpserver, "/events")) >= count and received(httpserver, "/events"), timeout=30
    )
    assert got, received(httpserver, "/events")
    return [(row["json"]["hook"]["event"], row["json"]["payload"]) for row in got]


def callback_env(conversation: dict, bot: FaqKb) -> dict:
    return {
        "TILEDESK_REQUEST_ID": conversation["request_id"],
        "TILEDESK_LEAD_ID": conversation["lead"]["id"],
        "TILEDESK_BOT_ID": bot.pk,
    }


def by_check(report: list[dict]) -> dict[str, dict]:
    return {line["check"]: line for line in report}


def assert_the_callbacks_were_delivered(httpserver, report: dict[str, dict], conversation: dict, sender: str) -> None:
    events = delivered_events(httpserver, len(CALLBACK_EVENTS))
    assert sorted(name for name, _ in events) == sorted(CALLBACK_EVENTS)
    payloads = dict(events)
    message = report["callbacks.sendSupportMessage"]
    assert payloads["message.create"]["id"] == message["id"] and payloads["message.create"]["sender"] == sender
    assert payloads["request.update"]["request_id"] == conversation["request_id"]
    assert payloads["request.update"]["participants"] == report["callbacks.updateRequestParticipants"]["participants"]
    assert payloads["event.emit.order.shipped"]["id"] == report["callbacks.fireEvent"]["id"]
    assert payloads["request.close"]["status"] == 1000
    assert [row["text"] for row in payloads["request.close"]["messages"]] == ["Your order left the warehouse today."]


def test_the_client_calls_back_with_a_signed_in_users_token(served, account, project, httpserver):
    """Each call as a teammate makes it: the messages it posts are from the user."""
    conversation, _ = served["open"]()

    report = by_check(
        run_client(served["base"], account, project, "callbacks", **callback_env(conversation, served["bot"]))
    )

    assert list(report) == ["signin", "client", *CALLBACKS] and all(line["ok"] for line in report.values())
    assert report["callbacks.sendSupportMessage"]["sender"] == str(account.pk)
    assert report["callbacks.fireEvent"]["createdBy"] == str(account.pk)
    assert report["callbacks.closeRequest"]["status"] == 1000
    assert_the_callbacks_were_delivered(httpserver, report, conversation, sender=str(account.pk))


def test_the_client_calls_back_with_the_token_of_the_envelope_it_received(served, account, project, httpserver):
    """A receiver of request.create answers with the client made from the envelope's `token`: it acts
    as that subscription (its messages are from the subscription's id), and what it does is
    published like anything else."""
    conversation, envelope = served["open"]()
    subscription_id = served["request_create"]["id"]
    assert envelope["hook"]["id"] == subscription_id

    report = by_check(
        run_client(
            served["base"],
            account,
            project,
            "callbacks",
            token=envelope["token"],
            **callback_env(conversation, served["bot"]),
        )
    )

    assert list(report) == ["signin", "client", *CALLBACKS] and all(line["ok"] for line in report.values())
    assert report["client"]["token"] == "TILEDESK_TOKEN"
    assert report["callbacks.sendSupportMessage"]["sender"] == subscription_id
    assert report["callbacks.fireEvent"]["createdBy"] is None
    assert_the_callbacks_were_delivered(httpserver, report, conversation, sender=subscription_id)
