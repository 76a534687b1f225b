"""The teacher ensemble: every selected item is asked of every teacher, within the budget, never bought twice.

For each (item, teacher) the prompt is rendered and hashed; a settled answer with that hash in the store is
reused for free, and one asked right now by another call is waited for. Otherwise, per attempt:

1. the call's upper-bound cost is **reserved** against the budget (a reservation refused only because other
   calls in flight hold the room waits for them to settle: a tight cap is used, not wasted);
2. the teacher's **slot** is taken (its pause after a 429, its rate buckets, its concurrency), then the
   campaign-wide concurrency (counted in requests, so self-consistency's samples count);
3. only then is the call **written in flight** (a Ctrl-C while waiting charges nothing), **sent**, and
   **settled** from the reported usage in one transaction.

A failure is recorded on its call. One the provider may have billed (a timeout, a connection dropped after
sending, a broken 200) is charged at the call's expected cost, flagged as an estimate, and re-based once the
question is answered: found again at the provider where it keeps calls (:meth:`Teacher.recover`), else on
the usage of the answer to the same question. Retryable failures are retried with backoff (a server's
retry-after obeyed up to ``max_backoff_s``); a teacher is taken out of the round only after
``max_consecutive_failures`` questions in a row failed for good, so a burst of 429s across concurrent calls
never takes it out. A call cut off by a crash is recovered the same way on resume, or asked again and counted
as re-sent.

Teachers with ``mode = "batch"`` go through the provider's batch API instead
(:mod:`distilloop.annotators.batching`); a batch still running leaves ``pending_batches`` in the result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distilloop.annotators.base import CALL_KEY, Teacher
from distilloop.annotators.batching import annotate_with_batch, hold_submitted
from distilloop.annotators.prompts import Prompt
from distilloop.annotators.ratelimit import WeightedSemaphore
from distilloop.core.failpoints import failpoint
from distilloop.core.ledger import Budget, Reservation
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Usage, Vote
from distilloop.errors import BudgetExhausted, TeacherError
from distilloop.storage.store import Store

log = logging.getLogger(__name__)


@dataclass
class AnnotationResult:
    votes: dict[str, list[Vote]] = field(default_factory=dict)
    budget_exhausted: bool = False
    disabled: dict[str, str] = field(default_factory=dict)
    paid_calls: int = 0
    reused_calls: int = 0
    failed_attempts: int = 0
    recovered_calls: int = 0
    pending_batches: dict[str, list[str]] = field(default_factory=dict)  # teacher -> batch ids still running
    refused: dict[str, list[str]] = field(default_factory=dict)  # teacher -> items the budget had no room for
    gave_up: dict[str, str] = field(default_factory=dict)  # teacher -> the last error of a question it failed for good

    def merge(self, other: AnnotationResult) -> AnnotationResult:
        """Fold a later tier's result (a cascade) into this one; returns self."""
        for ex, vs in other.votes.items():
            self.votes.setdefault(ex, []).extend(vs)
        self.disabled.update(other.disabled)
        self.gave_up.update(other.gave_up)
        self.budget_exhausted |= other.budget_exhausted
        self.paid_calls += other.paid_calls
        self.reused_calls += other.reused_calls
        self.failed_attempts += other.failed_attempts
        self.recovered_calls += other.recovered_calls
        self.pending_batches.update(other.pending_batches)
        for name, ids in other.refused.items():
            self.refused.setdefault(name, []).extend(ids)
        return self


@dataclass
class Retry:
    """How failed calls are retried: up to ``max_attempts`` per question, waiting ``backoff_s * 2**attempt`` or
    the server's retry-after (either at most ``max_backoff_s``); a teacher whose questions failed for good
    ``max_consecutive_failures`` times in a row is taken out of the round."""

    max_attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_consecutive_failures: int = 5

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_backoff_s, max(0.0, retry_after))
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt)


def vote(teacher: str, a: Any) -> Vote:
    """A vote from a paid call (a stored :class:`CallRecord`) or a fresh :class:`TeacherAnswer`."""
    return Vote(teacher, a.label, a.rationale, a.confidence, a.valid, a.distribution)


class TeacherEnsemble:
    """Runs a set of teachers over items, with caching by request hash, the budget and the store."""

    def __init__(self, teachers: Sequence[Teacher], store: Store, budget: Budget, *, concurrency: int = 8,
                 retry: Retry | None = None, **retry_options: Any) -> None:
        names = [t.name for t in teachers]
        if len(set(names)) != len(names):
            raise ValueError(f"teacher names must be unique, got {names}")
        self.teachers = list(teachers)
        self.store = store
        self.budget = budget
        self.concurrency = concurrency
        self.retry = dataclasses.replace(retry or Retry(), **retry_options)
        self._asking: dict[str, asyncio.Future] = {}  # request hash -> the question being asked right now
        self._held: dict[int, Any] = {}  # call id -> reservation re-attached for a submitted batch call
        self._live = 0  # reservations of live calls not settled yet
        self._changed: asyncio.Event | None = None

    async def annotate(self, items: Sequence[LabelingItem], round_no: int,
                       on_progress: Callable[[], None] | None = None,
                       teachers: Sequence[Teacher] | None = None) -> AnnotationResult:
        """Ask ``teachers`` (default: all) about every item; a cascade calls this once per tier."""
        asked = list(teachers) if teachers is not None else self.teachers
        result = AnnotationResult(votes={it.example_id: [] for it in items})
        gate = WeightedSemaphore(self.concurrency)  # every teacher together, in requests
        failures = {t.name: 0 for t in asked}
        self._changed = asyncio.Event()
        live = [t for t in asked if not getattr(t, "batch_mode", False)]
        batched = [t for t in asked if getattr(t, "batch_mode", False)]
        # calls an earlier run submitted to a batch count against the budget before any new call reserves
        for t in self.teachers:
            if getattr(t, "batch_mode", False):
                hold_submitted(self, t)

        async def one(item: LabelingItem, teacher: Teacher) -> None:
            got = await self._question(item, teacher, round_no, result, gate, failures)
            if got is not None:
                result.votes[item.example_id].append(got)
            if on_progress:
                on_progress()

        await asyncio.gather(*(one(it, t) for it in items for t in live),
                             *(annotate_with_batch(self, t, items, round_no, result, on_progress) for t in batched))
        order = {t.name: i for i, t in enumerate(self.teachers)}
        for votes in result.votes.values():
            votes.sort(key=lambda v: order[v.teacher])
        return result

    async def _question(self, item: LabelingItem, teacher: Teacher, round_no: int, result: AnnotationResult,
                        gate: WeightedSemaphore, failures: dict[str, int]) -> Vote | None:
        prompt = teacher.render(item)
        h = teacher.request_hash(prompt)
        while h in self._asking:  # the same question is being asked right now: wait for that answer
            await asyncio.wait({self._asking[h]})
        mine = asyncio.get_running_loop().create_future()
        self._asking[h] = mine
        try:
            return await self._ask(item, teacher, prompt, h, round_no, result, gate, failures)
        finally:
            self._asking.pop(h, None)
            mine.set_result(None)

    async def _ask(self, item: LabelingItem, teacher: Teacher, prompt: Prompt, h: str, round_no: int,
                   result: AnnotationResult, gate: WeightedSemaphore, failures: dict[str, int]) -> Vote | None:
        paid = self.store.find_paid_call(h)
        if paid is not None:
            result.reused_calls += 1
            return vote(teacher.name, paid)
        cut = self.store.interrupted_call(h)  # cut off by a crash: found again where the provider keeps it
        if cut is not None and await self._recover(teacher, cut, prompt):
            result.recovered_calls += 1
            return vote(teacher.name, self.store.find_paid_call(h))
        resend_of = cut["id"] if cut is not None else None
        expected = teacher.expected(prompt, item.example_id)
        uncertain: list[int] = []  # this question's calls charged at an estimate, re-based once it is answered
        for attempt in range(self.retry.max_attempts):
            if teacher.name in result.disabled:
                return None
            try:
                estimate = teacher.estimate(prompt, item.example_id)
            except TeacherError as exc:
                self._gave_up(teacher, result, failures, f"cannot estimate: {exc}")
                return None
            reservation = await self._reserve(estimate, result)
            if reservation is None:
                result.refused.setdefault(teacher.name, []).append(item.example_id)
                return None
            call_id: int | None = None
            try:
                async with teacher.slot(estimate), gate.hold(teacher.requests_per_call):
                    if teacher.name in result.disabled:  # taken out while this call waited for its turn
                        self._settled(reservation, None)
                        return None
                    call_id = self.store.begin_call(
                        request_hash=h, round_no=round_no, example_id=item.example_id, teacher=teacher.name,
                        model=teacher.model, prompt_style=prompt.style, prompt_version=prompt.version,
                        reserved=estimate, expected=expected, resend_of=resend_of)
                    CALL_KEY.set(self.store.recovery_key(call_id))
                    failpoint("call_written")  # in flight, not sent yet
                    answer = await teacher.answer(prompt, item)
                    failpoint("answer_received")  # billed, not settled: the answer is lost with the process
            except TeacherError as exc:
                spend = exc.spend if isinstance(exc.spend, Spend) else expected if exc.maybe_billed else Spend()
                charged = "estimate" if exc.maybe_billed else "usage"
                if call_id is not None:
                    self.store.settle_call(call_id, status="error", spend=spend, error=str(exc)[:2000],
                                           charged=charged, ledger_kind="estimate" if exc.maybe_billed else "call")
                    if exc.maybe_billed:
                        uncertain.append(call_id)
                self._settled(reservation, spend if call_id is not None else None)
                result.failed_attempts += 1
                if not exc.retryable or attempt == self.retry.max_attempts - 1:
                    self._gave_up(teacher, result, failures, str(exc))
                    await self._rebase(teacher, prompt, uncertain, None, round_no)
                    return None
                resend_of = None
                delay = self.retry.delay(attempt, exc.retry_after)
                if exc.retry_after is not None:
                    teacher.pause(delay)  # the server said when: every new call of this teacher waits too
                await asyncio.sleep(delay)
                continue
            except BaseException:
                if self.budget.holds(reservation):
                    self._settled(reservation, None)  # a call written in flight stays so: recovered on resume
                raise
            spend = self._settle(call_id, teacher, answer)
            failpoint("answer_settled")
            self._settled(reservation, spend)
            self._check_bound(teacher, spend, reservation, result)
            failures[teacher.name] = 0
            result.paid_calls += 1
            await self._rebase(teacher, prompt, uncertain, answer, round_no)
            return vote(teacher.name, answer)
        return None

    # -- the budget --------------------------------------------------------------------------------------
    async def _reserve(self, estimate: Spend, result: AnnotationResult) -> Reservation | None:
        """A reservation, waiting while calls in flight hold the room it needs; None when it cannot fit."""
        while True:
            try:
                reservation = self.budget.reserve(estimate)
            except BudgetExhausted as exc:
                if self._live == 0 or self._changed is None:
                    if not result.budget_exhausted:
                        log.info("budget: %s; no further calls of this size this round", exc)
                    result.budget_exhausted = True
                    return None
                await self._changed.wait()
                continue
            self._live += 1
            return reservation

    def _settled(self, reservation: Reservation, spend: Spend | None) -> None:
        """Settle (``spend``) or release (None) a live reservation, and wake the calls waiting for room."""
        if spend is None:
            self.budget.release(reservation)
        else:
            self.budget.settle(reservation, spend)
        self._live -= 1
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _settle(self, call_id: int, teacher: Teacher, answer: TeacherAnswer) -> Spend:
        """Record an answer on its call and charge its usage to the ledger; what it cost."""
        self._record(call_id, teacher, answer, status="ok", charged="usage")
        return Spend(answer.usage.tokens_in, answer.usage.tokens_out, teacher.cost(answer.usage, batch=answer.batch))

    @staticmethod
    def _check_bound(teacher: Teacher, spend: Spend, reservation: Reservation, result: AnnotationResult) -> None:
        """A server that bills past the bound a call reserved (``max_tokens``) would take the ledger past its cap:
        its teacher is taken out of the round at the first such answer."""
        bound = reservation.amount
        if (spend.tokens_in <= bound.tokens_in and spend.tokens_out <= bound.tokens_out) or \
                teacher.name in result.disabled:
            return
        reason = (f"its server billed {spend.tokens_in} tokens in and {spend.tokens_out} out where the call reserved "
                  f"at most {bound.tokens_in} in and {bound.tokens_out} out (max_tokens): the budget's caps cannot be "
                  "kept with it; fix the server or its max_tokens")
        result.disabled[teacher.name] = reason
        log.warning("teacher %s taken out of this round: %s", teacher.name, reason)

    # -- calls whose outcome is unknown --------------------------------------------------------------------
    async def _recover(self, teacher: Teacher, row: dict[str, Any], prompt: Prompt) -> bool:
        """Find a call cut off by a crash at the provider; settle it as answered (exactly as billed) if found."""
        found = await self._find(teacher, row, prompt)
        if found is None:
            return False
        self.budget.adjust(self._record(row["id"], teacher, found, status="ok", charged="recovered"), row["round"])
        log.info("teacher %s: call %s found again at the provider; not asked again", teacher.name, row["id"])
        return True

    async def _find(self, teacher: Teacher, row: dict[str, Any] | None, prompt: Prompt) -> TeacherAnswer | None:
        if row is None or not teacher.can_recover or not row.get("recovery_key"):
            return None
        try:
            return await teacher.recover(row["recovery_key"], prompt)
        except TeacherError as exc:
            log.info("teacher %s: could not look for call %s at the provider: %s", teacher.name, row["id"], exc)
            return None

    def _record(self, call_id: int, teacher: Teacher, a: TeacherAnswer, *, status: str, charged: str,
                error: str | None = None) -> Spend:
        """Settle ``call_id`` with answer ``a`` (charged as billed); the change to the ledger."""
        spend = Spend(a.usage.tokens_in, a.usage.tokens_out, teacher.cost(a.usage, batch=a.batch))
        return self.store.settle_call(
            call_id, status=status, spend=spend, raw_response=a.raw, label=a.label, rationale=a.rationale,
            confidence=a.confidence, confidence_source=a.confidence_source, valid=a.valid,
            cached_tokens=a.usage.cached_tokens, cache_write_tokens=a.usage.cache_write_tokens,
            latency_s=a.latency_s, error=error or a.error, distribution=a.distribution, charged=charged,
            ledger_kind="recovered" if charged == "recovered" else "call")

    async def _rebase(self, teacher: Teacher, prompt: Prompt, uncertain: list[int], answer: TeacherAnswer | None,
                      round_no: int) -> None:
        """Re-base the estimated charges of a question's calls whose outcome was unknown: exactly as billed where
        the provider still has them; else on the usage of the answer that came (the same prompt: the same tokens
        in), priced without assuming a cache discount, and never raised past what the budget has left."""
        for call_id in uncertain:
            row = self.store.call_row(call_id)
            found = await self._find(teacher, row, prompt)
            if found is not None and row is not None:
                self.budget.adjust(self._record(call_id, teacher, found, status="error", charged="usage",
                                                error=row["error"]), round_no)
                continue
            if answer is None or row is None:
                continue
            u = answer.usage
            usd = teacher.cost(Usage(u.tokens_in, u.tokens_out, 0, u.cached_tokens + u.cache_write_tokens),
                               batch=answer.batch)
            better = Spend(u.tokens_in, u.tokens_out, usd)
            current = Spend(row["tokens_in"] or 0, row["tokens_out"] or 0, row["cost_usd"] or 0.0)
            up = Spend(max(0, better.tokens_in - current.tokens_in), max(0, better.tokens_out - current.tokens_out),
                       max(0.0, better.usd - current.usd))
            if self.budget.can_afford(up):
                self.budget.adjust(self.store.recharge(call_id, better), round_no)

    def _gave_up(self, teacher: Teacher, result: AnnotationResult, failures: dict[str, int], message: str) -> None:
        """A question of ``teacher`` failed for good; enough of them in a row take it out of the round."""
        failures[teacher.name] += 1
        result.gave_up[teacher.name] = message
        if failures[teacher.name] >= self.retry.max_consecutive_failures and teacher.name not in result.disabled:
            reason = f"{failures[teacher.name]} questions in a row failed, last: {message[:300]}"
            result.disabled[teacher.name] = reason
            log.info("teacher %s taken out of this round: %s", teacher.name, reason)


def _neg(s: Spend) -> Spend:
    return Spend(-s.tokens_in, -s.tokens_out, -s.usd)
