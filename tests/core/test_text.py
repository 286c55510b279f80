"""Text from outside made storable: the one helper every app uses before writing such text."""

import pytest

from core.text import storable, storable_bytes, storable_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("café ☕", "café ☕"),
        ("a\x00b", "a\ufffdb"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("\x00\udfff", "\ufffd\\udfff"),
    ],
)
def test_storable_text_replaces_nul_and_escapes_what_is_not_utf8(text, expected):
    assert storable_text(text) == expected
    storable_text(text).encode("utf-8")


def test_bytes_are_decoded_with_invalid_utf8_escaped():
    assert storable_bytes(b"ok \xff\xfe \x00 \xe2\x82\xac") == "ok \\xff\\xfe \ufffd €"


def test_every_string_of_a_json_value_is_made_storable_keys_included():
    value = {"a\x00": ["x\x00", {"k": "\ud800"}], "n": 1, "none": None, "raw": b"\xff"}
    assert storable(value) == {"a\ufffd": ["x\ufffd", {"k": "\\ud800"}], "n": 1, "none": None, "raw": "\\xff"}
