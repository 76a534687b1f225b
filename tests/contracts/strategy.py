"""The Strategy contract: every strategy's test class inherits this mixin and provides ``strategy``."""

import zlib

import numpy as np
import pytest

from distilloop.strategies.base import SelectionContext


class ProbaStudent:
    """A fitted student whose probabilities are a fixed function of the text (deterministic).

    It also speaks every optional protocol a strategy may use, so the contract runs every registered
    strategy: ``clone``/``fit`` (committees), ``sample_proba`` (BALD), ``embed`` (diversity, SEALS) and
    ``explain``/``answer_from``/``sample_explanations`` (ELAD).
    """

    version_ = "fixed"
    classes_ = ["a", "b", "c"]

    def __init__(self, salt=0):
        self.salt = salt

    def is_fitted(self):
        return True

    def clone(self):
        return ProbaStudent()

    def fit(self, texts, labels, *, classes):
        self.salt = zlib.crc32(" ".join(labels).encode()) + len(texts)
        return self

    def predict_proba(self, texts):
        seed = [abs(hash(t)) % (2**32) for t in texts] or [0]
        rng = np.random.default_rng(seed + ([self.salt] if self.salt else []))
        p = rng.dirichlet(np.ones(3), size=len(texts))
        return p

    def sample_proba(self, texts, k):
        base = self.predict_proba(texts)
        noise = np.random.default_rng(len(texts) + k).dirichlet(np.ones(3) * 5, size=(k, len(texts)))
        s = base[None] * noise
        return s / s.sum(axis=2, keepdims=True)

    def explain(self, text):
        return [f"step {j} of {text}" for j in range(1 + zlib.crc32(text.encode()) % 3)]

    def sample_explanations(self, text, n_samples, rng):
        return [self.explain(text)[: 1 + int(rng.integers(3))] for _ in range(n_samples)]

    def answer_from(self, text, partial_steps):
        return self.classes_[(zlib.crc32(text.encode()) + len(partial_steps)) % 3]

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
