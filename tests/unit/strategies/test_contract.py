import numpy as np
import pytest

from distilloop.registry import STRATEGIES, build
from tests.unit.strategies.contract import StrategyContract, make_ctx

NAMES = sorted(STRATEGIES)


@pytest.fixture(params=NAMES)
def strategy(request):
    return build("strategy", request.param, {}, where="test")


class TestEveryRegisteredStrategy(StrategyContract):
    pass


def test_uncertainty_strategies_pick_the_most_uncertain():
    ctx = make_ctx()
    proba = ctx.probabilities()
    ent = -(proba * np.log(proba)).sum(axis=1)
    top = {ctx.unlabeled_ids[i] for i in np.argsort(-ent)[:5]}
    assert set(build("strategy", "entropy", {}, where="t").select(ctx, 5).ids) == top
    lc = {ctx.unlabeled_ids[i] for i in np.argsort(proba.max(axis=1))[:5]}
    assert set(build("strategy", "least_confidence", {}, where="t").select(make_ctx(), 5).ids) == lc
    part = np.sort(proba, axis=1)
    mg = {ctx.unlabeled_ids[i] for i in np.argsort(part[:, -1] - part[:, -2])[:5]}
    assert set(build("strategy", "margin", {}, where="t").select(make_ctx(), 5).ids) == mg
