"""Keeping secrets out of everything distilloop writes: what a key looks like, and scrubbing it from text."""

from __future__ import annotations

import re
from typing import Any

#: anything that looks like a provider key (sk-..., sk-ant-..., key-...), masked or not
KEYLIKE = re.compile(r"\b(sk|key|pk|rk)-[A-Za-z0-9_\-*.]{4,}")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret, and anything key-shaped, replaced by ``[redacted]``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "[redacted]")
    return KEYLIKE.sub("[redacted]", text)


def looks_like_key(value: str) -> bool:
    return KEYLIKE.search(value) is not None


def scrub(value: Any) -> Any:
    """A copy of a config value (tables, lists, strings) with every key-shaped string redacted: what is written
    to the store of a campaign file never carries a key typed into it by mistake."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
