"""Student versions: every trained student with its metrics, which one is active, and where its files are.

Paths are stored relative to the campaign's folder (the store's directory) where they lie inside it, so a
campaign folder can be moved and still resumes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from distilloop.errors import StoreError
from distilloop.storage.base import StoreBase, loads, now


class StudentsPart(StoreBase):
    path: Path | None

    def _rel(self, path: str) -> str:
        if self.path is None:
            return path
        base = self.path.resolve().parent
        p = Path(path).resolve()
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return str(p)

    def student_path(self, stored: str) -> Path:
        """Where a stored student path points now: relative paths are under the store's folder; an absolute one
        (written before paths were stored relative) that no longer exists is looked for in the same place under
        the store's folder, so a campaign folder that was moved still finds its students."""
        p = Path(stored)
        if self.path is None:
            return p
        base = self.path.resolve().parent
        if not p.is_absolute():
            return base / p
        moved = base / p.parent.name / p.name
        return p if p.exists() or not moved.exists() else moved

    def record_student(self, *, version: str, round_no: int, kind: str, path: str, parent: str | None,
                       metrics: dict[str, Any], n_train: int, train_seconds: float, promoted: bool,
                       reference: dict[str, Any] | None = None, newest: dict[str, Any] | None = None) -> None:
        """Record a trained student: its metrics on the evaluation ``reference`` (described by it), and on the
        labels new since the student before it (``newest``); the guideline and data version it was trained at."""
        with self.db.atomic():
            if promoted:
                self.db.execute("update students set active = 0")
            self.db.table("students").upsert({
                "version": version, "round": round_no, "kind": kind, "path": self._rel(path), "parent": parent,
                "metrics": json.dumps(metrics), "n_train": n_train, "train_seconds": train_seconds,
                "promoted": int(promoted), "active": int(promoted), "created_at": now(),
                "reference": json.dumps(reference) if reference is not None else None,
                "newest": json.dumps(newest) if newest is not None else None,
                "guideline": self._scalar("select max(version) from guidelines"),
                "data_version": self._scalar("select max(version) from data_versions")}, pk="version")

    def add_student_scores(self, version: str, refs: dict[str, Any]) -> None:
        """Add scores on more references to a recorded student's metrics (the active student kept by a round,
        scored on gold rows added since it was)."""
        with self.db.atomic():
            row = next(iter(self.db.query("select metrics from students where version = ?", [version])), None)
            if row is None:
                raise StoreError(f"no student version '{version}'; see `distilloop students` for the versions")
            metrics = loads(row["metrics"], {})
            metrics["refs"] = {**(metrics.get("refs") or {}), **refs}
            self.db.execute("update students set metrics = ? where version = ?", [json.dumps(metrics), version])

    def students(self) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from students order by created_at, round"))
        for r in rows:
            r["metrics"] = loads(r["metrics"], {})
            r["reference"] = loads(r.get("reference"))
            r["newest"] = loads(r.get("newest"))
            r["path"] = os.fspath(self.student_path(r["path"]))
        return rows

    def student_of_round(self, round_no: int) -> dict[str, Any] | None:
        rows = [s for s in self.students() if s["round"] == round_no]
        return rows[-1] if rows else None

    def active_student(self) -> dict[str, Any] | None:
        rows = [r for r in self.students() if r["active"]]
        return rows[-1] if rows else None

    def set_active_student(self, version: str) -> None:
        with self.db.atomic():
            if not list(self.db.query("select 1 from students where version = ?", [version])):
                raise StoreError(f"no student version '{version}'; see `distilloop students` for the versions")
            self.db.execute("update students set active = 0")
            self.db.execute("update students set active = 1 where version = ?", [version])
