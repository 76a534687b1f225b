"""Select: the round's items, picked by the strategy from the unlabeled pool and recorded with the round."""

from __future__ import annotations

from distilloop.core.types import Selection, Spend
from distilloop.loop.env import Env
from distilloop.loop.plan import item_costs, plan_round
from distilloop.loop.steps.train import load_active
from distilloop.strategies.base import SelectionContext


def select(env: Env, round_no: int) -> Selection | None:
    """Pick and record round ``round_no``'s items; None when the budget cannot pay for a single one."""
    pool = env.unlabeled_pool()
    env.budget.new_round(round_no, Spend())
    plan = plan_round(round_no, env.config.rounds.size(round_no), pool, env.parts.teachers, env.budget, env.item)
    if plan.n <= 0:
        return None
    student = env.engine.attach(load_active(env.store))
    strategy = env.parts.strategy_for(student is not None)
    labeled = env.store.labeled()
    ctx = SelectionContext(
        unlabeled_ids=[e.id for e in pool], unlabeled_texts=[e.text for e in pool],
        labeled_ids=[r["example_id"] for r in labeled],
        labeled_texts=[env.examples[r["example_id"]].text for r in labeled],
        labeled_y=[r["label"] for r in labeled], classes=list(env.parts.space.labels), rng=env.rng(round_no),
        student=student, round_no=round_no)
    if strategy.needs_costs:
        ctx.extra["item_cost"] = item_costs(env.parts.teachers, pool, env.item)
    with env.progress.status(f"round {round_no}: selecting {plan.n} of {len(pool)} with {strategy.name}"):
        sel = env.engine.select(strategy, ctx, plan.n)
    env.store.start_round(round_no, strategy.name, sel.ids, sel.scores, sel.explanations)
    return sel
