"""The answers a bench campaign keeps for a paired comparison (the review line of `distilloop bench --levers`) are
the promoted student's on the reported split: one per test item, and their mean is the accuracy the curve shows."""

import pytest

from benchmarks import label_efficiency as bench
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_kept_answers_are_the_reported_students_on_every_test_item(tmp_path, capfd):
    if not (ROOT / bench.RT.recording).exists():
        pytest.skip("no recorded teacher outputs in data/recorded")
    ids = bench.recorded_ids(bench.RT)[:60]
    data = bench.make_pool_file(bench.RT, ids, tmp_path)
    curves = [bench.run_one(bench.RT, data, tmp_path, strategy="random", student=bench.STUDENTS["tfidf_logreg"],
                            seed=0, review=review, pool_size=len(ids), schedule=(len(ids), 1.0, 1),
                            min_agreement=0.75, name=f"paired-{review}", keep_correct=True)
              for review in ("auto", "simulated")]
    n_test = min(bench.RT.test_limit, sum(1 for line in data.read_text().splitlines() if '"split": "test"' in line))
    for c in curves:
        assert c.correct is not None and len(c.correct) == n_test
        assert sum(c.correct) / len(c.correct) == pytest.approx(c.points[-1][2])
    assert curves[1].reviews > 0
    mean, lo, hi = bench.paired_difference(curves[0].correct, curves[1].correct)
    assert mean == pytest.approx(curves[1].points[-1][2] - curves[0].points[-1][2])
    assert lo <= mean <= hi
    unkept = bench.run_one(bench.RT, data, tmp_path, strategy="random", student=bench.STUDENTS["tfidf_logreg"],
                           seed=0, review="auto", pool_size=len(ids), schedule=(len(ids), 1.0, 1),
                           min_agreement=0.75, name="unkept")
    assert unkept.correct is None
    # the campaigns' own warnings (the 0.5B answers "positive" to nearly everything) are not the bench user's
    err = capfd.readouterr().err
    assert "warning:" not in err


def test_a_progress_without_warnings_says_none(capsys):
    from distilloop.loop.progress import Progress

    Progress(quiet=True).warn("said")
    Progress(quiet=True, warnings=False).warn("not said")
    err = capsys.readouterr().err
    assert "warning: said" in err and "not said" not in err
