"""Encryption at rest for the values tenants give us and must never read back: project secrets,
a subscription's target credentials and custom header values.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) rather than anything hand-made: it
authenticates what it decrypts, so a tampered or foreign value fails loudly instead of decrypting to
garbage. The key is `HOOKS_ENCRYPTION_KEY` (a Fernet key, or any passphrase), by default derived
from Django's secret key so a fresh clone works without setup. Several keys may be given,
comma-separated: the first encrypts, all decrypt, which is how a key is rotated."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class UnreadableSecret(Exception):
    """A stored value that none of the configured keys can decrypt (the key was changed)."""


def _fernet_key(material: str) -> bytes:
    """A Fernet key as given, or one derived from a passphrase (SHA-256 of it, urlsafe base64)."""
    try:
        Fernet(material.encode())
        return material.encode()
    except (ValueError, TypeError):
        return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


@lru_cache(maxsize=4)
def _cipher(configured: str) -> MultiFernet:
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    return MultiFernet([Fernet(_fernet_key(k)) for k in keys])


def cipher() -> MultiFernet:
    configured = settings.HOOKS_ENCRYPTION_KEY or "hooks-encryption:" + settings.SECRET_KEY
    return _cipher(configured)


def encrypt(plain: str) -> str:
    return cipher().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise UnreadableSecret("the value cannot be decrypted with the configured HOOKS_ENCRYPTION_KEY") from error
