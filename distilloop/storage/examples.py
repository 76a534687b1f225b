"""Examples (the pool, dev and test rows of a campaign) and the rounds that select from them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from distilloop.core.types import SPLITS, Example
from distilloop.errors import StoreError
from distilloop.storage.base import StoreBase, loads, now


class ExamplesPart(StoreBase):
    # -- examples --------------------------------------------------------------------------------------
    def _insert_examples(self, examples: Sequence[Example], start: int = 0, data_version: int | None = None) -> None:
        self.db.table("examples").insert_all(
            ({"id": e.id, "split": e.split, "fields": json.dumps(e.fields, ensure_ascii=False), "gold": e.gold,
              "gold_rationale": e.gold_rationale, "text_len": len(e.text), "position": start + i,
              "data_version": data_version}
             for i, e in enumerate(examples)),
            batch_size=1000)

    @staticmethod
    def _example(row: dict[str, Any]) -> Example:
        return Example(row["id"], json.loads(row["fields"]), row["split"], row["gold"], row["gold_rationale"])

    def examples(self, split: str | None = None) -> list[Example]:
        if split is None:
            rows = self.db.query("select * from examples order by position")
        else:
            rows = self.db.query("select * from examples where split = ? order by position", [split])
        return [self._example(r) for r in rows]

    def example(self, example_id: str) -> Example:
        row = self._one("select * from examples where id = ?", [example_id])
        if row is None:
            raise StoreError(f"no example with id '{example_id}' in this campaign")
        return self._example(row)

    def split_counts(self) -> dict[str, int]:
        """Examples per split (every split named, 0 where empty)."""
        counts = {s: 0 for s in SPLITS}
        for r in self.db.query("select split, count(*) n from examples group by split"):
            counts[r["split"]] = r["n"]
        return counts

    def gold_counts(self) -> dict[str, int]:
        """Examples with a gold label per split (every split named, 0 where none has one)."""
        counts = {s: 0 for s in SPLITS}
        for r in self.db.query("select split, count(*) n from examples where gold is not null group by split"):
            counts[r["split"]] = r["n"]
        return counts

    def gold_labels(self, split: str | None = None) -> dict[str, str]:
        """The gold label of every example that has one (of ``split`` only, if given)."""
        where, params = ("gold is not null and split = ?", [split]) if split else ("gold is not null", [])
        return {r["id"]: r["gold"] for r in self.db.query(f"select id, gold from examples where {where}", params)}

    def count(self, table: str, where: str = "", params: Sequence[Any] = ()) -> int:
        sql = f"select count(*) as n from {table}" + (f" where {where}" if where else "")
        return int(next(self.db.query(sql, list(params)))["n"])

    # -- rounds and selections -------------------------------------------------------------------------
    def rounds(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from rounds order by round"))

    def round_row(self, round_no: int) -> dict[str, Any] | None:
        return self._one("select * from rounds where round = ?", [round_no])

    def start_round(self, round_no: int, strategy: str, ids: Sequence[str], scores: Sequence[float],
                    explanations: Mapping[str, Sequence[str]] | None = None) -> None:
        """Record a round and its selection (with what the strategy learnt of each pick) in one transaction."""
        explanations = explanations or {}
        with self.db.atomic():
            self.db.table("rounds").insert({"round": round_no, "status": "annotating", "strategy": strategy,
                                            "n_selected": len(ids), "started_at": now()})
            self.db.table("selections").insert_all(
                {"round": round_no, "example_id": i, "rank": r, "score": float(s),
                 "explanation": json.dumps(list(explanations[i])) if i in explanations else None}
                for r, (i, s) in enumerate(zip(ids, scores, strict=True)))

    def set_round_status(self, round_no: int, status: str, stop_reason: str | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        if status == "done":
            values["finished_at"] = now()
            values["summary"] = json.dumps(self.round_summary(round_no))
        if stop_reason is not None:
            values["stop_reason"] = stop_reason
        self.db.table("rounds").update(round_no, values)

    def selection(self, round_no: int) -> list[str]:
        return [r["example_id"] for r in
                self.db.query("select example_id from selections where round = ? order by rank", [round_no])]

    def selection_explanations(self, round_no: int) -> dict[str, list[str]]:
        """The student's explanation steps a strategy kept for a round's picks (ELAD), by example id."""
        rows = self.db.query("select example_id, explanation from selections where round = ? and explanation "
                             "is not null", [round_no])
        return {r["example_id"]: loads(r["explanation"], []) for r in rows}

    def selected_ids(self) -> set[str]:
        return {r["example_id"] for r in self.db.query("select example_id from selections")}

    def annotated_ids(self) -> set[str]:
        """Examples the ensemble has given a verdict on: out of the pool for good."""
        return {r["example_id"] for r in self.db.query("select example_id from consensus")}
