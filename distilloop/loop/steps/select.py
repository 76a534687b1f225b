"""Select: the round's items, picked by the strategy from the unlabeled pool and recorded with the round (in
round 1 the pilot's items first: their answers are paid already)."""

from __future__ import annotations

from distilloop.core.failpoints import failpoint
from distilloop.core.types import Example, Selection
from distilloop.loop.env import Env
from distilloop.loop.estimate import measured_per_item
from distilloop.loop.plan import Corrections, item_costs, plan_round
from distilloop.loop.progress import embedding_status
from distilloop.loop.steps.train import load_active
from distilloop.strategies.base import SelectionContext
from distilloop.students.base import reporting

#: why a campaign stops when its budget cannot reserve one more call of any teacher
NO_ROOM = ("budget spent: what is left does not cover one more call of any teacher; raise the cap ([budget]) and "
           "`distilloop run` goes on")


def pilot_first(env: Env, round_no: int, pool: list[Example], n: int) -> list[str]:
    """In round 1, the pilot's items still in the pool (``distilloop pilot`` asked every teacher about them)."""
    if round_no != 1:
        return []
    in_pool = {e.id for e in pool}
    return [i for i in env.store.get_meta("pilot_ids") or [] if i in in_pool][:n]


def select(env: Env, round_no: int) -> Selection | None:
    """Pick and record round ``round_no``'s items; None when the budget cannot pay for a single one."""
    pool = env.unlabeled_pool()
    env.budget.new_round(round_no, env.store.spent(round_no))  # a held-out set labeled again before it: its cost
    corrections = Corrections.from_store(env.store, env.parts.teachers)
    corrections.per_item = measured_per_item(env.store, (env.config.routing.cascade or [])[1:])
    plan = plan_round(round_no, env.config.rounds.size(round_no), pool, env.parts.teachers, env.budget, env.item,
                      corrections=corrections)
    if plan.n <= 0:
        return None
    paid = pilot_first(env, round_no, pool, plan.n)
    rest = [e for e in pool if e.id not in set(paid)]
    student = env.engine.attach(load_active(env.store))
    strategy = env.parts.strategy_for(student is not None)
    sel = Selection([], [])
    if plan.n > len(paid) and rest:
        labeled = env.store.labeled()
        ctx = SelectionContext(
            unlabeled_ids=[e.id for e in rest], unlabeled_texts=[e.text for e in rest],
            labeled_ids=[r["example_id"] for r in labeled],
            labeled_texts=[env.examples[r["example_id"]].text for r in labeled],
            labeled_y=[r["label"] for r in labeled], classes=list(env.parts.space.labels), rng=env.rng(round_no),
            student=student, round_no=round_no, extra={"seed": env.config.campaign.seed})
        if strategy.needs_costs:
            ctx.extra["item_cost"] = item_costs(env.parts.teachers, rest, env.item, corrections)
        env.engine.embed_pool(strategy, ctx, env.progress)  # an engine that embeds the whole pool first: a bar
        message = f"round {round_no}: selecting {plan.n - len(paid)} of {len(rest):,} with {strategy.name}"
        with env.progress.status(message) as update, reporting(embedding_status(message, student, update)):
            sel = env.engine.select(strategy, ctx, plan.n - len(paid))
    if paid:
        sel = Selection(paid + sel.ids, [0.0] * len(paid) + sel.scores, sel.explanations)
    failpoint("selected")  # picked, not recorded: the resumed run selects again, the same items (same seed)
    env.store.start_round(round_no, strategy.name, sel.ids, sel.scores, sel.explanations)
    return sel
