"""`distilloop bench --selection --quick` on the real recorded teacher outputs: the CI-sized label-efficiency grid."""

import json
import subprocess
import sys

import pytest

from benchmarks import label_efficiency as bench
from distilloop.errors import ConfigError
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_quick_bench_prints_the_comparison_table(tmp_path):
    if not (ROOT / bench.RT.recording).exists():
        pytest.skip("no recorded teacher outputs in data/recorded")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "distilloop.cli", "bench", "--selection", "--quick", "-q", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "acc@5%" in proc.stdout and "small-text:BreakingTies" in proc.stdout and "AUC/rand" in proc.stdout
    result = json.loads(out.read_text())
    strategies = {r["strategy"] for r in result["rows"]}
    assert strategies == set(bench.STRATEGIES_QUICK)
    for row in result["rows"]:
        assert 0 <= row["auc"] <= 1 and (row["acc@25%"] is None or 0 <= row["acc@25%"] <= 1)
    for curve in result["curves"]:
        tokens = [p[0] for p in curve["points"]]
        assert tokens == sorted(tokens)  # spend only grows
        labeled = [p[3] for p in curve["points"]]
        assert labeled == sorted(labeled)


def test_metrics_on_a_known_curve():
    c = bench.Curve("s", "st", 0, "auto", [(10, 0.0, 0.5, 5), (50, 0.0, 0.7, 20), (100, 0.0, 0.8, 40)], 0.0)
    assert bench.accuracy_at(c, 9) is None and bench.accuracy_at(c, 60) == 0.7
    assert bench.cost_to_reach(c, 0.7) == 50 and bench.cost_to_reach(c, 0.9) is None
    # steps: 0.5 on [0.1, 0.5), 0.7 on [0.5, 1.0), 0.8 at 1.0
    assert bench.auc(c, 100) == pytest.approx(0.5 * 0.4 + 0.7 * 0.5)


def test_strategy_specs_carry_parameters():
    assert bench.strategy_table("kmeans") == {"name": "kmeans"}
    assert bench.strategy_table("typiclust[cost_power=1;k_neighbours=10]") == {
        "name": "typiclust", "cost_power": 1, "k_neighbours": 10}
    assert bench.strategy_table("uncertainty_kmeans[uncertainty=entropy]") == {
        "name": "uncertainty_kmeans", "uncertainty": "entropy"}
    for bad in ("typiclust[cost_power]", "typi clust", "kmeans[=3]"):
        with pytest.raises(ConfigError, match="strategy"):
            bench.strategy_table(bad)


def test_cli_names_a_malformed_strategy_spec_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "distilloop.cli", "bench", "--selection", "-q", "--strategies", "typiclust[oops]",
                           "--seeds", "1", "--reviews", "auto", "--students", "tfidf_logreg", "--pool", "30"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "'oops' is not key=value" in proc.stderr


def test_cli_names_an_unknown_dataset_without_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "distilloop.cli", "bench", "--dataset", "svamp", "--quick"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no label-efficiency benchmark for 'svamp'; choose commonsenseqa, rt_polarity" in proc.stderr
