"""The pruned greedy k-center against the plain pass it replaced: the same picks, in the same order."""

import numpy as np
import pytest

from distilloop.strategies import kcenter
from distilloop.strategies.diversity import k_center_greedy
from distilloop.strategies.geometry import nearest_centre, single_threaded_blas


@pytest.fixture(autouse=True)
def prune_small_problems_too(monkeypatch):
    monkeypatch.setattr(kcenter, "PRUNE_FROM_ROWS", 0)
    monkeypatch.setattr(kcenter, "PRUNE_FROM_ROWS_UNLABELED", 0)


def plain_k_center(X, n, rng, labeled=None):
    """distilloop's greedy k-center before the pruning, verbatim: one pass over every row at every pick."""
    X = np.asarray(X, dtype=np.float32)
    n = min(n, len(X))
    sq = np.einsum("ij,ij->i", X, X)
    if labeled is not None and len(labeled):
        min_d = nearest_centre(X, labeled)[1]
        first = None
    else:
        min_d = np.full(len(X), np.inf, dtype=np.float32)
        first = int(rng.integers(len(X)))
    picked = np.empty(n, dtype=np.int64)
    scores = np.empty(n, dtype=np.float64)
    with single_threaded_blas():
        for t in range(len(picked)):
            j = first if t == 0 and first is not None else int(np.argmax(min_d))
            picked[t] = j
            scores[t] = float(np.sqrt(max(min_d[j], 0.0))) if np.isfinite(min_d[j]) else float("inf")
            d = X @ X[j]
            d *= -2.0
            d += sq
            d += sq[j]
            np.minimum(min_d, d, out=min_d)
            min_d[j] = -1.0
    return picked, scores


def clustered(rng, rows, dim, clusters, spread=3.0):
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) * spread
    X = centres[rng.integers(0, clusters, size=rows)]
    return X + rng.standard_normal(X.shape, dtype=np.float32)


def assert_same(X, n, labeled=None, seed=1):
    want = plain_k_center(X, n, np.random.default_rng(seed), labeled)
    got = k_center_greedy(X, n, np.random.default_rng(seed), labeled=labeled)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rows,dim,clusters", [(1003, 8, 20), (2013, 64, 40), (517, 3, 5)])
def test_same_picks_as_the_plain_pass_with_labeled_rows(seed, rows, dim, clusters):
    rng = np.random.default_rng(seed)
    X = clustered(rng, rows, dim, clusters)
    labeled = rng.standard_normal((7, dim)).astype(np.float32) * 3
    assert_same(X, 150, labeled)


@pytest.mark.parametrize("seed", range(3))
def test_same_picks_as_the_plain_pass_from_a_seeded_first_pick(seed):
    X = clustered(np.random.default_rng(seed), 1501, 16, 30)
    assert_same(X, 120, None, seed=seed)


def test_ties_go_to_the_lowest_position_as_in_the_plain_pass():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, size=(40, 4)).astype(np.float32)  # a small grid: many equal distances
    X = np.concatenate([base, base, base[::-1], base])  # and every row three more times
    assert_same(X, 60, np.zeros((1, 4), dtype=np.float32))
    assert_same(X, 60, None)
    assert_same(X, len(X) + 5, None)  # every row, each once


def test_uniform_noise_and_plain_fallback_agree_too():
    rng = np.random.default_rng(3)
    X = rng.random((777, 32), dtype=np.float32)
    assert_same(X, 200, X[:3] + 0.5)
    huge = X * 1e5  # rounding coarser than the bound allows: the plain pass runs
    assert_same(huge, 50, huge[:2])


def test_pruning_skips_most_distances_on_clustered_data(monkeypatch):
    rng = np.random.default_rng(5)
    X = clustered(rng, 20000, 16, 100, spread=4.0)
    labeled = rng.standard_normal((10, 16)).astype(np.float32) * 4
    computed = []
    real = kcenter._Block.distances

    def counting(self, c, sq_c, upto):
        computed.append(upto)
        return real(self, c, sq_c, upto)

    monkeypatch.setattr(kcenter._Block, "distances", counting)
    picked, _ = k_center_greedy(X, 300, np.random.default_rng(0), labeled=labeled)
    assert len(set(picked.tolist())) == 300
    assert sum(computed) < 0.4 * 300 * len(X)  # the plain pass compares every row at every pick
    np.testing.assert_array_equal(picked, plain_k_center(X, 300, np.random.default_rng(0), labeled)[0])
