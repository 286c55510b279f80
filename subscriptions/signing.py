"""Secrets and Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is `whsec_` + base64 of 32 random bytes; the HMAC key is those bytes. The signature is
computed over the exact body bytes that are sent."""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
MASK = "••••"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def mask_secret(secret: str) -> str:
    return f"{SECRET_PREFIX}{MASK}{secret[-4:]}" if secret else ""


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        # Secrets made elsewhere (e.g. imported from Tiledesk) may not be base64: sign with the text.
        return raw.encode()


def sign(secret: str, message_id: str, timestamp_s: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(signing_secrets: list[str], message_id: str, timestamp_s: int, body: bytes) -> str:
    return " ".join(sign(secret, message_id, timestamp_s, body) for secret in signing_secrets)
