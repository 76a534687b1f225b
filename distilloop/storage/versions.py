"""Data and guideline versions: each addition of rows to a campaign (when, how many, from which file and its
hash), each guideline the teachers were asked under (the task and every teacher's answer-changing settings),
and the read models that relabeling and the reports need of them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from distilloop.core.types import Example
from distilloop.storage.base import StoreBase, loads, now

#: ids looked up per query (SQLite's default limit on bound parameters is 32766)
CHUNK = 900


@dataclass(frozen=True)
class LabelState:
    """One accepted label as relabeling sees it: who gave it, under which guideline, and the verdict behind it."""

    example_id: str
    label: str
    source: str
    guideline: int | None
    round: int | None  # the round the item was (last) annotated in
    agreement: float | None


class VersionsPart(StoreBase):
    _insert_examples: Any  # ExamplesPart's

    # -- data versions ---------------------------------------------------------------------------------
    def known_examples(self, ids: Iterable[str]) -> dict[str, Example]:
        """The stored examples among ``ids``, by id."""
        out: dict[str, Example] = {}
        unique = list(dict.fromkeys(ids))
        for s in range(0, len(unique), CHUNK):
            part = unique[s:s + CHUNK]
            marks = ",".join("?" * len(part))
            for r in self.db.query(f"select * from examples where id in ({marks})", part):
                out[r["id"]] = Example(r["id"], json.loads(r["fields"]), r["split"], r["gold"], r["gold_rationale"])
        return out

    def add_examples(self, examples: Sequence[Example], *, path: str, sha256: str, n_rows: int,
                     n_skipped: int) -> int:
        """Append ``examples`` (new ids only) as a new data version, in one transaction; returns its number."""
        with self.db.atomic():
            version = int(self._scalar("select coalesce(max(version), 0) from data_versions") or 0) + 1
            start = int(self._scalar("select coalesce(max(position), -1) from examples") or -1) + 1
            self._insert_examples(examples, start, data_version=version)
            self._record_data_version(version, examples, path=path, sha256=sha256, n_rows=n_rows, n_skipped=n_skipped)
        return version

    def _record_data_version(self, version: int, examples: Sequence[Example], *, path: str, sha256: str | None,
                             n_rows: int, n_skipped: int) -> None:
        splits: dict[str, int] = {}
        for e in examples:
            splits[e.split] = splits.get(e.split, 0) + 1
        self.db.table("data_versions").insert({
            "version": version, "path": path, "sha256": sha256, "n_rows": n_rows, "n_added": len(examples),
            "n_skipped": n_skipped, "splits": json.dumps(splits), "created_at": now()})

    def data_versions(self) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from data_versions order by version"))
        for r in rows:
            r["splits"] = loads(r["splits"], {})
        return rows

    def latest_data_version(self) -> int | None:
        return self._scalar("select max(version) from data_versions")

    def data_version_of(self, example_ids: Sequence[str]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for s in range(0, len(example_ids), CHUNK):
            part = list(example_ids[s:s + CHUNK])
            marks = ",".join("?" * len(part))
            for r in self.db.query(f"select id, data_version from examples where id in ({marks})", part):
                out[r["id"]] = r["data_version"]
        return out

    def evaluation_cutoff(self, split: str) -> int | None:
        """The position up to which ``split``'s rows form the frozen evaluation reference (None: not frozen yet)."""
        return (self.get_meta("evaluation_reference") or {}).get(split)

    def freeze_evaluation(self, split: str) -> int:
        """Freeze ``split``'s rows as they are now as the evaluation reference; returns the cut-off position
        (rows added later, at higher positions, are not part of it)."""
        frozen = dict(self.get_meta("evaluation_reference") or {})
        if split not in frozen:
            frozen[split] = int(self._scalar("select coalesce(max(position), -1) from examples") or -1) + 1
            self.set_meta("evaluation_reference", frozen)
        return int(frozen[split])

    def examples_before(self, split: str, position: int) -> list[Example]:
        """The rows of ``split`` stored before ``position``, in order."""
        rows = self.db.query("select * from examples where split = ? and position < ? order by position",
                             [split, position])
        return [Example(r["id"], json.loads(r["fields"]), r["split"], r["gold"], r["gold_rationale"]) for r in rows]

    # -- guideline versions ----------------------------------------------------------------------------
    def record_guideline(self, *, hash: str, task: str, teachers: Any, changes: str) -> int:
        """Record a new guideline version; returns its number (every later answer and label records it)."""
        with self.db.atomic():
            version = int(self._scalar("select coalesce(max(version), 0) from guidelines") or 0) + 1
            self.db.table("guidelines").insert({"version": version, "hash": hash, "task": task,
                                                "teachers": json.dumps(teachers, sort_keys=True),
                                                "changes": changes, "created_at": now()})
        return version

    def guidelines(self) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from guidelines order by version"))
        for r in rows:
            r["teachers"] = loads(r["teachers"], [])
        return rows

    def current_guideline(self) -> int | None:
        """The guideline version answers and labels are made under now (None before any is recorded)."""
        return self._scalar("select max(version) from guidelines")

    def labels_by_guideline(self) -> dict[int | None, int]:
        return {r["guideline"]: r["n"] for r in self.db.query(
            "select guideline, count(*) n from labels group by guideline order by guideline")}

    # -- relabeling ------------------------------------------------------------------------------------
    def label_states(self) -> list[LabelState]:
        """Every accepted label with its source, guideline and the verdict it came from, in data order."""
        rows = self.db.query(
            "select l.example_id, l.label, l.source, l.guideline, c.round, c.agreement from labels l "
            "join examples e on e.id = l.example_id left join consensus c on c.example_id = l.example_id "
            "order by e.position")
        return [LabelState(r["example_id"], r["label"], r["source"], r["guideline"], r["round"], r["agreement"])
                for r in rows]

    def accepted_labels(self, example_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in range(0, len(example_ids), CHUNK):
            part = list(example_ids[s:s + CHUNK])
            marks = ",".join("?" * len(part))
            for r in self.db.query(f"select example_id, label from labels where example_id in ({marks})", part):
                out[r["example_id"]] = r["label"]
        return out

    def labels_since(self, stamp: str | None) -> list[dict[str, Any]]:
        """Labels accepted after ``stamp`` (every label when None), with their fields, in data order."""
        rows = list(self.db.query(
            "select l.example_id, l.label, e.fields from labels l join examples e on e.id = l.example_id "
            "where l.created_at > ? order by e.position", [stamp or ""]))
        for r in rows:
            r["fields"] = json.loads(r["fields"])
        return rows
