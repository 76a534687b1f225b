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
    tokens do not spell ``raw``, the label's token has no alternatives, labels share that token)."""
    if not tokens:
        return None
    m = _LABEL_VALUE.search(raw)
    if not m:
        return None
    texts = [str(_get(t, "token") or "") for t in tokens]
    if "".join(texts) != raw:
        return None
    start = m.end()
    pos = 0
    for tok, text in zip(tokens, texts):
        if pos <= start < pos + len(text):
            before = raw[pos:start]  # the part of this token that precedes the label's first character
            alts = _get(tok, "top_logprobs") or []
            if not alts:
                return None
            mass = {label: 0.0 for label in labels}
            for alt in alts:
                alt_text = str(_get(alt, "token") or "")
                lp = _get(alt, "logprob")
                if lp is None or not alt_text.startswith(before):
                    continue
                piece = alt_text[len(before):]
                if not piece:
                    continue
                matches = [lab for lab in labels if lab.startswith(piece) or piece.startswith(lab)]
                if len(matches) == 1:
                    mass[matches[0]] += math.exp(float(lp))
                elif len(matches) > 1:
                    longest = [lab for lab in matches if piece.startswith(lab)]
                    if len(longest) != 1:
                        return None  # the labels share this token: it cannot tell them apart
                    mass[longest[0]] += math.exp(float(lp))
            total = sum(mass.values())
            if total <= 0:
                return None
            return {label: v / total for label, v in mass.items()}
        pos += len(text)
    return None
