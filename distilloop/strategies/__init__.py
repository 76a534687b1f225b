"""Which examples to send next: random, the uncertainty family, diversity, committee, ELAD, cost-aware."""

from distilloop.strategies.base import SelectionContext, Strategy

__all__ = ["SelectionContext", "Strategy"]
