"""Cost-aware selection: the most information per dollar, not per item.

Teachers bill by the token, and items differ in length, so an uncertain but long item can cost several short
ones. Following budget-aware active learning (Settles, Craven & Friedland, "Active Learning with Real
Annotation Costs", NIPS Workshop on Cost-Sensitive Learning 2008; Tomanek & Hahn, "A Comparison of Models for
Cost-Sensitive Active Learning", COLING 2010), each candidate's informativeness (the base strategy's score,
e.g. entropy) is divided by its expected teacher cost, the length of its prompt through every teacher of the
campaign (``ctx.extra["item_cost"]``, which the round runner fills). Under a round budget
(``ctx.extra["round_budget"]``), the pick is a 0/1 knapsack: greedy by value per cost, compared with the
single most valuable item that fits (the classic 1/2-approximation), or solved exactly by dynamic programming
when the round is small.
"""

from __future__ import annotations

import numpy as np

from distilloop.core.types import Selection
from distilloop.strategies.base import SelectionContext, Strategy
from distilloop.strategies.uncertainty import entropy, least_confidence, margin

SCORES = {"entropy": entropy, "least_confidence": least_confidence, "margin": margin}


def expected_costs(ctx: SelectionContext, positions: np.ndarray | None = None) -> np.ndarray:
    """The expected teacher cost of each unlabeled item (of those at ``positions``, when given):
    ``ctx.extra["item_cost"]`` by id, or, without a cost model, the text's length (proportional to the
    prompt's tokens)."""
    pos = range(len(ctx.unlabeled_ids)) if positions is None else [int(i) for i in positions]
    item_cost = ctx.extra.get("item_cost")
    if item_cost is None:
        return np.array([max(1, len(ctx.unlabeled_texts[i])) for i in pos], dtype=np.float64)
    return np.array([max(1e-9, float(item_cost[ctx.unlabeled_ids[i]])) for i in pos], dtype=np.float64)


def knapsack(values: np.ndarray, costs: np.ndarray, budget: float, *, exact_limit: int = 200,
             resolution: int = 1000) -> list[int]:
    """Indices maximizing the sum of ``values`` with the sum of ``costs`` at most ``budget``.

    Exact (dynamic programming over costs scaled to ``resolution`` units) for at most ``exact_limit``
    candidates; otherwise greedy by value/cost, or the best single item if that is worth more (>= 1/2 OPT).
    """
    values = np.asarray(values, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    fits = np.flatnonzero(costs <= budget)
    if len(fits) == 0:
        return []
    if len(fits) <= exact_limit:
        scale = resolution / budget if budget > 0 else 0.0
        w = np.ceil(costs[fits] * scale).astype(int)  # rounding up keeps every solution within budget
        cap = int(np.floor(budget * scale))
        best = np.zeros(cap + 1)
        take = np.zeros((len(fits), cap + 1), dtype=bool)
        for i, (wi, vi) in enumerate(zip(w, values[fits])):
            if wi > cap:
                continue
            cand = best[: cap + 1 - wi] + vi
            improve = cand > best[wi:]
            take[i, wi:] = improve
            best[wi:] = np.where(improve, cand, best[wi:])
        out, c = [], cap
        for i in range(len(fits) - 1, -1, -1):
            if take[i, c]:
                out.append(int(fits[i]))
                c -= w[i]
        return sorted(out)
    order = fits[np.argsort(-(values[fits] / np.maximum(costs[fits], 1e-12)), kind="stable")]
    chosen, spent = [], 0.0
    for i in order:
        if spent + costs[i] <= budget:
            chosen.append(int(i))
            spent += costs[i]
    single = int(fits[np.argmax(values[fits])])
    if values[single] > values[chosen].sum():
        return [single]
    return sorted(chosen)


class CostAwareSampling(Strategy):
    """Picks the ``n`` items with the highest informativeness per unit of expected teacher cost.

    ``score``: the base informativeness (entropy, least_confidence or margin); ``cost_power``: 1 divides by the
    cost, 0 ignores it (plain uncertainty). With ``ctx.extra["round_budget"]`` set, solves the knapsack and may
    return fewer than ``n`` items: as many as the budget buys.
    """

    name = "cost_aware"
    returns_fewer = True
    own_needs = frozenset({"student", "probabilities", "costs"})

    def __init__(self, score: str = "entropy", cost_power: float = 1.0) -> None:
        if score not in SCORES:
            raise ValueError(f"score must be one of {sorted(SCORES)}, got {score!r}")
        self.score = score
        self.cost_power = cost_power

    def values(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        info = SCORES[self.score](ctx.probabilities())
        if self.score == "margin":
            info = info + 1.0  # margin scores are -(p1 - p2) in [-1, 0]: shift to [0, 1]
        costs = expected_costs(ctx)
        return info, costs

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        info, costs = self.values(ctx)
        ratio = info / costs ** self.cost_power
        budget = ctx.extra.get("round_budget")
        if budget is not None:
            # candidates: the best ratios, enough to fill the budget many times over
            top = np.argsort(-ratio, kind="stable")[: max(4 * n, 64)]
            picked = [int(top[i]) for i in knapsack(info[top], costs[top], float(budget))][:n]
            picked.sort(key=lambda i: -ratio[i])
        else:
            jitter = ctx.rng.permutation(len(ratio))
            picked = list(np.lexsort((jitter, -ratio))[:n])
        return Selection([ctx.unlabeled_ids[i] for i in picked], [float(ratio[i]) for i in picked])
