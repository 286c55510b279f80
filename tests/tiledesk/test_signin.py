"""`POST /auth/signin` as Tiledesk's server answers it (routes/auth.js:554-678), and the JWT it hands
out used as Tiledesk's clients use it (`Authorization: JWT <jwt>`, middleware/passport.js:110)."""

import json

import pytest

from .conftest import TARGET

USER_FIELDS = {"_id", "id", "email", "firstname", "lastname"}


def signin(client, body: dict, prefix: str = "", form: bool = False):
    if form:
        return client.post(f"{prefix}/auth/signin", body)
    return client.post(f"{prefix}/auth/signin", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("prefix", ["", "/v3"])
def test_signin_answers_success_a_jwt_and_the_user(client, owner, prefix):
    """routes/auth.js:656-664: `{success: true, token: 'JWT ' + token, user: userJson}`, the user
    without its password (routes/auth.js:641-642)."""
    owner.first_name, owner.last_name = "Olive", "Owner"
    owner.save()

    response = signin(client, {"email": owner.email, "password": "pw"}, prefix)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["token"].startswith("JWT ")
    assert body["user"] == {
        "_id": str(owner.pk),
        "id": str(owner.pk),
        "email": owner.email,
        "firstname": "Olive",
        "lastname": "Owner",
    }


def test_the_email_is_read_in_any_case(client, owner):
    """routes/auth.js:568: `req.body.email.toLowerCase()`."""
    assert signin(client, {"email": owner.email.upper(), "password": "pw"}).status_code == 200


def test_a_username_works_in_email_too(client, owner):
    assert signin(client, {"email": owner.username, "password": "pw"}).status_code == 200


def test_a_form_encoded_signin_works(client, owner):
    """app.js:320: form-encoded bodies are read like JSON."""
    assert signin(client, {"email": owner.email, "password": "pw"}, form=True).status_code == 200


def test_a_wrong_password_is_401_in_tiledesks_shape(client, owner):
    """routes/auth.js:666-667: `401 {success: false, msg: 'Authentication failed. Wrong password.'}`."""
    response = signin(client, {"email": owner.email, "password": "nope"})
    assert response.status_code == 401
    assert response.json() == {"success": False, "msg": "Authentication failed: wrong e-mail or password."}


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(client, owner):
    """routes/auth.js:583 answers 'User not found.' and :667 'Wrong password.', which tells anyone which
    e-mails have accounts; here both get one answer."""
    unknown = signin(client, {"email": "nobody@example.com", "password": "nope"})
    wrong = signin(client, {"email": owner.email, "password": "nope"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_tiledesks_default_super_password_is_not_a_password_here(client, owner):
    """routes/auth.js:588 and :644: any account signs in with SUPER_PASSWORD, "superadmin" unless set."""
    assert signin(client, {"email": owner.email, "password": "superadmin"}).status_code == 401


@pytest.mark.parametrize("body", [{}, {"email": "ann@example.com"}, {"password": "pw"}, {"email": "", "password": ""}])
def test_missing_fields_are_400_naming_them(client, db, body):
    """routes/auth.js:557-565 answers 422 `{errors}` (express-validator); here it is this API's 400 for
    bad input, in Tiledesk's shape, with the fields named."""
    response = signin(client, body)
    assert response.status_code == 400
    assert response.json()["success"] is False and set(response.json()["errors"]) <= {"email", "password"}


def test_an_inactive_account_cannot_sign_in(client, owner):
    owner.is_active = False
    owner.save()
    assert signin(client, {"email": owner.email, "password": "pw"}).status_code == 401


def test_a_bad_authorization_header_does_not_stop_a_signin(client, owner):
    response = client.post(
        "/auth/signin",
        json.dumps({"email": owner.email, "password": "pw"}),
        content_type="application/json",
        HTTP_AUTHORIZATION="JWT not-a-token",
    )
    assert response.status_code == 200


@pytest.mark.parametrize("prefix", ["", "/v3"])
def test_the_token_is_used_as_it_is_answered_on_the_tiledesk_paths(client, owner, project, prefix):
    """The client sends the answer's `token` as `Authorization` (tiledesk-client index.js: fixToken)."""
    token = signin(client, {"email": owner.email, "password": "pw"}).json()["token"]

    created = client.post(
        f"{prefix}/{project.pk}/subscriptions",
        json.dumps({"event": "request.create", "target": TARGET}),
        content_type="application/json",
        HTTP_AUTHORIZATION=token,
    )
    listed = client.get(f"{prefix}/{project.pk}/subscriptions", HTTP_AUTHORIZATION=token)

    assert created.status_code == 200 and created.headers["x-hook-secret"]
    assert [row["id"] for row in listed.json()] == [created.json()["id"]]


def test_the_token_works_on_the_api_too(client, owner, project):
    token = signin(client, {"email": owner.email, "password": "pw"}).json()["token"]
    response = client.get("/api/projects/", HTTP_AUTHORIZATION=token)
    assert response.status_code == 200 and [row["id"] for row in response.json()["results"]] == [project.pk]


def test_signin_updates_last_login(client, owner):
    assert owner.last_login is None
    signin(client, {"email": owner.email, "password": "pw"})
    owner.refresh_from_db()
    assert owner.last_login is not None
