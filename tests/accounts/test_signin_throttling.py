"""Failed sign-ins are limited per client address and per account, whichever way the password came
(basic auth, `POST /auth/signin`, the admin's login); once limited, sign-ins are refused with 429 and
`Retry-After` before any password is hashed."""

import base64
import json

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher


class CountingHasher(MD5PasswordHasher):
    """The tests' MD5 hasher, counting how many passwords it hashes or checks."""

    uses = 0

    def verify(self, password, encoded):
        CountingHasher.uses += 1
        return super().verify(password, encoded)

    def encode(self, password, salt):
        CountingHasher.uses += 1
        return super().encode(password, salt)


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    settings.SIGNIN_MAX_FAILURES_PER_ADDRESS = 3
    settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT = 5
    settings.SIGNIN_FAILURE_WINDOW_S = 60
    return settings


def basic(client, name: str, password: str, address: str = "127.0.0.1", **headers):
    credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
    return client.get("/api/projects/", HTTP_AUTHORIZATION=f"Basic {credentials}", REMOTE_ADDR=address, **headers)


def signin(client, name: str, password: str, address: str = "127.0.0.1"):
    body = json.dumps({"email": name, "password": password})
    return client.post("/auth/signin", body, content_type="application/json", REMOTE_ADDR=address)


def test_past_the_limit_basic_auth_is_429_even_with_the_right_password_and_hashes_nothing(client, owner):
    assert [basic(client, owner.email, "wrong").status_code for _ in range(3)] == [401, 401, 401]
    hashed_before = CountingHasher.uses

    response = basic(client, owner.email, "pw")

    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins" in response.json()["detail"]
    assert CountingHasher.uses == hashed_before


def test_below_the_limit_the_right_password_still_works(client, owner):
    for _ in range(2):
        basic(client, owner.email, "wrong")
    assert basic(client, owner.email, "pw").status_code == 200


def test_the_signin_endpoint_is_refused_the_same_way_in_tiledesks_shape(client, owner):
    assert [signin(client, owner.email, "wrong").status_code for _ in range(3)] == [401, 401, 401]
    hashed_before = CountingHasher.uses

    response = signin(client, owner.email, "pw")

    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert response.json()["success"] is False and "Too many failed sign-ins" in response.json()["msg"]
    assert CountingHasher.uses == hashed_before


def test_failures_count_together_whichever_way_the_password_came(client, owner):
    signin(client, owner.email, "wrong")
    basic(client, owner.username, "wrong")
    client.post("/admin/login/", {"username": owner.email, "password": "wrong"}, REMOTE_ADDR="127.0.0.1")
    assert basic(client, owner.email, "pw").status_code == 429


def test_the_admin_login_says_no_while_limited_without_hashing(client, owner):
    owner.is_staff = True
    owner.save()
    for _ in range(3):
        basic(client, owner.email, "wrong")
    hashed_before = CountingHasher.uses

    page = client.post("/admin/login/", {"username": owner.username, "password": "pw"}, REMOTE_ADDR="127.0.0.1")

    assert page.status_code == 200 and "_auth_user_id" not in client.session
    assert CountingHasher.uses == hashed_before


def test_the_account_limit_holds_across_addresses(client, owner, make_user):
    other = make_user("other")
    names = [owner.email, owner.email.upper(), owner.username, owner.email, owner.username]
    for number, name in enumerate(names):  # one failure from each of five addresses
        assert basic(client, name, "wrong", address=f"10.0.0.{number + 1}").status_code == 401

    assert basic(client, owner.email, "pw", address="10.0.0.99").status_code == 429
    assert basic(client, other.email, "pw", address="10.0.0.99").status_code == 200


def test_the_address_limit_holds_across_accounts(client, owner, make_user):
    for name in ("a", "b", "c"):
        make_user(name)
        assert basic(client, f"{name}@example.com", "wrong").status_code == 401
    assert basic(client, owner.email, "pw").status_code == 429
    assert basic(client, owner.email, "pw", address="10.0.0.7").status_code == 200


def test_unknown_names_are_limited_like_accounts(client, db, settings):
    """So that a limit reached, or not, says nothing about whether an account exists."""
    settings.SIGNIN_MAX_FAILURES_PER_ADDRESS = 100
    for number in range(5):
        assert signin(client, "nobody@example.com", "x", address=f"10.1.0.{number}").status_code == 401
    assert signin(client, "nobody@example.com", "x", address="10.1.0.99").status_code == 429


def test_the_limit_ends_with_its_window(client, owner, settings, clock):
    settings.SIGNIN_FAILURE_WINDOW_S = 1
    for _ in range(3):
        basic(client, owner.email, "wrong")
    assert basic(client, owner.email, "pw").status_code == 429
    clock.shift(1.2)
    assert basic(client, owner.email, "pw").status_code == 200


def test_a_forged_x_forwarded_for_does_not_escape_the_address_limit(client, owner, make_user):
    for number, name in enumerate("abc"):
        make_user(name)
        basic(client, f"{name}@example.com", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
    assert basic(client, owner.email, "pw", HTTP_X_FORWARDED_FOR="198.51.100.200").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_client_address_counts(client, owner, make_user, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    for name in "abc":
        make_user(name)
        basic(client, f"{name}@example.com", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.5, 127.0.0.2")
    assert basic(client, owner.email, "pw", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert basic(client, owner.email, "pw", HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 200


def test_tokens_keep_working_while_passwords_are_limited(client, owner):
    for _ in range(3):
        basic(client, owner.email, "wrong")
    response = client.get("/api/projects/", HTTP_AUTHORIZATION=f"Token {owner.auth_token.key}")
    assert response.status_code == 200
