"""HTTP basic auth with the username or the e-mail (any case), on every API path."""

import base64

import pytest


def basic(name: str, password: str = "pw") -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


@pytest.mark.parametrize("name", ["owner", "owner@example.com", "OWNER@Example.COM", "Owner"])
def test_basic_auth_by_username_or_email_in_any_case_works_on_the_api(client, owner, project, name):
    response = client.get(f"/api/projects/{project.pk}/subscriptions/", HTTP_AUTHORIZATION=basic(name))
    assert response.status_code == 200


def test_a_wrong_password_is_401(client, owner):
    assert client.get("/api/projects/", HTTP_AUTHORIZATION=basic(owner.email, "nope")).status_code == 401


def test_an_email_shared_by_two_accounts_signs_neither_in_but_their_usernames_do(client, make_user):
    first, second = make_user("first"), make_user("second")
    for user, email in ((first, "shared@example.com"), (second, "SHARED@example.com")):
        user.email = email
        user.save()
    assert client.get("/api/projects/", HTTP_AUTHORIZATION=basic("shared@example.com")).status_code == 401
    for user in (first, second):
        assert client.get("/api/projects/", HTTP_AUTHORIZATION=basic(user.username)).status_code == 200


def test_a_username_that_is_exactly_given_wins_over_an_email_that_matches_it(client, make_user):
    make_user("ann@example.com")  # a username that looks like another user's e-mail
    bob = make_user("bob")
    bob.email = "ANN@example.com"
    bob.save()
    assert client.get("/api/projects/", HTTP_AUTHORIZATION=basic("ann@example.com")).status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_browser_request_from_another_site_is_not_authenticated_by_basic_credentials(client, owner, project, site):
    """A browser resends basic credentials it once got by itself, also on a form another site's page
    posts; such a request must not act as the user."""
    response = client.post(
        f"/{project.pk}/subscriptions",
        "event=request.create&target=https%3A%2F%2Fevil.example.com%2F",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(owner.email),
        HTTP_SEC_FETCH_SITE=site,
    )
    assert response.status_code == 401
    assert not project.subscriptions.exists()


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_the_own_sites_pages_and_typed_urls_may_use_basic_credentials(client, owner, project, site):
    response = client.get(
        f"/{project.pk}/subscriptions", HTTP_AUTHORIZATION=basic(owner.email), HTTP_SEC_FETCH_SITE=site
    )
    assert response.status_code == 200


def test_a_jwt_from_another_sites_page_is_fine(client, owner, project):
    token = client.post("/auth/signin", {"email": owner.email, "password": "pw"}).json()["token"]
    response = client.get(f"/{project.pk}/subscriptions", HTTP_AUTHORIZATION=token, HTTP_SEC_FETCH_SITE="cross-site")
    assert response.status_code == 200
