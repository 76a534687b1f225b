"""Batch mode for a round that can wait: a teacher's questions go to the provider's batch API at half price.

For a teacher with ``mode = "batch"`` the ensemble, per round:

1. re-attaches, before any call of the round reserves, the reservations of calls an earlier run submitted
   (status ``submitted`` with their ``batch_id``; the ledger does not show them until ingested), so the
   caps hold over both (:func:`hold_submitted`);
2. reuses answers already paid for (by request hash), like live calls;
3. reserves the rest against the budget and writes them as ``submitting``, each with the custom id the
   provider will know it by (its ``recovery_key``, unique across campaigns), submits them as one batch
   (OpenAI ``/v1/files`` + ``/v1/batches``, tagged with the submission in its metadata; Anthropic Message
   Batches), and marks them ``submitted`` with the batch id in one transaction. A process killed between
   the provider accepting the batch and that transaction leaves them ``submitting``: the next run looks for
   the batch at the provider (:meth:`find_batch`: by the tag, or by the custom ids of its results) and adopts
   it, and submits again only what the provider never accepted, so a batch is never paid twice;
4. polls every ``batch_poll_s`` for up to ``batch_wait_s`` seconds; an ended batch is ingested: each call
   is settled from its reported usage at the batch price (``TeacherAnswer.batch``), a failed request is
   recorded as an error. A batch still running when the wait is over is left ``submitted``: the round
   stops with :class:`~distilloop.errors.BatchPending` and ``distilloop run`` picks it up again later,
   even after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from distilloop.annotators.prompts import Prompt
from distilloop.core.failpoints import failpoint
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Vote
from distilloop.errors import BudgetExhausted, TeacherError

if TYPE_CHECKING:
    from distilloop.annotators.ensemble import AnnotationResult, TeacherEnsemble

log = logging.getLogger(__name__)


class _Call:
    __slots__ = ("call_id", "item", "prompt", "reservation", "key")

    def __init__(self, call_id: int, item: LabelingItem, prompt: Prompt, reservation: Any, key: str) -> None:
        self.call_id, self.item, self.prompt, self.reservation, self.key = call_id, item, prompt, reservation, key


def custom_key(row: dict[str, Any]) -> str:
    """The custom id (base) a batch call goes by at the provider: its recovery key (``c<id>`` before those)."""
    return row.get("recovery_key") or f"c{row['id']}"


def _vote(teacher: str, a: Any) -> Vote:
    return Vote(teacher, a.label, a.rationale, a.confidence, a.valid, a.distribution)


def hold_submitted(ens: TeacherEnsemble, teacher: Any) -> None:
    """Count the calls an earlier run submitted (or was submitting) against the budget, once per process."""
    for row in ens.store.batch_calls(teacher.name):
        if row["id"] not in ens._held:
            ens._held[row["id"]] = ens.budget.hold(Spend(row["reserved_tokens_in"] or 0,
                                                         row["reserved_tokens_out"] or 0, row["reserved_usd"] or 0.0))


async def annotate_with_batch(ens: TeacherEnsemble, teacher: Any, items: Sequence[LabelingItem], round_no: int,
                              result: AnnotationResult, on_progress: Callable[[], None] | None) -> None:
    store = ens.store
    hold_submitted(ens, teacher)
    await _adopt_cut_submission(ens, teacher, result)
    groups: dict[str, list[_Call]] = {}
    new: list[tuple[LabelingItem, Prompt, str]] = []
    seen: set[str] = set()
    duplicates: list[tuple[LabelingItem, str]] = []  # the same question twice: asked once, the answer reused
    for item in items:
        prompt = teacher.render(item)
        h = teacher.request_hash(prompt)
        if h in seen:
            duplicates.append((item, h))
            continue
        seen.add(h)
        paid = store.find_paid_call(h)
        if paid is not None:
            result.reused_calls += 1
            result.votes[item.example_id].append(_vote(teacher.name, paid))
            if on_progress:
                on_progress()
            continue
        row = store.pending_call(h)
        if row is not None and row.get("batch_id"):
            groups.setdefault(row["batch_id"], []).append(
                _Call(row["id"], item, prompt, ens._held[row["id"]], custom_key(row)))
        elif row is None:
            new.append((item, prompt, h))
    if new and teacher.name not in result.disabled:
        submitted = await _submit(ens, teacher, new, round_no, result)
        if submitted is not None:
            groups.setdefault(submitted[0], []).extend(submitted[1])
    deadline = time.monotonic() + teacher.batch_wait_s
    for batch_id, calls in groups.items():
        state = await _wait(teacher, batch_id, deadline)
        if state == "running":
            result.pending_batches.setdefault(teacher.name, []).append(batch_id)
            continue
        await _ingest(ens, teacher, batch_id, calls, state, result, on_progress)
    for item, h in duplicates:
        paid = store.find_paid_call(h)
        if paid is not None:
            result.reused_calls += 1
            result.votes[item.example_id].append(_vote(teacher.name, paid))
        if on_progress:
            on_progress()


async def _adopt_cut_submission(ens: TeacherEnsemble, teacher: Any, result: AnnotationResult) -> None:
    """Calls left ``submitting`` by a process killed mid-submission: adopt the batch if the provider accepted
    it, else release them (they are submitted again with the round's new calls)."""
    rows = ens.store.submitting_calls(teacher.name)
    if not rows:
        return
    keys = [custom_key(r) for r in rows]
    found = await teacher.find_batch(keys[0], keys, since=min(r["created_at"] for r in rows))
    if found == "unknown":  # a candidate batch still running: whether it is ours shows when it ends
        result.pending_batches.setdefault(teacher.name, []).append("(a batch being checked at the provider)")
        return
    if found is not None:
        ens.store.mark_submitted([r["id"] for r in rows], found)
        log.info("teacher %s: the batch %s submitted before a stop was found at the provider and adopted",
                 teacher.name, found)
        return
    for r in rows:
        ens.store.settle_call(r["id"], status="error", spend=Spend(),
                              error="the process stopped while submitting this call; the provider never got it")
        held = ens._held.pop(r["id"], None)
        if held is not None:
            ens.budget.release(held)


async def _submit(ens: TeacherEnsemble, teacher: Any, new: list[tuple[LabelingItem, Prompt, str]], round_no: int,
                  result: AnnotationResult) -> tuple[str, list[_Call]] | None:
    store, budget = ens.store, ens.budget
    calls: list[_Call] = []
    for k, (item, prompt, h) in enumerate(new):
        estimate = teacher.estimate(prompt, item.example_id)
        try:
            reservation = budget.reserve(estimate)
        except BudgetExhausted as exc:
            if not result.budget_exhausted:
                log.info("budget: %s; the rest of this round's batch is not submitted", exc)
            result.budget_exhausted = True
            result.refused.setdefault(teacher.name, []).extend(it.example_id for it, _, _ in new[k:])
            break
        call_id = store.begin_call(request_hash=h, round_no=round_no, example_id=item.example_id,
                                   teacher=teacher.name, model=teacher.model, prompt_style=prompt.style,
                                   prompt_version=prompt.version, reserved=estimate, mode="batch",
                                   status="submitting", expected=teacher.expected(prompt, item.example_id))
        calls.append(_Call(call_id, item, prompt, reservation, custom_key(store.call_row(call_id) or {"id": call_id})))
    if not calls:
        return None
    for attempt in range(ens.retry.max_attempts):
        try:
            batch_id = await teacher.submit_batch({c.key: c.prompt for c in calls}, tag=calls[0].key)
        except TeacherError as exc:
            result.failed_attempts += 1
            last = not exc.retryable or attempt == ens.retry.max_attempts - 1
            if last:
                for c in calls:
                    store.settle_call(c.call_id, status="error", spend=Spend(), error=f"batch submit failed: {exc}"[:2000])
                    budget.release(c.reservation)
                result.disabled.setdefault(teacher.name, f"batch submission failed: {str(exc)[:200]}")
                log.warning("teacher %s taken out of this round: batch submission failed: %s", teacher.name, exc)
                return None
            await asyncio.sleep(ens.retry.delay(attempt, exc.retry_after))
            continue
        failpoint("batch_submitted")  # the provider has the batch; the store does not know its id yet
        store.mark_submitted([c.call_id for c in calls], batch_id)
        log.info("teacher %s: submitted %d request(s) as batch %s", teacher.name, len(calls), batch_id)
        return batch_id, calls
    return None  # pragma: no cover - the loop always returns


async def _wait(teacher: Any, batch_id: str, deadline: float) -> str:
    """``ended``, ``failed`` or (the wait is over) ``running``; transient poll errors count as running."""
    while True:
        try:
            state = await teacher.poll_batch(batch_id)
            status = state.status
        except TeacherError as exc:
            if not exc.retryable:
                raise
            log.info("teacher %s: polling batch %s failed (%s); will poll again", teacher.name, batch_id, exc)
            status = "running"
        if status != "running":
            return status
        left = deadline - time.monotonic()
        if left <= 0:
            return "running"
        await asyncio.sleep(min(teacher.batch_poll_s, left))


async def _ingest(ens: TeacherEnsemble, teacher: Any, batch_id: str, calls: list[_Call], state: str,
                  result: AnnotationResult, on_progress: Callable[[], None] | None) -> None:
    store, budget = ens.store, ens.budget
    if state == "failed":
        outcomes: dict[str, Any] = {c.key: TeacherError(f"teacher {teacher.name}: batch {batch_id} failed at the "
                                                        "provider") for c in calls}
    else:
        outcomes = await teacher.fetch_batch(batch_id, {c.key: c.prompt for c in calls})
    for c in calls:
        out = outcomes.get(c.key) or TeacherError(f"teacher {teacher.name}: no result for call {c.call_id} in "
                                                  f"batch {batch_id}")
        ens._held.pop(c.call_id, None)
        if isinstance(out, TeacherAnswer):
            out.batch = True
            budget.settle(c.reservation, ens._settle(c.call_id, teacher, out))
            result.paid_calls += 1
            result.votes[c.item.example_id].append(_vote(teacher.name, out))
        else:
            spend = out.spend if isinstance(out.spend, Spend) else Spend()
            store.settle_call(c.call_id, status="error", spend=spend, error=str(out)[:2000])
            budget.settle(c.reservation, spend)
            result.failed_attempts += 1
        if on_progress:
            on_progress()
