import numpy as np
import pytest

from distilloop.errors import ConfigError, DistilloopError
from distilloop.strategies.combine import LinearCombination, UncertaintyThenDiversity
from distilloop.strategies.uncertainty import EntropySampling
from tests.unit.strategies.contract import StrategyContract, make_ctx
from tests.unit.strategies.helpers import blobs, pool_ctx


class TestUncertaintyKMeansContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return UncertaintyThenDiversity(beta=2)


class TestLinearCombinationContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return LinearCombination(["entropy", {"name": "bald", "n_samples": 3}], [0.7, 0.3])


def two_blob_pool():
    # blob 0 (10 items) is the most uncertain; blob 1 (10 items) a little less
    X, blob = blobs([10, 10])
    p = np.where(blob == 0, 0.5, 0.6) + np.linspace(0, 0.01, 20)
    return X, blob, np.stack([p, 1 - p], axis=1)


def test_top_uncertain_then_diverse_spreads_the_batch():
    X, blob, proba = two_blob_pool()
    plain = EntropySampling().select(pool_ctx(20, proba=proba, emb=X), 2).ids
    assert {blob[int(i[1:])] for i in plain} == {0}  # plain entropy: two near-duplicates
    mixed = UncertaintyThenDiversity(uncertainty="entropy", beta=10).select(pool_ctx(20, proba=proba, emb=X), 2)
    assert sorted(blob[int(i[1:])] for i in mixed.ids) == [0, 1]
    narrow = UncertaintyThenDiversity(uncertainty="entropy", beta=5).select(pool_ctx(20, proba=proba, emb=X), 2)
    assert {blob[int(i[1:])] for i in narrow.ids} == {0}  # only the top 10 are candidates


def test_linear_combination_weights():
    ctx = make_ctx()
    ent = LinearCombination(["entropy"], [1.0]).select(ctx, 5).ids
    assert ent == EntropySampling().select(make_ctx(), 5).ids
    only_margin = LinearCombination(["entropy", "margin"], [0.0, 1.0]).select(make_ctx(), 5).ids
    assert set(only_margin) == set(LinearCombination(["margin"]).select(make_ctx(), 5).ids)


def test_linear_combination_validates():
    with pytest.raises(ConfigError, match="one weight per strategy"):
        LinearCombination(["entropy", "margin"], [1.0])
    with pytest.raises(DistilloopError, match="no per-item scores"):
        LinearCombination(["kmeans"]).select(make_ctx(), 2)
