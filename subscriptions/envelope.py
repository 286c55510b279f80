"""The envelope a subscriber receives and the headers it comes with (API.md, "The HTTP POST a
subscriber receives"). The body is built once per attempt and those exact bytes are both signed
and sent."""

import json
from datetime import UTC

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from . import signing, target_credentials
from .envelope_token import encode_envelope_token
from .models import Delivery, Subscription

# Tiledesk's notifier sends `tiledesk-webhooks` (services/subscriptionNotifier.js:124); receivers
# written for it may look for that name.
USER_AGENT = "tiledesk-webhooks/1.0"


def hook_representation(subscription: Subscription) -> dict:
    """The `hook` object of the envelope, as Tiledesk sends it (no secret)."""
    return {
        "_id": subscription.pk,
        "id": subscription.pk,
        "createdAt": _iso(subscription.created_at),
        "updatedAt": _iso(subscription.updated_at),
        "target": subscription.target,
        "event": subscription.event,
        "id_project": subscription.project_id,
        "createdBy": str(subscription.created_by_id) if subscription.created_by_id else None,
        "__v": 0,
    }


def _iso(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope_bytes(delivery: Delivery) -> bytes:
    # The delivery's own name: the most specific one its subscription's `events` took.
    hook = {**hook_representation(delivery.subscription), "event": delivery.event}
    envelope = {
        "hook": hook,
        "timestamp": delivery.event_payload.timestamp_ms(),
        "payload": delivery.event_payload.payload,
        "token": encode_envelope_token(delivery.subscription, hook),
        "sequence": delivery.sequence,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def request_headers(delivery: Delivery, body: bytes, now_s: int) -> dict[str, str]:
    subscription = delivery.subscription
    headers = {
        **target_credentials.outgoing_headers(subscription),  # the protocol's own names win
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "x-hook-id": delivery.pk,
        "webhook-id": delivery.pk,
        "webhook-timestamp": str(now_s),
        "webhook-signature": signing.signature_header(subscription.signing_secrets(), delivery.pk, now_s, body),
    }
    if settings.HOOKS_SEND_SECRET_HEADER:
        headers["x-hook-secret"] = subscription.secret
    return headers
