import pytest
from sklearn.metrics import cohen_kappa_score

from distilloop.annotators.agreement import cohen_kappa, fleiss_kappa
from distilloop.errors import DistilloopError

L = ("negative", "positive")


def test_cohen_kappa_matches_scikit_learn():
    a = ["positive", "positive", "negative", "negative", "positive", "negative"]
    b = ["positive", "negative", "negative", "negative", "positive", "positive"]
    assert cohen_kappa(a, b, L) == pytest.approx(cohen_kappa_score(a, b))


def test_fleiss_kappa_known_value_and_perfect_agreement():
    # two raters: Fleiss' kappa equals Scott's pi; perfect agreement gives 1
    assert fleiss_kappa([["positive", "positive"], ["negative", "negative"]], L) == pytest.approx(1.0)
    # 3 raters, by hand: P_i = 1, 1, 1/3 -> P_bar = 7/9; p(positive) = 5/9 -> P_e = 41/81; kappa = 22/40
    ratings = [["positive"] * 3, ["negative"] * 3, ["positive", "positive", "negative"]]
    assert fleiss_kappa(ratings, L) == pytest.approx(22 / 40)


def test_kappa_needs_ratings():
    with pytest.raises(DistilloopError):
        fleiss_kappa([["positive"]], L)
    with pytest.raises(DistilloopError):
        cohen_kappa(["positive"], [], L)
