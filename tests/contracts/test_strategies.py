"""Every registered strategy passes the Strategy contract; a composite needs at least what its children need;
what a strategy says it does not need, it never reads."""

import numpy as np
import pytest

from distilloop.registry import STRATEGIES, build
from tests.contracts.strategy import StrategyContract, make_ctx

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


def test_top_n_fast_path_equals_the_full_sort_including_ties():
    from distilloop.strategies.base import top_n

    rng = np.random.default_rng(5)
    for trial in range(100):
        size = int(rng.integers(5, 300))
        n = int(rng.integers(1, size))
        scores = rng.integers(0, 4, size=size).astype(float)  # many ties
        got = top_n([str(i) for i in range(size)], scores, n, np.random.default_rng(trial)).ids
        jitter = np.random.default_rng(trial).permutation(size)
        assert got == [str(i) for i in np.lexsort((jitter, -scores))[:n]]


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_cites_its_source(name):
    import importlib
    import re

    module, _, attr = STRATEGIES[name].partition(":")
    mod = importlib.import_module(module)
    text = (mod.__doc__ or "") + (getattr(mod, attr).__doc__ or "")
    assert re.search(r"\b(19|20)\d\d\b", text), f"{name}: no dated reference in its docstrings"


@pytest.mark.parametrize("name", NAMES)
def test_a_strategy_that_says_it_needs_no_probabilities_never_reads_them(name):
    """What numeric-answer campaigns rely on: their student has embeddings but no label probabilities."""
    from tests.unit.strategies.helpers import pool_ctx

    strategy = build("strategy", name, {}, where="test")
    if strategy.needs_probabilities:
        return
    rng = np.random.default_rng(0)
    ctx = pool_ctx(40, emb=rng.normal(size=(40, 4)), labeled=(0, 1))

    def no_probabilities(texts):
        raise AssertionError(f"{name} read the student's probabilities")

    ctx.student.predict_proba = no_probabilities
    assert len(set(strategy.select(ctx, 5).ids)) == 5


def test_the_embedding_strategies_need_no_probabilities_and_the_uncertainty_ones_do():
    needs = {name: build("strategy", name, {}, where="test").needs_probabilities for name in NAMES}
    assert {n for n, v in needs.items() if not v} >= {"random", "kmeans", "coreset", "typiclust", "mixture"}
    assert all(needs[n] for n in ("entropy", "margin", "least_confidence", "bald", "qbc", "elad", "cost_aware",
                                  "density_weighted", "uncertainty_kmeans"))


@pytest.mark.parametrize("name", NAMES)
def test_a_composite_needs_at_least_what_its_children_need(name):
    strategy = build("strategy", name, {}, where="test")
    for child in strategy.children():
        assert child.needs <= strategy.needs, f"{name} needs {sorted(strategy.needs)}, its child {child.name} " \
                                              f"{sorted(child.needs)}"
        assert child.may_return_fewer <= strategy.may_return_fewer


def test_composites_in_depth_take_the_union_of_every_level():
    from distilloop.strategies.subsample import TopCandidates

    # elad's scorer needs explanations, its prefilter probabilities; a wrapper around elad needs both, and costs
    nested = build("strategy", "random_subpool", {"base": {"name": "mixture", "strategies": [
        "random", {"name": "elad", "prefilter": "cost_aware"}]}}, where="test")
    assert nested.needs >= {"student", "explanations", "probabilities", "costs"}
    assert nested.may_return_fewer  # cost_aware's knapsack, three levels down
    assert isinstance(build("strategy", "elad", {}, where="test").children()[0], TopCandidates)


def test_every_registered_strategy_declares_only_known_needs():
    from distilloop.strategies.base import NEEDS

    for name in NAMES:
        assert build("strategy", name, {}, where="test").needs <= NEEDS, name
