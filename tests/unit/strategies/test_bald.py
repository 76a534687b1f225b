import numpy as np
import pytest

from distilloop.errors import DistilloopError
from distilloop.strategies.bald import BALD, bald
from tests.contracts.strategy import StrategyContract
from tests.unit.strategies.helpers import pool_ctx


class TestBALDContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return BALD(n_samples=4)


def test_mutual_information_is_zero_when_samples_agree_and_log2_when_confidently_opposed():
    agree = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])
    opposed = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert bald(agree)[0] == pytest.approx(0.0, abs=1e-9)
    assert bald(opposed)[0] == pytest.approx(np.log(2), abs=1e-6)


def test_picks_disagreement_not_plain_uncertainty():
    # items 0-2: every sample says 50/50 (uncertain, but the model knows it); items 3-4: samples disagree
    samples = np.array([
        [[0.5, 0.5]] * 3 + [[0.95, 0.05], [0.9, 0.1]],
        [[0.5, 0.5]] * 3 + [[0.05, 0.95], [0.1, 0.9]],
    ])
    ctx = pool_ctx(5, proba=samples.mean(axis=0), sample_proba=samples)
    assert set(BALD(n_samples=2).select(ctx, 2).ids) == {"p3", "p4"}


def test_callable_sample_source_and_shape_check():
    calls = []

    def sampler(texts, k):
        calls.append((len(texts), k))
        return np.full((k, len(texts), 2), 0.5)

    ctx = pool_ctx(4, sample_proba=sampler)
    assert len(BALD(n_samples=3).select(ctx, 2).ids) == 2 and calls == [(4, 3)]
    with pytest.raises(DistilloopError, match="shape"):
        BALD().select(pool_ctx(4, sample_proba=np.zeros((2, 3, 2))), 1)


def test_without_a_sampling_student_says_what_to_do():
    with pytest.raises(DistilloopError, match="sample_proba"):
        BALD().select(pool_ctx(4, proba=np.full((4, 2), 0.5)), 1)
    with pytest.raises(ValueError):
        BALD(n_samples=1)
