"""`distilloop bench`'s command line: the lever grid by default, the selection grid's options only with
--selection, and --json without a file writing the JSON (only) to stdout."""

import json

import pytest

from benchmarks.label_efficiency import Curve, levers
from distilloop.cli import main


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "random"], "--strategies: an option of the selection grid; add --selection"),
    (["--reviews", "auto", "--pool", "30"], "--reviews, --pool: an option of the selection grid"),
    (["--calibrate", "none"], "--calibrate: an option of the selection grid"),
    (["--selection", "--levers"], "--selection and --levers are two grids"),
    (["--seeds", "0"], "--seeds: must be at least 1, got 0"),
    (["--selection", "--pool", "-1"], "--pool: must be at least 1 item, got -1"),
])
def test_options_of_the_other_grid_are_a_one_line_error(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def fake_result(**kwargs):
    full = 1000
    cs = [Curve("/".join(levers.BASELINE), "tfidf", 0, "auto", [(100, 1e-4, 0.7, 1), (1000, 1e-3, 0.8, 10)], 0.0, 0.9),
          Curve("/".join(levers.INIT), "tfidf", 0, "auto", [(50, 5e-5, 0.75, 1), (400, 4e-4, 0.8, 10)], 0.0, 0.9)]
    return levers.LeverResult("rt_polarity", 10, full, 1e-3, 0.8, levers.summarize_levers(cs, full, 1e-3, 0.8), cs,
                              {}, {}, levers.random_at_budgets(cs, full)), kwargs


def test_the_default_is_the_lever_grid_and_json_alone_goes_to_stdout(monkeypatch, capsys):
    seen = {}

    def run_levers(**kwargs):
        result, seen["kwargs"] = fake_result(**kwargs)
        return result

    monkeypatch.setattr(levers, "run_levers", run_levers)
    assert main(["bench", "--quick", "-q", "--json"]) == 0
    out, err = capsys.readouterr()
    payload = json.loads(out)  # nothing but the JSON on stdout
    assert seen["kwargs"]["seeds"] == (0,) and seen["kwargs"]["student"] == "tfidf_logreg"
    assert payload["random_at_budget"]["all"]["accuracy"] == pytest.approx(0.8)
    init = next(r for r in payload["rows"] if r["config"] == "/".join(levers.INIT))
    assert init["vs_random_at_budget"]["all"] == pytest.approx(0.4)  # 400 of the baseline's 1000 tokens
    assert "selection/cascade/rationales/calibration" in err and "rnd@all" in err


def test_json_to_a_file_keeps_the_table_on_stdout(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(levers, "run_levers", lambda **kw: fake_result(**kw)[0])
    out_file = tmp_path / "levers.json"
    assert main(["bench", "-q", "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("levers on rt_polarity") and json.loads(out_file.read_text())["full_tokens"] == 1000


def test_a_bench_runs_scratch_folder_is_removed_when_it_ends():
    """Each `distilloop bench` left its campaigns' stores in /tmp (601 MB for the lever grid)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("from pathlib import Path; from benchmarks.label_efficiency import tempfile_dir; p = Path(tempfile_dir()); "
            "(p / 'c').mkdir(); (p / 'c' / 'store.db').write_text('x'); print(p)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() and not Path(out.stdout.strip()).exists()
