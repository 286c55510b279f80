"""The envelope's `token`: what Tiledesk's notifier signs into every delivery
(services/subscriptionNotifier.js:84-113) and what a receiver sends back, as
`Authorization: JWT <token>`, to act as the subscription (middleware/passport.js:208-227, 322-336).

The token is the `hook` object (no secret) with `iss` https://tiledesk.com, `sub` subscription,
`aud` https://tiledesk.com/subscriptions/<id> and `iat`, HS256 keyed with the subscription's secret
as stored (the whole `whsec_...` text, UTF-8), without expiry: all as jsonwebtoken signs it there.

It is good for as long as its key is: until the subscription is deleted, or its secret is rotated
and the previous one's grace (`HOOKS_SECRET_ROTATION_GRACE_S`) has ended. Its bearer acts in the
subscription's project only, with exactly `SUBSCRIPTION_ACTIONS` (a receiver reads and answers
conversations; it manages nothing); Tiledesk lets it into any project and any route that admits
its type."""

import re
import time
from functools import lru_cache

import jwt

from accounts.tokens import ALGORITHM, ISSUER, InvalidToken
from support.permissions import ProjectCaller

from .models import Subscription

SUBJECT = "subscription"
AUDIENCE_PREFIX = "https://tiledesk.com/subscriptions/"

# What a subscription's token may do: `<resource>.<action>` of the API's views (and of Tiledesk's
# paths, which run them). Read the project's requests, messages, leads and bots; post messages;
# close requests; set participants; change a lead; emit events. Nothing else.
SUBSCRIPTION_ACTIONS = frozenset(
    {
        "request.list",
        "request.retrieve",
        "request.close",
        "request.participants",
        "message.list",
        "message.retrieve",
        "message.create",
        "lead.list",
        "lead.retrieve",
        "lead.update",
        "lead.partial_update",
        "faq_kb.list",
        "faq_kb.retrieve",
        "event.create",
    }
)


def audience(subscription_id: str) -> str:
    return AUDIENCE_PREFIX + subscription_id


def encode_envelope_token(subscription: Subscription, hook: dict) -> str:
    """The token of an envelope whose `hook` object is `hook` (the envelope's own dict).

    The same subscription with the same secret and `hook` gets the same token again, issued (`iat`)
    when this process first signed it: signing each one anew would be most of an envelope's CPU
    (PyJWT: +41 µs per envelope, on top of the 33 µs its JSON, signature and headers took; reused,
    +4 µs), and a token without expiry is as good on its thousandth envelope as on its first. Any
    change to the subscription (target, event, `updatedAt`, secret) makes a new one."""
    return _signed(subscription.pk, subscription.secret, tuple(hook.items()))


@lru_cache(maxsize=4096)
def _signed(subscription_id: str, secret: str, hook: tuple[tuple[str, object], ...]) -> str:
    claims = {**dict(hook), "iat": int(time.time()), "iss": ISSUER, "sub": SUBJECT, "aud": audience(subscription_id)}
    return jwt.encode(claims, secret.encode(), algorithm=ALGORITHM)


# The token as an envelope's JSON text carries it (no spaces: see delivery.envelope_bytes).
_TOKEN_IN_ENVELOPE = re.compile(r'"token":"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"')
REDACTED_TOKEN = '"token":"[redacted]"'


def token_in(envelope_text: str) -> str | None:
    """The token an envelope's text carries, if any (to scrub it from what a receiver echoes)."""
    found = _TOKEN_IN_ENVELOPE.search(envelope_text)
    return found.group(1) if found else None


def redact(envelope_text: str) -> str:
    """An envelope's text as its log row keeps it: without its token, which is a credential (it
    acts as the subscription for as long as the secret lasts) while log rows are kept for days and
    shown to the project's managers and in the admin."""
    return _TOKEN_IN_ENVELOPE.sub(REDACTED_TOKEN, envelope_text)


class SubscriptionCaller(ProjectCaller):
    """A subscription acting with its envelope's token. The messages it posts are from the
    subscription's id, as Tiledesk's message route takes `req.user._id` for a sender
    (routes/message.js:188)."""

    def __init__(self, subscription: Subscription) -> None:
        super().__init__(subscription.project_id, SUBSCRIPTION_ACTIONS, author_id=subscription.pk)
        self.subscription = subscription

    def __str__(self) -> str:
        return f"subscription {self.subscription.pk}"


def authenticate_envelope_token(token: str) -> tuple[SubscriptionCaller, dict]:
    """The subscription an envelope's token stands for, checked with the key it was signed with:
    the secret, or the previous secret while its grace lasts."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise InvalidToken("Malformed token.")
    named = unverified.get("aud")
    if not isinstance(named, str) or not named.startswith(AUDIENCE_PREFIX):
        raise InvalidToken(f"A subscription's token has the audience {AUDIENCE_PREFIX}<subscription id>.")
    subscription_id = named.removeprefix(AUDIENCE_PREFIX)
    subscription = None
    if subscription_id.isalnum() and len(subscription_id) <= 24:
        subscription = Subscription.objects.filter(pk=subscription_id, project__deleted_at__isnull=True).first()
    if subscription is None:
        raise InvalidToken("This token's subscription no longer exists.")
    for secret in subscription.signing_secrets():
        try:
            claims = jwt.decode(
                token,
                secret.encode(),
                algorithms=[ALGORITHM],
                audience=audience(subscription.pk),
                issuer=ISSUER,
                options={"require": ["iss", "sub", "aud", "_id"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"Invalid token: {error}.")
        if claims["sub"] != SUBJECT or claims["_id"] != subscription.pk:
            raise InvalidToken("This token does not name its subscription.")
        return SubscriptionCaller(subscription), claims
    raise InvalidToken("Invalid token signature (the subscription's secret may have been rotated).")
