"""Teacher calls and the ledger: every call is written before it is sent and settled after it, and what it
cost is charged to the ledger in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from distilloop.core.types import CallRecord, Spend
from distilloop.storage.base import StoreBase, now


class CallsPart(StoreBase):
    def find_paid_call(self, request_hash: str) -> CallRecord | None:
        """The settled, successful call for ``request_hash``, if one was already paid for."""
        row = self._one("select * from teacher_calls where request_hash = ? and status = 'ok' order by id limit 1",
                        [request_hash])
        return self._call(row) if row else None

    def pending_call(self, request_hash: str) -> dict[str, Any] | None:
        """A call submitted to a batch API and not yet ingested."""
        return self._one("select * from teacher_calls where request_hash = ? and status = 'submitted' order by id "
                         "limit 1", [request_hash])

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
            "guideline": self._scalar("select max(version) from guidelines"),  # the guideline it is asked under
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
                             spend=Spend(row["reserved_tokens_in"], row["reserved_tokens_out"], row["reserved_usd"]),
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

    def call_counts(self) -> dict[str, int]:
        """Teacher calls by status."""
        return {r["status"]: r["n"] for r in self.db.query("select status, count(*) n from teacher_calls group by "
                                                           "status")}

    def spent(self, round_no: int | None = None) -> Spend:
        sql = "select coalesce(sum(tokens_in),0) a, coalesce(sum(tokens_out),0) b, coalesce(sum(usd),0) c from ledger"
        row = next(self.db.query(sql + (" where round = ?" if round_no is not None else ""),
                                 [round_no] if round_no is not None else []))
        return Spend(int(row["a"]), int(row["b"]), float(row["c"]))

    def spend_by_teacher(self) -> dict[str, Spend]:
        rows = self.db.query("select teacher, sum(tokens_in) a, sum(tokens_out) b, sum(usd) c from ledger "
                             "group by teacher order by teacher")
        return {r["teacher"]: Spend(int(r["a"]), int(r["b"]), float(r["c"])) for r in rows}

    def spend_by_round_and_teacher(self) -> dict[int, dict[str, Spend]]:
        out: dict[int, dict[str, Spend]] = {}
        for r in self.db.query("select round, teacher, sum(tokens_in) a, sum(tokens_out) b, sum(usd) c from ledger "
                               "group by round, teacher order by round, teacher"):
            out.setdefault(r["round"], {})[r["teacher"]] = Spend(int(r["a"] or 0), int(r["b"] or 0),
                                                                 float(r["c"] or 0.0))
        return out

    def latency_total(self, round_no: int, teacher: str, example_ids: Sequence[str]) -> float:
        """Seconds the settled calls of ``teacher`` in ``round_no`` for ``example_ids`` took."""
        wanted = set(example_ids)
        return float(sum(r["latency_s"] or 0.0 for r in self.db.query(
            "select example_id, latency_s from teacher_calls where round = ? and teacher = ? and status = 'ok'",
            [round_no, teacher]) if r["example_id"] in wanted))
