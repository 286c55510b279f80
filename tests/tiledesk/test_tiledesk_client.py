"""Tiledesk's own Node.js client (`@tiledesk/tiledesk-client`, the version pinned in
tests/tiledesk_client/package.json) signs in and manages subscriptions against the app served by
gunicorn, through `tests/tiledesk_client/run.js`. Marked `node`: a CI step of its own installs the
client (`npm ci`) and runs it."""

import json
import os
import shutil
import subprocess

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from accounts import tokens
from subscriptions.models import Subscription
from tests.conftest import REPO

CLIENT_DIR = REPO / "tests" / "tiledesk_client"

pytestmark = pytest.mark.node


def run_client(base: str, user, project, *checks: str, prefix: str = "/v3", token: str = "") -> list[dict]:
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

    report = run_client(base, account, project, prefix=prefix)

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
