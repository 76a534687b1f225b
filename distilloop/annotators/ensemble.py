"""The teacher ensemble: every selected item is asked of every teacher, within the budget, never twice.

For each (item, teacher) the prompt is rendered and hashed; a settled answer with that hash in the store is
reused for free. Otherwise the call's upper-bound cost is reserved against the budget, the call is written
to the store as in flight, sent, and settled from the reported usage in one transaction. Failures are
recorded on the call and retried with exponential backoff (honouring a server's retry-after); a teacher
that keeps failing is taken out of the round with a warning instead of crashing it.

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

from distilloop.annotators.base import Teacher
from distilloop.annotators.batching import annotate_with_batch
from distilloop.core.ledger import Budget
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Vote
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
    pending_batches: dict[str, list[str]] = field(default_factory=dict)  # teacher -> batch ids still running

    def merge(self, other: AnnotationResult) -> AnnotationResult:
        """Fold a later tier's result (a cascade) into this one; returns self."""
        for ex, vs in other.votes.items():
            self.votes.setdefault(ex, []).extend(vs)
        self.disabled.update(other.disabled)
        self.budget_exhausted |= other.budget_exhausted
        self.paid_calls += other.paid_calls
        self.reused_calls += other.reused_calls
        self.failed_attempts += other.failed_attempts
        self.pending_batches.update(other.pending_batches)
        return self


@dataclass
class Retry:
    """How failed calls are retried: up to ``max_attempts`` per question, waiting ``backoff_s * 2**attempt``
    (at most ``max_backoff_s``) or the server's retry-after; a teacher failing ``max_consecutive_failures`` times
    in a row is taken out of the round."""

    max_attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_consecutive_failures: int = 5

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        return retry_after or min(self.max_backoff_s, self.backoff_s * 2 ** attempt)


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
        self._inflight: dict[str, asyncio.Future] = {}
        self._held: dict[int, Any] = {}  # call id -> reservation re-attached for a submitted batch call

    async def annotate(self, items: Sequence[LabelingItem], round_no: int,
                       on_progress: Callable[[], None] | None = None,
                       teachers: Sequence[Teacher] | None = None) -> AnnotationResult:
        """Ask ``teachers`` (default: all) about every item; a cascade calls this once per tier."""
        asked = list(teachers) if teachers is not None else self.teachers
        result = AnnotationResult(votes={it.example_id: [] for it in items})
        sem = asyncio.Semaphore(self.concurrency)
        failures = {t.name: 0 for t in asked}

        async def one(item: LabelingItem, teacher: Teacher) -> None:
            async with sem:
                vote = await self._ask(item, teacher, round_no, result, failures)
            if vote is not None:
                result.votes[item.example_id].append(vote)
            if on_progress:
                on_progress()

        live = [t for t in asked if not getattr(t, "batch_mode", False)]
        batched = [t for t in asked if getattr(t, "batch_mode", False)]
        await asyncio.gather(*(one(it, t) for it in items for t in live),
                             *(annotate_with_batch(self, t, items, round_no, result, on_progress) for t in batched))
        order = {t.name: i for i, t in enumerate(self.teachers)}
        for votes in result.votes.values():
            votes.sort(key=lambda v: order[v.teacher])
        return result

    async def _ask(self, item: LabelingItem, teacher: Teacher, round_no: int, result: AnnotationResult,
                   failures: dict[str, int]) -> Vote | None:
        prompt = teacher.render(item)
        request_hash = teacher.request_hash(prompt)
        if request_hash in self._inflight:  # the same question is being asked right now: wait for that answer
            await asyncio.wait({self._inflight[request_hash]})
        paid = self.store.find_paid_call(request_hash)
        if paid is not None:
            result.reused_calls += 1
            return Vote(teacher.name, paid.label, paid.rationale, paid.confidence, paid.valid, paid.distribution)
        for attempt in range(self.retry.max_attempts):
            if teacher.name in result.disabled or result.budget_exhausted:
                return None
            try:
                estimate = teacher.estimate(prompt, item.example_id)
            except TeacherError as exc:
                self._fail(teacher, result, failures, f"cannot estimate: {exc}")
                return None
            try:
                reservation = self.budget.reserve(estimate)
            except BudgetExhausted as exc:
                if not result.budget_exhausted:
                    log.info("budget: %s; no further calls this round", exc)
                result.budget_exhausted = True
                return None
            self._inflight.setdefault(request_hash, asyncio.get_running_loop().create_future())
            call_id = self.store.begin_call(
                request_hash=request_hash, round_no=round_no, example_id=item.example_id, teacher=teacher.name,
                model=teacher.model, prompt_style=prompt.style, prompt_version=prompt.version, reserved=estimate)
            try:
                async with teacher.slot(estimate):
                    answer = await teacher.answer(prompt, item)
            except TeacherError as exc:
                self._done(request_hash)
                spend = getattr(exc, "spend", None) or Spend()
                self.store.settle_call(call_id, status="error", spend=spend, error=str(exc)[:2000])
                self.budget.settle(reservation, spend)
                result.failed_attempts += 1
                self._fail(teacher, result, failures, str(exc))
                if not exc.retryable or attempt == self.retry.max_attempts - 1:
                    return None
                await asyncio.sleep(self.retry.delay(attempt, getattr(exc, "retry_after", None)))
                continue
            except BaseException:
                self._done(request_hash)
                # cancelled or crashed mid-call: leave the row in flight, recovered (and charged) on resume
                self.budget.release(reservation)
                raise
            self._settle(call_id, teacher, answer, reservation)
            self._done(request_hash)
            failures[teacher.name] = 0
            result.paid_calls += 1
            return Vote(teacher.name, answer.label, answer.rationale, answer.confidence, answer.valid,
                        answer.distribution)
        return None

    def _done(self, request_hash: str) -> None:
        fut = self._inflight.pop(request_hash, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _settle(self, call_id: int, teacher: Teacher, answer: TeacherAnswer, reservation) -> None:
        spend = Spend(answer.usage.tokens_in, answer.usage.tokens_out, teacher.cost(answer.usage, batch=answer.batch))
        self.store.settle_call(
            call_id, status="ok", spend=spend, raw_response=answer.raw, label=answer.label,
            rationale=answer.rationale, confidence=answer.confidence, confidence_source=answer.confidence_source,
            valid=answer.valid, cached_tokens=answer.usage.cached_tokens,
            cache_write_tokens=answer.usage.cache_write_tokens, latency_s=answer.latency_s, error=answer.error,
            distribution=answer.distribution)
        self.budget.settle(reservation, spend)

    def _fail(self, teacher: Teacher, result: AnnotationResult, failures: dict[str, int], message: str) -> None:
        failures[teacher.name] += 1
        if failures[teacher.name] >= self.retry.max_consecutive_failures and teacher.name not in result.disabled:
            reason = f"{failures[teacher.name]} consecutive failures, last: {message[:200]}"
            result.disabled[teacher.name] = reason
            log.warning("teacher %s taken out of this round: %s", teacher.name, reason)
