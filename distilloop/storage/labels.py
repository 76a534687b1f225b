"""The ensemble's verdicts (consensus), accepted labels, the review queue, reviews and teacher reliability."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from distilloop.storage.base import StoreBase, loads, now


class LabelsPart(StoreBase):
    # -- consensus -------------------------------------------------------------------------------------
    def save_consensus(self, rows: Iterable[dict[str, Any]]) -> None:
        guideline = self._scalar("select max(version) from guidelines")  # the guideline the verdicts are made under
        self.db.table("consensus").upsert_all(
            ({**r, "soft_label": json.dumps(r.get("soft_label")), "votes": json.dumps(r.get("votes")),
              "guideline": guideline} for r in rows), pk="example_id")

    @staticmethod
    def _consensus(row: dict[str, Any]) -> dict[str, Any]:
        row["soft_label"] = loads(row["soft_label"])
        row["votes"] = loads(row["votes"])
        return row

    def consensus(self, example_id: str) -> dict[str, Any] | None:
        row = self._one("select * from consensus where example_id = ?", [example_id])
        return self._consensus(row) if row else None

    def consensus_rows(self, round_no: int | None = None) -> list[dict[str, Any]]:
        """Every verdict (of one round), votes and soft labels decoded."""
        if round_no is None:
            rows = self.db.query("select * from consensus order by round, example_id")
        else:
            rows = self.db.query("select * from consensus where round = ? order by example_id", [round_no])
        return [self._consensus(r) for r in rows]

    def tiers_asked(self, example_ids: Iterable[str]) -> dict[str, int]:
        """Per item with a verdict that records it, how many cascade tiers its last verdict was asked through."""
        wanted = set(example_ids)
        return {r["example_id"]: int(r["tiers_asked"]) for r in self.db.query(
            "select example_id, tiers_asked from consensus where tiers_asked is not null") if r["example_id"] in wanted}

    def all_votes(self, skip_rounds: Iterable[int] = ()) -> dict[str, list[dict[str, Any]]]:
        """Every item's recorded votes (from the consensus table), for fitting aggregators on the history; not
        those last decided in ``skip_rounds``."""
        skip = set(skip_rounds)
        rows = self.db.query("select example_id, round, votes from consensus order by round, example_id")
        return {r["example_id"]: loads(r["votes"], []) for r in rows if r["round"] not in skip}

    def rationale_agreement(self) -> tuple[int, int]:
        """(items whose rationales support one label, items where any rationale takes a side)."""
        row = self._one("select count(*) n, sum(rationales_agree) k from consensus where rationales_agree is not null")
        return (int(row["k"] or 0), int(row["n"] or 0)) if row else (0, 0)

    # -- accepted labels ---------------------------------------------------------------------------------
    def accept_label(self, example_id: str, label: str, *, rationale: str | None, source: str, round_no: int,
                     soft_label: dict[str, float] | None = None) -> None:
        self.db.table("labels").upsert({
            "example_id": example_id, "label": label, "rationale": rationale, "source": source,
            "round": round_no, "soft_label": json.dumps(soft_label) if soft_label else None,
            "guideline": self._scalar("select max(version) from guidelines"), "created_at": now()}, pk="example_id")

    def labeled(self) -> list[dict[str, Any]]:
        rows = list(self.db.query(
            "select l.*, e.fields from labels l join examples e on e.id = l.example_id order by e.position"))
        for r in rows:
            r["fields"] = json.loads(r["fields"])
            r["soft_label"] = loads(r["soft_label"])
        return rows

    def label_sources(self) -> dict[str, int]:
        """Accepted labels by source (teachers, human, simulated, auto)."""
        return {r["source"]: r["n"] for r in self.db.query("select source, count(*) n from labels group by source")}

    def teacher_labels_with_gold(self) -> list[tuple[str, str]]:
        """(accepted label, gold label) of every item whose label the teachers gave (or the `auto` reviewer took from
        them, not a person) and whose example has a gold label."""
        return [(r["label"], r["gold"]) for r in self.db.query(
            "select l.label, e.gold from labels l join examples e on e.id = l.example_id where e.gold is not null "
            "and l.label is not null and l.source in ('teachers', 'auto')")]

    def labels_up_to(self, round_no: int) -> dict[str, str]:
        """The accepted label of each example labeled in ``round_no`` or before."""
        return {r["example_id"]: r["label"]
                for r in self.db.query("select example_id, label from labels where round <= ?", [round_no])}

    # -- the review queue and reviews ----------------------------------------------------------------------
    def enqueue_review(self, example_id: str, round_no: int, backend: str, external_id: str | None = None) -> None:
        self.db.table("review_queue").upsert({"example_id": example_id, "round": round_no, "status": "pending",
                                              "backend": backend, "external_id": external_id, "created_at": now()},
                                             pk="example_id")

    def pending_reviews(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from review_queue where status = 'pending' order by round, example_id"))

    def pending_review_count(self) -> int:
        return int(self._scalar("select count(*) from review_queue where status = 'pending'") or 0)

    def skipped_reviews(self) -> list[dict[str, Any]]:
        """Items every reviewer skipped where the reviewer counts that as done: left out of training."""
        return list(self.db.query("select * from review_queue where status = 'skipped' order by round, example_id"))

    def skip_review(self, example_id: str, round_no: int) -> None:
        self.db.table("review_queue").update(example_id, {"status": "skipped", "resolved_round": round_no})

    def reopen_review(self, example_id: str) -> None:
        """A taken item whose every review was deleted at the reviewer: pending again, under the same task."""
        self.db.table("review_queue").update(example_id, {"status": "pending", "resolved_round": None})

    def delete_review(self, review_id: int) -> None:
        self.db.table("reviews").delete(review_id)

    def unaccept_label(self, example_id: str) -> None:
        """Take an accepted label back (its review was retracted): the item is untrained on until decided again."""
        self.db.execute("delete from labels where example_id = ?", [example_id])

    def requeue_review(self, example_id: str, backend: str) -> None:
        """An item whose review task is gone at ``backend``: pending again, to be sent anew."""
        self.db.table("review_queue").update(example_id, {"status": "pending", "backend": backend,
                                                          "external_id": None, "resolved_round": None})

    def record_review(self, example_id: str, *, round_no: int, reviewer: str, label: str,
                      rationale: str | None, seconds_spent: float | None, source: str,
                      external_id: str | None = None, ref: str | None = None, version: str | None = None) -> None:
        self.db.table("reviews").insert({
            "example_id": example_id, "round": round_no, "reviewer": reviewer, "label": label,
            "rationale": rationale, "seconds_spent": seconds_spent, "source": source,
            "external_id": external_id, "ref": ref, "version": version, "created_at": now()})

    def revise_review(self, review_id: int, *, reviewer: str, label: str, rationale: str | None,
                      seconds_spent: float | None, version: str | None) -> None:
        """A review its reviewer changed after the campaign took it (same review, new answer)."""
        self.db.table("reviews").update(review_id, {"reviewer": reviewer, "label": label, "rationale": rationale,
                                                    "seconds_spent": seconds_spent, "version": version})

    def taken_reviews(self, backend: str) -> list[dict[str, Any]]:
        """The people's reviews of items ``backend`` reviewed and the campaign took (their queue row done), each with
        ``queued_as``: the external id the item was last sent under."""
        return list(self.db.query(
            "select r.*, q.external_id queued_as from reviews r join review_queue q on q.example_id = r.example_id "
            "where q.status = 'done' and q.backend = ? and r.source != 'auto' order by r.id", [backend]))

    def revise_label(self, example_id: str, label: str, *, rationale: str | None, source: str,
                     soft_label: dict[str, float] | None) -> str | None:
        """Change an accepted label in place (its round stays: the item was labeled then); returns the label it
        had."""
        before = self._scalar("select label from labels where example_id = ?", [example_id])
        self.db.table("labels").update(example_id, {
            "label": label, "rationale": rationale, "source": source,
            "soft_label": json.dumps(soft_label) if soft_label else None})
        return None if before is None else str(before)

    def reviews(self, example_id: str | None = None) -> list[dict[str, Any]]:
        if example_id is None:
            return list(self.db.query("select * from reviews order by id"))
        return list(self.db.query("select * from reviews where example_id = ? order by id", [example_id]))

    def resolve_review(self, example_id: str, round_no: int) -> None:
        self.db.table("review_queue").update(example_id, {"status": "done", "resolved_round": round_no})

    def set_review_external_id(self, example_id: str, backend: str, external_id: str | None) -> None:
        self.db.table("review_queue").update(example_id, {"backend": backend, "external_id": external_id})

    def human_labels(self) -> dict[str, str]:
        """The latest reviewed label per example (any reviewer source but 'auto'): known truth for Dawid-Skene."""
        rows = self.db.query("select example_id, label from reviews where source != 'auto' order by id")
        return {r["example_id"]: r["label"] for r in rows}

    def review_sources(self) -> dict[str, int]:
        return {r["source"]: r["n"] for r in self.db.query("select source, count(*) n from reviews group by source")}

    # -- teacher reliability ---------------------------------------------------------------------------
    def save_reliability(self, rows: Sequence[dict[str, Any]], *, method: str, n_items: int, n_known: int) -> None:
        with self.db.atomic():
            self.db.execute("delete from reliability_estimates")
            stamp = now()
            self.db.table("reliability_estimates").insert_all(
                ({**r, "method": method, "n_items": n_items, "n_known": n_known, "updated_at": stamp} for r in rows),
                pk=("teacher", "true_label", "given_label"))

    def reliability(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from reliability_estimates order by teacher, true_label, given_label"))

    # -- evaluation references (a held-out set labeled by the teachers, an audit set labeled by people) -------
    def reserve_reference(self, reference: str, ids: Sequence[str], round_no: int = 0) -> None:
        """Set ``ids`` aside for ``reference`` (out of the pool for good), unlabeled until answered."""
        with self.db.atomic():
            self.db.table("reference_labels").insert_all(
                ({"reference": reference, "example_id": i, "label": None, "source": None, "round": round_no,
                  "created_at": now()} for i in ids), pk=("reference", "example_id"), ignore=True)

    def reference_ids(self, reference: str) -> list[str]:
        """Every item set aside for ``reference``, answered or not."""
        return [r["example_id"] for r in self.db.query(
            "select example_id from reference_labels where reference = ? order by rowid", [reference])]

    def reference_labels(self, reference: str) -> dict[str, str]:
        """The answered items of ``reference`` and their labels."""
        return {r["example_id"]: r["label"] for r in self.db.query(
            "select example_id, label from reference_labels where reference = ? and label is not null order by "
            "rowid", [reference])}

    def set_reference_label(self, reference: str, example_id: str, label: str | None, *, source: str,
                            round_no: int) -> None:
        self.db.table("reference_labels").upsert({"reference": reference, "example_id": example_id, "label": label,
                                                  "source": source, "round": round_no, "created_at": now()},
                                                 pk=("reference", "example_id"))

    def clear_reference_labels(self, reference: str) -> int:
        """Forget ``reference``'s answers (its items stay set aside) so that they are asked again; returns how many
        items it has."""
        with self.db.atomic():
            self.db.execute("update reference_labels set label = null, source = null where reference = ?", [reference])
        return int(self._scalar("select count(*) from reference_labels where reference = ?", [reference]) or 0)

    def reference_of(self, example_id: str) -> str | None:
        """The reference an item was set aside for, if any."""
        row = self._one("select reference from reference_labels where example_id = ?", [example_id])
        return row["reference"] if row else None

    def reserved_ids(self) -> set[str]:
        """Every item set aside for an evaluation reference."""
        return {r["example_id"] for r in self.db.query("select example_id from reference_labels")}

    def short_votes(self) -> int:
        """Verdicts resting on fewer valid votes than teachers asked."""
        return int(self._scalar("select count(*) from consensus where n_asked is not null and n_votes < n_asked")
                   or 0)

    def unresolved_reference_ids(self, reference: str) -> set[str]:
        """Items of ``reference`` that were asked but got no answer to keep (an even split of the teachers)."""
        return {r["example_id"] for r in self.db.query(
            "select example_id from reference_labels where reference = ? and label is null and source is not null",
            [reference])}
