"""Secrets too weak to protect anything: placeholders left in a template, and short keys.

The service refuses to start with one (contract §2), so that a copied example never ends up
guarding production."""

from __future__ import annotations

import re

# Compared after lower-casing and dropping everything but letters and digits.
_PLACEHOLDER_WORDS = frozenset(
    {
        "changeme",
        "change",
        "secret",
        "password",
        "passwd",
        "placeholder",
        "replaceme",
        "todo",
        "fixme",
        "example",
        "default",
        "dummy",
        "test",
        "none",
        "null",
        "key",
        "apikey",
        "token",
    }
)
_PLACEHOLDER_PARTS = ("changeme", "replaceme", "placeholder", "yoursecret", "yourkey", "insert", "redacted")


def _folded(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _is_template_word(folded: str) -> bool:
    return folded in _PLACEHOLDER_WORDS or any(part in folded for part in _PLACEHOLDER_PARTS)


def _is_trivial(folded: str) -> bool:
    # "xxx", "aaaa", "0000", "abab…": no real secret has two distinct characters or fewer.
    return len(set(folded)) <= 2


def is_placeholder(value: str) -> bool:
    """CHANGE-ME, changeme, secret, xxx, <your-key>, 0000…: a value nobody chose as a secret."""
    folded = _folded(value)
    return _is_template_word(folded) or _is_trivial(folded)


def weakness(
    value: str, *, min_length: int, unit: str = "characters", length: int | None = None
) -> str | None:
    """Why `value` is too weak (never quoting it), or None. `length` overrides len(value), e.g. the
    decoded size of a base64 key."""
    folded = _folded(value)
    if _is_template_word(folded):
        return "is a placeholder, not a secret"
    size = len(value) if length is None else length
    if size < min_length:
        return f"is too short: at least {min_length} {unit} are needed"
    if _is_trivial(folded):
        return "is a placeholder, not a secret"
    return None
