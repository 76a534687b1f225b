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
#: a "Label: positive" line of a reply written as keyed lines (markdown bold and list marks allowed around the key)
_KEYED = re.compile(r"^[\s>*#_-]*(label|answer|rationale|reasoning|explanation|confidence)[\s*_]*[:=][\s*_]*(.*?)\s*$",
                    re.I | re.M)
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)


def _keyed_answer(raw: str, labels: tuple[str, ...], answer: str) -> Parsed | None:
    """The answer of a reply written as keyed lines (``Label: positive`` then ``Rationale: ...``, in either
    order, markdown or not) instead of the JSON asked for: what an instruct model answers when its server does not
    hold it to the format. None where the reply has no single label (or answer) line; a line whose value is not a
    label of the set (not one number) is an invalid answer that says so."""
    text = _THINK.sub("", raw)
    keyed = list(_KEYED.finditer(text))
    fields: dict[str, list[str]] = {}
    for m, after in zip(keyed, [*(k.start() for k in keyed[1:]), len(text)]):
        key = {"reasoning": "rationale", "explanation": "rationale"}.get(m.group(1).lower(), m.group(1).lower())
        value = m.group(2) if key != "rationale" else text[m.start(2):after]  # a rationale may run over lines
        fields.setdefault(key, []).append(value.strip().strip("*_`").strip())
    order = ("answer", "label") if answer == "number" else ("label", "answer")
    given = fields.get(order[0]) or fields.get(order[1]) or []
    if len(given) != 1:
        return None
    if answer == "number":
        number = given[0].replace("$", "").strip()
        value = normalize_number(number) if _NUMBER_ONLY.fullmatch(number) else None
        if value is None:
            raise InvalidAnswer(f"answer {given[0]!r} is not a number")
    else:
        value = normalize_label(given[0], labels)
        if value is None:
            raise InvalidAnswer(f"label {given[0]!r} is not in the label set {list(labels)}")
    rationale = next(iter(fields.get("rationale", [])), "") or None
    conf = next(iter(fields.get("confidence", [])), "").rstrip("%")
    confidence = _confidence(float(conf)) if re.fullmatch(r"\d+(\.\d+)?", conf) else None
    return Parsed(value, rationale, confidence)


def _confidence(conf: float) -> float | None:
    """A reported confidence as a probability: 0-1 as it is, a percentage (above 1) divided by 100."""
    if not math.isfinite(conf):
        return None
    return min(1.0, max(0.0, conf / 100 if conf > 1 else conf))


def parse_answer(raw: str | dict[str, Any], labels: tuple[str, ...], answer: str = "label",
                 student_steps: Sequence[str] | None = None) -> Parsed:
    """Parse ``raw`` (text or an already-decoded object); raise :class:`InvalidAnswer` if the label is not
    in ``labels`` (or, with ``answer="number"``, if the ``answer`` field is not one number). A revision of the
    student's explanation (``student_steps``, a reply with ``first_wrong_step``: ELAD) gives the spliced
    rationale (:func:`~distilloop.annotators.prompts.revised_rationale`)."""
    bare = None if isinstance(raw, dict) else _bare_answer(raw, labels, answer)
    if bare is not None:  # the answer alone ("positive", "42"): a server that ignored the JSON format asked for
        return Parsed(bare, None, None)
    try:
        obj = raw if isinstance(raw, dict) else extract_object(raw)
    except InvalidAnswer:
        keyed = None if isinstance(raw, dict) else _keyed_answer(raw, labels, answer)
        if keyed is None:
            raise
        return keyed
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
    if isinstance(conf, int | float) and not isinstance(conf, bool):
        confidence = _confidence(float(conf))
    return Parsed(label, rationale, confidence)
