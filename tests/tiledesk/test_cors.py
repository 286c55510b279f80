"""CORS for browser dashboards on /api/, /auth/ and Tiledesk's paths, from `CORS_ALLOWED_ORIGINS`
(none by default). Tiledesk's server allows every origin on every path (app.js:393-394, `cors()`);
here only the listed ones, and never on /webhook/..., where each automation decides."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

DASHBOARD = "https://dash.example.com"


@pytest.fixture
def allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [DASHBOARD]
    settings.CORS_ALLOW_ALL_ORIGINS = False
    return settings


def preflight(client, path: str, origin: str = DASHBOARD, method: str = "POST"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


def paths(project) -> list[str]:
    return [
        "/api/projects/",
        f"/api/projects/{project.pk}/subscriptions/",
        "/auth/signin",
        "/v3/auth/signin",
        f"/{project.pk}/subscriptions",
        f"/v3/{project.pk}/subscriptions",
        f"/{project.pk}/subscriptions/history",
    ]


def test_preflights_from_a_listed_origin_are_answered_on_every_covered_path(client, project, allowed):
    for path in paths(project):
        response = preflight(client, path)
        assert response.status_code == 200, path
        assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD, path
        assert "authorization" in response.headers["Access-Control-Allow-Headers"], path
        assert "POST" in response.headers["Access-Control-Allow-Methods"], path


def test_a_real_call_from_a_listed_origin_may_read_the_answer_and_the_secret_header(client, project, owner, allowed):
    response = client.get(
        f"/{project.pk}/subscriptions", HTTP_ORIGIN=DASHBOARD, HTTP_AUTHORIZATION=f"Token {owner.auth_token.key}"
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert "x-hook-secret" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers  # no cookies: tokens only


def test_other_origins_get_no_cors_answer(client, project, allowed):
    for path in paths(project):
        assert "Access-Control-Allow-Origin" not in preflight(client, path, origin="https://evil.example.com").headers


def test_no_origin_is_allowed_by_default(client, project):
    for path in paths(project):
        assert "Access-Control-Allow-Origin" not in preflight(client, path).headers, path


def test_a_star_allows_every_origin(client, project, settings):
    settings.CORS_ALLOW_ALL_ORIGINS = True
    response = preflight(client, f"/v3/{project.pk}/subscriptions", origin="https://anywhere.example.com")
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_global_setting_never_answers_for_webhooks(client, db, settings):
    settings.CORS_ALLOW_ALL_ORIGINS = True
    for path in ("/webhook/abc", "/webhook/abc/dev"):
        response = preflight(client, path)
        assert "Access-Control-Allow-Origin" not in response.headers, path


@pytest.mark.e2e
def test_the_setting_is_read_from_the_environment():
    """`CORS_ALLOWED_ORIGINS` is a comma-separated list, `*` for any origin."""
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CORS_ALLOWED_ORIGINS, settings.CORS_ALLOW_ALL_ORIGINS)"
    )
    for value, expected in (
        ("https://a.example.com, https://b.example.com", "['https://a.example.com', 'https://b.example.com'] False"),
        ("*", "[] True"),
        ("", "[] False"),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={
                "DJANGO_SETTINGS_MODULE": "tiledesk_hooks.settings",
                "DJANGO_SECRET_KEY": "cors-test-" + "x" * 40,
                "CORS_ALLOWED_ORIGINS": value,
                "PATH": "",
            },
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == expected
