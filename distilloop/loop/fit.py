"""Inputs that do not fit a teacher's context window are found before they are sent and handled as
``[data] too_long`` says: ``truncate`` (the longest input field is cut to what fits, with a marker, so the teacher
sees that the text goes on) or ``skip`` (the item leaves the pool, counted); never dropped silently by a call that
fails. Only teachers that know their window (``context_tokens``; a local model's ``n_ctx``) are checked; a prompt
whose one-token-per-byte bound fits is not counted at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from distilloop.annotators.base import Teacher
from distilloop.core.types import LabelingItem

#: what a truncated field ends with
MARK = " [...]"


def overflows(item: LabelingItem, teachers: Sequence[Teacher]) -> bool:
    return any(t.overflow(t.render(item)) > 0 for t in teachers if t.context_tokens)


def truncate(item: LabelingItem, teachers: Sequence[Teacher]) -> LabelingItem | None:
    """``item`` with its longest text field cut to the longest prefix that fits every teacher (None when not even
    an empty field does)."""
    texts = [k for k, v in item.fields.items() if isinstance(v, str)]
    if not texts:
        return None
    key = max(texts, key=lambda k: len(item.fields[k]))
    text = item.fields[key]

    def cut(n: int) -> LabelingItem:
        return dataclasses.replace(item, fields={**item.fields, key: text[:n] + MARK})

    if overflows(cut(0), teachers):
        return None
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits
        mid = (lo + hi + 1) // 2
        if overflows(cut(mid), teachers):
            hi = mid - 1
        else:
            lo = mid
    return cut(lo)


def fit(item: LabelingItem, teachers: Sequence[Teacher], policy: str) -> LabelingItem | None:
    """``item`` as it is sent: unchanged when it fits, truncated (``truncate``), or None (``skip``, or nothing
    fits)."""
    if not overflows(item, teachers):
        return item
    return truncate(item, teachers) if policy == "truncate" else None
