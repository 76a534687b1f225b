"""A campaign whose answers are numbers (SVAMP math word problems), end to end: the real recorded answers of
the two local teachers (replayed), majority vote over the numbers they gave, disagreements to the (simulated)
reviewer, a step-by-step student that generates its answer, the export and the HTML report; and the parts a
numeric campaign cannot use refused with the fix, before anything is written."""

import gzip
import json
from pathlib import Path

import pytest

from distilloop.annotators.prompts import NUMERIC_TASK
from distilloop.errors import ConfigError, DataError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.progress import Progress
from distilloop.reports.html import write_html_report
from distilloop.storage.export import export_jsonl
from tests.unit.test_cli import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[3]
RECORDING = ROOT / "data" / "recorded" / "svamp.teachers.jsonl.gz"
TEACHERS = ("qwen-1.5b", "qwen-0.5b")


def recorded() -> dict[str, dict[str, dict]]:
    by: dict[str, dict[str, dict]] = {}
    with gzip.open(RECORDING, "rt") as f:
        for line in f:
            r = json.loads(line)
            by.setdefault(r["example_id"], {})[r["teacher"]] = r
    return {ex: rs for ex, rs in by.items() if set(rs) == set(TEACHERS)}


def write_data(tmp_path: Path, n_pool: int = 16, n_test: int = 6) -> Path:
    rec = recorded()
    rows = [json.loads(x) for x in gzip.open(ROOT / "data" / "svamp.jsonl.gz", "rt")]
    pool = [r for r in rows if r["id"] in rec][:n_pool]
    test = [r for r in rows if r["split"] == "test"][:n_test]
    path = tmp_path / "svamp.jsonl"
    path.write_text("".join(json.dumps({"id": r["id"], "split": r["split"], "question": r["question"],
                                        "label": r["label"]}) + "\n" for r in pool + test))
    return path


def write_config(tmp_path: Path, data: Path, student_dir: str, **over: str) -> Path:
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "qwen2.5-coder"\npath = "{RECORDING}"\n'
                       f'source = "{t}"\n' for t in TEACHERS)
    text = f"""
[campaign]
name = "svamp"
answer = "number"
task = "{NUMERIC_TASK}"
{over.get("campaign", "")}
[data]
path = "{data}"
input_fields = ["question"]
[budget]
max_tokens_in = 1000000
[rounds]
max_rounds = 2
initial_size = 8
batch_size = 8
[strategy]
name = "{over.get("strategy", "random")}"
{over.get("strategy_params", "")}
[aggregation]
method = "{over.get("aggregation", "majority")}"
[routing]
min_agreement = 1.0
[review]
kind = "simulated"
[student]
kind = "{over.get("student", "step_by_step")}"
{over.get("student_params", f'model = "{student_dir}"' + chr(10) + "epochs = 1" + chr(10) + "batch_size = 4")}
{teachers}"""
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.unit.students.tiny_models import tiny_causal_lm

    corpus = [f"predict: {q}\nlabel: {a}\nexplain: {q}\nrationale: {q} so {a}"
              for q, a in [("Tom has 3 apples and buys 4", "7"), ("A pack costs 76 and 25 off", "51")]]
    return str(tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), corpus * 4))


STUDENT = 'model = "{}"\nepochs = 1\nbatch_size = 4\nanswer_after_rationale = true'


# typiclust: on the student's own embeddings; elad: the student's answers after each of its own explanation steps
@pytest.mark.parametrize(("strategy", "params"), [("random", ""), ("typiclust", ""),
                                                  ("elad", 'prefilter = "typiclust"\ncandidates = 6\nn_explanations = 1')])
def test_a_numeric_campaign_votes_over_numbers_reviews_disagreements_and_trains_a_generating_student(
        tmp_path, tiny_lm, strategy, params):
    data = write_data(tmp_path)
    config = load_config(write_config(tmp_path, data, tiny_lm, strategy=strategy, strategy_params=params,
                                      student_params=STUDENT.format(tiny_lm)))
    rec = recorded()
    campaign = Campaign.open(config, progress=Progress(quiet=True))
    try:
        campaign.run()
        store = campaign.store
        cons = {r["example_id"]: r for r in store.db.query("select * from consensus")}
        assert len(cons) == 16  # two rounds of 8
        assert [r["strategy"] for r in store.rounds()] == ["random", strategy]  # the first round is random
        if strategy == "elad":  # the student's explanations of the items it chose, kept for explanation revision
            kept = store.selection_explanations(2)
            assert set(kept) == set(store.selection(2)) and all(isinstance(v, list) for v in kept.values())
        gold = {e.id: e.gold for e in store.examples()}
        labels = {r["example_id"]: r for r in store.db.query("select * from labels")}
        from distilloop.core.answers import normalize_number

        n_agree = n_review = 0
        for ex, c in cons.items():
            answers = [normalize_number(json.loads(rec[ex][t]["raw"], strict=False).get("answer")) for t in TEACHERS]
            if answers[0] is not None and answers[0] == answers[1]:
                n_agree += 1  # both teachers gave the same number: accepted as it is
                assert c["route"] == "accept" and c["label"] == answers[0] and labels[ex]["source"] == "teachers"
                assert json.loads(c["soft_label"]) == {answers[0]: 1.0}
            else:
                n_review += 1  # they disagree: the (simulated) reviewer's answer, the gold number, is the label
                assert c["route"] == "review"
                assert labels[ex]["label"] == gold[ex] and labels[ex]["source"] == "simulated"
        assert n_agree and n_review  # the recorded teachers both agree and disagree on these items
        assert all(c["rationales_agree"] is None for c in cons.values())  # no label to take a side for
        student = store.active_student()
        # numbers are scored by exact match alone (no macro-F1 without a label set), on a named reference
        m = student["metrics"] if student else {}
        assert {"accuracy", "n", "baseline"} <= set(m) and "macro_f1" not in m and m["n"] == 6
        assert m["reference"] == "gold:test" and set(m["refs"]) == {"gold:test"}
        # the export carries the numbers and the teachers' working
        out = tmp_path / "distilled.jsonl"
        export_jsonl(store, out)
        exported = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(exported) == 16 and all(normalize_number(r["label"]) == r["label"] for r in exported)
        html = write_html_report(store, tmp_path / "report.html").read_text()
        assert "answers are numbers" in html and "confusion-table" not in html
    finally:
        campaign.close()


@pytest.mark.parametrize(("over", "message"), [
    ({"student": "tfidf_logreg", "student_params": ""}, 'student.kind: \'tfidf_logreg\' classifies'),
    ({"strategy": "entropy"}, "strategy.name: 'entropy' ranks items"),
    ({"aggregation": "dawid_skene"}, "aggregation.method: 'dawid_skene'"),
    ({"campaign": 'labels = ["1", "2"]'}, "has no label set; remove labels"),
])
def test_parts_that_need_a_label_set_are_refused_before_anything_is_written(tmp_path, over, message):
    config = load_config(write_config(tmp_path, write_data(tmp_path), str(tmp_path), **over)) if "labels" not in over.get(
        "campaign", "") else None
    if config is None:
        with pytest.raises(ConfigError, match=message):
            load_config(write_config(tmp_path, write_data(tmp_path), str(tmp_path), **over))
        return
    with pytest.raises(ConfigError, match=message):
        Campaign.open(config, progress=Progress(quiet=True))
    assert not config.store_path.exists()


def test_a_gold_answer_that_is_not_a_number_names_the_row(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "a", "question": "2 + 2?", "label": "4"}\n{"id": "b", "question": "3 + 3?", "label": "six"}\n')
    config = load_config(write_config(tmp_path, data, str(tmp_path)))
    with pytest.raises(DataError, match=r"bad.jsonl:2: label 'six' is not a number"):
        Campaign.open(config, progress=Progress(quiet=True))
    assert not config.store_path.exists()


def test_the_cli_reports_a_numeric_config_error_without_a_traceback(tmp_path):
    path = write_config(tmp_path, write_data(tmp_path), str(tmp_path), strategy="margin")
    p = cli("run", path, cwd=tmp_path)
    assert_one_line_error(p, "strategy.name: 'margin' ranks items by the student's label probabilities, .*"
                             '"kmeans", "coreset", "typiclust"')
    assert not (tmp_path / "svamp.distilloop.db").exists()


def test_an_unknown_answer_kind_is_a_config_error():
    from distilloop.loop.config import CampaignSection

    with pytest.raises(ConfigError, match='campaign.answer: must be "label" .* or "number"'):
        CampaignSection(answer="numbers")
