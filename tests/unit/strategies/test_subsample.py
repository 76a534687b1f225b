import numpy as np
import pytest

from distilloop.errors import ConfigError
from distilloop.strategies.subsample import (
    LabeledNeighbours,
    RandomSubpool,
    TopCandidates,
    make_strategy,
    nearest_unlabeled,
)
from distilloop.strategies.uncertainty import EntropySampling
from tests.contracts.strategy import StrategyContract, make_ctx
from tests.unit.strategies.helpers import Recording, blobs, pool_ctx


class TestRandomSubpoolContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return RandomSubpool("entropy", size=8)


class TestTopCandidatesContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return TopCandidates({"name": "coreset"}, prefilter="margin", size=10)


class TestSealsContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return LabeledNeighbours("entropy", k=2)


def test_random_subpool_hands_the_base_a_seeded_subpool_of_the_right_size():
    inner = Recording()
    ctx = make_ctx()
    sel = RandomSubpool(inner, size=8).select(ctx, 3)
    assert len(inner.seen[0]) == 8 and set(sel.ids) <= set(inner.seen[0])
    assert ctx.extra["added_by_inner"]  # what the inner strategy adds comes back
    again = Recording()
    RandomSubpool(again, size=8).select(make_ctx(), 3)
    assert again.seen == inner.seen
    big = Recording()
    RandomSubpool(big, size=2).select(make_ctx(), 5)  # never fewer candidates than n
    assert len(big.seen[0]) == 5


def test_top_candidates_are_the_prefilters_best_and_aligned_arrays_are_sliced():
    ctx = make_ctx()
    proba = ctx.probabilities()
    inner = Recording()
    inner.query = lambda c, n: (inner.seen.append(c.extra["proba"]), Recording.query(inner, c, n))[1]
    TopCandidates(inner, prefilter="entropy", size=6).select(ctx, 2)
    expected = set(EntropySampling().select(make_ctx(), 6).ids)
    assert set(inner.seen[1]) == expected
    rows = [ctx.unlabeled_ids.index(i) for i in inner.seen[1]]
    np.testing.assert_allclose(inner.seen[0], proba[rows])


def test_nearest_unlabeled_matches_brute_force():
    rng = np.random.default_rng(0)
    pool, lab = rng.standard_normal((50, 3)), rng.standard_normal((4, 3))
    got = nearest_unlabeled(pool, lab, 3)
    d = ((lab[:, None] - pool[None]) ** 2).sum(-1)
    assert set(got) == set(np.argsort(d, axis=1)[:, :3].ravel())


def test_seals_only_considers_neighbours_of_the_labeled_set():
    X, blob = blobs([10, 10, 10])
    inner = Recording()
    ctx = pool_ctx(30, emb=X, labeled=[0])  # one labeled item, in blob 0
    LabeledNeighbours(inner, k=5).select(ctx, 3)
    assert len(inner.seen[0]) == 5 and {blob[int(i[1:])] for i in inner.seen[0]} == {0}
    cold = Recording()
    LabeledNeighbours(cold, k=5).select(pool_ctx(30, emb=X), 3)  # nothing labeled yet: random top-up
    assert len(cold.seen[0]) == 3


def test_make_strategy_rejects_garbage():
    with pytest.raises(ConfigError, match="strategy name"):
        make_strategy(42)
    with pytest.raises(ConfigError, match="unknown strategy"):
        RandomSubpool("entropyy")
