"""Annotate: every teacher (or, with a cascade, the tiers in order) asked about the round's items, within the
budget, every paid answer reused; the votes calibrated where calibration is on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distilloop.annotators.aggregation import votes_from_rows
from distilloop.annotators.base import Teacher
from distilloop.annotators.calibration import MIN_PRIOR_ITEMS, estimate_prior, normalize_prior
from distilloop.annotators.ensemble import AnnotationResult, TeacherEnsemble
from distilloop.core.types import LabelingItem, Vote
from distilloop.errors import BatchPending, BudgetExhausted, TeachersFailed
from distilloop.loop import fit, guidelines, references
from distilloop.loop.env import Env
from distilloop.loop.routing import ASK_NEXT


@dataclass
class Annotation:
    """A round's votes per item (calibrated where calibration is on; items no teacher answered are absent:
    they go back to the pool), the cascade tier that settled each item, and the ensemble's account."""

    round_no: int
    ids: list[str]
    votes: dict[str, list[Vote]]
    tiers_asked: dict[str, int] = field(default_factory=dict)
    result: AnnotationResult = field(default_factory=AnnotationResult)


def stored_votes(env: Env, skip: set[int] | None = None) -> dict[str, list[Vote]]:
    """Each item's last votes, for fitting the calibration: those of items drawn as a sample of the pool, the
    pilot's and the teachers' held-out set's included (a relabel's items chosen by their label, agreement or id
    are not one: fitted to the pool's class shares, a relabel of the items labeled "billing" moved most of them
    to other labels)."""
    skip = not_sampled(env) if skip is None else skip  # (``not_sampled``, when the caller has it)
    out = {ex: votes_from_rows(rows) for ex, rows in env.store.all_votes(skip_rounds=skip).items()}
    # and the pilot's items and the teachers' held-out set (round 0, random samples of the pool), until a round
    # decides them: a first round of 20 items had its calibration fitted on those 20 alone
    early: dict[str, dict[str, Vote]] = {}
    for c in env.store.calls(round_no=0, status="ok"):
        if c.example_id not in out and c.valid and c.distribution:
            early.setdefault(c.example_id, {})[c.teacher] = Vote(c.teacher, c.label, None, c.confidence,
                                                                 distribution=c.distribution)
    return out | {ex: list(by_teacher.values()) for ex, by_teacher in early.items()}


def not_sampled(env: Env) -> set[int]:
    """The relabel rounds whose items are not a sample of the pool (:attr:`~distilloop.loop.relabel.Selectors.sample`)."""
    from distilloop.loop.relabel import sampled

    return {r["round"] for r in env.store.rounds() if not sampled(env.store, r)}


def calibrate(env: Env, votes: dict[str, list[Vote]], round_votes: dict[str, list[Vote]] | None = None,
              history: dict[str, list[Vote]] | None = None, round_no: int | None = None) -> dict[str, list[Vote]]:
    """``votes`` with each teacher's label bias removed (``[aggregation] calibrate``), the bias estimated on
    every answer of that teacher so far: earlier rounds' (``history``, read from the store when not given) and
    this round's (``round_votes``, default ``votes``), unless round ``round_no`` is a relabel of items that are
    not a sample of the pool: its votes are calibrated with the bias of the others."""
    cal = env.parts.calibration
    if cal is None:
        return votes
    labels = env.parts.space.labels
    skip = not_sampled(env)
    fit = dict(stored_votes(env, skip) if history is None else history)
    if round_no is None or round_no not in skip:
        fit.update(votes if round_votes is None else round_votes)
    shares = class_shares(env)
    cal.fit(fit.values(), labels, prior=shares, open_labels=[x for x in labels if shares and x not in shares])
    return cal.apply(votes, labels)


#: the gold samples drawn like the pool that ``calibrate_prior = "auto"`` reads class shares from, in this order
PRIOR_SOURCES = ("audit", "gold:dev")


def class_shares(env: Env) -> dict[str, float] | None:
    """The class shares calibration fits each teacher to (None: equal shares), by ``[aggregation]
    calibrate_prior``: a table as given; ``auto``: those of the audit answers, else of the dev split's gold labels
    (the first with ``MIN_PRIOR_ITEMS``), where they show the labels are not equally common (:func:`~distilloop.annotators.calibration.estimate_prior`).
    A label added to the campaign that the gold sample never says is left out: the sample was made before it,
    so it cannot give its share (the calibration then takes the teachers' own). A change of the shares used is
    said once and kept in the store (``status`` shows it)."""
    cal = env.parts.calibration
    setting = cal.prior if cal is not None else "uniform"
    shares: dict[str, float] | None = None
    source = "uniform"
    labels = env.parts.space.labels
    unknown: list[str] = []
    if isinstance(setting, dict):
        shares, source = normalize_prior(setting, labels, where="aggregation.calibrate_prior"), "[aggregation] calibrate_prior"
    elif setting == "auto":
        refs = references.available(env.store, env.examples)
        ref = next((refs[n] for n in PRIOR_SOURCES if n in refs and len(refs[n].ids) >= MIN_PRIOR_ITEMS), None)
        if ref is not None:
            first = set(guidelines.first_labels(env.store) or labels)
            unknown = [x for x in labels if x not in first and x not in ref.labels]
            shares = estimate_prior(ref.labels, [x for x in labels if x not in unknown])
            source = ref.describe() if shares is not None else "uniform"
    used: dict[str, Any] = {"source": source, "shares": shares}
    if shares is not None and unknown:
        used["open"] = unknown
    if env.store.get_meta("calibration_prior") != used:
        env.store.set_meta("calibration_prior", used)
        if shares is not None:
            env.progress.note("calibrating the teachers to the class shares of " + source + ": " + shares_text(used))
    return shares


def shares_text(used: dict[str, Any]) -> str:
    """The shares calibration fits to, in words (``billing 34%, bug 17%; refund as the teachers answer it...``)."""
    text = ", ".join(f"{x} {100 * v:.0f}%" for x, v in (used.get("shares") or {}).items())
    if used.get("open"):
        text += (f"; {', '.join(map(repr, used['open']))} at the teachers' own share: added to the labels after "
                 "those gold labels were made, none says it")
    return text


def annotate(env: Env, round_no: int) -> Annotation:
    """Ask the teachers about round ``round_no``'s selection; raise :class:`BatchPending` while a provider
    batch is still running (the round resumes here on the next ``distilloop run``)."""
    ids = env.store.selection(round_no)
    explanations = env.store.selection_explanations(round_no)
    items = [env.item(env.examples[i], explanations.get(i)) for i in ids]
    note = truncated_note(round_no, [(env.examples[i].fields, item.fields) for i, item in zip(ids, items, strict=True)],
                          env.parts.teachers)
    if note:
        env.progress.warn(note)
    with env.progress.bar(f"round {round_no}: teachers labeling", len(items) * len(env.parts.teachers)) as advance:
        result, tiers_asked = asyncio.run(ask(env, items, round_no, advance))
    if result.pending_batches:
        batches = ", ".join(f"{b} ({t})" for t, bs in result.pending_batches.items() for b in bs)
        raise BatchPending(f"round {round_no}: batch {batches} pending; run again later "
                           "(`distilloop run` ingests it when it has ended)", batches=result.pending_batches)
    for name, reason in result.disabled.items():
        env.progress.warn(f"teacher {name} was taken out of round {round_no}: {reason}")
    answered = result.paid_calls + result.reused_calls + result.recovered_calls
    # nothing answered: a teacher that failed a question for good (a wrong key, a dead server) is the cause to fix
    # first; the budget is only the cause when none did (a cascade whose first teacher fails on a wrong
    # key and whose next one no longer fits the cap said "raise the cap", which would not have helped)
    failed = {**result.gave_up, **result.disabled}  # teachers that failed a question for good, and why
    if items and not answered and (failed or (result.failed_attempts and not result.budget_exhausted)):
        reasons = "; ".join(f"{n}: {r}" for n, r in failed.items()) or \
            f"{result.failed_attempts} failed attempt(s), see `distilloop status`"
        what = ("no item was answered: the teachers asked failed, and what is left of the budget does not cover a "
                "call of the others" if result.budget_exhausted else "every teacher failed and no item was answered")
        raise TeachersFailed(f"round {round_no}: {what} ({reasons[:600]}); "
                             "the campaign stops here instead of using up its rounds: fix the cause (the key, the "
                             "server, the model) and run `distilloop run` again to resume this round")
    if items and not answered and result.budget_exhausted:
        raise BudgetExhausted(f"budget spent: what is left does not cover one more call (round {round_no} could not "
                              "buy a single answer); raise the cap and `distilloop run` resumes this round")
    if result.refused:
        env.progress.warn(refused_note(round_no, result))
    if note := failed_note(round_no, ids, result):
        env.progress.warn(note)
    votes = calibrate(env, {i: result.votes[i] for i in ids if result.votes.get(i)}, round_no=round_no)
    return Annotation(round_no, ids, votes, tiers_asked, result)


def truncated_note(round_no: int, fields: Sequence[tuple[dict[str, Any], dict[str, Any]]],
                   teachers: Sequence[Teacher]) -> str | None:
    """What ``[data] too_long = "truncate"`` did to a round's items (their fields as in the data and as sent), said
    once a round: long documents were labeled on their first lines, silently."""
    cut = [(full, sent) for full, sent in fields if full != sent]
    if not cut:
        return None

    def size(f: dict[str, Any]) -> int:
        return sum(len(v) for v in f.values() if isinstance(v, str))

    read = sum(size(sent) - len(fit.MARK) for _, sent in cut) / max(1, sum(size(full) for full, _ in cut))
    windows = sorted((t.context_tokens, t.name) for t in teachers if t.context_tokens)
    window = f" of {windows[0][1]} ({windows[0][0]:,} tokens)" if windows else ""
    return (f"round {round_no}: {len(cut)} of {len(fields)} item(s) were cut to fit the context window{window}: "
            f"the teachers read {100 * read:.0f}% of their text on average. [data] too_long = \"skip\" leaves such "
            "items out instead; a larger window (a local model's n_ctx, a remote one's context_tokens) lets the "
            "teachers read more")


def refused_note(round_no: int, result: AnnotationResult) -> str:
    """What the budget refused in a round, and what became of those items: decided without the refused teachers'
    answers (a missing answer counts as dissent), or back to the pool where nobody answered."""
    calls = ", ".join(f"{len(refused)} call(s) of {name}" for name, refused in result.refused.items())
    missing = {i for refused in result.refused.values() for i in refused}
    unanswered = sum(1 for i in missing if not result.votes.get(i))
    partial = len(missing) - unanswered
    fate = []
    if partial:
        fate.append(f"{partial} item(s) were decided without those answers (a missing answer counts as dissent)")
    if unanswered:
        fate.append(f"{unanswered} item(s) no teacher answered went back to the pool")
    return (f"round {round_no}: the budget had no room left for {calls} (a call reserves its prompt and "
            f"max_tokens of answer before it is sent){': ' + '; '.join(fate) if fate else ''}. Raise the [budget] "
            "cap, or lower that teacher's max_tokens, to have them asked")


def failed_note(round_no: int, ids: Sequence[str], result: AnnotationResult) -> str | None:
    """Items every teacher asked failed (not the budget's refusals: :func:`refused_note` says those) while others
    were answered: they go back to the pool unlabeled, which the rounds table alone showed as fewer labels."""
    refused = {i for items in result.refused.values() for i in items}
    lost = [i for i in ids if not result.votes.get(i) and i not in refused]
    if not lost:
        return None
    why = "; ".join(f"{name}: {error[:200]}" for name, error in {**result.gave_up, **result.disabled}.items())
    return (f"round {round_no}: {len(lost)} of {len(ids)} item(s) got no answer from any teacher"
            + (f" ({why})" if why else "") + ": they went back to the pool unlabeled (e.g. "
            f"{', '.join(lost[:3])}); `distilloop status` counts the failed calls")


async def ask(env: Env, items: Sequence[LabelingItem], round_no: int,
               advance: Callable[..., None]) -> tuple[AnnotationResult, dict[str, int]]:
    """Every teacher, or with a cascade the tiers in order, each only for the items still unsure."""
    parts = env.parts
    ensemble = TeacherEnsemble(parts.teachers, env.store, env.budget, concurrency=env.config.rounds.concurrency,
                               retry=env.retry)
    try:
        if parts.cascade is None:
            return await ensemble.annotate(items, round_no, on_progress=advance), {}
        by_name = {t.name: t for t in parts.teachers}
        merged: AnnotationResult | None = None
        tiers_asked: dict[str, int] = {}
        todo = list(items)
        history = stored_votes(env) if parts.calibration is not None else {}  # read once per round
        for k, tier in enumerate(parts.cascade.tiers, 1):
            if not todo:
                break
            res = await ensemble.annotate(todo, round_no, on_progress=advance, teachers=[by_name[n] for n in tier])
            merged = res if merged is None else merged.merge(res)
            for it in todo:
                tiers_asked[it.example_id] = k
            # the cascade decides on calibrated votes when calibration is on (the raw ones go on to aggregation)
            seen = calibrate(env, {it.example_id: merged.votes.get(it.example_id, []) for it in todo},
                             round_votes=merged.votes, history=history, round_no=round_no)
            settled = len(todo)
            todo = [it for it in todo if parts.cascade.next_step(
                seen[it.example_id], k, parts.space.support(seen[it.example_id])) == ASK_NEXT]
            # the later tiers' questions the settled items will not need: the progress bar still ends at its total
            advance((settled - len(todo)) * sum(len(t) for t in parts.cascade.tiers[k:]))
        return merged or AnnotationResult(), tiers_asked
    finally:
        for t in parts.teachers:
            await t.aclose()
