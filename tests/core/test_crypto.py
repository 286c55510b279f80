"""Tenants' stored credentials: encrypted with the configured key, readable only with it."""

import pytest

from core import crypto


def test_a_value_reads_back_and_is_not_stored_in_clear():
    token = crypto.encrypt("s3cr3t-value")
    assert "s3cr3t-value" not in token
    assert crypto.decrypt(token) == "s3cr3t-value"


def test_the_same_value_encrypts_differently_each_time():
    assert crypto.encrypt("x") != crypto.encrypt("x")


def test_a_changed_key_cannot_read_old_values(settings):
    settings.HOOKS_ENCRYPTION_KEY = "first passphrase"
    token = crypto.encrypt("value")
    settings.HOOKS_ENCRYPTION_KEY = "another passphrase"
    with pytest.raises(crypto.UnreadableSecret):
        crypto.decrypt(token)


def test_a_rotated_key_still_reads_values_of_the_old_one(settings):
    settings.HOOKS_ENCRYPTION_KEY = "old"
    token = crypto.encrypt("value")
    settings.HOOKS_ENCRYPTION_KEY = "new,old"
    assert crypto.decrypt(token) == "value"
    assert crypto.decrypt(crypto.encrypt("v2")) == "v2"
