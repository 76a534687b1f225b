"""The Strategy contract: every strategy's test class inherits this mixin and provides ``strategy``."""

import numpy as np
import pytest

from distilloop.strategies.base import SelectionContext


class ProbaStudent:
    """A fitted student whose probabilities are a fixed function of the text (deterministic)."""

    version_ = "fixed"
    classes_ = ["a", "b", "c"]

    def is_fitted(self):
        return True

    def predict_proba(self, texts):
        rng = np.random.default_rng([abs(hash(t)) % (2**32) for t in texts] or [0])
        p = rng.dirichlet(np.ones(3), size=len(texts))
        return p

    def embed(self, texts):
        return np.stack([np.frombuffer(t.ljust(8)[:8].encode(), dtype=np.uint8).astype(float) for t in texts])


def make_ctx(n_unlabeled=30, n_labeled=5, seed=0):
    ids = [f"u{i}" for i in range(n_unlabeled)]
    lab = [f"l{i}" for i in range(n_labeled)]
    return SelectionContext(ids, [f"text {i} " * (1 + i % 4) for i in range(n_unlabeled)], lab,
                            [f"labeled {i}" for i in range(n_labeled)], ["a", "b", "c", "a", "b"][:n_labeled],
                            ["a", "b", "c"], np.random.default_rng(seed), student=ProbaStudent())


class StrategyContract:
    @pytest.mark.parametrize("n", [1, 7, 30])
    def test_returns_exactly_n_unique_ids_from_the_pool(self, strategy, n):
        ctx = make_ctx()
        sel = strategy.select(ctx, n)
        assert len(sel.ids) == n == len(set(sel.ids))
        assert set(sel.ids) <= set(ctx.unlabeled_ids)
        assert not set(sel.ids) & set(ctx.labeled_ids)
        assert len(sel.scores) == n

    def test_returns_all_that_remain_when_the_pool_is_smaller(self, strategy):
        ctx = make_ctx(n_unlabeled=4)
        assert sorted(strategy.select(ctx, 10).ids) == sorted(ctx.unlabeled_ids)

    def test_deterministic_for_a_seed(self, strategy):
        assert strategy.select(make_ctx(seed=3), 5).ids == strategy.select(make_ctx(seed=3), 5).ids

    def test_empty_pool_and_bad_n(self, strategy):
        assert strategy.select(make_ctx(n_unlabeled=0), 3).ids == []
        with pytest.raises(ValueError):
            strategy.select(make_ctx(), 0)
