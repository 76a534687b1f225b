"""The benchmarks' campaigns in several processes (`distilloop bench --workers N`): results come back in the order
asked, each worker starts with the parent's embeddings (a text is embedded once), and a worker's error is raised
in the parent."""

import numpy as np
import pytest

from benchmarks.label_efficiency import run_many
from distilloop.students import embedding


def test_results_keep_their_order_and_workers_get_the_embeddings():
    key = "test-encoder|norm=True"
    embedding.preload({key: {"h1": np.arange(3, dtype=np.float32)}})
    try:
        seen = []
        out = run_many([(dict, {"i": i}) for i in range(6)] + [(embedding.memory_snapshot, {})], workers=2,
                       advance=lambda: seen.append(1))
    finally:
        embedding._MEMORY.pop(key, None)
    assert out[:6] == [{"i": i} for i in range(6)] and len(seen) == 7
    assert np.array_equal(out[6][key]["h1"], np.arange(3))


def test_a_workers_error_is_raised_here():
    with pytest.raises(TypeError):
        run_many([(dict, {}), (int, {"not_an_argument": 1})], workers=2)


def test_one_worker_runs_here():
    assert run_many([(dict, {"a": 1})], workers=1) == [{"a": 1}]


def test_a_worker_that_dies_is_one_clear_error():
    import os

    from distilloop.errors import EngineError

    with pytest.raises(EngineError, match="--workers 1"):
        run_many([(os._exit, {"status": 1}), (dict, {})], workers=2)


def test_campaigns_of_one_folder_keep_their_own_students_and_share_the_embeddings(tmp_path):
    """Two campaigns running at once in one folder must never save a student where the other loads one."""
    from benchmarks.label_efficiency import RT, STUDENTS, campaign_config
    from distilloop.loop.config import parse_config

    configs = [parse_config(campaign_config(RT, tmp_path / "data.jsonl", tmp_path / f"{name}.db", strategy="random",
                                            student=STUDENTS["tfidf_logreg"], seed=0, review="auto", pool_size=10,
                                            initial=5, growth=1.0, rounds=1, min_agreement=0.75),
                            tmp_path / "bench.toml")
               for name in ("random_off_all_batch-tfidf_logreg-0-auto", "random_off_all_none-tfidf_logreg-0-auto")]
    assert configs[0].students_dir != configs[1].students_dir
    assert configs[0].vectors_dir == configs[1].vectors_dir


def test_an_interrupted_bench_says_so_and_not_that_a_campaign_resumes(monkeypatch, capsys):
    from distilloop.cli import main, setup

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(setup, "_bench", interrupted)
    assert main(["bench", "--quick"]) == 130
    err = capsys.readouterr().err
    assert "benchmark stopped" in err and "distilloop run" not in err
