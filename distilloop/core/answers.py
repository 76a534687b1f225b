"""The answer space of a campaign: a fixed label set, or open numeric answers (math word problems).

Every part that needs to know what an answer is asks the campaign's :class:`AnswerSpace` instead of branching on
"is this numeric?": how a teacher's reply is normalised, which labels an item's votes are counted over, what a
reviewer's certain answer looks like as a soft label, how a student is scored, and what the reviewer's control
is. A part that needs a label set (a classifying student, probability-based strategies, Dawid-Skene,
calibration, macro-F1) declares ``needs = {"label_set"}``; :class:`LabelSet` provides it, :class:`OpenNumber`
does not, and the campaign refuses the mismatch before anything is written.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from distilloop.core.types import Vote

#: separators between two word characters ("card arrival", "card_arrival", "card-arrival"; not the sign of "-1")
_SEPARATORS = re.compile(r"(?<=\w)[\s_-]+(?=\w)")


def normalize_label(value: Any, labels: Sequence[str]) -> str | None:
    """Map a reply's label onto the label set: exact, then case-insensitive, then with spaces, ``_`` and ``-`` taken
    as one separator (where no two labels then read the same), then an option letter like "(B)"."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text in labels:
        return text
    folded = {x.casefold(): x for x in labels}
    key = text.strip(" .\"'`").casefold()
    if key in folded:
        return folded[key]
    # "card arrival" for the label card_arrival (a server without structured output, a model that spells it out):
    # separators (spaces, _ and -) count as one, where that leaves no two labels the same
    spaced = Counter(_SEPARATORS.sub(" ", x.casefold()) for x in labels)
    loose = {_SEPARATORS.sub(" ", x.casefold()): x for x in labels}
    wanted = _SEPARATORS.sub(" ", key)
    if spaced.get(wanted) == 1:
        return loose[wanted]
    m = re.match(r"^\(?([A-Za-z0-9]+)\)?[.):]?(\s|$)", text)
    if m and m.group(1) in labels:
        return m.group(1)
    return None


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


def normalize_number(value: Any) -> str | None:
    """The canonical string of a numeric answer, or None: ``18``, ``18.0``, ``"18"``, ``"$1,800"`` and
    ``"18 apples"`` give ``"18"`` and ``"1800"``; ``2.50`` gives ``"2.5"``; numbers are rounded to six decimal
    places, so float noise (``17.000000000000004``) does not split a vote. A string holding two different
    numbers (``"3 or 4"``) is ambiguous and gives None, as do booleans, NaN and infinities."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        text = repr(value)
    elif isinstance(value, str):
        found = {m.replace(",", "") for m in _NUMBER.findall(value)}
        if len(found) != 1:
            return None
        text = found.pop()
    else:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if abs(number) < 10**15:  # float noise such as 17.000000000000004 (an answer computed in floats)
        number = number.quantize(Decimal("0.000001"))
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def as_json_number(number: str) -> int | float:
    """A normalised number string ("18", "2.5") as the JSON number a reply carries."""
    value = float(number)
    return int(value) if value.is_integer() and "." not in number else value


def answer_support(votes: Sequence[Vote]) -> tuple[str, ...]:
    """The distinct answers of an item's valid votes, in the order the votes came (ties go to the earlier
    teacher): the label set an open (numeric) answer is counted over."""
    return tuple(dict.fromkeys(v.label for v in votes if v.valid and v.label is not None))  # type: ignore[misc]


class AnswerSpace:
    """What an answer is. Subclasses: :class:`LabelSet` and :class:`OpenNumber`."""

    kind = "abstract"
    #: the capabilities this space gives the parts of a campaign ("label_set" for a fixed set of labels)
    provides: frozenset[str] = frozenset()
    #: the reply field that holds the answer
    answer_key = "label"
    #: the metrics a student is scored on
    metric_names: tuple[str, ...] = ("accuracy",)
    #: whether a rationale can be read as arguing for one answer (it names one label of the set); a working that
    #: reaches a number names many numbers on the way
    rationales_take_sides = True

    def __init__(self, labels: Sequence[str] = ()) -> None:
        self.labels: tuple[str, ...] = tuple(labels)

    @property
    def has_label_set(self) -> bool:
        return "label_set" in self.provides

    def normalize(self, value: Any) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def support(self, votes: Sequence[Vote]) -> tuple[str, ...]:
        """The labels an item's votes are counted over."""
        return self.labels

    def certain(self, label: str) -> dict[str, float]:
        """The soft label of an answer known for sure (a person's)."""
        return {x: float(x == label) for x in self.labels or (label,)}

    def metrics(self, gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
        """Accuracy (and, with a label set, macro-F1) of ``pred`` against ``gold``, with ``n``."""
        n = len(gold)
        acc = sum(a == b for a, b in zip(gold, pred, strict=True)) / n if n else float("nan")
        return {"accuracy": acc, "n": n}

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    #: how a reviewer gives an answer: "choices" (one of the labels) or "number" (a numeric input)
    review_control = "choices"

    def review_value(self, label: str) -> dict[str, Any]:
        """The value a review control is pre-filled with (Label Studio's result ``value`` shape)."""
        return {"choices": [label]}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnswerSpace) and (self.kind, self.labels) == (other.kind, other.labels)

    def __hash__(self) -> int:
        return hash((self.kind, self.labels))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.labels)!r})" if self.labels else f"{type(self).__name__}()"


class LabelSet(AnswerSpace):
    """One label of a fixed set (classification)."""

    kind = "label"
    provides = frozenset({"label_set"})
    metric_names = ("accuracy", "macro_f1")

    def normalize(self, value: Any) -> str | None:
        return normalize_label(value, self.labels)

    def metrics(self, gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
        out = super().metrics(gold, pred)
        scores = []
        for label in self.labels:
            tp = sum(1 for a, b in zip(gold, pred, strict=True) if a == label and b == label)
            fp = sum(1 for a, b in zip(gold, pred, strict=True) if a != label and b == label)
            fn = sum(1 for a, b in zip(gold, pred, strict=True) if a == label and b != label)
            denom = 2 * tp + fp + fn
            scores.append(2 * tp / denom if denom else 0.0)
        out["macro_f1"] = sum(scores) / len(scores) if scores else float("nan")
        return out

    def describe(self) -> str:
        return f"labels {list(self.labels)}"


class OpenNumber(AnswerSpace):
    """An open numeric answer, compared in canonical form (:func:`normalize_number`); no label set: an item's
    candidates are the numbers its teachers gave."""

    kind = "number"
    answer_key = "answer"
    rationales_take_sides = False

    def __init__(self, labels: Sequence[str] = ()) -> None:
        super().__init__(())

    review_control = "number"

    def normalize(self, value: Any) -> str | None:
        return normalize_number(value)

    def review_value(self, label: str) -> dict[str, Any]:
        return {"number": as_json_number(label)}

    def support(self, votes: Sequence[Vote]) -> tuple[str, ...]:
        return answer_support(votes)

    def describe(self) -> str:
        return "numeric answers"


def answer_space(kind: str, labels: Sequence[str] = ()) -> AnswerSpace:
    """The answer space of a campaign's ``[campaign] answer`` kind ("label" or "number") and label set."""
    if kind == "number":
        return OpenNumber()
    if kind == "label":
        return LabelSet(labels)
    raise ValueError(f"answer must be \"label\" or \"number\", got {kind!r}")
