"""Teacher calls and the ledger: every call is written before it is sent and settled after it, and what it
cost is charged to the ledger in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from distilloop.core.types import CallRecord, Spend
from distilloop.errors import StoreError
from distilloop.storage.base import StoreBase, now


class CallsPart(StoreBase):
    def find_paid_call(self, request_hash: str) -> CallRecord | None:
        """The settled, successful call for ``request_hash``, if one was already paid for."""
        row = self._one("select * from teacher_calls where request_hash = ? and status = 'ok' order by id limit 1",
                        [request_hash])
        return self._call(row) if row else None

    def pending_call(self, request_hash: str) -> dict[str, Any] | None:
        """A call submitted (or being submitted) to a batch API and not yet ingested."""
        return self._one("select * from teacher_calls where request_hash = ? and status in ('submitted', "
                         "'submitting') order by id limit 1", [request_hash])

    def batch_calls(self, teacher: str) -> list[dict[str, Any]]:
        """``teacher``'s calls at a provider's batch API (or being submitted to one), not yet ingested."""
        return list(self.db.query("select * from teacher_calls where teacher = ? and status in ('submitted', "
                                  "'submitting') order by id", [teacher]))

    def submitting_calls(self, teacher: str) -> list[dict[str, Any]]:
        """``teacher``'s calls whose batch submission was cut off: the provider may or may not have the batch."""
        return [r for r in self.batch_calls(teacher) if r["status"] == "submitting"]

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
                   status: str = "in_flight", batch_id: str | None = None, expected: Spend | None = None,
                   resend_of: int | None = None, recovery_key: str | None = None) -> int:
        """Persist a call just before it is sent, with the amounts reserved for it (its upper bound) and its
        expected cost (what it is charged if its outcome is never known). Its ``recovery_key`` (default: one made
        from the campaign id and the call id) is what the provider can find it again by, where it can."""
        with self.db.atomic():
            call_id = self._insert("teacher_calls", {
                "request_hash": request_hash, "round": round_no, "example_id": example_id, "teacher": teacher,
                "model": model, "prompt_style": prompt_style, "prompt_version": prompt_version, "mode": mode,
                "status": status, "reserved_tokens_in": reserved.tokens_in,
                "reserved_tokens_out": reserved.tokens_out, "reserved_usd": reserved.usd, "batch_id": batch_id,
                "expected_tokens_in": expected.tokens_in if expected else None,
                "expected_tokens_out": expected.tokens_out if expected else None,
                "expected_usd": expected.usd if expected else None, "resend_of": resend_of,
                "created_at": now(), "valid": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0,
                "guideline": self._scalar("select max(version) from guidelines"),  # the guideline it is asked under
            })
            self._update("teacher_calls", call_id, {"recovery_key": recovery_key or self.recovery_key(call_id)})
        return call_id

    def recovery_key(self, call_id: int) -> str:
        """The name a call goes by at the provider: unique across campaigns sharing one account."""
        return f"dl-{str(self.get_meta('campaign_id', 'x'))[:12]}-{call_id}"

    def settle_call(self, call_id: int, *, status: str, spend: Spend, raw_response: str | None = None,
                    label: str | None = None, rationale: str | None = None, confidence: float | None = None,
                    confidence_source: str | None = None, valid: bool = False, cached_tokens: int = 0,
                    cache_write_tokens: int = 0, latency_s: float | None = None, error: str | None = None,
                    distribution: dict[str, float] | None = None, ledger_kind: str = "call",
                    charged: str = "usage") -> Spend:
        """Record the outcome of a call and charge it to the ledger, in one transaction. ``charged`` says how:
        ``usage`` (what the provider reported), ``estimate`` (its expected cost: the outcome is unknown, flagged)
        or ``recovered`` (found again at the provider after its answer was lost). Settling a call again (a
        recovered one) replaces its ledger row. Returns the change to the ledger."""
        with self.db.atomic():
            row = self._one("select round, teacher from teacher_calls where id = ?", [call_id])
            if row is None:
                raise StoreError(f"teacher call {call_id} is not in this store")
            old = self._one("select tokens_in, tokens_out, usd from ledger where call_id = ?", [call_id])
            self._update("teacher_calls", call_id, {
                "status": status, "raw_response": raw_response, "label": label, "rationale": rationale,
                "confidence": confidence, "confidence_source": confidence_source, "valid": int(valid),
                "tokens_in": spend.tokens_in, "tokens_out": spend.tokens_out, "cached_tokens": cached_tokens,
                "cache_write_tokens": cache_write_tokens, "cost_usd": spend.usd, "latency_s": latency_s,
                "error": error, "finished_at": now(), "charged": charged,
                "distribution": json.dumps(distribution) if distribution else None,
            })
            self.db.execute("delete from ledger where call_id = ?", [call_id])
            if spend.tokens_in or spend.tokens_out or spend.usd:
                self._insert("ledger", {
                    "call_id": call_id, "round": row["round"], "teacher": row["teacher"], "kind": ledger_kind,
                    "tokens_in": spend.tokens_in, "tokens_out": spend.tokens_out, "usd": spend.usd,
                    "created_at": now()})
        if old is None:
            return spend
        return Spend(spend.tokens_in - old["tokens_in"], spend.tokens_out - old["tokens_out"], spend.usd - old["usd"])

    def call_row(self, call_id: int) -> dict[str, Any] | None:
        return self._one("select * from teacher_calls where id = ?", [call_id])

    def recharge(self, call_id: int, spend: Spend) -> Spend:
        """Re-base an estimated charge (a call whose outcome was unknown) on a better estimate; the difference."""
        with self.db.atomic():
            row = self.db.table("teacher_calls").get(call_id)
            before = Spend(row["tokens_in"] or 0, row["tokens_out"] or 0, row["cost_usd"] or 0.0)
            self.db.table("teacher_calls").update(call_id, {"tokens_in": spend.tokens_in,
                                                            "tokens_out": spend.tokens_out, "cost_usd": spend.usd})
            self.db.execute("update ledger set tokens_in = ?, tokens_out = ?, usd = ? where call_id = ?",
                            [spend.tokens_in, spend.tokens_out, spend.usd, call_id])
        return Spend(spend.tokens_in - before.tokens_in, spend.tokens_out - before.tokens_out, spend.usd - before.usd)

    def recover_interrupted_calls(self, unbilled: Collection[str] = ()) -> int:
        """Live calls left in flight by a killed process: the provider may have billed them, so each is charged
        its expected cost (its reservation, the upper bound, for calls written before expected costs were kept),
        flagged as an estimate, and marked interrupted; the next run finds it again at the provider where the
        provider keeps it, else asks again (a re-sent call, counted). The calls of the teachers named in
        ``unbilled`` (a model run in this process: it stopped with the process, and no one bills it) are marked
        interrupted and charged nothing. Batch submissions cut off are left to the batch mode, which looks for them
        at the provider."""
        rows = list(self.db.query("select * from teacher_calls where status = 'in_flight' and coalesce(mode, 'live') "
                                  "= 'live'"))
        for row in rows:
            if row["teacher"] in unbilled:
                self.settle_call(row["id"], status="interrupted", spend=Spend(),
                                 error="the process stopped while the call was in flight; a model run in the "
                                       "process bills nothing", ledger_kind="interrupted")
                continue
            if row["expected_usd"] is not None:
                spend = Spend(row["expected_tokens_in"] or 0, row["expected_tokens_out"] or 0, row["expected_usd"])
            else:
                spend = Spend(row["reserved_tokens_in"], row["reserved_tokens_out"], row["reserved_usd"])
            self.settle_call(row["id"], status="interrupted", spend=spend, charged="estimate",
                             error="the process stopped while the call was in flight; charged at its expected cost",
                             ledger_kind="interrupted")
        return len(rows)

    def interrupted_call(self, request_hash: str) -> dict[str, Any] | None:
        """The latest call of ``request_hash`` cut off by a stopped process and not yet recovered."""
        return self._one("select * from teacher_calls where request_hash = ? and status = 'interrupted' order by id "
                         "desc limit 1", [request_hash])

    def estimated_calls(self, request_hash: str) -> list[dict[str, Any]]:
        """Calls of ``request_hash`` charged at an estimate (their outcome unknown), oldest first."""
        return list(self.db.query("select * from teacher_calls where request_hash = ? and charged = 'estimate' "
                                  "order by id", [request_hash]))

    def expected_vs_actual(self, teacher: str) -> tuple[int, Spend, Spend]:
        """``teacher``'s answered calls with an expected cost: (how many, what they used, what was expected)."""
        row = next(self.db.query(
            "select count(*) n, coalesce(sum(tokens_in), 0) a, coalesce(sum(tokens_out), 0) b, "
            "coalesce(sum(cost_usd), 0) c, coalesce(sum(expected_tokens_in), 0) d, "
            "coalesce(sum(expected_tokens_out), 0) e, coalesce(sum(expected_usd), 0) f from teacher_calls "
            "where teacher = ? and status = 'ok' and charged = 'usage' and expected_tokens_in is not null",
            [teacher]))
        return (int(row["n"]), Spend(int(row["a"]), int(row["b"]), float(row["c"])),
                Spend(int(row["d"]), int(row["e"]), float(row["f"])))

    def call_accounting(self) -> dict[str, Any]:
        """How the calls were charged: at an estimate (flagged: outcome unknown), recovered from the provider,
        re-sent after a crash."""
        row = next(self.db.query(
            "select coalesce(sum(charged = 'estimate'), 0) estimated, coalesce(sum(case when charged = 'estimate' "
            "then cost_usd else 0 end), 0) estimated_usd, coalesce(sum(charged = 'recovered'), 0) recovered, "
            "coalesce(sum(resend_of is not null), 0) resent, coalesce(sum(status = 'interrupted'), 0) interrupted "
            "from teacher_calls"))
        return {k: row[k] for k in ("estimated", "estimated_usd", "recovered", "resent", "interrupted")}

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

    def spend_on_reference(self, reference: str, rounds: Sequence[int] | None = None) -> dict[str, Spend]:
        """Per teacher, what the ledger charged (in ``rounds``, default all) for the calls about ``reference``'s
        items (the held-out set the teachers label at the start, charged to round 0 beside a pilot's calls, and
        again before a round after the label set grew)."""
        if rounds is not None and not rounds:
            return {}
        where = "" if rounds is None else f" and l.round in ({', '.join('?' * len(rounds))})"
        return {r["teacher"]: Spend(int(r["a"] or 0), int(r["b"] or 0), float(r["c"] or 0.0)) for r in self.db.query(
            "select l.teacher, sum(l.tokens_in) a, sum(l.tokens_out) b, sum(l.usd) c from ledger l "
            "join teacher_calls t on t.id = l.call_id join reference_labels r on r.example_id = t.example_id "
            f"where r.reference = ?{where} group by l.teacher", [reference, *(rounds or [])])}

    def call_outcomes_by_round(self) -> list[dict[str, Any]]:
        """Per teacher and round (in round order): its ``ok`` and ``failed`` calls, how many of the ok ones were
        ``invalid`` answers (a label outside the set, not JSON), the ``items`` it was asked about, and the message
        of its ``last_error`` (a failed call's, else an invalid answer's)."""
        rows = list(self.db.query(
            "select teacher, round, sum(status = 'ok') ok, sum(status = 'error') failed, sum(status = 'ok' and valid = 0) "
            "invalid, count(distinct example_id) items, max(case when status = 'error' then id end) last_id, "
            "max(case when status = 'ok' and valid = 0 then id end) last_invalid from teacher_calls group by teacher, "
            "round order by round, teacher"))
        ids = [r[k] for r in rows for k in ("last_id", "last_invalid") if r[k] is not None]
        errors = {r["id"]: r["error"] for r in self.db.query(
            f"select id, error from teacher_calls where id in ({', '.join('?' * len(ids))})", ids)} if ids else {}
        return [{"teacher": r["teacher"], "round": r["round"], "ok": int(r["ok"] or 0), "failed": int(r["failed"] or 0),
                 "invalid": int(r["invalid"] or 0), "items": int(r["items"]),
                 "last_error": errors.get(r["last_id"]) or errors.get(r["last_invalid"])} for r in rows]

    def items_asked_by_round_and_teacher(self) -> dict[int, dict[str, int]]:
        """Per round and teacher, the items the teacher was asked about (a cascade asks its later tiers fewer)."""
        out: dict[int, dict[str, int]] = {}
        for r in self.db.query("select round, teacher, count(distinct example_id) n from teacher_calls "
                               "group by round, teacher"):
            out.setdefault(r["round"], {})[r["teacher"]] = int(r["n"])
        return out

    def latency_total(self, round_no: int, teacher: str, example_ids: Sequence[str]) -> float:
        """Seconds the settled calls of ``teacher`` in ``round_no`` for ``example_ids`` took."""
        wanted = set(example_ids)
        return float(sum(r["latency_s"] or 0.0 for r in self.db.query(
            "select example_id, latency_s from teacher_calls where round = ? and teacher = ? and status = 'ok'",
            [round_no, teacher]) if r["example_id"] in wanted))
