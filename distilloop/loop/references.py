"""Evaluation references: what a student is scored against, named, so that a campaign on unlabeled data (the
usual case) still knows whether its student got better.

A reference is a set of items with the answers taken as right, each named in every report:

- ``gold:dev`` and ``gold:test``: the gold labels of a split of the data file;
- ``audit``: a seeded sample of the pool sent once to the reviewer (people, in Label Studio), whose answers
  outrank the teachers';
- ``teachers``: a seeded held-out sample of the pool labeled by the teacher ensemble once, at the start, its cost
  charged to the budget; kept out of selection and training.

Decisions (promotion, ``[rounds] target``) use the best reference available, in the order of :data:`TRUST`: the
test split only when nothing else exists, so the reported test score is not the one the campaign chose its
student on. A score carries its reference's majority-class baseline and a 95% Wilson interval.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distilloop.core.answers import AnswerSpace
from distilloop.core.types import Example
from distilloop.storage.store import Store

#: decision order: the first available reference decides (``gold:test`` only as the last resort)
TRUST = ("gold:dev", "audit", "teachers", "gold:test")
#: answers an audit set needs before it can decide
MIN_AUDIT = 20
DESCRIBE = {"gold:dev": "gold labels of the dev split", "gold:test": "gold labels of the test split",
            "gold:dev added": "gold labels of dev rows added later (distilloop add)",
            "gold:test added": "gold labels of test rows added later (distilloop add)",
            "audit": "a human audit set", "teachers": "a held-out set labeled by the teacher ensemble"}


@dataclass(frozen=True)
class Reference:
    name: str
    ids: list[str]
    labels: list[str]

    def describe(self) -> str:
        return f"{DESCRIBE.get(self.name, self.name)} (n={len(self.ids)})"


def available(store: Store, examples: dict[str, Example]) -> dict[str, Reference]:
    """Every reference the campaign has now, by name. A gold split is frozen when rows are first added to the
    campaign (``distilloop add``): rows added to it later are not part of its reference, so every student of a
    living campaign is scored on the same rows; they are a reference of their own (``gold:test added``), scored
    and shown (how the student does on the new data), never decided on. A split frozen with no gold row (a
    store from before a split was frozen only with gold) has nothing to keep: its gold rows are its reference."""
    out: dict[str, Reference] = {}
    for split in ("dev", "test"):
        cutoff = store.evaluation_cutoff(split)
        every = [e for e in examples.values() if e.split == split and e.gold is not None]
        rows = [e for e in (store.examples_before(split, cutoff) if cutoff is not None else every)
                if e.split == split and e.gold is not None] or every  # frozen empty: nothing to keep
        if rows:
            out[f"gold:{split}"] = Reference(f"gold:{split}", [e.id for e in rows], [str(e.gold) for e in rows])
        frozen = {e.id for e in rows}
        added = [e for e in every if e.id not in frozen]  # rows of the split added since: reported apart
        if added:
            name = f"gold:{split} added"
            out[name] = Reference(name, [e.id for e in added], [str(e.gold) for e in added])
    for name in ("audit", "teachers"):
        answered = store.reference_labels(name)
        if answered and (name != "audit" or len(answered) >= MIN_AUDIT):
            out[name] = Reference(name, list(answered), list(answered.values()))
    return out


def decision(wanted: str, refs: dict[str, Reference]) -> Reference | None:
    """The reference decisions use: ``wanted`` (``[evaluation] reference``) when it is available, else (``auto``,
    or a reference that is not there yet) the most trusted one available."""
    if wanted == "gold":
        wanted = "gold:dev" if "gold:dev" in refs else "gold:test"
    if wanted in refs:
        return refs[wanted]
    return next((refs[n] for n in TRUST if n in refs), None)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``k / n``."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def baseline(labels: Sequence[str]) -> float:
    """The majority-class baseline: the accuracy of always answering the reference's most common label."""
    return Counter(labels).most_common(1)[0][1] / len(labels) if labels else float("nan")


def score(predictions: Sequence[str], ref: Reference, space: AnswerSpace) -> dict[str, Any]:
    """The student's metrics on ``ref`` (``predictions`` in ``ref.ids`` order), the majority-label baselines
    (``baseline``: its accuracy; ``baseline_macro_f1``) and the accuracy's 95% interval."""
    m = space.metrics(ref.labels, predictions)
    k = sum(a == b for a, b in zip(ref.labels, predictions, strict=True))
    lo, hi = wilson(k, len(ref.labels))
    out = {**m, "baseline": baseline(ref.labels), "ci_low": lo, "ci_high": hi, "labels_sha": labels_sha(ref)}
    if "macro_f1" in m and ref.labels:  # the macro-F1 of always answering the majority label (not its accuracy)
        major = Counter(ref.labels).most_common(1)[0][0]
        out["baseline_macro_f1"] = space.metrics(ref.labels, [major] * len(ref.labels))["macro_f1"]
    return out


def labels_sha(ref: Reference) -> str:
    """A fingerprint of a reference's items and labels: a score recorded on other labels of the same items (the
    teachers' held-out set labeled again after the label set grew) is not compared with one on these."""
    return hashlib.sha256(json.dumps([ref.ids, ref.labels]).encode()).hexdigest()[:16]


def baseline_key(metric: str) -> str:
    """The key of a score's majority-label baseline for ``metric``: ``baseline`` (accuracy) or ``baseline_<metric>``
    (the majority label's macro-F1 is far below its accuracy: 0.46 against 0.85 at 85/15)."""
    return "baseline" if metric == "accuracy" else f"baseline_{metric}"


def choose(pool_ids: Sequence[str], n: int, rng: Any) -> list[str]:
    """A seeded sample of ``n`` pool items (all of them when the pool is smaller), in pool order."""
    if n >= len(pool_ids):
        return list(pool_ids)
    picked = set(rng.choice(len(pool_ids), size=n, replace=False).tolist())
    return [i for k, i in enumerate(pool_ids) if k in picked]


def decision_score(metrics: dict[str, Any], metric: str) -> float | None:
    """A student's ``metric`` on the reference its campaign decided on (the flat metrics of a student recorded
    before references existed)."""
    refs = metrics.get("refs")
    if refs is None:
        return metrics.get(metric)
    return (refs.get(metrics.get("reference")) or {}).get(metric)


def newest(store: Store, space: AnswerSpace, student: Any, previous: Any) -> dict[str, Any]:
    """The new student's and the previous one's metrics on the labels accepted since the last promoted student:
    what a refresh gained on new data, apart from what it kept on the reference."""
    from distilloop.core.types import render_input

    promoted = [s for s in store.students() if s["promoted"]]
    since = promoted[-1] if promoted else None
    rows = store.labels_since(since["created_at"] if since else None)
    out: dict[str, Any] = {"since": since["version"] if since else None, "n": len(rows)}
    if not rows:
        return out
    texts, labels = [render_input(r["fields"]) for r in rows], [r["label"] for r in rows]
    out["metrics"] = space.metrics(labels, student.predict(texts))
    if previous is not None:
        out["previous"] = space.metrics(labels, previous.predict(texts))
    return out
