"""Parsing a teacher's reply into a label from the label set (or, for numeric tasks, a number), a rationale
and an optional confidence."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distilloop.core.answers import normalize_label, normalize_number
from distilloop.errors import InvalidAnswer

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    label: str
    rationale: str | None
    confidence: float | None


def extract_object(raw: str) -> dict[str, Any]:
    text = raw.strip()
    if text.startswith("```"):
        text = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", text)
    # strict=False: models often put raw newlines inside a JSON string (a multi-line rationale); that is the
    # only leniency, the object must still parse
    try:
        obj = json.loads(text, strict=False)
    except json.JSONDecodeError:
        m = _OBJECT.search(text)
        if not m:
            raise InvalidAnswer(f"reply is not JSON: {raw[:120]!r}") from None
        try:
            obj = json.loads(m.group(0), strict=False)
        except json.JSONDecodeError:
            raise InvalidAnswer(f"reply is not valid JSON: {raw[:120]!r}") from None
    if not isinstance(obj, dict):
        raise InvalidAnswer(f"reply must be a JSON object, got {type(obj).__name__}")
    return obj


def _bare_answer(raw: str, labels: tuple[str, ...], answer: str) -> str | None:
    """The reply's answer where the whole reply is nothing but one label of the set (or one number): what a model
    answers a label-only question with when its server does not hold it to the JSON format."""
    text = raw.strip().strip("*`").strip()
    if not text or "\n" in text or text.startswith(("{", "[")):
        return None
    return normalize_number(text) if answer == "number" and _NUMBER_ONLY.fullmatch(text) else (
        normalize_label(text, labels) if answer != "number" else None)


_NUMBER_ONLY = re.compile(r"[-+]?(\d[\d,]*(\.\d+)?|\.\d+)\.?")


def parse_answer(raw: str | dict[str, Any], labels: tuple[str, ...], answer: str = "label",
                 student_steps: Sequence[str] | None = None) -> Parsed:
    """Parse ``raw`` (text or an already-decoded object); raise :class:`InvalidAnswer` if the label is not
    in ``labels`` (or, with ``answer="number"``, if the ``answer`` field is not one number). A revision of the
    student's explanation (``student_steps``, a reply with ``first_wrong_step``: ELAD) gives the spliced
    rationale (:func:`~distilloop.annotators.prompts.revised_rationale`)."""
    bare = None if isinstance(raw, dict) else _bare_answer(raw, labels, answer)
    if bare is not None:  # the answer alone ("positive", "42"): a server that ignored the JSON format asked for
        return Parsed(bare, None, None)
    obj = raw if isinstance(raw, dict) else extract_object(raw)
    if answer == "number":
        key = "answer" if "answer" in obj else "label"
        if key not in obj:
            raise InvalidAnswer(f"reply has no 'answer' field: {json.dumps(obj)[:120]}")
        label = normalize_number(obj[key])
        if label is None:
            raise InvalidAnswer(f"answer {obj[key]!r} is not a number")
    else:
        if "label" not in obj:
            raise InvalidAnswer(f"reply has no 'label' field: {json.dumps(obj)[:120]}")
        label = normalize_label(obj["label"], labels)
        if label is None:
            raise InvalidAnswer(f"label {obj['label']!r} is not in the label set {list(labels)}")
    rationale = obj.get("rationale")
    rationale = str(rationale).strip() if rationale not in (None, "") else None
    if student_steps and "first_wrong_step" in obj:
        from distilloop.annotators.prompts import revised_rationale

        rationale = revised_rationale(student_steps, obj["first_wrong_step"], rationale)
    conf = obj.get("confidence")
    confidence = None
    if isinstance(conf, int | float) and not isinstance(conf, bool) and math.isfinite(conf):
        confidence = min(1.0, max(0.0, float(conf) / 100 if conf > 1 else float(conf)))
    return Parsed(label, rationale, confidence)
