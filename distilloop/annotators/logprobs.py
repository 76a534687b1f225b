"""A teacher's label distribution from the token logprobs an API returns (OpenAI chat and Responses, vLLM,
llama.cpp's server).

The answer is JSON (``{"rationale": ..., "label": "positive"}``): the token where the label's value begins is
found in the returned tokens, and its ``top_logprobs`` alternatives are mapped to labels whose text starts
with the alternative (after the part of the token that precedes the value, e.g. an opening quote). The mass
of each label is normalised over the label set; labels absent from the top alternatives get zero. This is
the idea of :mod:`distilloop.annotators.local` (next-token distribution at the label's first token) on
what a remote API gives back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

_LABEL_VALUE = re.compile(r'"label"\s*:\s*"')


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def label_distribution(tokens: Sequence[Any] | None, raw: str, labels: Sequence[str]) -> dict[str, float] | None:
    """``{label: probability}`` over ``labels``, or ``None`` where the logprobs cannot tell (no tokens, the
    tokens do not spell ``raw``, the label's token has no alternatives).

    Labels that begin alike (``card arrival``, ``card payment``; banking77's ``card_...``) share their first
    token, which alone cannot tell them apart (such a teacher had no confidence at all: a cascade asked its next
    teacher about every item, and calibration skipped it). The answer's own tokens are followed to where its label
    parts from the others: each step's alternatives weigh the labels they lead to, the one the answer took is
    followed on (an alternative that leads to several labels off that path is shared among them evenly)."""
    if not tokens:
        return None
    m = _LABEL_VALUE.search(raw)
    if not m:
        return None
    texts = [str(_get(t, "token") or "") for t in tokens]
    if "".join(texts) != raw:
        return None
    start = m.end()
    mass = dict.fromkeys(labels, 0.0)
    weight, prefix, pos = 1.0, "", 0
    for tok, text in zip(tokens, texts):
        end, at = pos + len(text), pos
        pos = end
        if end <= start:
            continue
        before = raw[at:start] if at < start else ""  # the part of the first token that precedes the label
        taken = text[len(before):]
        alts = _get(tok, "top_logprobs") or []
        if not alts:
            return None
        live = [lab for lab in labels if lab.startswith(prefix)]
        followed: tuple[float, list[str]] | None = None
        for alt in alts:
            alt_text, lp = str(_get(alt, "token") or ""), _get(alt, "logprob")
            if lp is None or not alt_text.startswith(before) or not alt_text[len(before):]:
                continue
            piece = alt_text[len(before):]
            reach = _reach(prefix + piece, live)
            if not reach:
                continue
            if piece == taken:
                followed = (weight * math.exp(float(lp)), reach)
                continue
            for lab in reach:
                mass[lab] += weight * math.exp(float(lp)) / len(reach)
        if followed is None:
            break  # the token taken is not among its alternatives: what the others weigh is all there is
        weight, reach = followed
        if len(reach) == 1:
            mass[reach[0]] += weight
            break
        prefix += taken
    total = sum(mass.values())
    if total <= 0:
        return None
    return {label: v / total for label, v in mass.items()}


def _reach(text: str, labels: Sequence[str]) -> list[str]:
    """The labels an answer's value that begins ``text`` can still be: one the text closes (its quote follows:
    ``intent_1"``) is the label; else every label the text begins (``intent_1`` begins intent_1 and intent_17)."""
    done = [lab for lab in labels if text.startswith(lab + '"')]
    if done:
        return [max(done, key=len)]
    return [lab for lab in labels if lab.startswith(text)]
