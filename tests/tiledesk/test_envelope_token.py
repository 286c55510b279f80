"""The envelope's `token`, as Tiledesk's notifier signs it (services/subscriptionNotifier.js:84-113),
read with PyJWT as a receiver reads it, and sent back as `Authorization: JWT <token>`
(middleware/passport.js:110, 208-227, 322-336): it acts as its subscription, in its project only,
for as long as the subscription and its secret last."""

import time
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from subscriptions import signing
from subscriptions.models import Attempt, Subscription
from support.models import Project, ProjectUser, Role
from tests.conftest import received
from tests.factories import subscribed
from tests.reliability.hooks import emit

from .conftest import envelope_token

ISSUER = "https://tiledesk.com"


def audience(subscription_id: str) -> str:
    return f"https://tiledesk.com/subscriptions/{subscription_id}"


@pytest.fixture
def delivered(api, project, httpserver, on_commit):
    """A real delivery of `event.emit` to a receiver: (the subscription as created, what it got)."""
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    created = subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit")
    with on_commit():
        emit(api, project.pk)
    [got] = received(httpserver, "/hook")
    return created, got


def as_token(client, path: str, token: str, method: str = "get"):
    return getattr(client, method)(path, HTTP_AUTHORIZATION=f"JWT {token}")


def test_every_envelope_carries_its_hook_signed_with_the_subscriptions_secret(delivered):
    """subscriptionNotifier.js:84-113: `jwt.sign(sJson, secret, {issuer: 'https://tiledesk.com',
    subject: 'subscription', audience: 'https://tiledesk.com/subscriptions/' + s._id})`, where sJson
    is the hook without its secret; jsonwebtoken signs HS256 by default, adds `iat`, and no `exp`
    is asked for."""
    created, got = delivered
    token = got["json"]["token"]

    claims = jwt.decode(
        token, created["secret"].encode(), algorithms=["HS256"], audience=audience(created["id"]), issuer=ISSUER
    )

    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert abs(claims.pop("iat") - time.time()) < 60
    assert claims == {**got["json"]["hook"], "iss": ISSUER, "sub": "subscription", "aud": audience(created["id"])}
    assert "exp" not in claims and "secret" not in claims


def test_the_key_is_the_whole_secret_text_not_the_signature_key(delivered):
    """Tiledesk signs with `s.secret`, the text itself; the Standard Webhooks key (the bytes the
    `whsec_` text encodes) does not verify it."""
    created, got = delivered
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            got["json"]["token"],
            signing._key(created["secret"]),
            algorithms=["HS256"],
            audience=audience(created["id"]),
            issuer=ISSUER,
        )


def test_the_headers_are_tiledesks_with_the_standard_webhooks_ones(delivered):
    """subscriptionNotifier.js:119-126: `Content-Type: application/json`, `x-hook-secret`, `User-Agent:
    tiledesk-webhooks` (a version follows here)."""
    created, got = delivered
    headers = got["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-hook-secret"] == created["secret"]
    assert headers["user-agent"].split("/")[0] == "tiledesk-webhooks"
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(headers)


def test_the_log_row_keeps_the_envelope_without_its_token(delivered):
    """The token is a credential: the attempt's log row (logs API, admin) shows it redacted."""
    _, got = delivered
    [attempt] = Attempt.objects.all()
    assert got["json"]["token"] not in attempt.request_body
    assert attempt.request_body == got["raw"].decode().replace(got["json"]["token"], "[redacted]")


def test_the_delivered_token_acts_as_its_subscription_in_its_project(delivered, client, project):
    """passport.js:322-336: a token whose `sub` is `subscription` authenticates as that subscription,
    on Tiledesk's paths (app.js:618, `hasRoleOrTypes('agent', ['bot','subscription'])`) and here on
    /api/ too."""
    _, got = delivered
    token = got["json"]["token"]

    assert as_token(client, f"/{project.pk}/requests", token).status_code == 200
    assert as_token(client, f"/v3/{project.pk}/requests", token).status_code == 200
    assert as_token(client, f"/api/projects/{project.pk}/requests/", token).status_code == 200


def test_a_deleted_subscriptions_token_is_401(delivered, api, client, project):
    """passport.js:216-227: the key is looked up by the subscription; once it is gone, nothing
    verifies the token."""
    created, got = delivered
    api.delete(f"/api/projects/{project.pk}/subscriptions/{created['id']}/")

    response = as_token(client, f"/{project.pk}/requests", got["json"]["token"])

    assert response.status_code == 401
    assert response.json()["success"] is False and "no longer exists" in response.json()["msg"]


def test_after_a_rotation_the_old_token_works_through_the_grace_then_is_401(delivered, api, client, project):
    created, got = delivered
    old = got["json"]["token"]
    api.post(f"/api/projects/{project.pk}/subscriptions/{created['id']}/rotate_secret/")
    rotated = Subscription.objects.get(pk=created["id"])

    assert as_token(client, f"/{project.pk}/requests", old).status_code == 200
    assert as_token(client, f"/{project.pk}/requests", envelope_token(rotated)).status_code == 200

    rotated.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    rotated.save()
    assert as_token(client, f"/{project.pk}/requests", old).status_code == 401
    assert as_token(client, f"/{project.pk}/requests", envelope_token(rotated)).status_code == 200


def test_the_token_of_a_deleted_project_is_401(subscription, client, project):
    from support.services import delete_project

    token = envelope_token(subscription)
    delete_project(project)
    assert as_token(client, f"/api/projects/{project.pk}/requests/", token).status_code == 401


def forged(subscription: Subscription, key: str | None = None, **changes) -> str:
    claims = {
        "_id": subscription.pk,
        "id_project": subscription.project_id,
        "iss": ISSUER,
        "sub": "subscription",
        "aud": audience(subscription.pk),
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, (key or subscription.secret).encode(), algorithm="HS256")


def test_a_token_made_with_the_secret_verifies(subscription, client, project):
    """What the checks below change, one at a time, from a token that works."""
    assert as_token(client, f"/{project.pk}/requests", forged(subscription)).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"key": signing.new_secret()},
        {"iss": "https://elsewhere.example.com"},
        {"iss": None},
        {"aud": "https://tiledesk.com"},
        {"aud": "https://tiledesk.com/subscriptions/ffffffffffffffffffffffff"},
        {"aud": "https://tiledesk.com/bots/x"},
        {"_id": None},
        {"exp": 1},
    ],
    ids=["other-key", "other-issuer", "no-issuer", "global-audience", "unknown-id", "bot-audience", "no-id", "expired"],
)
def test_a_token_with_another_key_or_wrong_claims_is_401(subscription, client, project, changes):
    """passport.js:208-227 picks the key by the audience's subscription id; a key, an issuer or an
    audience of another kind does not verify, and an expiry, when there is one, counts."""
    assert as_token(client, f"/{project.pk}/requests", forged(subscription, **changes)).status_code == 401


def test_a_token_naming_another_subscription_than_its_audience_is_401(subscription, client, project, owner):
    """Tiledesk verifies with the key of the audience's subscription (passport.js:216) but acts as the
    `_id`'s (passport.js:322-324): a receiver of one subscription could act as another. Here both
    must name the same subscription."""
    other = Subscription.objects.create(
        project=project, event="lead.create", target="https://example.com/x", secret=signing.new_secret()
    )
    token = forged(subscription, _id=other.pk)
    assert as_token(client, f"/{project.pk}/requests", token).status_code == 401


def test_an_unsigned_token_is_401(subscription, client, project):
    claims = jwt.decode(forged(subscription), options={"verify_signature": False})
    assert as_token(client, f"/{project.pk}/requests", jwt.encode(claims, None, algorithm="none")).status_code == 401


def test_a_subscription_of_another_project_is_404_there_as_for_strangers(subscription, client, make_user):
    """Tiledesk admits a subscription's token in any project (middleware/has-role.js:43-46 checks its
    type, not its project); here it is a stranger outside its own."""
    stranger = make_user("elsewhere")
    theirs = Project.objects.create(name="Elsewhere", created_by=stranger)
    ProjectUser.objects.create(project=theirs, user=stranger, email=stranger.email, role=Role.OWNER)
    token = envelope_token(subscription)

    for path in (f"/{theirs.pk}/requests", f"/v3/{theirs.pk}/faq_kb", f"/api/projects/{theirs.pk}/requests/"):
        assert as_token(client, path, token).status_code == 404, path
    assert as_token(client, f"/api/projects/{theirs.pk}/", token).status_code == 404


def test_in_its_project_it_manages_nothing(subscription, client, project):
    """Subscriptions, teammates, automations, the project itself: 403 (Tiledesk's routes for them
    require a role: app.js:588, routes/project_user.js)."""
    token = envelope_token(subscription)
    for path in (
        f"/{project.pk}/subscriptions",
        f"/api/projects/{project.pk}/subscriptions/",
        f"/api/projects/{project.pk}/subscriptions/logs/",
        f"/api/projects/{project.pk}/project_users/",
        f"/api/projects/{project.pk}/automations/",
        f"/api/projects/{project.pk}/departments/",
        f"/api/projects/{project.pk}/",
        "/api/projects/",
    ):
        assert as_token(client, path, token).status_code == 403, path
    assert as_token(client, f"/api/projects/{project.pk}/", token, method="delete").status_code == 403
    assert Project.objects.filter(pk=project.pk, deleted_at__isnull=True).exists()
