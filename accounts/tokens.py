"""JWTs as Tiledesk's clients send them: `Authorization: JWT <jwt>`.

Like Tiledesk's, a token says in its `sub` claim what kind of caller it stands for ("user" for a
signed-in person, "subscription" for a delivery's envelope token; Tiledesk also has "bot"...).
`authenticate` reads that one claim unverified, only to pick the kind; the kind then checks
everything with its own key, audience and rules and returns the caller. A kind nobody registered
is refused, so a token can never be read with another kind's key. A new kind is one more entry in
`TOKEN_KINDS`.

User tokens are HS256, signed with a key derived from the Django secret key for this purpose only
(the secret key itself signs sessions and more), carry the user as Tiledesk's do (`_id`, `email`,
`firstname`, `lastname`) and expire after `JWT_LIFETIME_S`. A password change ends every token
issued before it (`pwv`, a fingerprint of the password hash)."""

import time
import uuid
from collections.abc import Callable

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.module_loading import import_string

from .serializers import UserSerializer

ISSUER = "https://tiledesk.com"
USER_AUDIENCE = "https://tiledesk.com"
ALGORITHM = "HS256"
# The label that makes the signing key this purpose's own (HMAC of the secret key, never the key itself).
KEY_PURPOSE = "accounts.tokens"


class InvalidToken(Exception):
    """The token is malformed, of an unknown kind, badly signed, expired or no longer valid."""


def _secret_keys() -> list[str]:
    """The secret key first, then SECRET_KEY_FALLBACKS: tokens survive a key rotation until they
    expire, as sessions do."""
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def _signing_key(secret: str) -> bytes:
    return salted_hmac(KEY_PURPOSE, "user JWT signing key", secret=secret, algorithm="sha256").digest()


def _password_version(user, secret: str | None = None) -> str:
    return salted_hmac(f"{KEY_PURPOSE}.password", user.password, secret=secret, algorithm="sha256").hexdigest()[:16]


def issue_user_token(user) -> str:
    now = int(time.time())
    claims = {
        **UserSerializer(user).data,
        "iss": ISSUER,
        "aud": USER_AUDIENCE,
        "sub": "user",
        "iat": now,
        "exp": now + int(settings.JWT_LIFETIME_S),
        "jti": uuid.uuid4().hex,
        "pwv": _password_version(user),
    }
    return jwt.encode(claims, _signing_key(settings.SECRET_KEY), algorithm=ALGORITHM)


def authenticate_user_token(token: str) -> tuple[object, dict]:
    for secret in _secret_keys():
        try:
            claims = jwt.decode(
                token,
                _signing_key(secret),
                algorithms=[ALGORITHM],
                audience=USER_AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "_id", "pwv"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise InvalidToken("This token has expired; sign in again.")
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"Invalid token: {error}.")
    else:
        raise InvalidToken("Invalid token signature.")
    try:
        user = get_user_model().objects.filter(pk=claims["_id"]).first()
    except (TypeError, ValueError, ValidationError):
        user = None
    if user is None or not user.is_active or not constant_time_compare(claims["pwv"], _password_version(user, secret)):
        raise InvalidToken("This token is no longer valid; sign in again.")
    return user, claims


def _verified_by(path: str) -> Callable[[str], tuple[object, dict]]:
    """The verifier at `path`, imported when a token of its kind is first met (an app's verifier
    may import this module, and its models need the app registry)."""
    return lambda token: import_string(path)(token)


# sub claim -> the function that verifies a token of that kind and returns (caller, claims).
TOKEN_KINDS: dict[str, Callable[[str], tuple[object, dict]]] = {
    "user": authenticate_user_token,
    # A delivery's envelope token: the subscription itself, acting in its project.
    "subscription": _verified_by("subscriptions.envelope_token.authenticate_envelope_token"),
}


def authenticate(token: str) -> tuple[object, dict]:
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise InvalidToken("Malformed token.")
    kind = unverified.get("sub") if isinstance(unverified, dict) else None
    verify = TOKEN_KINDS.get(kind) if isinstance(kind, str) else None
    if verify is None:
        raise InvalidToken("Unknown kind of token.")
    return verify(token)
