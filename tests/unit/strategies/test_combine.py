import numpy as np
import pytest

from distilloop.errors import ConfigError, DistilloopError
from distilloop.strategies.combine import LinearCombination, Mixture, UncertaintyThenDiversity
from distilloop.strategies.uncertainty import EntropySampling
from tests.contracts.strategy import StrategyContract, make_ctx
from tests.unit.strategies.helpers import blobs, pool_ctx


class TestUncertaintyKMeansContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return UncertaintyThenDiversity(beta=2)


class TestLinearCombinationContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return LinearCombination(["entropy", {"name": "bald", "n_samples": 3}], [0.7, 0.3])


class TestMixtureContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return Mixture(["random", "entropy"], [0.3, 0.7])


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


def test_mixture_splits_the_batch_by_fraction_and_never_picks_twice():
    X, blob, proba = two_blob_pool()
    mix = Mixture(["entropy", "random"], [0.5, 0.5])
    assert mix.shares(5) == [3, 2] and Mixture(["random", "entropy", "margin"]).shares(10) == [4, 3, 3]
    sel = mix.select(pool_ctx(20, proba=proba, emb=X), 6)
    assert len(sel.ids) == len(set(sel.ids)) == 6
    # the entropy share is the three most uncertain items: the first three of blob 0
    assert sel.ids[:3] == ["p0", "p1", "p2"]
    assert Mixture(["entropy"]).select(pool_ctx(20, proba=proba, emb=X), 3).ids == ["p0", "p1", "p2"]


def test_mixture_needs_a_student_only_if_a_part_does():
    assert not Mixture(["random", {"name": "random_subpool", "base": "random"}]).requires_student
    assert Mixture(["random", "entropy"]).requires_student
    assert Mixture(["random", {"name": "typiclust", "cost_power": 1}]).needs_costs
    assert Mixture(["random", "cost_aware"]).needs_costs and Mixture(["random", "cost_aware"]).may_return_fewer
    assert not Mixture(["random", "kmeans"]).needs_costs


def test_wrappers_pass_the_cost_model_on_to_their_base():
    # a cost-aware base inside a subpool wrapper reads the runner's item costs, not text length
    from distilloop.strategies.subsample import RandomSubpool

    assert RandomSubpool(base="cost_aware").needs_costs and not RandomSubpool(base="entropy").needs_costs


@pytest.mark.parametrize("strategies, fractions", [([], None), (["random", "entropy"], [1.0]),
                                                   (["random"], [-1.0]), (["random", "entropy"], [0, 0])])
def test_mixture_rejects_bad_fractions(strategies, fractions):
    with pytest.raises(ConfigError):
        Mixture(strategies, fractions)
