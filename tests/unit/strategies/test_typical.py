import numpy as np
import pytest

from distilloop.strategies.typical import DensityWeighted, TypiClust, typicality
from tests.contracts.strategy import StrategyContract
from tests.unit.strategies.helpers import blobs, pool_ctx


class TestTypiClustContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return TypiClust(max_candidates=20)


class TestDensityWeightedContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return DensityWeighted()


def test_typicality_is_inverse_mean_distance_to_the_nearest_others():
    X = np.array([[0.0], [1.0], [3.0], [10.0]])
    t = typicality(X, np.arange(4), np.arange(4), k=2)
    # row 0: nearest others 1 and 3 -> mean 2; row 3: 7 and 9 -> mean 8 (its own zero distance not counted)
    assert t == pytest.approx([1 / 2, 1 / 1.5, 1 / 2.5, 1 / 8], rel=1e-6)
    # against a reference it is not part of, every reference row counts
    assert typicality(X, np.array([3]), np.array([0, 1]), k=2)[0] == pytest.approx(1 / 9.5, rel=1e-6)


def test_typiclust_takes_the_centre_of_each_uncovered_blob_not_its_outlier():
    X, blob = blobs([12, 10, 8], spread=0.05)
    X[0] += 3.0  # an outlier of blob 0: far from the others, never the most typical
    ctx = pool_ctx(len(X), emb=X)
    ids = TypiClust().select(ctx, 3).ids
    rows = [int(i[1:]) for i in ids]
    assert sorted(blob[rows]) == [0, 1, 2] and 0 not in rows


def test_typiclust_serves_the_blobs_the_labeled_set_does_not_cover_first():
    X, blob = blobs([10, 10, 10])
    ctx = pool_ctx(len(X), emb=X, labeled=[0, 1, 2])  # blob 0 has three labels already
    rows = [int(i[1:]) for i in TypiClust().select(ctx, 2).ids]
    assert sorted(blob[rows]) == [1, 2]


def test_typiclust_per_token_prefers_the_cheap_typical_item():
    X, _ = blobs([10])
    ctx = pool_ctx(len(X), emb=X)
    plain = TypiClust().select(ctx, 1).ids[0]
    costs = {f"p{i}": 100.0 for i in range(len(X))}
    cheap = next(i for i in costs if i != plain)
    costs[cheap] = 1.0
    per_token = TypiClust(cost_power=1.0)
    assert per_token.needs_costs and not TypiClust().needs_costs
    assert per_token.select(pool_ctx(len(X), emb=X, item_cost=costs), 1).ids == [cheap]


def test_density_weighted_prefers_the_uncertain_item_in_a_dense_region():
    X, _ = blobs([10, 1], spread=0.05)
    X[10] = X[0] + 5.0  # a lone point, as uncertain as the best item in the blob
    proba = np.tile([0.9, 0.1], (11, 1))
    proba[3] = proba[10] = [0.5, 0.5]
    ids = DensityWeighted(beta=1.0).select(pool_ctx(11, proba=proba, emb=X), 1).ids
    assert ids == ["p3"]
    # beta = 0 is plain uncertainty: the tie between the two is broken at random, either may come
    assert DensityWeighted(beta=0.0).select(pool_ctx(11, proba=proba, emb=X), 1).ids[0] in {"p3", "p10"}


@pytest.mark.parametrize("kwargs", [{"max_clusters": 0}, {"k_neighbours": 0}, {"cost_power": -1}])
def test_typiclust_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        TypiClust(**kwargs)
