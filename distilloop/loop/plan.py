"""How many items a round asks about, and what they cost: one :class:`RoundPlan` for ``run`` and ``estimate``.

A round's size is the schedule's (``[rounds] initial_size``, ``batch_size``, ``growth``), capped by the pool
and by what the budget has left at the **expected** cost of one item through every teacher (before a teacher's
real usage is known, at the least an item can cost). The cap itself is enforced on every call's reservation
(its upper bound), so sizing on the expected cost uses a tight cap instead of wasting it, and never crosses it;
the items a round could not pay for when their turn came go back to the pool. The expected cost is each teacher's
:meth:`~distilloop.annotators.base.Teacher.expected`, corrected by what the campaign's own calls of that teacher
used against it so far (:class:`Corrections`), or, once enough items are labeled, what the teacher cost per labeled
item (a cascade's later tier only where it was asked). A teacher whose call's upper bound no longer fits what the
budget has left is not counted (:func:`callable_teachers`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from distilloop.annotators.base import Teacher
from distilloop.core.ledger import CAP_KEYS, Budget, amount
from distilloop.core.types import Example, LabelingItem, Spend, Usage
from distilloop.errors import ConfigError
from distilloop.storage.store import Store

#: pool items sampled to estimate the cost of one item
SAMPLE = 16


#: settled calls of a teacher needed before its expected cost is corrected by them
MIN_HISTORY = 5



@dataclass
class Corrections:
    """Per teacher: real usage over expected so far (tokens in, tokens out, dollars), from its answered calls."""

    factors: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    #: per teacher, what one labeled item cost it so far where enough items tell (a cascade's later tier: only
    #: where it was asked), which replaces its expected cost when a round is sized
    per_item: dict[str, Spend] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store: Store | None, teachers: Sequence[Teacher]) -> Corrections:
        out: dict[str, tuple[float, float, float]] = {}
        for t in teachers:
            n, actual, expected = store.expected_vs_actual(t.name) if store is not None else (0, Spend(), Spend())
            if n >= MIN_HISTORY:
                out[t.name] = (actual.tokens_in / expected.tokens_in if expected.tokens_in else 1.0,
                               actual.tokens_out / expected.tokens_out if expected.tokens_out else 1.0,
                               actual.usd / expected.usd if expected.usd else 1.0)
        return cls(out)

    def known(self, t: Teacher) -> bool:
        """Whether ``t``'s expected cost rests on real usage: its recordings (replay) or the campaign's calls."""
        return t.name in self.factors or t.name in self.per_item or t.kind == "replay"

    def expected(self, t: Teacher, item: LabelingItem) -> Spend:
        e = t.expected(t.render(item), item.example_id)
        f = self.factors.get(t.name)
        if f is None:
            return e
        return Spend(int(round(e.tokens_in * f[0])), int(round(e.tokens_out * f[1])), e.usd * f[2])


@dataclass
class RoundPlan:
    round_no: int
    pool: list[Example]
    size: int  # the schedule's size for this round
    affordable: int  # items the budget can pay for, at the expected cost of one item (at the least, for unknowns)
    per_item: Spend  # expected cost of one item through every teacher (mean over a sample of the pool)
    per_item_upper: Spend  # the reservation one item makes through every teacher (largest over the sample)

    @property
    def n(self) -> int:
        return max(0, min(self.size, self.affordable, len(self.pool)))


def sample(pool: Sequence[Example], k: int = SAMPLE) -> list[Example]:
    """Every k-th item of the pool, at most ``k``: the items the cost of one item is estimated on."""
    return list(pool[:: max(1, len(pool) // k)][:k]) if pool else []


def upper_bound(t: Teacher, item: LabelingItem, *, exact: bool = True) -> Spend:
    """The reservation a call of ``t`` makes (its generic bound where its exact one cannot be had: a replay
    teacher without a recording for the item; or, with ``exact=False``, a local model that would have to be
    loaded to count tokens)."""
    prompt = t.render(item)
    if not exact and t.kind == "llama_cpp":
        return Teacher.estimate(t, prompt, item.example_id)
    try:
        return t.estimate(prompt, item.example_id)
    except Exception:  # noqa: BLE001 - any teacher's failure to estimate falls back to the generic bound
        return Teacher.estimate(t, prompt, item.example_id)


def affordable(budget: Budget, per_item: Spend) -> int:
    """Items the budget's campaign and round caps leave room for at ``per_item`` each."""
    left = budget.remaining()
    n = math.inf
    for res in ("tokens_in", "tokens_out", "usd"):
        cap, need = left[res], getattr(per_item, res)
        if cap is not None and need > 0:
            n = min(n, math.floor(cap / need))
    return int(n) if n != math.inf else 10**9


def fits(budget: Budget, spend: Spend) -> bool:
    """Whether what the budget has left could reserve ``spend`` (one call's upper bound)."""
    left = budget.remaining()
    return all(left[res] is None or getattr(spend, res) <= left[res] for res in ("tokens_in", "tokens_out", "usd"))


def callable_teachers(teachers: Sequence[Teacher], budget: Budget,
                      bounds: dict[str, list[Spend]]) -> list[Teacher]:
    """The teachers whose call (its upper bound, ``bounds[name]`` on each sampled item) on some of the items the
    budget can still reserve. Near the cap a teacher whose bound no longer fits is not asked: counted in a round's
    cost anyway, it made each last round buy a fraction of what the others could (a $0.02 campaign whose claude
    bound was $0.0030: rounds of 23, 20, 15 ... 1 item, a student trained after each), and when none fits the
    campaign stops before an empty round."""
    return [t for t in teachers if any(fits(budget, b) for b in bounds[t.name])]


def round_cap_below_one_call(budget: Budget, bounds: dict[str, list[Spend]]) -> str | None:
    """What to say of a per-round cap (``[budget] round_max_*``) below the smallest call of every teacher on
    these items (``bounds``: each call's reservation) while the campaign's caps still have room for one, else
    None: no round could ask anything (it stopped the campaign as "budget spent ... raise the cap", which named
    the wrong key)."""
    campaign = Budget(budget.campaign, spent=budget.spent)
    if not any(fits(campaign, b) for bs in bounds.values() for b in bs):
        return None  # the campaign's cap binds: raising the round's would not help
    for res, key in CAP_KEYS.items():
        cap = budget.per_round.get(res)
        cheapest = min((getattr(b, res) for bs in bounds.values() for b in bs), default=0.0)
        if cap is not None and cheapest > cap:
            said = f"{cap:.10f}".rstrip("0").rstrip(".")
            return (f"[budget] round_{key} = {said} is below one call of any teacher (the smallest call reserves "
                    f"{amount(res, cheapest)}): raise it to at least that, or remove it")
    return None


def plan_round(round_no: int, size: int, pool: list[Example], teachers: Sequence[Teacher], budget: Budget,
               item: Callable[[Example], LabelingItem], *, exact: bool = True,
               corrections: Corrections | None = None) -> RoundPlan:
    picked = sample(pool)
    items = [item(e) for e in picked]
    corrections = corrections or Corrections()
    bounds = {t.name: [upper_bound(t, it, exact=exact) for it in items] for t in teachers}  # each reservation, once
    teachers = callable_teachers(teachers, budget, bounds)
    if not teachers:
        blocked = round_cap_below_one_call(budget, bounds)
        if blocked:
            raise ConfigError(blocked)
        return RoundPlan(round_no, pool, size, 0, Spend(), Spend())
    exp, worst = Spend(), Spend()
    for k, it in enumerate(items):  # a teacher with a measured cost per item counts at that
        exp = exp + sum((corrections.per_item.get(t.name, corrections.expected(t, it)) for t in teachers), Spend())
        up = sum((bounds[t.name][k] for t in teachers), Spend())
        worst = Spend(max(worst.tokens_in, up.tokens_in), max(worst.tokens_out, up.tokens_out), max(worst.usd, up.usd))
    per_item = exp.scaled(1 / len(picked)) if picked else Spend()
    if all(corrections.known(t) for t in teachers):
        fit = affordable(budget, per_item)
    else:  # a teacher's real usage is unknown yet: its answers may be far shorter than a typical one
        fit = affordable(budget, Spend(per_item.tokens_in, len(teachers), floor_usd(teachers, picked, item)))
    return RoundPlan(round_no, pool, size, fit, per_item, worst)


def floor_usd(teachers: Sequence[Teacher], picked: Sequence[Example], item: Callable[[Example], LabelingItem]) -> float:
    """The least an item can cost through every teacher (its prompt, a one-token answer): how many items a round
    may select before any teacher's real usage is known. The cap is enforced on every call, so an item the budget
    cannot pay for when its turn comes is not bought and goes back to the pool."""
    total = 0.0
    for e in picked:
        it = item(e)
        for t in teachers:
            total += t.cost(Usage(t.expected(t.render(it), it.example_id).tokens_in, 1))
    return total / max(1, len(picked))


def item_costs(teachers: Sequence[Teacher], pool: Sequence[Example],
               item: Callable[[Example], LabelingItem], corrections: Corrections | None = None) -> dict[str, float]:
    """Expected cost of asking every teacher about each item: dollars when any teacher is paid, else tokens."""
    corrections = corrections or Corrections()
    spends = {e.id: sum((corrections.expected(t, item(e)) for t in teachers), Spend()) for e in pool}
    paid = any(s.usd > 0 for s in spends.values())
    return {i: (s.usd if paid else float(s.tokens)) for i, s in spends.items()}
