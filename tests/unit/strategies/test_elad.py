
import numpy as np
import pytest

from distilloop.errors import DistilloopError
from distilloop.strategies.base import SelectionContext
from distilloop.strategies.elad import ELADSampling, ExplainingStudent, across_uncertainty, within_uncertainty
from tests.contracts.strategy import StrategyContract
from tests.unit.strategies.helpers import FixedProba


class TestELADContract(StrategyContract):
    @pytest.fixture
    def strategy(self):
        return ELADSampling(candidates=10, n_explanations=2)


class ToyExplainer:
    """A deterministic explaining student with known reasoning stability.

    * ``stable``: every explanation, cut anywhere, ends in "a";
    * ``within``: the answer flips with every step read (a, b, a, b), the same for every explanation;
    * ``across``: explanation number j answers ``a`` or ``b`` by its parity once a step is read, so sampled
      explanations disagree with each other, while each one barely moves along its own steps.
    Predicted probabilities make ``within``/``across`` items uncertain and ``stable`` ones confident.
    """

    classes_ = ["a", "b"]
    version_ = "toy"

    def __init__(self, dict_answers=False):
        self.explained = []
        self.dict_answers = dict_answers

    def is_fitted(self):
        return True

    def predict_proba(self, texts):
        return np.array([[0.95, 0.05] if t.startswith("stable") else [0.55, 0.45] for t in texts])

    def explain(self, text):
        return self.sample_explanations(text, 1, None)[0]

    def sample_explanations(self, text, n_samples, rng):
        self.explained.append(text)
        return [[f"v{j} step {s}" for s in range(3)] for j in range(n_samples)]

    def answer_from(self, text, partial_steps):
        kind, steps = text.split()[0], list(partial_steps)
        if kind == "stable":
            label = "a"
        elif kind == "within":
            label = "ab"[len(steps) % 2]
        else:
            label = "ab"[int(steps[0][1]) % 2] if steps else "a"
        return {label: 0.9, ("b" if label == "a" else "a"): 0.1} if self.dict_answers else label


def toy_ctx(explainer):
    kinds = ["stable"] * 4 + ["within"] * 2 + ["across"] * 2
    texts = [f"{k} {i}" for i, k in enumerate(kinds)]
    return SelectionContext([f"x{i}" for i in range(len(texts))], texts, [], [], [], ["a", "b"],
                            np.random.default_rng(0), student=explainer)


def kinds(ctx, ids):
    return sorted(ctx.unlabeled_texts[ctx.unlabeled_ids.index(i)].split()[0] for i in ids)


def test_toy_satisfies_the_protocol_and_the_measures_are_what_the_doc_says():
    toy = ToyExplainer()
    assert isinstance(toy, ExplainingStudent)
    steps = toy.explain("within 0")
    assert within_uncertainty(toy, "within 0", steps, ["a", "b"]) == pytest.approx(2 / 3)
    assert within_uncertainty(toy, "stable 0", steps, ["a", "b"]) == 0.0
    exps = toy.sample_explanations("across 0", 4, None)
    assert across_uncertainty(toy, "across 0", exps, ["a", "b"]) == pytest.approx(1.0)  # 2 a, 2 b
    assert across_uncertainty(toy, "within 0", exps, ["a", "b"]) == 0.0


@pytest.mark.parametrize("dict_answers", [False, True])
def test_picks_unstable_reasoning_and_never_the_stable_items(dict_answers):
    toy = ToyExplainer(dict_answers)
    ctx = toy_ctx(toy)
    assert kinds(ctx, ELADSampling(candidates=0, n_explanations=4).select(ctx, 4).ids) == \
        ["across", "across", "within", "within"]
    only_within = ELADSampling(candidates=0, n_explanations=4, within_weight=1.0).select(toy_ctx(toy), 2)
    assert kinds(ctx, only_within.ids) == ["within", "within"]
    only_across = ELADSampling(candidates=0, n_explanations=4, within_weight=0.0).select(toy_ctx(toy), 2)
    assert kinds(ctx, only_across.ids) == ["across", "across"]


def test_explanations_of_the_chosen_items_are_handed_on():
    ctx = toy_ctx(ToyExplainer())
    sel = ELADSampling(candidates=0, n_explanations=2).select(ctx, 2)
    assert set(ctx.extra["explanations"]) == set(sel.ids) == set(sel.explanations)
    assert sel.explanations[sel.ids[0]] == ctx.extra["explanations"][sel.ids[0]] == ["v0 step 0", "v0 step 1", "v0 step 2"]
    assert set(ctx.extra["explanation_uncertainty"][sel.ids[0]]) == {"within", "across"}


def test_only_the_cheap_prefilters_candidates_are_explained():
    toy = ToyExplainer()
    ctx = toy_ctx(toy)
    sel = ELADSampling(candidates=4, prefilter="least_confidence", n_explanations=2).select(ctx, 2)
    assert sorted(t.split()[0] for t in toy.explained) == ["across", "across", "within", "within"]
    assert set(ctx.extra["explanations"]) == set(sel.ids)  # passed back through the wrapper


def test_a_student_that_cannot_explain_is_refused():
    ctx = toy_ctx(FixedProba(np.full((8, 2), 0.5)))
    with pytest.raises(DistilloopError, match="explain"):
        ELADSampling(candidates=0).select(ctx, 1)


def test_greedy_only_student_uses_one_explanation():
    class Greedy:  # the protocol's required half only, like a greedy-decoding step-by-step student
        answer_from = ToyExplainer.answer_from

        def __init__(self):
            self.dict_answers = False

        def explain(self, text):
            return ["v1 step 0", "v1 step 1", "v1 step 2"]

    ctx = toy_ctx(Greedy())
    sel = ELADSampling(candidates=0, n_explanations=3, within_weight=0.0).select(ctx, 8)
    assert all(s == 0.0 for s in sel.scores)  # no across-explanation signal from one explanation
    within = ELADSampling(candidates=0, n_explanations=3, within_weight=1.0).select(toy_ctx(Greedy()), 2)
    assert kinds(ctx, within.ids) == ["within", "within"]


class NumericToyExplainer(ToyExplainer):
    """The toy's reasoning with numbers for answers (no label set): "a" is 72, "b" is 96."""

    classes_ = []

    def predict_proba(self, texts):
        raise AssertionError("a numeric student has no label probabilities")

    def answer_from(self, text, partial_steps):
        return {"a": "72", "b": "96"}[super().answer_from(text, partial_steps)]


def test_numeric_answers_measure_instability_by_the_number_changing():
    toy = NumericToyExplainer()
    steps = toy.explain("within 0")
    assert within_uncertainty(toy, "within 0", steps, []) == pytest.approx(2 / 3)
    assert within_uncertainty(toy, "stable 0", steps, []) == 0.0
    exps = toy.sample_explanations("across 0", 4, None)
    assert across_uncertainty(toy, "across 0", exps, []) == pytest.approx(np.log(2) / np.log(4))  # 72 x2, 96 x2
    ctx = toy_ctx(toy)
    ctx.classes = []
    strategy = ELADSampling(candidates=0, n_explanations=2)
    assert not strategy.needs_probabilities
    assert kinds(ctx, strategy.select(ctx, 4).ids) == ["across", "across", "within", "within"]
    assert ELADSampling().needs_probabilities  # the default prefilter is entropy
    assert not ELADSampling(prefilter="typiclust").needs_probabilities
