"""The campaign store on one SQLite file.

Everything a campaign knows lives here: examples, rounds and their selections, every teacher call (with
its request hash, raw response, usage and cost), consensus, human reviews, accepted labels, student
versions and the budget ledger. WAL mode; each unit of work is one transaction (``db.atomic()``), so a
campaign killed at any point reopens in a consistent state and ``distilloop run`` continues from it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from distilloop.core.types import CallRecord, Example, Spend
from distilloop.errors import StoreError
from distilloop.storage.migrations import migrations


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """Typed access to one campaign's SQLite file. Use :meth:`create` for a new campaign, :meth:`open` after."""

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no campaign store at {path}; start one with `distilloop run <campaign.toml>`")
        try:
            db = Database(path)
            db.execute("PRAGMA busy_timeout = 30000")
            db.enable_wal()
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a distilloop campaign store ({exc}); move it away or pick "
                             "another [campaign] store path") from None
        return cls(db, path)

    @classmethod
    def memory(cls) -> Store:
        db = Database(memory=True)
        migrations.apply(db)
        return cls(db, None)

    @classmethod
    def create(cls, path: str | Path, examples: Sequence[Example], meta: dict[str, Any]) -> Store:
        """Write a new store atomically: built in a temporary file next to ``path``, renamed when complete.

        A failure (bad data, a full disk, Ctrl-C) leaves no partial campaign behind.
        """
        path = Path(path)
        if path.exists():
            raise StoreError(f"a campaign store already exists at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            db = Database(tmp)
            migrations.apply(db)
            store = cls(db, tmp)
            with db.atomic():
                store._insert_examples(examples)
                for key, value in meta.items():
                    store.set_meta(key, value)
            db.close()
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return cls.open(path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[Store]:
        with self.db.atomic():
            yield self

    # -- meta ------------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.db.table("meta").upsert({"key": key, "value": json.dumps(value)}, pk="key")

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = list(self.db.query("select value from meta where key = ?", [key]))
        return json.loads(rows[0]["value"]) if rows else default

    # -- examples --------------------------------------------------------------------------------------
    def _insert_examples(self, examples: Sequence[Example]) -> None:
        self.db.table("examples").insert_all(
            (
                {"id": e.id, "split": e.split, "fields": json.dumps(e.fields, ensure_ascii=False),
                 "gold": e.gold, "gold_rationale": e.gold_rationale, "text_len": len(e.text), "position": i}
                for i, e in enumerate(examples)
            ),
            batch_size=1000,
        )

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
        rows = list(self.db.query("select * from examples where id = ?", [example_id]))
        if not rows:
            raise StoreError(f"no example with id '{example_id}' in this campaign")
        return self._example(rows[0])

    def count(self, table: str, where: str = "", params: Sequence[Any] = ()) -> int:
        sql = f"select count(*) as n from {table}" + (f" where {where}" if where else "")
        return int(next(self.db.query(sql, list(params)))["n"])

    # -- rounds ----------------------------------------------------------------------------------------
    def rounds(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from rounds order by round"))

    def round_row(self, round_no: int) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from rounds where round = ?", [round_no]))
        return rows[0] if rows else None

    def start_round(self, round_no: int, strategy: str, ids: Sequence[str], scores: Sequence[float]) -> None:
        """Record a round and its selection in one transaction."""
        with self.db.atomic():
            self.db.table("rounds").insert({"round": round_no, "status": "annotating", "strategy": strategy,
                                      "n_selected": len(ids), "started_at": now()})
            self.db.table("selections").insert_all(
                {"round": round_no, "example_id": i, "rank": r, "score": float(s)}
                for r, (i, s) in enumerate(zip(ids, scores, strict=True))
            )

    def set_round_status(self, round_no: int, status: str, stop_reason: str | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        if status == "done":
            values["finished_at"] = now()
        if stop_reason is not None:
            values["stop_reason"] = stop_reason
        self.db.table("rounds").update(round_no, values)

    def selection(self, round_no: int) -> list[str]:
        return [r["example_id"] for r in
                self.db.query("select example_id from selections where round = ? order by rank", [round_no])]

    def selected_ids(self) -> set[str]:
        return {r["example_id"] for r in self.db.query("select example_id from selections")}

    # -- teacher calls and the ledger --------------------------------------------------------------------
    def find_paid_call(self, request_hash: str) -> CallRecord | None:
        """The settled, successful call for ``request_hash``, if one was already paid for."""
        rows = list(self.db.query(
            "select * from teacher_calls where request_hash = ? and status = 'ok' order by id limit 1",
            [request_hash]))
        return self._call(rows[0]) if rows else None

    def pending_call(self, request_hash: str) -> dict[str, Any] | None:
        """A call submitted to a batch API and not yet ingested."""
        rows = list(self.db.query(
            "select * from teacher_calls where request_hash = ? and status = 'submitted' order by id limit 1",
            [request_hash]))
        return rows[0] if rows else None

    def mark_submitted(self, call_ids: Sequence[int], batch_id: str) -> None:
        """Record that these calls went to the provider batch ``batch_id`` (one transaction)."""
        with self.db.atomic():
            for call_id in call_ids:
                self.db.table("teacher_calls").update(call_id, {"status": "submitted", "batch_id": batch_id})

    @staticmethod
    def _call(row: dict[str, Any]) -> CallRecord:
        return CallRecord(row["id"], row["request_hash"], row["round"], row["example_id"], row["teacher"],
                          row["model"], row["status"], row["label"], row["rationale"], row["confidence"],
                          bool(row["valid"]), row["tokens_in"] or 0, row["tokens_out"] or 0,
                          row["cost_usd"] or 0.0, row["raw_response"], row["error"],
                          json.loads(row["distribution"]) if row.get("distribution") else None)

    def begin_call(self, *, request_hash: str, round_no: int, example_id: str, teacher: str, model: str,
                   prompt_style: str, prompt_version: str, reserved: Spend, mode: str = "live",
                   status: str = "in_flight", batch_id: str | None = None) -> int:
        """Persist a call before it is sent, with the amounts reserved for it."""
        table = self.db.table("teacher_calls")
        table.insert({
            "request_hash": request_hash, "round": round_no, "example_id": example_id, "teacher": teacher,
            "model": model, "prompt_style": prompt_style, "prompt_version": prompt_version, "mode": mode,
            "status": status, "reserved_tokens_in": reserved.tokens_in,
            "reserved_tokens_out": reserved.tokens_out, "reserved_usd": reserved.usd, "batch_id": batch_id,
            "created_at": now(), "valid": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0,
        })
        return int(table.last_pk)  # type: ignore[arg-type]

    def settle_call(self, call_id: int, *, status: str, spend: Spend, raw_response: str | None = None,
                    label: str | None = None, rationale: str | None = None, confidence: float | None = None,
                    confidence_source: str | None = None, valid: bool = False, cached_tokens: int = 0,
                    cache_write_tokens: int = 0, latency_s: float | None = None, error: str | None = None,
                    distribution: dict[str, float] | None = None, ledger_kind: str = "call") -> None:
        """Record the outcome of a call and charge its usage to the ledger, in one transaction."""
        with self.db.atomic():
            row = self.db.table("teacher_calls").get(call_id)
            self.db.table("teacher_calls").update(call_id, {
                "status": status, "raw_response": raw_response, "label": label, "rationale": rationale,
                "confidence": confidence, "confidence_source": confidence_source, "valid": int(valid),
                "tokens_in": spend.tokens_in, "tokens_out": spend.tokens_out, "cached_tokens": cached_tokens,
                "cache_write_tokens": cache_write_tokens, "cost_usd": spend.usd, "latency_s": latency_s,
                "error": error, "finished_at": now(),
                "distribution": json.dumps(distribution) if distribution else None,
            })
            if spend.tokens_in or spend.tokens_out or spend.usd:
                self.db.table("ledger").insert({
                    "call_id": call_id, "round": row["round"], "teacher": row["teacher"], "kind": ledger_kind,
                    "tokens_in": spend.tokens_in, "tokens_out": spend.tokens_out, "usd": spend.usd,
                    "created_at": now()})

    def recover_interrupted_calls(self) -> int:
        """Calls left in flight by a killed process: charge their reservation (the provider may have billed
        them) and mark them interrupted, so the ledger stays an upper bound of what was spent."""
        rows = list(self.db.query("select * from teacher_calls where status = 'in_flight'"))
        for row in rows:
            self.settle_call(row["id"], status="interrupted",
                             spend=Spend(row["reserved_tokens_in"], row["reserved_tokens_out"],
                                         row["reserved_usd"]),
                             error="process stopped while the call was in flight; charged at its reservation",
                             ledger_kind="interrupted")
        return len(rows)

    def calls(self, *, round_no: int | None = None, example_id: str | None = None,
              status: str | None = None) -> list[CallRecord]:
        clauses, params = [], []
        for col, val in (("round", round_no), ("example_id", example_id), ("status", status)):
            if val is not None:
                clauses.append(f"{col} = ?")
                params.append(val)
        sql = "select * from teacher_calls" + (" where " + " and ".join(clauses) if clauses else "") + " order by id"
        return [self._call(r) for r in self.db.query(sql, params)]

    def spent(self, round_no: int | None = None) -> Spend:
        sql = ("select coalesce(sum(tokens_in),0) a, coalesce(sum(tokens_out),0) b, coalesce(sum(usd),0) c "
               "from ledger")
        row = next(self.db.query(sql + (" where round = ?" if round_no is not None else ""),
                                 [round_no] if round_no is not None else []))
        return Spend(int(row["a"]), int(row["b"]), float(row["c"]))

    def spend_by_teacher(self) -> dict[str, Spend]:
        rows = self.db.query("select teacher, sum(tokens_in) a, sum(tokens_out) b, sum(usd) c from ledger "
                             "group by teacher order by teacher")
        return {r["teacher"]: Spend(int(r["a"]), int(r["b"]), float(r["c"])) for r in rows}

    # -- consensus, review, labels ----------------------------------------------------------------------
    def save_consensus(self, rows: Iterable[dict[str, Any]]) -> None:
        self.db.table("consensus").upsert_all(
            ({**r, "soft_label": json.dumps(r.get("soft_label")), "votes": json.dumps(r.get("votes"))}
             for r in rows), pk="example_id")

    def consensus(self, example_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from consensus where example_id = ?", [example_id]))
        if not rows:
            return None
        row = rows[0]
        row["soft_label"] = json.loads(row["soft_label"]) if row["soft_label"] else None
        row["votes"] = json.loads(row["votes"]) if row["votes"] else None
        return row

    def accept_label(self, example_id: str, label: str, *, rationale: str | None, source: str, round_no: int,
                     soft_label: dict[str, float] | None = None) -> None:
        self.db.table("labels").upsert({
            "example_id": example_id, "label": label, "rationale": rationale, "source": source,
            "round": round_no, "soft_label": json.dumps(soft_label) if soft_label else None,
            "created_at": now()}, pk="example_id")

    def labeled(self) -> list[dict[str, Any]]:
        rows = list(self.db.query(
            "select l.*, e.fields from labels l join examples e on e.id = l.example_id order by e.position"))
        for r in rows:
            r["fields"] = json.loads(r["fields"])
            r["soft_label"] = json.loads(r["soft_label"]) if r["soft_label"] else None
        return rows

    def enqueue_review(self, example_id: str, round_no: int, backend: str, external_id: str | None = None) -> None:
        self.db.table("review_queue").upsert({"example_id": example_id, "round": round_no, "status": "pending",
                                        "backend": backend, "external_id": external_id, "created_at": now()},
                                       pk="example_id")

    def pending_reviews(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from review_queue where status = 'pending' order by round, example_id"))

    def record_review(self, example_id: str, *, round_no: int, reviewer: str, label: str,
                      rationale: str | None, seconds_spent: float | None, source: str,
                      external_id: str | None = None) -> None:
        self.db.table("reviews").insert({
            "example_id": example_id, "round": round_no, "reviewer": reviewer, "label": label,
            "rationale": rationale, "seconds_spent": seconds_spent, "source": source,
            "external_id": external_id, "created_at": now()})

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

    def all_votes(self) -> dict[str, list[dict[str, Any]]]:
        """Every item's recorded votes (from the consensus table), for fitting aggregators on the history."""
        rows = self.db.query("select example_id, votes from consensus order by round, example_id")
        return {r["example_id"]: json.loads(r["votes"]) if r["votes"] else [] for r in rows}

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

    # -- students --------------------------------------------------------------------------------------
    def record_student(self, *, version: str, round_no: int, kind: str, path: str, parent: str | None,
                       metrics: dict[str, float], n_train: int, train_seconds: float, promoted: bool) -> None:
        with self.db.atomic():
            if promoted:
                self.db.execute("update students set active = 0")
            self.db.table("students").insert({
                "version": version, "round": round_no, "kind": kind, "path": path, "parent": parent,
                "metrics": json.dumps(metrics), "n_train": n_train, "train_seconds": train_seconds,
                "promoted": int(promoted), "active": int(promoted), "created_at": now()})

    def students(self) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from students order by created_at, round"))
        for r in rows:
            r["metrics"] = json.loads(r["metrics"]) if r["metrics"] else {}
        return rows

    def active_student(self) -> dict[str, Any] | None:
        rows = [r for r in self.students() if r["active"]]
        return rows[-1] if rows else None

    def set_active_student(self, version: str) -> None:
        with self.db.atomic():
            if not list(self.db.query("select 1 from students where version = ?", [version])):
                raise StoreError(f"no student version '{version}'; see `distilloop status` for the versions")
            self.db.execute("update students set active = 0")
            self.db.execute("update students set active = 1 where version = ?", [version])

    # -- cache (embeddings, pool scores) ---------------------------------------------------------------
    def cache_get(self, kind: str, key: str) -> bytes | None:
        rows = list(self.db.query("select value from cache where kind = ? and key = ?", [kind, key]))
        return rows[0]["value"] if rows else None

    def cache_put(self, kind: str, key: str, value: bytes) -> None:
        self.db.table("cache").upsert({"kind": kind, "key": key, "value": value, "created_at": now()},
                                pk=("kind", "key"))

    def cache_items(self, kind: str) -> list[tuple[str, bytes]]:
        """Every ``(key, value)`` of one kind, ordered by key."""
        rows = self.db.query("select key, value from cache where kind = ? order by key", [kind])
        return [(r["key"], r["value"]) for r in rows]
