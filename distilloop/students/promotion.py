"""Incremental refresh: promote a new student only when it does not regress on the campaign's evaluation
reference, keep every version, export a version to a directory, and roll back.

The campaign runner calls :func:`should_promote` with the metrics both students got on the frozen
evaluation split, and :class:`StudentRegistry` to save, record, export and roll back versions in the store.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.errors import StudentError, UserInputError
from distilloop.students.base import Student

#: metrics where lower is better; every other metric is "higher is better"
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "error", "brier"})


def evaluate(student: Student, texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1, log loss and error of ``student`` on a labeled split."""
    if len(texts) != len(labels) or not texts:
        raise StudentError(f"evaluation needs as many labels as texts (>0), got {len(texts)} texts "
                           f"and {len(labels)} labels")
    proba = np.asarray(student.predict_proba(list(texts)), dtype=float)
    classes = list(student.classes_)
    pred = [classes[i] for i in proba.argmax(axis=1)]
    acc = float(np.mean([p == y for p, y in zip(pred, labels)]))
    f1s = []
    for c in sorted(set(labels) | set(pred)):
        tp = sum(p == c and y == c for p, y in zip(pred, labels))
        fp = sum(p == c and y != c for p, y in zip(pred, labels))
        fn = sum(p != c and y == c for p, y in zip(pred, labels))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    idx = [classes.index(y) if y in classes else -1 for y in labels]
    p_true = np.array([proba[i, j] if j >= 0 else 0.0 for i, j in enumerate(idx)])
    return {"accuracy": acc, "macro_f1": float(np.mean(f1s)), "error": 1.0 - acc,
            "log_loss": float(-np.mean(np.log(np.clip(p_true, 1e-12, 1.0))))}


def should_promote(new_metrics: Mapping[str, float], current_metrics: Mapping[str, float] | None, *,
                   metric: str = "accuracy", margin: float = 0.0, higher_is_better: bool | None = None) -> bool:
    """The one promotion rule: a new student replaces the active one unless it scores worse on ``metric`` by more
    than ``margin`` (the regression the campaign tolerates; 0 by default, so a tie promotes the newer student,
    which has seen more labels).

    With no current student (the first round), or a current one never scored on ``metric``, the new one is
    promoted. ``higher_is_better`` defaults from the metric's name (``log_loss``, ``ece``, ``error``, ``brier``
    are lower-is-better).
    """
    if margin < 0:
        raise StudentError(f"margin must be >= 0, got {margin}; 0 promotes a student that scores at least as well")
    if metric not in new_metrics:
        raise StudentError(f"metric '{metric}' is not in the new student's metrics {sorted(new_metrics)}; "
                           "set the promotion metric to one the evaluation computes")
    if current_metrics is None or metric not in current_metrics:
        return True
    hib = metric not in LOWER_IS_BETTER if higher_is_better is None else higher_is_better
    gain = new_metrics[metric] - current_metrics[metric]
    if not hib:
        gain = -gain
    return gain >= -margin - 1e-12


class StudentRegistry:
    """Every student version of a campaign: saved under ``root/<version>``, recorded in the store.

    ``store`` is a :class:`distilloop.storage.store.Store` (``record_student``, ``students``,
    ``active_student``, ``set_active_student``).
    """

    def __init__(self, store: Any, root: str | Path) -> None:
        self.store = store
        self.root = Path(root)

    def register(self, student: Student, *, round_no: int, metrics: Mapping[str, float], n_train: int,
                 metric: str = "accuracy", margin: float = 0.0) -> bool:
        """Save and record ``student``; promote it (make it active) by :func:`should_promote`."""
        if not student.is_fitted():
            raise StudentError("only a fitted student can be registered; call fit() first")
        current = self.store.active_student()
        promote = should_promote(metrics, current["metrics"] if current else None, metric=metric, margin=margin)
        path = student.save(self.root / student.version_)
        self.store.record_student(version=student.version_, round_no=round_no, kind=student.kind,
                                  path=str(path), parent=current["version"] if current else None,
                                  metrics=dict(metrics), n_train=n_train,
                                  train_seconds=float(getattr(student, "fit_seconds_", 0.0)), promoted=promote)
        return promote

    def _row(self, version: str | None) -> dict[str, Any]:
        rows = self.store.students()
        if version is None:
            row = self.store.active_student()
            if row is None:
                raise UserInputError("no active student yet: run a round first (`distilloop run`)")
            return row
        for r in rows:
            if r["version"] == version:
                return r
        raise UserInputError(f"no student version '{version}'; the versions: {', '.join(r['version'] for r in rows)} "
                             "(`distilloop students` lists them)")

    def load(self, version: str | None = None) -> Student:
        """The student of ``version`` (default: the active one)."""
        return Student.load(self._row(version)["path"])

    def export(self, dest: str | Path, version: str | None = None) -> Path:
        """Copy a version's directory to ``dest``: load it with ``Student.load(dest)``; HF students also
        keep a ``hf/`` folder that ``transformers.AutoModel*.from_pretrained(dest / "hf")`` reads."""
        src = Path(self._row(version)["path"])
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise UserInputError(f"export target {dest} exists and is not an empty folder; choose a new directory")
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return dest

    def rollback(self, to: str | None = None) -> str:
        """Make an earlier version active: ``to``, or the promoted version before the active one."""
        if to is not None:
            self._row(to)
            self.store.set_active_student(to)
            return to
        promoted = [r["version"] for r in self.store.students() if r["promoted"]]
        active = self.store.active_student()
        if active is None or active["version"] not in promoted or promoted.index(active["version"]) == 0:
            raise UserInputError(f"nothing to roll back to: the promoted versions are {', '.join(promoted) or 'none'}, the "
                                 f"active one is {active['version'] if active else 'none'}; name a version with "
                                 "--rollback VERSION (`distilloop students` lists them)")
        previous = promoted[promoted.index(active["version"]) - 1]
        self.store.set_active_student(previous)
        return previous
