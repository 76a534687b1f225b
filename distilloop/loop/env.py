"""What every step of a round works with: the config, the store, the parts, the budget, the examples and the
compute engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from distilloop.annotators.ensemble import Retry
from distilloop.core.ledger import Budget
from distilloop.core.types import Example, LabelingItem
from distilloop.engine import Engine
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
        taken = self.store.annotated_ids()
        return [e for e in self.examples.values() if e.split == "pool" and e.id not in taken]

    def item(self, e: Example, explanation: Sequence[str] | None = None) -> LabelingItem:
        """What the teachers see of ``e``: the gold label only when a prompt style asks for it (ground-truth
        priming), the student's explanation only for explanation revision (ELAD)."""
        gold = e.gold if any("gold" in t.style.needs for t in self.parts.teachers) else None
        steps = "\n".join(str(s) for s in explanation) if explanation else None
        return LabelingItem(e.id, e.fields, tuple(self.config.campaign.labels), self.config.campaign.task,
                            gold=gold, student_explanation=steps, answer=self.config.campaign.answer)
