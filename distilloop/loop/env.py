"""What every step of a round works with: the config, the store, the parts, the budget, the examples and the
compute engine."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from distilloop.annotators.ensemble import Retry
from distilloop.core.ledger import Budget
from distilloop.core.types import Example, LabelingItem
from distilloop.engine import Engine
from distilloop.loop import fit
from distilloop.loop.config import CampaignConfig
from distilloop.loop.parts import Parts
from distilloop.loop.progress import Progress
from distilloop.storage.store import Store


@dataclass
class Env:
    config: CampaignConfig
    store: Store
    parts: Parts
    budget: Budget
    progress: Progress
    examples: dict[str, Example]
    engine: Engine
    retry: Retry = field(default_factory=Retry)

    def rng(self, round_no: int, salt: int = 0) -> np.random.Generator:
        """The generator of one round's (or one purpose's) random draws, seeded by the campaign seed."""
        return np.random.default_rng([self.config.campaign.seed, round_no, salt])

    def unlabeled_pool(self) -> list[Example]:
        """Pool items neither annotated yet nor set aside for an evaluation reference (nor, with ``[data]
        too_long = "skip"``, too long for a teacher's context window)."""
        taken = self.store.annotated_ids() | self.store.reserved_ids() | self.too_long()
        return [e for e in self.examples.values() if e.split == "pool" and e.id not in taken]

    def too_long(self) -> set[str]:
        """Pool items skipped for not fitting a teacher's context window (found once, kept in the store)."""
        if self.config.data.too_long != "skip" or not any(t.context_tokens for t in self.parts.teachers):
            return set()
        found = self.store.get_meta("too_long")
        if found is None:
            found = [e.id for e in self.examples.values() if e.split == "pool"
                     and fit.overflows(make_item(self.config, self.parts, e, rationale=True), self.parts.teachers)]
            self.store.set_meta("too_long", found)
            if found:
                self.progress.warn(f"{len(found)} pool item(s) are too long for a teacher's context window and are "
                                   "skipped ([data] too_long = \"skip\"; \"truncate\" cuts them to fit instead)")
        return set(found)

    def item(self, e: Example, explanation: Sequence[str] | None = None, *,
             rationale: bool | None = None) -> LabelingItem:
        """What the teachers see of ``e``."""
        return make_item(self.config, self.parts, e, explanation, rationale=rationale)


def rationale_policy(config: CampaignConfig, parts: Parts) -> str:
    """``[rationales] policy`` with ``auto`` resolved: ``all`` for a student that learns from rationales."""
    policy = config.rationales.policy
    if policy == "auto":
        return "all" if parts.student.needs_rationales else "review"
    return policy


def wants_rationale(config: CampaignConfig, parts: Parts, example_id: str) -> bool:
    """Whether the first question about an item asks for a rationale (review items get one later anyway)."""
    policy = rationale_policy(config, parts)
    if policy == "fraction":  # a seeded, stable share of the items: the same item always gets the same answer
        h = hashlib.sha256(f"{config.campaign.seed}:{example_id}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64 < config.rationales.fraction
    return policy == "all"


def make_item(config: CampaignConfig, parts: Parts, e: Example, explanation: Sequence[str] | None = None, *,
              rationale: bool | None = None) -> LabelingItem:
    """What the teachers see of ``e``: the gold label only when a prompt style asks for it (ground-truth
    priming), the student's explanation only for explanation revision (ELAD), a request for a rationale as the
    campaign's rationale policy says (``rationale`` overrides it); an input too long for a teacher's context window
    cut to fit (``[data] too_long = "skip"`` keeps such items out of the pool, see :meth:`Env.unlabeled_pool`)."""
    gold = e.gold if any("gold" in t.style.needs for t in parts.teachers) else None
    steps = "\n".join(str(s) for s in explanation) if explanation else None
    if rationale is None:
        rationale = wants_rationale(config, parts, e.id)
    item = LabelingItem(e.id, e.fields, tuple(config.campaign.labels), config.campaign.task, gold=gold,
                        student_explanation=steps, answer=config.campaign.answer, rationale=rationale)
    if config.data.too_long == "truncate":
        return fit.fit(item, parts.teachers, "truncate") or item
    return item
