import numpy as np
import pytest

from distilloop.errors import DistilloopError
from distilloop.strategies.committee import QueryByCommittee, kl_to_mean, vote_entropy
from tests.contracts.strategy import StrategyContract, make_ctx
from tests.unit.strategies.helpers import FixedProba, pool_ctx


@pytest.mark.parametrize("disagreement", ["vote_entropy", "kl_mean"])
class TestQBCContract(StrategyContract):
    @pytest.fixture
    def strategy(self, disagreement):
        return QueryByCommittee(n_members=3, disagreement=disagreement)


def test_disagreement_measures():
    same = np.array([[[0.9, 0.1]], [[0.9, 0.1]]])
    split = np.array([[[0.9, 0.1]], [[0.1, 0.9]]])
    assert vote_entropy(same)[0] == 0 and vote_entropy(split)[0] == pytest.approx(np.log(2))
    assert kl_to_mean(same)[0] == pytest.approx(0, abs=1e-9) and kl_to_mean(split)[0] > 0.3


def test_given_committee_picks_the_items_it_disagrees_on():
    a = FixedProba([[0.9, 0.1], [0.8, 0.2], [0.9, 0.1], [0.2, 0.8]])
    b = FixedProba([[0.9, 0.1], [0.3, 0.7], [0.85, 0.15], [0.9, 0.1]])
    for kind in ("vote_entropy", "kl_mean"):
        ctx = pool_ctx(4, committee=[a, b])
        assert set(QueryByCommittee(2, kind).select(ctx, 2).ids) == {"p1", "p3"}


def test_bootstrap_committee_is_seeded_clones_of_the_student():
    from distilloop.students.tfidf import TfidfLogReg

    texts = ["good fun film", "great acting", "loved it", "bad plot", "awful film", "boring and bad"] * 2
    labels = ["pos", "pos", "pos", "neg", "neg", "neg"] * 2
    student = TfidfLogReg(char_ngrams=False).fit(texts, labels, classes=["neg", "pos"])

    def ctx(seed):
        c = make_ctx(seed=seed)
        c.student, c.labeled_texts, c.labeled_y, c.classes = student, texts, labels, ["neg", "pos"]
        c.labeled_ids = [f"l{i}" for i in range(len(texts))]
        return c

    qbc = QueryByCommittee(n_members=3)
    members = qbc.committee(ctx(1))
    assert len(members) == 3 and all(m is not student and m.is_fitted() for m in members)
    assert len({m.version_ for m in members}) > 1  # different bootstrap resamples
    assert qbc.select(ctx(1), 5).ids == qbc.select(ctx(1), 5).ids


def test_needs_labels_to_bootstrap():
    c = make_ctx(n_labeled=0)
    with pytest.raises(DistilloopError, match="labeled set"):
        QueryByCommittee().select(c, 1)
