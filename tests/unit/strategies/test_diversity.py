import numpy as np
import pytest

from distilloop.errors import DistilloopError
from distilloop.strategies.diversity import CoreSet, KMeansSampling, k_center_greedy, kmeans_pick
from distilloop.strategies.embeddings import pool_embeddings
from tests.contracts.strategy import StrategyContract
from tests.unit.strategies.helpers import blobs, pool_ctx


class TestKMeansContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return KMeansSampling(max_candidates=20)


class TestCoreSetContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return CoreSet(max_candidates=20)


def test_kmeans_takes_one_item_per_blob_near_its_centre():
    X, blob = blobs([12, 8, 10])
    picked = kmeans_pick(X, 3, np.random.default_rng(0))
    assert sorted(blob[picked]) == [0, 1, 2]
    ctx = pool_ctx(len(X), emb=X)
    ids = KMeansSampling().select(ctx, 3).ids
    assert sorted(blob[int(i[1:])] for i in ids) == [0, 1, 2]


def test_kmeans_returns_exactly_n_when_clusters_collapse():
    X = np.zeros((10, 3))  # every point identical: one real cluster, the rest filled in
    X[:2] += 1
    assert len(set(kmeans_pick(X, 5, np.random.default_rng(0)))) == 5


def test_coreset_covers_what_the_labeled_set_does_not():
    X, blob = blobs([10, 10, 10])
    ctx = pool_ctx(len(X), emb=X, labeled=range(10))  # blob 0 is labeled
    ids = CoreSet().select(ctx, 2).ids
    assert sorted(blob[int(i[1:])] for i in ids) == [1, 2]


def test_k_center_greedy_is_farthest_first():
    X = np.array([[0.0], [1.0], [10.0], [4.0]])
    picked, scores = k_center_greedy(X, 3, np.random.default_rng(0), labeled=np.array([[0.0]]))
    assert list(picked) == [2, 3, 1] and scores[0] == pytest.approx(10.0)


def test_each_item_is_embedded_once_per_selection():
    X, _ = blobs([5, 5])
    calls = []

    def embed_fn(texts):
        calls.append(len(texts))
        return X[[int(t.split()[-1]) for t in texts]]

    ctx = pool_ctx(10, embed_fn=embed_fn, embedder_key="minilm")
    KMeansSampling().select(ctx, 2)
    np.testing.assert_allclose(pool_embeddings(ctx), X.astype(np.float32))
    assert calls == [10]  # the pool was embedded once, then read from the selection's memory


def test_sparse_student_embeddings_are_projected():
    from scipy import sparse

    class Sparse:
        version_ = "v1"

        def embed(self, texts):
            return sparse.random(len(texts), 5000, density=0.01, format="csr", random_state=0)

    ctx = pool_ctx(6)
    ctx.student = Sparse()
    assert pool_embeddings(ctx).shape == (6, 256)


def test_missing_embeddings_say_what_to_do():
    class NoRep:
        version_ = "v"

        def is_fitted(self):
            return True

        def embed(self, texts):
            return None

    ctx = pool_ctx(4)
    ctx.student = NoRep()
    with pytest.raises(DistilloopError, match="embed_fn"):
        CoreSet().select(ctx, 2)


@pytest.mark.parametrize("cls", [KMeansSampling, CoreSet])
def test_only_the_candidate_subsample_is_embedded(cls):
    X, _ = blobs([30, 30])
    ctx = pool_ctx(60, emb=X)
    sel = cls(max_candidates=20).select(ctx, 4)
    assert ctx.student.embedded == 20 and len(sel.ids) == 4


def test_the_candidate_sample_is_the_same_from_round_to_round():
    """On a pool larger than max_candidates each round drew a new sample, so each round embedded another
    (mpnet on 200,000 items: 20 minutes of every round's selection here). The sample now depends on the ids and
    the campaign's seed only: a later round (another rng, its picks labeled) embeds nothing new but what joins;
    it is still uniform over the pool, and another seed draws another one."""
    from distilloop.strategies.diversity import _candidates

    first = pool_ctx(2000, seed=1)
    cand = {first.unlabeled_ids[i] for i in _candidates(first, 200, 4)}
    later = pool_ctx(2000, seed=2, labeled=[int(i[1:]) for i in sorted(cand)[:4]])
    again = {later.unlabeled_ids[i] for i in _candidates(later, 200, 4)}
    assert len(cand) == len(again) == 200 and len(cand - again) == 4 and len(again - cand) == 4
    positions = sorted(int(i[1:]) for i in cand)
    assert 800 < np.mean(positions) < 1200 and positions[0] < 100 and positions[-1] > 1900
    other = pool_ctx(2000, seed=1)
    other.extra["seed"] = 7
    assert len(cand & {other.unlabeled_ids[i] for i in _candidates(other, 200, 4)}) < 60  # ~20 by chance


@pytest.mark.parametrize("cls", [KMeansSampling, CoreSet])
def test_a_second_round_looks_at_the_first_rounds_candidates(cls):
    X, _ = blobs([500, 500])
    seen: list[set[str]] = []
    picked: list[int] = []
    for seed in (0, 5):  # the second round: another rng, the first round's picks labeled
        ctx = pool_ctx(1000, emb=X, seed=seed, labeled=picked)
        embed = ctx.student.embed
        ctx.student.embed = lambda texts, embed=embed: (seen.append(set(texts)), embed(texts))[1]
        picked = [int(i[1:]) for i in cls(max_candidates=100).select(ctx, 4).ids]
    pools = [texts for texts in seen if len(texts) == 100]  # (CoreSet embeds the labeled items apart)
    assert len(pools) == 2 and len(pools[1] - pools[0]) == 4
