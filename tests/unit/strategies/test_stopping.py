import numpy as np
import pytest

from distilloop.strategies.stopping import DevTarget, StabilizingPredictions, choose_stop_set, cohen_kappa


def test_kappa_matches_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        a = list(rng.choice(["x", "y", "z"], size=40))
        b = [v if rng.random() < 0.7 else "x" for v in a]
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(["x"] * 5, ["x"] * 5) == 1.0
    assert cohen_kappa(["x"] * 5, ["y"] * 5) == 0.0
    with pytest.raises(ValueError):
        cohen_kappa(["x"], ["x", "y"])


def test_stabilizing_predictions_stops_after_a_window_of_agreement():
    rule = StabilizingPredictions(threshold=0.99, window=3)
    changing = [["a", "b", "a", "b"], ["a", "a", "b", "b"], ["b", "a", "b", "a"]]
    assert not any(rule.update(p) for p in changing)
    settled = ["a", "b", "b", "a"]
    results = [rule.update(settled) for _ in range(4)]
    # kappas: (changing->settled) low, then 1.0, 1.0, 1.0: the mean of the last 3 reaches 1.0 on the 4th
    assert results == [False, False, False, True]
    assert rule.kappas[-3:] == [1.0, 1.0, 1.0]


def test_mean_rule_tolerates_one_dip_but_all_rule_does_not():
    base = ["a", "b"] * 50
    dipped = ["b" if i < 16 and v == "a" else v for i, v in enumerate(base)]  # 8 flips: kappa about 0.84
    seq = [base, base, dipped, dipped, dipped]
    mean_rule, all_rule = StabilizingPredictions(0.9, 3, "mean"), StabilizingPredictions(0.9, 3, "all")
    out_mean = [mean_rule.update(p) for p in seq]
    out_all = [all_rule.update(p) for p in seq]
    assert 0.8 < mean_rule.kappas[1] < 0.9
    assert out_mean == [False, False, False, True, True]  # kappas [1.0, ~0.84, 1.0]: mean 0.95
    assert not any(out_all)


def test_stop_set_is_fixed_by_the_seed():
    ids = [f"u{i}" for i in range(100)]
    assert choose_stop_set(ids, 10, np.random.default_rng(1)) == choose_stop_set(ids, 10, np.random.default_rng(1))
    assert len(choose_stop_set(ids, 500, np.random.default_rng(1))) == 100


def test_dev_target_with_patience():
    rule = DevTarget(target=0.8, patience=2)
    assert [rule.update(s) for s in (0.7, 0.81, 0.79, 0.82, 0.85)] == [False, False, False, False, True]
    loss = DevTarget(target=0.3, higher_is_better=False)
    assert not loss.update(0.5) and loss.update(0.2)
    with pytest.raises(ValueError):
        StabilizingPredictions(window=0)
