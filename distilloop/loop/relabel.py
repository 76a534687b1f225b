"""Targeted relabeling (``distilloop relabel``): chosen labeled items re-asked under the current guideline.

The items are chosen by selectors that narrow each other: ``stale`` (labeled under an older guideline version,
:mod:`distilloop.loop.guidelines`), ``below_agreement`` (the teachers' agreement was lower), ``round`` (annotated
in that round), ``ids`` (listed), ``labels`` (currently labeled one of them: the items of a label a new one splits).
Human-reviewed labels are kept unless ``include_reviewed``.

A relabel is a round of its own (strategy ``relabel``): its items are recorded as the round's selection, then
annotated, decided, reviewed and trained on exactly like any round, so it is charged to the budget like a round
(round caps included), an answer whose request is unchanged is reused from the store for free, disagreements
go to review as usual, a new student is promoted only if it does not regress on the frozen reference, and a
relabel stopped at any point is resumed by ``distilloop relabel`` or ``distilloop run``. Relabel rounds do not
count towards ``[rounds] max_rounds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distilloop.core.types import Spend
from distilloop.errors import UserInputError
from distilloop.loop import guidelines
from distilloop.loop.plan import upper_bound
from distilloop.storage.versions import LabelState

if TYPE_CHECKING:
    from distilloop.loop.campaign import Campaign
    from distilloop.storage.store import Store

#: the strategy name of a relabel round
RELABEL = "relabel"
#: label sources that are not a person's review (an automatic acceptance is not one)
NOT_REVIEWED = ("teachers", "auto")


@dataclass
class Selectors:
    """Which labeled items to re-ask; every selector given narrows the choice."""

    stale: bool = False
    below_agreement: float | None = None
    round: int | None = None
    ids: Sequence[str] | None = None
    include_reviewed: bool = False
    labels: Sequence[str] | None = None

    def check(self, known: Sequence[str] = ()) -> None:
        """Refuse no selector, an agreement outside (0, 1], and a label the campaign does not have (``known``)."""
        if not (self.stale or self.below_agreement is not None or self.round is not None or self.ids is not None
                or self.labels):
            raise UserInputError("relabel: choose the items: --stale, --below-agreement X, --round N, --ids FILE or "
                                 "--label L (they combine: each narrows the choice)")
        unknown = [x for x in self.labels or () if known and x not in known]
        if unknown:
            raise UserInputError(f"relabel --label: {', '.join(map(repr, unknown))} is not a label of this campaign "
                                 f"({', '.join(known)})")
        if self.below_agreement is not None and not 0 < self.below_agreement <= 1:
            raise UserInputError(f"relabel --below-agreement: must be an agreement in (0, 1], got "
                                 f"{self.below_agreement}")

    @property
    def sample(self) -> bool:
        """Whether the items chosen are a sample of the pool as the campaign drew it (every stale label, a round's
        labels), not chosen by their label, agreement or id: the calibration is fitted on a sample only."""
        return not (self.labels or self.ids is not None or self.below_agreement is not None)

    def matches(self, s: LabelState, guideline: int, listed: frozenset[str] = frozenset()) -> bool:
        """Whether ``s`` is chosen (``listed``: the ``ids`` as a set, made once by the caller)."""
        return ((not self.stale or s.guideline is None or s.guideline < guideline)
                and (self.below_agreement is None or (s.agreement is not None and s.agreement < self.below_agreement))
                and (self.round is None or s.round == self.round)
                and (self.ids is None or s.example_id in listed)
                and (not self.labels or s.label in self.labels))


@dataclass
class RelabelPlan:
    """What a relabel would do: the items, what is kept, and what it would cost (the ``--dry-run``)."""

    guideline: int
    ids: list[str]
    kept_reviewed: list[str] = field(default_factory=list)
    not_labeled: list[str] = field(default_factory=list)
    requests: int = 0  # teacher requests (every teacher for every item; a cascade may ask fewer)
    #: per later cascade tier's teacher, the share of items the campaign's rounds asked it about (the expected cost
    #: counts it on that share of the items; the requests and the reservation count every item)
    reach: dict[str, float] = field(default_factory=dict)
    reused: int = 0  # of them, answered already: reused from the store for free
    expected: Spend = field(default_factory=Spend)
    upper: Spend = field(default_factory=Spend)  # what the budget reserves for the calls to pay
    budget_left: dict[str, float | None] = field(default_factory=dict)
    new_guideline: bool = False  # the campaign file's guideline is not recorded yet (a dry run): it will be
    #: items of the teachers' held-out set labeled again first (under a new guideline), not in the cost above
    heldout: int = 0
    sample: bool = True  # the items are a sample of the pool (:attr:`Selectors.sample`)

    def short_of(self) -> list[str]:
        """The budget's resources the expected cost needs more of than is left."""
        return [k for k, v in self.budget_left.items() if v is not None and getattr(self.expected, k) > v]

    def as_dict(self) -> dict[str, Any]:
        return {"guideline": self.guideline, "ids": self.ids, "kept_reviewed": self.kept_reviewed,
                "short_of": self.short_of(),
                "not_labeled": self.not_labeled, "requests": self.requests, "reused": self.reused,
                "to_pay": self.requests - self.reused, "expected": vars(self.expected), "upper": vars(self.upper),
                "budget_left": self.budget_left, "new_guideline": self.new_guideline, "reach": self.reach,
                "heldout": self.heldout}


@dataclass
class RelabelResult:
    """What a relabel did: its round, the labels that changed, the items waiting for review, the spend."""

    round_no: int
    asked: int
    changed: list[str]
    unchanged: int
    in_review: int
    no_answer: int
    paid_calls: int
    reused: int
    spent: Spend
    student: dict[str, Any] | None
    stop: str | None = None  # a provider batch still running: the relabel resumes with `distilloop relabel`
    heldout: Spend = field(default_factory=Spend)  # of ``spent``: the held-out set labeled again first


def _spans(numbers: Sequence[int]) -> str:
    """Sorted numbers as runs: ``1-5, 7``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def plan_relabel(campaign: Campaign, selectors: Selectors) -> RelabelPlan:
    """Choose the items and estimate the relabel under the current guideline (nothing is sent or written)."""
    selectors.check(list(campaign.env.parts.space.labels))
    store, env = campaign.store, campaign.env
    guideline = guidelines.version_of(store, campaign.config)  # the campaign file's (a dry run records nothing)
    states = store.label_states()
    if selectors.ids is not None:
        unknown = [i for i in selectors.ids if i not in env.examples]
        if unknown:
            raise UserInputError(f"relabel --ids: {len(unknown)} id(s) are not in this campaign: "
                                 f"{', '.join(unknown[:10])}; list ids of labeled items, one per line")
    if selectors.round is not None and not any(s.round == selectors.round for s in states):
        rounds = sorted({s.round for s in states if s.round is not None})
        raise UserInputError(f"relabel --round {selectors.round}: no label of this campaign was made in round "
                             f"{selectors.round} (its labels come from round(s) {_spans(rounds) or 'none yet'})")
    listed = frozenset(selectors.ids or ())
    chosen = [s for s in states if selectors.matches(s, guideline, listed)]
    reviewed = [s.source not in NOT_REVIEWED and not selectors.include_reviewed for s in chosen]
    kept = [s.example_id for s, r in zip(chosen, reviewed, strict=True) if r]
    ids = [s.example_id for s, r in zip(chosen, reviewed, strict=True) if not r]
    labeled = {s.example_id for s in states}
    plan = RelabelPlan(guideline, ids, kept, [i for i in selectors.ids or () if i not in labeled],
                       new_guideline=guideline != store.current_guideline(), sample=selectors.sample)
    overall = cascade_reach(campaign)
    shares = item_reach(campaign, ids, overall)
    plan.reach = {n: sum(shares[i][n] for i in ids) / len(ids) for n in overall} if ids else {}
    for i in ids:
        item = env.item(env.examples[i])
        for t in env.parts.teachers:
            prompt = t.render(item)
            plan.requests += 1
            if store.find_paid_call(t.request_hash(prompt)) is not None:
                plan.reused += 1
                continue
            up, exp = upper_bound(t, item, exact=False), t.expected(prompt)
            plan.upper = plan.upper + up
            # an expectation above the reservation (a replay teacher knows its exact cost) is the reservation
            share = shares[i].get(t.name, 1.0)
            plan.expected = plan.expected + Spend(round(share * min(exp.tokens_in, up.tokens_in)),
                                                  round(share * min(exp.tokens_out, up.tokens_out)),
                                                  share * min(exp.usd, up.usd))
    plan.budget_left = env.budget.remaining()
    from distilloop.loop.steps.reference import heldout_todo

    plan.heldout = heldout_todo(campaign.config, env.examples.values(), 0, store)[0]
    return plan


def item_reach(campaign: Campaign, ids: Sequence[str], overall: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per item, the chance each later cascade tier's teacher is asked about it again: 1 or 0 where the item's
    last verdict records how far its cascade went (the answers it got are reused, so it goes as far again; the
    tier the budget had no room for counts as reached), else the share of items the campaign's rounds asked it
    about (``overall``, :func:`cascade_reach`). Empty per item without a cascade."""
    cascade = campaign.env.parts.cascade
    if not overall or cascade is None:
        return {i: {} for i in ids}
    level = {name: k for k, tier in enumerate(cascade.tiers, 1) for name in tier}
    reached = campaign.store.tiers_asked(ids)
    return {i: ({n: float(level[n] <= reached[i]) for n in overall} if reached.get(i) else dict(overall))
            for i in ids}


def cascade_reach(campaign: Campaign) -> dict[str, float]:
    """Per teacher of a later cascade tier, the share of items the campaign's finished rounds asked it about: a
    relabel asks through the same cascade, so its expected cost counts that share. Empty without a cascade or
    before a round has finished (then every teacher counts on every item, the cautious figure)."""
    tiers = campaign.env.parts.cascade.tiers if campaign.env.parts.cascade is not None else []
    if len(tiers) < 2:
        return {}
    store = campaign.store
    finished = {r["round"]: int(r["n_selected"] or 0) for r in store.rounds()
                if r["status"] == "done" and r["strategy"] != RELABEL and r["round"] > 0}
    items = sum(finished.values())
    if not items:
        return {}
    asked: dict[str, int] = {}
    for round_no, by_teacher in store.items_asked_by_round_and_teacher().items():
        if round_no in finished:
            for name, n in by_teacher.items():
                asked[name] = asked.get(name, 0) + n
    return {name: min(1.0, asked.get(name, 0) / items) for tier in tiers[1:] for name in tier}


def sampled(store: Store, round_row: dict[str, Any]) -> bool:
    """Whether a round's items are a sample of the pool: every round's but a relabel's chosen by label,
    agreement or id (a relabel from before this was recorded counts as a sample, as it was then)."""
    return round_row["strategy"] != RELABEL or store.get_meta(f"relabel_sample_{round_row['round']}") is not False


def unfinished(campaign: Campaign) -> int | None:
    """The round of a relabel that stopped before its end (resumed by :func:`relabel`), if any."""
    rounds = campaign.store.rounds()
    last = rounds[-1] if rounds else None
    return last["round"] if last is not None and last["status"] != "done" and last["strategy"] == RELABEL else None


def relabel(campaign: Campaign, plan: RelabelPlan | None) -> RelabelResult:
    """Re-ask the plan's items as a relabel round, or (``plan`` None) resume the unfinished one; count the
    labels that changed."""
    store = campaign.store
    rounds = store.rounds()
    last = rounds[-1] if rounds else None
    if last is not None and last["status"] != "done" and last["strategy"] != RELABEL:
        raise UserInputError(f"round {last['round']} is not finished (at step '{last['status']}'); finish it "
                             "with `distilloop run --rounds 1` before relabeling")
    campaign.settle_cut_calls()  # a relabel killed mid-round left calls in flight: charged before anything is asked
    resumed = unfinished(campaign)
    if resumed is not None:
        round_no = resumed
        campaign.progress.note(f"resuming relabel round {round_no} (its items were chosen when it started)")
        ids = store.selection(round_no)
        before = dict(store.get_meta(f"relabel_before_{round_no}", {}))
    else:
        if plan is None or not plan.ids:
            raise UserInputError("relabel: no labeled item matches the selectors; nothing to do")
        # the teachers' held-out set labeled under this guideline first: the relabel round's student is judged on
        # it (charged to this round)
        from distilloop.loop.steps import reference

        reference.prepare(campaign.env)
        round_no = (last["round"] + 1) if last else 1
        ids = plan.ids
        before = store.accepted_labels(ids)
        agreement = {s.example_id: s.agreement or 0.0 for s in store.label_states()}
        with store.atomic():
            store.set_meta(f"relabel_before_{round_no}", before)
            store.set_meta(f"relabel_sample_{round_no}", plan.sample)
            store.start_round(round_no, RELABEL, ids, [agreement.get(i, 0.0) for i in ids])
    stop = campaign.finish_round(round_no)
    after = store.accepted_labels(ids)
    pending = {r["example_id"] for r in store.pending_reviews()}
    verdicts = {c["example_id"]: c for c in store.consensus_rows(round_no)}
    changed = [i for i in ids if i in verdicts and after.get(i) != before.get(i)]
    in_review = [i for i in ids if i in verdicts and i in pending and i not in changed]
    chosen = set(ids)
    paid = sum(1 for c in store.calls(round_no=round_no, status="ok") if c.example_id in chosen)
    votes = sum(len(c["votes"] or []) for c in verdicts.values())
    heldout = sum(store.spend_on_reference("teachers", [round_no]).values(), Spend())
    return RelabelResult(round_no, len(ids), changed, len(verdicts) - len(changed) - len(in_review), len(in_review),
                         len(ids) - len(verdicts), paid, max(0, votes - paid), store.spent(round_no),
                         store.student_of_round(round_no), stop, heldout)
