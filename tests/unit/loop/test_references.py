"""Evaluation without gold: a campaign on unlabeled data scores its students against a held-out set the teacher
ensemble labeled (or a human audit set), names that reference everywhere, shows the majority-class baseline beside
every score, and keeps promoting; decisions never read the test split when another reference exists."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from distilloop.loop import references
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import ROOT

RECORDING = ROOT / "data" / "recorded" / "rt_polarity.teachers.jsonl.gz"
LABEL_ONLY = ROOT / "data" / "recorded" / "rt_polarity.label_only.jsonl.gz"


def recorded_pool(tmp_path: Path, *, gold: bool) -> Path:
    """The 604 recorded Rotten Tomatoes pool items as a data file, with or without their gold labels."""
    have: dict[str, set[str]] = {}
    for line in gzip.open(RECORDING, "rt"):
        r = json.loads(line)
        have.setdefault(r["example_id"], set()).add(r["teacher"])
    ids = {i for i, t in have.items() if len(t) == 2}
    out = tmp_path / "rt.jsonl"
    with open(out, "w") as f:
        for line in gzip.open(ROOT / "data" / "rt_polarity.jsonl.gz", "rt"):
            r = json.loads(line)
            if r["id"] in ids:
                row = {"id": r["id"], "text": r["text"], "split": "pool"}
                if gold:
                    row["label"] = r["label"]
                f.write(json.dumps(row) + "\n")
    return out


def config(tmp_path: Path, data: Path, extra: str = "", rounds: int = 4) -> Path:
    # the student learns no rationales: the teachers are asked for the label alone, replayed from that recording
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "qwen"\n'
                       f'path = ["{RECORDING}", "{LABEL_ONLY}"]\nsource = "{t}"\n' for t in ("qwen-0.5b", "qwen-1.5b"))
    path = tmp_path / "c.toml"
    path.write_text(f"""
[campaign]
name = "nogold"
labels = ["negative", "positive"]
task = "Classify the sentiment of the movie review snippet as negative or positive."
[data]
path = "{data}"
[budget]
max_tokens_in = 10000000
[rounds]
max_rounds = {rounds}
initial_size = 40
batch_size = 40
[strategy]
name = "random"
[aggregation]
method = "confidence_weighted"
calibrate = "batch"
[routing]
min_agreement = 0.5
[student]
kind = "tfidf_logreg"
[evaluation]
promote_margin = 0.03
{extra}
{teachers}""")
    return path


def test_a_campaign_without_gold_decides_on_a_teacher_labeled_held_out_set(tmp_path):
    cfg = load_config(config(tmp_path, recorded_pool(tmp_path, gold=False)))
    campaign = Campaign.open(cfg)
    try:
        assert campaign.run().startswith("max rounds reached (4)")
        store = campaign.store
        held = store.reference_labels("teachers")
        assert 90 <= len(held) <= 100  # the held-out set, labeled by the ensemble (even splits left out)
        assert not set(held) & {r["example_id"] for r in store.labeled()}  # kept out of training...
        assert not set(held) & store.selected_ids()  # ...and out of selection
        assert store.spent(0).tokens > 0  # its cost is charged to the budget
        students = store.students()
        assert [s["metrics"]["reference"] for s in students] == ["teachers"] * 4
        for s in students:
            sc = s["metrics"]["refs"]["teachers"]
            assert sc["n"] == len(held) and 0.0 <= sc["ci_low"] <= sc["accuracy"] <= sc["ci_high"] <= 1.0
            assert 0.5 <= sc["baseline"] < 1.0
        active = store.active_student()
        assert active["round"] >= 3  # the campaign kept promoting as it learnt
        rows = store.round_rows()
        assert [r.reference for r in rows] == ["teachers"] * 4 and all(r.baseline for r in rows)
    finally:
        campaign.close()


def test_a_small_unlabeled_file_keeps_most_of_its_rows_to_label(tmp_path):
    data = recorded_pool(tmp_path, gold=False)
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:60]))  # heldout_size (100) > the pool
    warned: list[str] = []
    from distilloop.loop.progress import Progress

    progress = Progress(quiet=True)
    progress.warn = warned.append  # type: ignore[method-assign]
    campaign = Campaign.open(load_config(config(tmp_path, data, rounds=2)), progress=progress)
    try:
        assert campaign.run().startswith("max rounds reached (2)")
        held = campaign.store.reference_ids("teachers")
        assert len(held) == 12  # 20% of the pool
        assert len(campaign.store.labeled()) == 48  # two rounds of 40, cut to what is left
        assert [s["metrics"]["reference"] for s in campaign.store.students()] == ["teachers"] * 2
        assert any("the pool has 60 items: the teachers' held-out set gets 12" in w and "heldout_size = 100" in w
                   for w in warned)
    finally:
        campaign.close()


def test_decisions_prefer_dev_gold_and_use_the_test_split_only_as_a_last_resort():
    refs = {n: references.Reference(n, ["a"], ["x"]) for n in ("gold:test", "teachers", "gold:dev", "audit")}
    assert references.decision("auto", refs).name == "gold:dev"
    assert references.decision("auto", {k: v for k, v in refs.items() if k != "gold:dev"}).name == "audit"
    assert references.decision("auto", {"gold:test": refs["gold:test"], "teachers": refs["teachers"]}).name == \
        "teachers"
    assert references.decision("auto", {"gold:test": refs["gold:test"]}).name == "gold:test"
    assert references.decision("teachers", refs).name == "teachers"
    assert references.decision("auto", {}) is None


def test_wilson_interval_and_baseline():
    lo, hi = references.wilson(80, 100)
    assert lo == pytest.approx(0.711, abs=0.002) and hi == pytest.approx(0.867, abs=0.002)
    assert references.baseline(["a", "a", "b"]) == pytest.approx(2 / 3)


def test_a_round_row_names_the_reference_its_accuracy_is_from_when_two_tie():
    """A student answering the majority label scores the same accuracy on dev and test splits of the same shares:
    the row still names the split its flat metrics were copied from (the evaluation split)."""
    from distilloop.storage.queries import RoundRow

    dev = {"accuracy": 0.85, "macro_f1": 0.46, "n": 120, "baseline": 0.85, "ci_low": 0.78, "ci_high": 0.9}
    test = {"accuracy": 0.85, "macro_f1": 0.46, "n": 600, "baseline": 0.85, "ci_low": 0.82, "ci_high": 0.88}
    metrics = {**test, "dev_accuracy": 0.85, "refs": {"gold:dev": dev, "gold:test": test}, "reference": "gold:dev"}
    row = RoundRow(1, "done", "mixture", 20, 20, 0, 100, 10, 0.0, 0.9, 0.9, metrics, True, "v1")
    assert row.reference == "gold:test" and row.accuracy == 0.85 and row.baseline == 0.85


def test_the_table_of_a_campaign_decided_on_macro_f1_shows_macro_f1_and_its_baseline():
    """On 91% negative data the table showed accuracy (93.8%, the majority baseline's) beside 'promoted: yes' on a
    campaign deciding on macro-F1 (48.4% there). The table, the round's line and the plot show that score."""
    import io

    from rich.console import Console

    from distilloop.reports.table import rounds_table
    from distilloop.storage.queries import RoundRow

    test = {"accuracy": 0.904, "macro_f1": 0.603, "n": 240, "baseline": 0.9375, "baseline_macro_f1": 0.484,
            "ci_low": 0.86, "ci_high": 0.935}
    row = RoundRow(4, "done", "mixture", 20, 80, 1, 10290, 504, 0.0, 0.967, 0.962,
                   {**test, "refs": {"gold:test": test}, "reference": "gold:test"}, True, "v4")
    assert (row.score("macro_f1"), row.score("accuracy"), row.baseline_macro_f1) == (0.603, 0.904, 0.484)

    def shown(metric):
        out = io.StringIO()
        Console(file=out, width=250).print(rounds_table([row], metric=metric))
        return out.getvalue()

    f1 = shown("macro_f1")
    assert "student F1" in f1 and "60.3%" in f1 and "48.4%" in f1
    assert "student acc" not in f1 and "90.4%" not in f1 and "93.8%" not in f1
    acc = shown("accuracy")
    assert "student acc" in acc and "90.4%" in acc and "93.8%" in acc and "60.3%" not in acc


def test_gold_dev_rows_added_to_a_campaign_without_gold_become_its_reference(tmp_path):
    """A campaign on unlabeled data decides on the teachers' held-out set; its user labels 40 dev rows by hand and
    adds them. The first addition froze every split as it was, the empty dev split too, so the 40 rows were "added
    later" and never decided on: the campaign could never gain a gold reference. A split with no gold row is not
    frozen; its first gold rows are its reference, and the decisions move to them (more trusted)."""
    from tests.unit.loop.living_helpers import cli, edit, write_jsonl

    path = config(tmp_path, recorded_pool(tmp_path, gold=False), rounds=1)
    assert cli("run", "-q", path).returncode == 0
    pool_ids = {json.loads(x)["id"] for x in (tmp_path / "rt.jsonl").read_text().splitlines()}
    dev = []
    for line in gzip.open(ROOT / "data" / "rt_polarity.jsonl.gz", "rt"):
        r = json.loads(line)
        if r["id"] not in pool_ids and len(dev) < 40:
            dev.append({"id": r["id"], "text": r["text"], "label": r["label"], "split": "dev"})
    added = cli("add", path, write_jsonl(tmp_path / "dev.jsonl", dev))
    assert added.returncode == 0 and "(dev 40)" in added.stdout, added.stderr
    edit(path, "max_rounds = 1", "max_rounds = 2")
    assert cli("run", "-q", path).returncode == 0
    campaign = Campaign.open(load_config(path))
    try:
        first, second = campaign.store.students()
        assert first["metrics"]["reference"] == "teachers"
        assert second["metrics"]["reference"] == "gold:dev" and second["metrics"]["refs"]["gold:dev"]["n"] == 40
        assert "gold:dev added" not in second["metrics"]["refs"]
    finally:
        campaign.close()
    # a second addition of dev rows: the first 40 are now the frozen reference, the new ones reported apart
    more = cli("add", path, write_jsonl(tmp_path / "dev2.jsonl", [dict(r, id=r["id"] + "-b") for r in dev[:10]]))
    assert more.returncode == 0, more.stderr
    edit(path, "max_rounds = 2", "max_rounds = 3")
    assert cli("run", "-q", path).returncode == 0
    campaign = Campaign.open(load_config(path))
    try:
        refs = campaign.store.students()[-1]["metrics"]["refs"]
        assert refs["gold:dev"]["n"] == 40 and refs["gold:dev added"]["n"] == 10
    finally:
        campaign.close()
