"""The evaluation reference a student is scored and promoted on, frozen across refreshes, and its score on the
newest labels.

A campaign keeps going as data and guidelines change (``distilloop add``, ``distilloop relabel``): every student
trained after a change must be compared with the active one on the *same* rows, or a refresh that regresses could
be promoted because the evaluation set moved under it. :func:`frozen_reference` is the one place that says what
the reference is: today the gold-labeled rows of ``[evaluation] split`` as they were when the campaign first
froze it (rows added to that split later are not part of it). Other references (a teacher-labeled held-out set,
a human audit set) plug in here: whatever it returns, training scores every student on it and promotes by
:func:`~distilloop.students.promotion.should_promote`.

"Newest data" is what the student before could not have seen: the labels accepted since the last promoted
student. Each new student records its score on them beside the previous student's, so ``distilloop students``
shows what a refresh gained on new data apart from what it kept on the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distilloop.core.types import Example, render_input
from distilloop.errors import DistilloopError
from distilloop.loop.env import Env
from distilloop.students.base import Student


@dataclass(frozen=True)
class Reference:
    """The rows every student of a campaign is scored on, and how they were chosen."""

    kind: str  # "gold": the data's gold labels
    split: str
    cutoff: int  # rows of ``split`` stored before this position
    examples: list[Example] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """What identifies the reference (recorded with each student: equal descriptions, comparable scores)."""
        return {"kind": self.kind, "split": self.split, "cutoff": self.cutoff, "n": len(self.examples)}


def frozen_reference(env: Env) -> Reference:
    """The campaign's evaluation reference: the gold rows of ``[evaluation] split`` as frozen in the store (frozen
    now, the first time it is asked for)."""
    split = env.config.evaluation.split
    cutoff = env.store.freeze_evaluation(split)
    return Reference("gold", split, cutoff, [e for e in env.store.examples_before(split, cutoff) if e.gold])


def score(env: Env, student: Student, reference: Reference) -> dict[str, float]:
    """``student``'s metrics on the reference (empty when it has no row)."""
    rows = reference.examples
    if not rows:
        return {}
    return env.parts.space.metrics([str(e.gold) for e in rows], student.predict([e.text for e in rows]))


def active_scores(env: Env, active: dict[str, Any] | None, reference: Reference) -> dict[str, Any] | None:
    """The active student's metrics on ``reference``: as recorded when it was scored on the same reference, else
    scored again now (a student of a store written before references were frozen, or of another reference)."""
    if active is None:
        return None
    if active.get("reference") == reference.describe():
        return dict(active["metrics"])
    try:
        return score(env, Student.load(active["path"]), reference)
    except (DistilloopError, OSError) as exc:  # its files are gone: the new student cannot be compared with it
        env.progress.warn(f"active student {active['version']} could not be scored again ({exc}); "
                          "the new student is compared with its recorded metrics")
        return dict(active["metrics"])


def newest(env: Env, student: Student, previous: Student | None) -> dict[str, Any]:
    """The new student's and the previous one's metrics on the labels accepted since the last promoted student."""
    promoted = [s for s in env.store.students() if s["promoted"]]
    since = promoted[-1] if promoted else None
    rows = env.store.labels_since(since["created_at"] if since else None)
    out: dict[str, Any] = {"since": since["version"] if since else None, "n": len(rows)}
    if not rows:
        return out
    texts, labels = [render_input(r["fields"]) for r in rows], [r["label"] for r in rows]
    out["metrics"] = env.parts.space.metrics(labels, student.predict(texts))
    if previous is not None:
        out["previous"] = env.parts.space.metrics(labels, previous.predict(texts))
    return out
