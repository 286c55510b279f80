"""The sign-in JWT: HS256 with a key derived from the Django secret key, Tiledesk's claims, a lifetime;
anything else in `Authorization: JWT ...` is a 401."""

import json
import time

import jwt
import pytest
from django.conf import settings
from django.utils.crypto import salted_hmac

from accounts import tokens

USER_AUDIENCE = "https://tiledesk.com"


def derived_key(secret: str | None = None) -> bytes:
    """The signing key, derived as documented: HMAC-SHA256 of the secret key under the purpose label."""
    return salted_hmac("accounts.tokens", "user JWT signing key", secret=secret, algorithm="sha256").digest()


def signed_in_token(client, user) -> str:
    response = client.post(
        "/auth/signin", json.dumps({"email": user.email, "password": "pw"}), content_type="application/json"
    )
    assert response.status_code == 200
    return response.json()["token"].removeprefix("JWT ")


def call(client, authorization: str):
    return client.get("/api/projects/", HTTP_AUTHORIZATION=authorization)


def forged(user, key: bytes | str | None = None, **changes) -> str:
    now = int(time.time())
    claims = {
        "_id": str(user.pk),
        "email": user.email,
        "iss": "https://tiledesk.com",
        "aud": USER_AUDIENCE,
        "sub": "user",
        "iat": now,
        "exp": now + 60,
        "pwv": tokens._password_version(user),
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key if key is not None else derived_key(), algorithm="HS256")


def test_the_token_is_hs256_with_tiledesks_user_claims_and_a_lifetime(client, owner, settings):
    settings.JWT_LIFETIME_S = 3600
    token = signed_in_token(client, owner)

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, derived_key(), algorithms=["HS256"], audience=USER_AUDIENCE)
    assert claims["sub"] == "user" and claims["iss"] == "https://tiledesk.com"
    assert claims["_id"] == str(owner.pk) and claims["email"] == owner.email
    assert claims["exp"] - claims["iat"] == 3600
    assert "password" not in claims


def test_the_secret_key_itself_does_not_sign_it(client, owner):
    token = signed_in_token(client, owner)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"], audience=USER_AUDIENCE)


def test_a_valid_token_authenticates_with_the_scheme_in_any_case(client, owner):
    token = signed_in_token(client, owner)
    for scheme in ("JWT", "jwt", "Jwt"):
        assert call(client, f"{scheme} {token}").status_code == 200, scheme


@pytest.mark.parametrize(
    "authorization",
    [
        "JWT",
        "JWT a b",
        "JWT not-a-jwt",
        "JWT eyJhbGciOiJIUzI1NiJ9.e30.",
        "JWT é",
    ],
)
def test_a_malformed_token_is_401(client, owner, authorization):
    response = call(client, authorization)
    assert response.status_code == 401 and response.json()["detail"]


def test_an_expired_token_is_401(client, owner):
    response = call(client, "JWT " + forged(owner, iat=int(time.time()) - 120, exp=int(time.time()) - 60))
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_a_token_signed_with_another_key_is_401(client, owner):
    assert call(client, "JWT " + forged(owner, key=b"another key of thirty-two bytes!")).status_code == 401
    assert call(client, "JWT " + forged(owner, key=settings.SECRET_KEY)).status_code == 401


def test_an_unsigned_token_is_401(client, owner):
    claims = jwt.decode(forged(owner), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert call(client, "JWT " + unsigned).status_code == 401


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "https://elsewhere.example.com"},
        {"iss": "https://elsewhere.example.com"},
        {"exp": None},
        {"_id": None},
        {"_id": "not-a-user-id"},
        {"_id": "999999"},
        {"pwv": "0000000000000000"},
    ],
)
def test_a_token_with_wrong_claims_is_401(client, owner, changes):
    assert call(client, "JWT " + forged(owner, **changes)).status_code == 401


@pytest.mark.parametrize("kind", ["bot", "guest", "userexternal", None, 7])
def test_a_token_of_an_unknown_kind_is_401_even_when_well_signed(client, owner, kind):
    """Tiledesk's other kinds (middleware/passport.js:294-383) are not users: a token claiming one is
    never read as a user's, whatever it is signed with."""
    response = call(client, "JWT " + forged(owner, sub=kind))
    assert response.status_code == 401 and response.json()["detail"] == "Unknown kind of token."


def test_a_user_token_relabelled_as_a_subscription_is_401(client, owner):
    """A subscription's token is checked as one (its audience, its subscription's secret): a user's
    token claiming that kind is not read with the user key."""
    response = call(client, "JWT " + forged(owner, sub="subscription"))
    assert response.status_code == 401


def test_a_password_change_ends_earlier_tokens(client, owner):
    token = signed_in_token(client, owner)
    owner.set_password("new password")
    owner.save()
    assert call(client, f"JWT {token}").status_code == 401


def test_a_deactivated_user_s_token_is_401(client, owner):
    token = signed_in_token(client, owner)
    owner.is_active = False
    owner.save()
    assert call(client, f"JWT {token}").status_code == 401


def test_tokens_survive_a_secret_key_rotation_through_the_fallbacks(client, owner, settings):
    token = signed_in_token(client, owner)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "y" * 40
    assert call(client, f"JWT {token}").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert call(client, f"JWT {token}").status_code == 401


def test_a_new_kind_of_token_is_one_more_entry(client, owner, monkeypatch):
    """How another kind (a subscription's envelope token) joins: its own verifier, chosen by `sub`."""
    seen = []

    def verify(token: str):
        seen.append(token)
        return owner, {"sub": "robot"}

    monkeypatch.setitem(tokens.TOKEN_KINDS, "robot", verify)
    token = forged(owner, sub="robot", key=b"the robot kind's own key 32 byte")
    assert call(client, f"JWT {token}").status_code == 200 and seen == [token]
