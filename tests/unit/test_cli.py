import json
import re
import subprocess
import sys

import pytest

from distilloop.cli import build_parser, main
from tests.conftest import FIXTURES, ROOT, replay_config


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "distilloop.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def assert_one_line_error(proc, match):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert re.search(match, lines[0]), lines[0]


def test_missing_data_file(tmp_path):
    cfg = replay_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(str(ROOT / "tests/fixtures/rt_tiny.jsonl"), str(tmp_path / "nope.jsonl")))
    proc = cli("run", cfg)
    assert_one_line_error(proc, "data file not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["campaign.toml"]  # no partial campaign


@pytest.mark.parametrize("row,match", [
    ({"id": "x", "label": "positive"}, "row has no 'text'"),
    ({"id": "x", "text": "  ", "label": "positive"}, "'text' .the input field. is empty.*delete the row"),
    ({"id": "x", "text": "meh", "label": "neutral"}, "label 'neutral' is not in the label set"),
])
def test_bad_rows(tmp_path, row, match):
    data = tmp_path / "d.jsonl"
    lines = (ROOT / "tests/fixtures/rt_tiny.jsonl").read_text().splitlines()[:10]
    data.write_text("\n".join([*lines, json.dumps(row)]) + "\n")
    cfg = replay_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(str(ROOT / "tests/fixtures/rt_tiny.jsonl"), str(data)))
    assert_one_line_error(cli("run", cfg), match)
    assert not list(tmp_path.glob("*.db*"))


@pytest.mark.parametrize("edit,match", [
    (("max_usd = 1.0", "max_usd = -1.0"), r"budget.max_usd: must be a number >= 0"),
    (("[rounds]", "[rounds]\nmax_round = 3"), r"rounds.max_round: unknown key \(did you mean 'max_rounds'\?\)"),
])
def test_bad_config(tmp_path, edit, match):
    cfg = replay_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(*edit, 1))
    assert_one_line_error(cli("run", cfg), match)
    assert not list(tmp_path.glob("*.db*"))


@pytest.mark.parametrize("table,match", [
    ('[student]\nkind = "tfidf_logreg"\nC = "strong"', r"student: C must be a number, got 'strong'"),
    ('[student]\nkind = "tfidf_logreg"\nC = -1.0', r"student: C must be > 0"),
    ('[student]\nkind = "embedding_linear"\nmodel = "/no/such/encoder"', r"student: model '/no/such/encoder'"),
    ('[strategy]\nname = "typiclust"\nk_neighbours = 0', r"strategy: k_neighbours must be at least 1"),
    ('[strategy]\nname = "kmeans"\n[student]\nkind = "step_by_step"\nmodel = "/no/such/lm"', r"student: model"),
    ('[strategy]\nname = "bald"', r"strategy.name: 'bald' needs samples of the student"),
    ('[strategy]\nname = "elad"', r"strategy.name: 'elad' needs explanations of the student.*step_by_step"),
])
def test_a_bad_student_or_strategy_stops_run_before_any_store_is_written(tmp_path, table, match):
    cfg = replay_config(tmp_path, extra=table)
    assert_one_line_error(cli("run", cfg), match)
    assert not list(tmp_path.glob("*.db*")) and not list(tmp_path.glob("*.students"))


def test_status_without_a_store_is_an_error_not_a_traceback(tmp_path):
    proc = cli("status", replay_config(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "no campaign store" in proc.stderr


def test_run_status_export_report_on_a_replay_campaign(tmp_path):
    cfg = replay_config(tmp_path)
    run = cli("run", "-q", cfg)
    assert run.returncode == 0, run.stderr
    assert "learning curve" in run.stdout and "student acc" in run.stdout
    status = cli("status", "--json", cfg)
    s = json.loads(status.stdout)
    assert s["rounds"] == 3 and s["labeled"] > 0 and s["spent"]["tokens_in"] > 0
    assert len(s["rounds_table"]) == 3 and s["rounds_table"][-1]["accuracy"] is not None
    out = tmp_path / "export.jsonl"
    exp = cli("export", cfg, "-o", out)
    assert exp.returncode == 0, exp.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == s["labeled"]
    assert {"id", "text", "label", "rationale", "provenance"} <= set(rows[0])
    assert {t["teacher"] for t in rows[0]["provenance"]["teachers"]} == {"a", "b", "c"}
    assert "gold" not in rows[0]
    piped = cli("export", cfg, "-o", "-", cwd=tmp_path)  # JSON lines on stdout, the count on stderr
    assert piped.returncode == 0 and [json.loads(x) for x in piped.stdout.splitlines()] == rows
    assert f"wrote {len(rows)} labeled examples to stdout" in piped.stderr and not (tmp_path / "-").exists()
    assert_one_line_error(cli("export", cfg, "-o", "-", "--format", "parquet"), "not to stdout")
    head = subprocess.run(f"{sys.executable} -m distilloop.cli export {cfg} -o - | head -c 10", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert len(head.stdout) == 10 and "Error" not in head.stderr and "error" not in head.stderr  # a closed pipe is quiet
    rep = cli("report", cfg)
    assert rep.returncode == 0 and "Learning curve" in rep.stdout
    # read as sentences, never as Python dicts
    assert re.search(r"spent: [\d,]+ / .* tokens in", rep.stdout) and "{'" not in rep.stdout
    assert re.search(r"active student: \S+ \(round \d\): accuracy", rep.stdout)


def test_init_writes_a_campaign_that_validates(tmp_path):
    out = tmp_path / "c.toml"
    proc = cli("init", ROOT / "tests/fixtures/rt_tiny.jsonl", "--out", out, "--task", "Sentiment?")
    assert proc.returncode == 0, proc.stderr
    from distilloop.loop.config import load_config

    cfg = load_config(out)
    assert cfg.campaign.labels == ["negative", "positive"] and cfg.data_path.exists()
    assert_one_line_error(cli("init", ROOT / "tests/fixtures/rt_tiny.jsonl", "--out", out), "already exists")


def test_init_writes_the_teachers_named_in_the_order_given(tmp_path, monkeypatch):
    """`init --teachers` writes API or local teachers (the local pair was the only choice: every API user edited
    the file), asked as a cascade in the order given; a model it cannot place, or a missing .gguf, is bad input."""
    from distilloop.loop.config import load_config
    from distilloop.loop.parts import build_teachers

    data, out = ROOT / "tests/fixtures/rt_tiny.jsonl", tmp_path / "c.toml"
    proc = cli("init", data, "--out", out, "--teachers", "gpt-4o-mini,claude-haiku-4-5,qwen2.5-coder-0.5b")
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stdout.split())
    assert "note: the teachers read their keys from ANTHROPIC_API_KEY and OPENAI_API_KEY (never from the file)" in said
    cfg = load_config(out)
    assert [(t.kind, t.params["model"]) for t in cfg.teachers] == [
        ("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("llama_cpp", "qwen2.5-coder-0.5b")]
    assert cfg.routing.tiers() == [["gpt-4o-mini"], ["claude-haiku-4-5"], ["qwen2.5-coder-0.5b"]]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    assert [t.name for t in build_teachers(cfg)] == ["gpt-4o-mini", "claude-haiku-4-5", "qwen2.5-coder-0.5b"]
    one = cli("init", data, "--out", out, "--force", "--teachers", "gpt-9-turbo")  # one teacher: no cascade
    assert one.returncode == 0 and "distilloop has no price for 'gpt-9-turbo'" in " ".join(one.stdout.split())
    assert load_config(out).routing.tiers() == [] and "# price = { input = 0.0, output = 0.0 }" in out.read_text()
    math = tmp_path / "math.jsonl"  # numeric answers: room for the working, no cascade (numbers split evenly)
    math.write_text("".join(f'{{"id": "q{i}", "question": "{i} + {i}?", "answer": "{2 * i}"}}\n' for i in range(6)))
    assert cli("init", math, "--out", out, "--force", "--answer", "number", "--label-field", "answer",
               "--teachers", "gpt-4o-mini,qwen2.5-coder-0.5b").returncode == 0
    cfg = load_config(out)
    assert [t.params.get("max_tokens") for t in cfg.teachers] == [400, 300] and cfg.routing.tiers() == []
    assert_one_line_error(cli("init", data, "--out", out, "--force", "--teachers", "mistral-large"),
                          "cannot tell which API serves 'mistral-large'")
    assert_one_line_error(cli("init", data, "--out", out, "--force", "--teachers", str(tmp_path / "m.gguf")),
                          "model file not found")


def test_init_writes_labels_and_task_in_other_scripts_as_typed(tmp_path):
    """French labels and task were written "tr\\u00e8s bien" (JSON's ASCII escapes): valid TOML, unreadable to
    the person editing it. Written as typed now; a DEL in a label stays escaped, as TOML wants."""
    data = tmp_path / "avis.csv"
    data.write_text("id,text,label\na,super,très bien\nb,bof,pas terrible\nc,x,\"del\x7fl\"\n", encoding="utf-8")
    out = tmp_path / "c.toml"
    assert cli("init", data, "--out", out, "--task", "Évaluez l'avis").returncode == 0
    text = out.read_text(encoding="utf-8")
    assert 'labels = ["del\\u007fl", "pas terrible", "très bien"]' in text and 'task = "Évaluez l\'avis"' in text
    assert '"très bien" = 0.' in text and "\\u00e8" not in text
    from distilloop.loop.config import load_config

    cfg = load_config(out)
    assert cfg.campaign.labels == ["del\x7fl", "pas terrible", "très bien"] and cfg.campaign.task == "Évaluez l'avis"


def test_init_finds_the_label_under_the_hubs_names_or_where_told(tmp_path):
    """MNLI's `gold_label` and CommonsenseQA's `answerKey` were not taken for the label ("cannot infer the label
    set ... found []") and nothing let the user name the column; both are found now, and --label-field names any."""
    from distilloop.loop.config import load_config

    nli = tmp_path / "mnli.csv"
    nli.write_text("pairID,sentence1,sentence2,gold_label\n1,A man sleeps.,He is awake.,contradiction\n"
                   "2,A dog runs.,An animal moves.,entailment\n")
    proc = cli("init", nli, "--out", tmp_path / "a.toml", "--task", "NLI")
    assert proc.returncode == 0, proc.stderr
    cfg = load_config(tmp_path / "a.toml")
    assert (cfg.data.label_field, cfg.data.input_fields, cfg.data.id_field) == (
        "gold_label", ["sentence1", "sentence2"], "pairID") and cfg.campaign.labels == ["contradiction", "entailment"]
    intents = tmp_path / "intents.tsv"  # an intent classifier's data (CLINC's column)
    intents.write_text("id\ttext\tintent\n1\twhen will my card come\tcard arrival\n2\tclose my account\taccount closure\n")
    assert cli("init", intents, "--out", tmp_path / "i.toml").returncode == 0
    assert load_config(tmp_path / "i.toml").data.label_field == "intent"
    # a hub export's codes beside their names (SetFit's label/label_text): the teachers were asked for "0" or "1"
    setfit = tmp_path / "sst2.jsonl"
    setfit.write_text("".join(json.dumps({"text": t, "label": i % 2, "label_text": ["negative", "positive"][i % 2]})
                              + "\n" for i, t in enumerate(["awful", "great", "dull", "fine"])))
    proc = cli("init", setfit, "--out", tmp_path / "h.toml")
    assert proc.returncode == 0 and "gold labels: column 'label_text' (the names of the codes in 'label')" in proc.stdout
    cfg = load_config(tmp_path / "h.toml")
    assert cfg.data.label_field == "label_text" and cfg.campaign.labels == ["negative", "positive"]
    stance = tmp_path / "s.jsonl"
    stance.write_text("".join(json.dumps({"id": i, "text": f"t{i}", "stance": "for" if i % 2 else "against"}) + "\n"
                              for i in range(6)))
    proc = cli("init", stance, "--out", tmp_path / "b.toml", "--label-field", "stance")
    assert proc.returncode == 0, proc.stderr
    cfg = load_config(tmp_path / "b.toml")
    assert cfg.data.label_field == "stance" and cfg.campaign.labels == ["against", "for"]
    assert_one_line_error(cli("init", stance, "--out", tmp_path / "c.toml", "--label-field", "stanse"),
                          r"--label-field stanse: .*s.jsonl has no such column \(columns: id, text, stance\)")
    # without it, the error said only "pass --labels a,b,..." (the labels found: none), not where to look
    assert_one_line_error(cli("init", stance, "--out", tmp_path / "c.toml"),
                          r"cannot infer the label set from .*s.jsonl: no column 'label' \(columns: id, text, stance\); "
                          r"name the gold labels' column with --label-field COLUMN, or give the labels to ask for")


def test_init_on_an_export_or_an_empty_gold_column(tmp_path):
    """A campaign's own export given to `init`: its soft_label and provenance columns were offered as inputs
    ("several that could be inputs (subject, body, soft_label, provenance)") and its teachers' labels taken as gold
    without a word; a gold column empty on every row was said to hold "only []"."""
    from distilloop.loop.config import load_config

    export = tmp_path / "e.jsonl"
    export.write_text("".join(json.dumps({"id": f"r{i}", "text": f"text {i}", "label": "ab"[i % 2], "rationale": None,
                                          "soft_label": {"a": 0.8, "b": 0.2}, "provenance": {"source": "teachers"}})
                              + "\n" for i in range(6)))
    proc = cli("init", export, "--out", tmp_path / "e.toml")
    assert proc.returncode == 0, proc.stderr
    assert "note: this is a distilloop export: its 'label' column holds that campaign's accepted labels" in \
        " ".join(proc.stdout.split())
    assert load_config(tmp_path / "e.toml").data.input_fields == ["text"]
    (tmp_path / "f.jsonl").write_text(export.read_text().replace('"text"', '"body"'))  # no text column: by name
    proc = cli("init", tmp_path / "f.jsonl", "--out", tmp_path / "f.toml")
    assert proc.returncode == 0 and load_config(tmp_path / "f.toml").data.input_fields == ["body"], proc.stderr
    empty = tmp_path / "g.csv"
    empty.write_text("id,text,label\n" + "".join(f"{i},text {i},\n" for i in range(4)))
    assert_one_line_error(cli("init", empty, "--out", tmp_path / "g.toml"),
                          r"cannot infer the label set from .*g.csv: column 'label' is empty on every row \(no gold "
                          r"labels\): give the labels to ask for with --labels a,b")


def test_init_names_the_column_whose_values_look_like_labels(tmp_path):
    """The SMS spam CSV (columns v1 = ham/spam, v2 = the message, three unnamed empty ones): init said only "several
    that could be inputs (v1, v2)", then, given --fields v2, "no column 'label'". Both errors now say which column
    looks like the labels, by its values, and the options that name it; a column of free text is never offered."""
    data = tmp_path / "spam.csv"
    data.write_text("v1,v2,,,\n" + "".join(f"{'spam' if i % 5 == 0 else 'ham'},message {i} text,,,\n"
                                            for i in range(40)))
    assert_one_line_error(cli("init", data, "--out", tmp_path / "a.toml"),
                          r"several that could be inputs \(v1, v2\); .*'v1' looks like the labels \(2 values: ham, "
                          r"spam\): --label-field v1 --fields v2$")
    assert_one_line_error(cli("init", data, "--fields", "v2", "--out", tmp_path / "a.toml"),
                          r"no column 'label' \(columns: v1, v2\).*'v1' looks like the labels \(2 values: ham, "
                          r"spam\): --label-field v1$")
    proc = cli("init", data, "--fields", "v2", "--label-field", "v1", "--out", tmp_path / "a.toml")
    assert proc.returncode == 0, proc.stderr
    # two free-text columns: nothing looks like labels, the error is as before
    free = tmp_path / "free.csv"
    free.write_text("a,b\n" + "".join(f"first {i},second {i}\n" for i in range(40)))
    proc = cli("init", free, "--out", tmp_path / "b.toml")
    assert proc.returncode == 2 and "looks like the labels" not in proc.stderr


def test_init_reads_a_spreadsheets_capitalised_headers(tmp_path):
    """A spreadsheet's CSV headed "ID,Text,Label" was refused: no 'text' column, and "Label" offered as an input
    (the answer, shown to the teachers, had the user picked it). The headers are read whatever their case."""
    from distilloop.loop.config import load_config

    data = tmp_path / "caps.csv"
    data.write_text("ID,Text,Label\n1,great film,Positive\n2,awful,Negative\n3,fine,Positive\n")
    proc = cli("init", data, "--out", tmp_path / "c.toml")
    assert proc.returncode == 0, proc.stderr
    assert "gold labels: column 'Label'" in proc.stdout and "input fields: Text" in proc.stdout
    cfg = load_config(tmp_path / "c.toml")
    assert (cfg.data.input_fields, cfg.data.label_field, cfg.data.id_field) == (["Text"], "Label", "ID")
    assert cfg.campaign.labels == ["Negative", "Positive"]
    # its "Split" and "Rationale" too: the split column was ignored (split_field "split"), so the rows marked
    # "Test" and "DEV" were split again by fraction and most went to the pool, to be labeled and paid for
    from distilloop.data import load_examples

    data.write_text("ID,Text,Label,Split,Rationale\n" + "".join(
        f"{i},film {i},{'Positive' if i % 2 else 'Negative'},{'Test' if i < 10 else 'DEV' if i < 16 else ''},"
        f"{'because' if i == 3 else ''}\n" for i in range(40)))
    proc = cli("init", data, "--out", tmp_path / "c.toml", "--force")
    assert proc.returncode == 0, proc.stderr
    cfg = load_config(tmp_path / "c.toml")
    assert (cfg.data.split_field, cfg.data.rationale_field) == ("Split", "Rationale")
    examples = load_examples(data, cfg.data_spec())
    assert [e.split for e in examples[:16]] == ["test"] * 10 + ["dev"] * 6
    assert examples[3].gold_rationale == "because"
    # a campaign file written by hand, [data] label_field left at "label": the "Label" column's gold was ignored
    # without a word; refused (exit 2) before anything is written, with the key to set
    toml = tmp_path / "c.toml"
    toml.write_text(toml.read_text().replace('label_field = "Label"\n', ""))
    assert_one_line_error(cli("estimate", toml), r"caps.csv: its column 'Label' is not read: \[data\] label_field is "
                                                 r"'label' .*; set label_field = \"Label\" in the campaign file")


def test_init_writes_the_strong_teacher_alone_beyond_two_labels(tmp_path):
    """With five labels the 0.5B teacher was near chance and the cascade asked it about most items: labels 56.0%
    right with both, 65.3% with the 1.5B alone, at twice the tokens (benchmarks/multiclass_teachers.py). Beyond two
    labels `init` writes the 1.5B alone and says so; two labels, or teachers named with --teachers, are kept."""
    from distilloop.loop.config import load_config

    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "text": f"ticket {i}", "label": ["a", "b", "c"][i % 3]}) + "\n"
                            for i in range(60)))
    proc = cli("init", data, "--out", tmp_path / "three.toml", "--task", "Route the ticket.")
    assert proc.returncode == 0, proc.stderr
    assert "note: 3 labels: the 1.5B local teacher alone" in " ".join(proc.stdout.split())
    cfg = load_config(tmp_path / "three.toml")
    assert [t.params["name"] for t in cfg.teachers] == ["qwen-1.5b"] and not cfg.routing.cascade
    named = cli("init", data, "--out", tmp_path / "named.toml", "--task", "R.", "--teachers",
                "qwen2.5-coder-1.5b,qwen2.5-coder-0.5b")
    assert named.returncode == 0 and len(load_config(tmp_path / "named.toml").teachers) == 2
    two = tmp_path / "two.jsonl"
    two.write_text(data.read_text().replace('"label": "c"', '"label": "a"'))
    assert cli("init", two, "--out", tmp_path / "two.toml", "--task", "R.").returncode == 0
    assert [t.params["name"] for t in load_config(tmp_path / "two.toml").teachers] == ["qwen-1.5b", "qwen-0.5b"]


def test_init_says_a_label_of_a_row_or_two_that_looks_like_a_typo_of_a_common_one(tmp_path):
    """'postive' on one row of 120 made a third label the teachers were offered, without a word. A rare label
    that is spelled like no other ('sarcastic') is a label of its own: nothing said."""
    data = tmp_path / "typo.jsonl"
    labels = ["positive" if i % 2 else "negative" for i in range(120)]
    labels[7], labels[9], labels[11] = "postive", "sarcastic", "negativ"
    data.write_text("".join(json.dumps({"id": f"r{i}", "text": f"review {i}", "label": lab}) + "\n"
                            for i, lab in enumerate(labels)))
    proc = cli("init", data, "--out", tmp_path / "c.toml", "--task", "Sentiment.")
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stdout.split())
    assert ("note: 'negativ' is the gold label of 1 row(s) (r11) and 'negative' of 60; 'postive' is the gold label "
            "of 1 row(s) (r7) and 'positive' of 57: a typo? Every label is offered to the teachers; fix those rows "
            "and run init again, unless it is a label of its own") in said
    assert "'sarcastic' is" not in said


def test_init_says_a_test_split_without_gold_leaves_the_dev_split_to_report_on(tmp_path):
    """A GLUE-style file: train and validation labeled, test not (-1 on the hub, no label here)."""
    data = tmp_path / "glue.jsonl"
    data.write_text("".join(json.dumps({"id": i, "sentence": f"s{i}", "split": s,
                                        **({"label": "pos" if i % 2 else "neg"} if s != "test" else {})}) + "\n"
                            for i, s in enumerate(["train"] * 20 + ["validation"] * 6 + ["test"] * 8)))
    proc = cli("init", data, "--out", tmp_path / "c.toml", "--task", "Sentiment.")
    assert proc.returncode == 0, proc.stderr
    assert "note: the test split's 8 rows have no gold label" in " ".join(proc.stdout.split())
    data.write_text(data.read_text().replace('"split": "test"', '"split": "test", "label": "neg"'))
    assert "test split" not in cli("init", data, "--out", tmp_path / "c.toml", "--force", "--task", "S.").stdout


def test_init_on_thirty_intents_keeps_its_lines_short(tmp_path):
    """30 labels: the summary line named all 30 and the calibration comment spelled a 30-entry share table
    (0.8 for the first label, 0.007 for each other) on one line; both now say the shape, not every label."""
    labels = [f"intent_{i:02d}" for i in range(30)]
    data = tmp_path / "intents.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": f"message {i}", "label": labels[i % 30]}) + "\n"
                            for i in range(90)))
    proc = cli("init", data, "--out", tmp_path / "c.toml", "--task", "Which intent?")
    assert proc.returncode == 0, proc.stderr
    assert "labels 30: intent_00, intent_01, intent_02, ... intent_28, intent_29." in proc.stdout
    assert "intent_15" not in proc.stdout
    prior = next(line for line in (tmp_path / "c.toml").read_text().splitlines() if "calibrate_prior" in line)
    assert prior.endswith("or yours: { intent_00 = 0.3, intent_01 = 0.1, ... }, every label's share") and len(prior) < 170


def test_init_decides_on_macro_f1_when_the_gold_labels_are_skewed(tmp_path):
    from distilloop.loop.config import load_config

    rows = [{"id": i, "text": f"message {i}", "label": "spam" if i % 10 == 0 else "ham"} for i in range(60)]
    skewed = tmp_path / "mail.jsonl"
    skewed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli("init", skewed, "--out", tmp_path / "s.toml", "--task", "Spam?")
    assert proc.returncode == 0, proc.stderr
    assert "90% of the gold labels are 'ham'" in proc.stdout
    cfg = load_config(tmp_path / "s.toml")
    assert cfg.evaluation.metric == "macro_f1" and cfg.aggregation.params["calibrate_prior"] == "auto"
    # the RT fixture (63% positive) keeps accuracy
    proc = cli("init", ROOT / "tests/fixtures/rt_tiny.jsonl", "--out", tmp_path / "rt.toml", "--task", "Sentiment?")
    assert proc.returncode == 0 and load_config(tmp_path / "rt.toml").evaluation.metric == "accuracy"


def test_init_gives_a_skewed_files_dev_split_enough_rows_of_the_rare_label(tmp_path):
    """A 1,200-row review file, 7% positive: the 10% dev split held 11 positive rows, and students were promoted on
    a dev macro-F1 that rose while the test's fell. The dev share now holds about 20 of the rarest label (up to 30%
    of the rows with gold; past that, a note)."""
    from distilloop.loop.config import load_config

    def write(name, n, rare):
        rows = [{"id": i, "text": f"review {i}", "label": "positive" if i % n < rare else "negative"} for i in range(n)]
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        proc = cli("init", tmp_path / name, "--out", tmp_path / f"{name}.toml", "--task", "Sentiment?")
        assert proc.returncode == 0, proc.stderr
        return " ".join(proc.stdout.split()), load_config(tmp_path / f"{name}.toml")

    said, cfg = write("reviews.jsonl", 1200, 80)
    assert cfg.data.dev_fraction == 0.25 and cfg.evaluation.metric == "macro_f1"
    assert "the dev split is 25% of the rows with gold ([data] dev_fraction), not 10%: about 20 rows of 'positive'" in said
    said, cfg = write("rarer.jsonl", 1200, 30)  # 30 positive rows: 20 of them would be two thirds
    assert cfg.data.dev_fraction == 0.1 and "30 rows of 'positive' have gold, so the dev split gets about 3" in said
    said, cfg = write("even.jsonl", 1200, 360)  # 30% positive: 36 dev rows of it already
    assert cfg.data.dev_fraction == 0.1 and "dev split is" not in said


def test_init_holds_out_thousands_of_a_large_files_rows_not_a_fifth(tmp_path):
    """A 60,000-row file held out 12,000 test and 6,000 dev rows (a 300,000-row one 90,000: 27 minutes of embedding
    on two cores before the first round reported, and rows lost to the pool): 5,000 and 2,000, said; the rest stay
    in the pool. A file of the usual size keeps 20% and 10%."""
    from distilloop.data import load_examples
    from distilloop.loop.config import load_config

    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"id": i, "text": f"ticket {i}", "label": "billing" if i % 3 else "refund"})
                           + "\n" for i in range(60_000)))
    proc = cli("init", big, "--out", tmp_path / "big.toml", "--task", "Route the ticket.")
    assert proc.returncode == 0, proc.stderr
    assert "60,000 rows with gold: about 5,000 held out as test and about 2,000 held out as dev, not 20% and 10%" in proc.stdout
    cfg = load_config(tmp_path / "big.toml")
    splits = [e.split for e in load_examples(big, cfg.data_spec())]
    assert (splits.count("test"), splits.count("dev"), splits.count("pool")) == (4_980, 1_980, 53_040)
    usual = tmp_path / "usual.jsonl"
    usual.write_text("".join(json.dumps({"id": i, "text": f"ticket {i}", "label": "billing" if i % 3 else "refund"})
                             + "\n" for i in range(2_000)))
    proc = cli("init", usual, "--out", tmp_path / "usual.toml", "--task", "Route the ticket.")
    assert proc.returncode == 0 and "held out as" not in proc.stdout
    kept = load_config(tmp_path / "usual.toml").data
    assert (kept.test_fraction, kept.dev_fraction) == (0.2, 0.1)


def test_init_holds_out_enough_dev_rows_of_a_small_file_to_decide_on(tmp_path):
    """180 rows with gold held out 18 dev rows, and every round then warned that students were chosen on too few to
    tell them apart: from 150 rows on, at least 30, said; a file that names its dev rows, or a smaller one, keeps
    its split."""
    from distilloop.data import load_examples
    from distilloop.loop.config import load_config

    def init(n, name, dev_rows=0):
        data = tmp_path / f"{name}.jsonl"
        data.write_text("".join(json.dumps({"id": i, "text": f"ticket {i}", "label": "billing" if i % 3 else "refund",
                                            **({"split": "dev"} if i < dev_rows else {})}) + "\n" for i in range(n)))
        proc = cli("init", data, "--out", tmp_path / f"{name}.toml", "--task", "Route the ticket.")
        assert proc.returncode == 0, proc.stderr
        cfg = load_config(tmp_path / f"{name}.toml")
        return proc.stdout, cfg.data.dev_fraction, [e.split for e in load_examples(data, cfg.data_spec())].count("dev")

    said, share, dev = init(180, "small")
    assert (share, dev) == (0.17, 31)
    assert ("180 rows with gold: about 31 held out as dev ([data] dev_fraction = 0.17), not 10% (18): students are "
            "chosen and promoted on them") in said
    smaller = init(149, "smaller")  # 30 rows would be over a fifth of it: said, with the ways out
    assert smaller[1:] == (0.1, 15)
    assert ("149 rows with gold: the dev split gets about 15, too few to choose students on" in smaller[0]
            and '[evaluation] reference = "teachers"' in smaller[0])
    named = init(180, "named", dev_rows=20)  # 20 of its own and 10% of the other 160
    assert named[1:] == (0.1, 36) and "held out as dev" not in named[0]
    few = init(180, "few", dev_rows=5)  # 5 of its own: the other 175 give 25
    assert few[1:] == (0.15, 31) and "about 26 held out as dev ([data] dev_fraction = 0.15), not 10% (18), with the file's 5" in few[0]
    assert init(400, "usual")[1:] == (0.1, 40)


def test_init_reads_the_input_fields_off_a_file_without_a_text_column(tmp_path):
    data = tmp_path / "news.csv"
    data.write_text("id,headline,label\n1,Shares fell,business\n2,Cup final won,sports\n", encoding="utf-8")
    out = tmp_path / "c.toml"
    proc = cli("init", data, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "input fields: headline" in proc.stdout
    from distilloop.loop.config import load_config

    assert list(load_config(out).data.input_fields) == ["headline"]
    assert_one_line_error(cli("init", data, "--fields", "body", "--out", tmp_path / "b.toml"),
                          "no 'body'.*pass --fields")
    codes = tmp_path / "codes.jsonl"
    codes.write_text('{"id": 1, "sentence": "great", "label": 1}\n{"id": 2, "sentence": "awful", "label": 0}\n')
    proc = cli("init", codes, "--out", tmp_path / "f.toml")
    assert proc.returncode == 0 and "placeholder" in proc.stdout and "the labels are codes (0, 1)" in proc.stdout
    svamp = ROOT / "data" / "svamp.jsonl.gz"  # question, equation, type: the equation holds the answer
    assert_one_line_error(cli("init", svamp, "--answer", "number", "--out", tmp_path / "s.toml"),
                          "several that could be inputs \\(question, equation, type\\); pass --fields")
    cqa = cli("init", ROOT / "data" / "commonsenseqa.jsonl.gz", "--out", tmp_path / "q.toml")
    assert cqa.returncode == 0 and "input fields: question, choices" in cqa.stdout
    # choices keyed by the labels (one row of the file has a stray "." key): a multiple-choice instruction, not
    # the placeholder
    assert load_config(tmp_path / "q.toml").campaign.task == "Answer the question: pick the letter of the best choice."
    assert "placeholder" not in cqa.stdout and "a multiple-choice file" in cqa.stdout
    only_ids = tmp_path / "ids.csv"
    only_ids.write_text("id,label\n1,a\n2,b\n", encoding="utf-8")
    assert_one_line_error(cli("init", only_ids, "--out", tmp_path / "d.toml"), "no 'text' column.*pass --fields")
    named = tmp_path / "named.csv"  # a label under another name is never an input (it would leak): it is the label
    named.write_text("id,review,sentiment\n1,Great,pos\n2,Awful,neg\n", encoding="utf-8")
    proc = cli("init", named, "--out", tmp_path / "e.toml")
    assert proc.returncode == 0, proc.stderr
    assert "input fields: review" in proc.stdout and "gold labels: column 'sentiment'" in proc.stdout
    cfg = load_config(tmp_path / "e.toml")
    assert cfg.data.label_field == "sentiment" and cfg.campaign.labels == ["neg", "pos"]


def test_init_takes_many_labels_and_refuses_free_text(tmp_path):
    """A 77-intent file (banking77) was refused ("77 distinct labels; pass --labels explicitly": 77 labels on the
    command line), and labels such as "topic a1" were called numbers ("not codes 0, 1, 2... --answer number").
    Many labels are taken; a column whose values are mostly once (free text) is refused, naming the column."""
    rows = [f"{i},text about intent {i % 77},intent_{i % 77}" for i in range(400)]
    many = tmp_path / "b77.csv"
    many.write_text("id,text,label\n" + "\n".join(rows) + "\n")
    proc = cli("init", many, "--out", tmp_path / "a.toml")
    assert proc.returncode == 0, proc.stderr
    from distilloop.loop.config import load_config

    assert len(load_config(tmp_path / "a.toml").campaign.labels) == 77
    topics = tmp_path / "t.csv"
    topics.write_text("id,text,label\n" + "".join(f"{i},about {c}{i % 3},topic {c}{i % 3}\n"
                                                  for i, c in enumerate("abcdefabcdef")))
    proc = cli("init", topics, "--out", tmp_path / "t.toml")
    assert proc.returncode == 0 and "every label is a number" not in proc.stdout and "codes" not in proc.stdout
    free = tmp_path / "free.csv"
    free.write_text("id,text,label\n" + "".join(f"{i},q{i},an answer in words {i}\n" for i in range(60)))
    assert_one_line_error(cli("init", free, "--out", tmp_path / "f.toml"),
                          r"60 distinct values in column 'label', most of them once: not a set of labels")
    # an STS-B-style similarity score (0.00-5.00): not answers to work out with --answer number, a score to bin
    sts = tmp_path / "sts.csv"
    sts.write_text("id,sentence1,sentence2,score\n" + "".join(f"{i},a man plays {i},he plays {i},{(i * 37 % 500) / 100}\n"
                                                           for i in range(120)))
    assert_one_line_error(cli("init", sts, "--fields", "sentence1,sentence2", "--label-field", "score", "--out",
                              tmp_path / "s.toml"), r"all numbers: most of them with decimals, a continuous score: .*bin "
                                                    r"the scores into a column of labels")


def test_init_for_numeric_answers_writes_a_campaign_that_opens(tmp_path):
    svamp = ROOT / "data" / "svamp.jsonl.gz"
    assert_one_line_error(cli("init", svamp, "--fields", "question", "--out", tmp_path / "x.toml"),
                          "273 distinct labels, all numbers: .* pass --answer number")
    out = tmp_path / "svamp.toml"
    proc = cli("init", svamp, "--fields", "question", "--answer", "number", "--out", out)
    assert proc.returncode == 0, proc.stderr
    from distilloop.loop import parts as factory
    from distilloop.loop.config import load_config

    cfg = load_config(out)
    assert cfg.campaign.numeric and cfg.campaign.labels == [] and "step by step" in cfg.campaign.task
    factory.build_parts(cfg)  # every part the starter names takes numeric answers
    assert_one_line_error(cli("init", svamp, "--fields", "question", "--answer", "number", "--labels", "1,2",
                              "--out", tmp_path / "y.toml"), "do not go together")


def test_every_command_has_help_and_is_documented_in_the_readme():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    readme = (ROOT / "README.md").read_text()
    for name, sp in sub.choices.items():
        assert sp.description, f"{name} has no description"
        for action in sp._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.dest} has no help"
        assert f"distilloop {name}" in readme, f"README does not document `distilloop {name}`"
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def test_students_list_rollback_and_export(tmp_path):
    cfg = replay_config(tmp_path)
    assert cli("run", "-q", cfg).returncode == 0
    from distilloop.loop.config import load_config
    from distilloop.storage.store import Store

    store = Store.open(load_config(cfg).store_path)
    rows = store.students()
    store.close()
    listing = cli("students", cfg)
    assert listing.returncode == 0 and listing.stdout.count("round") == len(rows)
    # a script picks the active version and loads it: the list as JSON, each version's path in it
    listed = json.loads(cli("students", cfg, "--json").stdout)
    assert [r["version"] for r in listed] == [r["version"] for r in rows]
    [active] = [r for r in listed if r["active"] is True]
    from distilloop.students.base import Student

    assert Student.load(active["path"]).predict(["a great film"])[0] in ("negative", "positive")
    oldest = rows[0]["version"]
    back = cli("students", cfg, "--rollback", oldest)
    assert back.returncode == 0 and oldest in back.stdout
    store = Store.open(load_config(cfg).store_path)
    assert store.active_student()["version"] == oldest
    store.close()
    out = tmp_path / "exported"
    exp = cli("students", cfg, "--export", out)
    assert exp.returncode == 0, exp.stderr
    exported = Student.load(out)
    assert oldest.startswith(exported.version_)  # the store may suffix a repeated version with -r<round>
    assert exported.predict(["a great film"])[0] in ("negative", "positive")
    bad = cli("students", cfg, "--rollback", "nope")
    assert bad.returncode == 2 and "no student version" in bad.stderr and "Traceback" not in bad.stderr


def test_init_refuses_labels_no_campaign_could_ask_for(tmp_path):
    """`init --labels positive` wrote a campaign file that every command then refused ("at least two label
    names"); `--labels a,b,a` one with a label twice. Neither is written."""
    data = tmp_path / "d.csv"
    data.write_text("id,text\n1,hello\n2,bye\n")
    out = tmp_path / "c.toml"
    assert_one_line_error(cli("init", data, "--labels", "positive", "--out", out),
                          r"--labels: a campaign asks the teachers to choose, so it needs two labels or more")
    assert_one_line_error(cli("init", data, "--labels", "a,b,a", "--out", out), r"--labels: \['a'\] given twice")
    assert not out.exists()


def test_run_refuses_to_run_no_rounds(tmp_path):
    """`run --rounds 0` (or -2) ran nothing, printed the table and "stopped: ...", exit 0."""
    cfg = replay_config(tmp_path)
    for n in ("0", "-2"):
        assert_one_line_error(cli("run", cfg, "--rounds", n), rf"--rounds: run at least one round, got {n}")


def test_students_before_any_round_says_so(tmp_path):
    cfg = replay_config(tmp_path)
    assert cli("pilot", cfg, "-n", "6").returncode == 0  # a store, and no student yet (the list was empty)
    listing = cli("students", cfg)
    assert listing.returncode == 0 and "no student yet" in listing.stdout
    assert json.loads(cli("students", cfg, "--json").stdout) == []


def test_status_shows_the_kappa_history_of_stabilizing_predictions(tmp_path):
    cfg = replay_config(tmp_path, rounds="max_rounds = 3\ninitial_size = 20\nbatch_size = 10",
                        extra="[stopping]\nstabilizing = true\nstop_set_size = 30\nkappa = 1.0\n")
    assert cli("run", "-q", cfg).returncode == 0
    s = json.loads(cli("status", "--json", cfg).stdout)
    assert s["stop_set_size"] == 30 and [k["round"] for k in s["kappa_history"]] == [2, 3]
    assert all(-1 <= k["kappa"] <= 1 for k in s["kappa_history"])
    text = cli("status", cfg).stdout
    shown = ", ".join(f"round {k['round']} {k['kappa']:.3f}" for k in s["kappa_history"])
    assert f"kappa with the previous round on 30 stop-set items: {shown}" in " ".join(text.split())


def test_an_unexpected_failure_is_one_line_pointing_to_debug_not_a_traceback(monkeypatch, capsys):
    from distilloop.cli import inspect

    def broken(args):
        raise ValueError("something inside broke")

    monkeypatch.setattr(inspect, "cmd_status", broken)  # each main() builds its parser anew
    assert main(["status", "nowhere.toml"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("internal error: ValueError: something inside broke")
    assert "--debug" in err[0]
    with pytest.raises(ValueError, match="inside broke"):
        main(["--debug", "status", "nowhere.toml"])


def test_init_says_when_number_labels_look_like_answers_to_work_out(tmp_path):
    rows = [("Tom has 3 apples and buys 5 more. How many?", 8), ("A box holds 12 eggs; 3 boxes?", 36),
            ("Sara had 20 dollars and spent 7. Left?", 13)]
    data = tmp_path / "math.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": a}) + "\n"
                            for i, (q, a) in enumerate(rows * 3)))
    proc = cli("init", data, "--task", "Solve it.", "--out", tmp_path / "c.toml")
    said = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "note: every label is a number and they are not codes 0, 1, 2... (13, 36, 8)" in said
    assert "run init again with --answer number" in said
    numeric = " ".join(cli("init", data, "--answer", "number", "--out", tmp_path / "n.toml").stdout.split())
    assert "numeric answers" in numeric and "give the campaign a reviewer (docs/review.md) or a third teacher" in numeric
    stars = tmp_path / "stars.csv"  # ratings 1-5 are codes: no such note
    stars.write_text("id,text,label\n" + "".join(f"{i},review {i},{i % 5 + 1}\n" for i in range(10)))
    proc = cli("init", stars, "--out", tmp_path / "s.toml")
    assert proc.returncode == 0 and "not codes" not in proc.stdout and "the labels are codes" in proc.stdout
    scale = tmp_path / "scale.csv"  # a sentiment scale -1, 0, 1 is codes too (it was "not codes... --answer number")
    scale.write_text("id,text,label\n" + "".join(f"{i},tweet {i},{i % 3 - 1}\n" for i in range(12)))
    proc = cli("init", scale, "--out", tmp_path / "t.toml")
    assert proc.returncode == 0 and "not codes" not in proc.stdout and "the labels are codes (-1, 0, 1)" in proc.stdout


def test_a_dollar_cap_under_a_cent_is_shown_with_its_digits():
    from distilloop.cli.common import usd_cap

    assert usd_cap(0.002) == "$0.0020"  # it read "$0.00" beside "$0.0014 spent"
    assert usd_cap(1.0) == "$1.00" and usd_cap(0.0) == "$0.00" and usd_cap(2500) == "$2,500.00"
    assert usd_cap(None) == "no cap"
    assert usd_cap(0.00001) == "$0.00001"  # a test cap read "$0.0000"


def test_init_on_labels_spelled_several_ways_writes_one_label_each_and_says_so(tmp_path):
    """A hand-made gold column ("ham", "HAM", " Ham "): one label each, not six classes, and the campaign it
    writes reads the file (every spelling is that label)."""
    data = tmp_path / "m.jsonl"
    golds = ["spam", "ham", "HAM", " Ham ", "spam", "SPAM", "ham", None] * 5
    data.write_text("".join(json.dumps({"id": str(i), "text": f"message {i}", "label": g}) + "\n"
                            for i, g in enumerate(golds)))
    out = tmp_path / "c.toml"
    proc = cli("init", data, "--out", out, "--task", "Spam?")
    assert proc.returncode == 0, proc.stderr
    assert "taken as one: 'HAM' as 'ham'; 'Ham' as 'ham'; 'SPAM' as 'spam'" in proc.stdout
    from distilloop.data import load_examples
    from distilloop.loop.config import load_config

    cfg = load_config(out)
    assert cfg.campaign.labels == ["ham", "spam"]
    got = [e.gold for e in load_examples(cfg.data_path, labels=cfg.campaign.labels)]
    assert got.count("ham") == 20 and got.count("spam") == 15


def test_init_takes_an_id_column_under_another_name_and_says_when_rows_have_none(tmp_path):
    """A file whose ids are in 'ticket_id' had its rows known as row-2, row-3... in exports and predictions (and a
    later `add` collided on those); init now names the column, and says so where there is none."""
    from distilloop.data import load_examples
    from distilloop.loop.config import load_config

    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text('{"ticket_id": "T7", "subject": "Refund", "body": "charged twice", "label": "billing"}\n'
                       '{"ticket_id": "T9", "subject": "Login", "body": "cannot log in", "label": "account"}\n')
    proc = cli("init", tickets, "--fields", "subject,body", "--out", tmp_path / "t.toml")
    assert proc.returncode == 0 and "ids: column 'ticket_id'" in proc.stdout, proc.stderr
    cfg = load_config(tmp_path / "t.toml")
    assert cfg.data.id_field == "ticket_id" and list(cfg.data.input_fields) == ["subject", "body"]
    assert sorted(e.id for e in load_examples(tickets, cfg.data_spec())) == ["T7", "T9"]
    docs = tmp_path / "docs.csv"  # without --fields: the id column is never taken for an input
    docs.write_text("docId,text,label\nd1,fine,ok\nd2,broken,bad\n", encoding="utf-8")
    proc = cli("init", docs, "--out", tmp_path / "d.toml")
    assert proc.returncode == 0 and load_config(tmp_path / "d.toml").data.id_field == "docId", proc.stderr
    people = tmp_path / "people.csv"  # a column named like an id whose values repeat does not name a row
    people.write_text("customer_id,text,label\n7,charged twice,billing\n7,cannot log in,account\n", encoding="utf-8")
    proc = cli("init", people, "--out", tmp_path / "p.toml")
    assert proc.returncode == 0 and "column 'customer_id' repeats a value" in proc.stdout, proc.stderr
    assert "rows are known by their line" in proc.stdout and load_config(tmp_path / "p.toml").data.id_field == "id"
    bare = tmp_path / "bare.csv"
    bare.write_text("text,label\ncharged twice,billing\ncannot log in,account\n", encoding="utf-8")
    proc = cli("init", bare, "--out", tmp_path / "b.toml")
    assert proc.returncode == 0 and "the file has no 'id' column" in proc.stdout and "repeats" not in proc.stdout
    with_ids = cli("init", ROOT / "tests/fixtures/rt_tiny.jsonl", "--out", tmp_path / "r.toml")
    assert with_ids.returncode == 0 and "ids:" not in with_ids.stdout and "'id' column" not in with_ids.stdout


def test_predict_keeps_the_ids_of_the_campaigns_own_export(tmp_path):
    """A campaign whose ids are in 'uid' labels its own export (`distilloop export`, whose rows name their id
    "id") with `predict`: the rows were known as row-1, row-2... and the predictions could not be joined back."""
    rows = [json.loads(x) for x in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()]
    data = tmp_path / "uid.jsonl"
    data.write_text("".join(json.dumps({"uid": r.pop("id"), **r}) + "\n" for r in rows))
    cfg = replay_config(tmp_path, data=data, rounds="max_rounds = 1\ninitial_size = 20")
    cfg.write_text(cfg.read_text().replace(f'path = "{data}"\n', f'path = "{data}"\nid_field = "uid"\n', 1))
    assert cli("run", "-q", cfg).returncode == 0
    export = tmp_path / "labels.jsonl"
    assert cli("export", cfg, "-o", export).returncode == 0
    ids = [json.loads(x)["id"] for x in export.read_text().splitlines()]
    assert len(ids) == 20 and all(i.startswith("rt-") for i in ids)
    proc = cli("predict", cfg, export, "-o", "-", "-q")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == ids


def test_a_folder_stands_for_its_campaign_toml(tmp_path):
    """`distilloop estimate examples/rt_demo` read the folder as a file ("Is a directory")."""
    cfg = replay_config(tmp_path)
    assert cfg.name == "campaign.toml"
    proc = cli("estimate", tmp_path)
    assert proc.returncode == 0 and "Estimate for" in proc.stdout, proc.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.toml").write_text("")
    assert_one_line_error(cli("estimate", other), r"other is a folder and holds no campaign.toml; pass the campaign "
                                                  r"file \(a.toml are there\)")


def test_a_store_moved_without_its_students_folder_says_what_to_copy(tmp_path):
    """A campaign's .db copied to another folder without `<name>.students` stopped `run` and `predict` with
    "... is not a saved distilloop student (no distilloop_student.json)", exit 1: now exit 2, naming the folder."""
    import shutil

    (tmp_path / "a").mkdir()
    cfg = replay_config(tmp_path / "a", rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 20")
    assert cli("run", "-q", cfg).returncode == 0
    moved = tmp_path / "b"
    moved.mkdir()
    shutil.copy(cfg.parent / "t.distilloop.db", moved / "t.distilloop.db")
    (moved / "campaign.toml").write_text(cfg.read_text().replace("max_rounds = 2", "max_rounds = 3"))
    data = FIXTURES / "rt_tiny.jsonl"
    for args in (("run", "-q", moved / "campaign.toml"), ("predict", moved / "campaign.toml", data)):
        assert_one_line_error(cli(*args), r"the saved student r00\d-\S+ is not in .*b/t.students: a campaign's "
                                          r"students folder goes with its store; copy t.students beside the store")
    shutil.copytree(cfg.parent / "t.students", moved / "t.students")
    assert cli("predict", moved / "campaign.toml", data, "-o", tmp_path / "p.jsonl", "-q").returncode == 0


def test_review_push_or_pull_without_a_reviewer_says_there_is_none(tmp_path):
    """`review push` on a campaign whose [review] kind is "auto" said "pushed 0 pending item(s) to auto", as if
    something had been looked for; it says that the rounds accept routed items themselves and how to get people."""
    cfg = replay_config(tmp_path, rounds="max_rounds = 1\ninitial_size = 10\nbatch_size = 10")
    assert cli("run", "-q", cfg).returncode == 0
    for action, word in (("push", "to"), ("pull", "from")):
        proc = cli("review", action, cfg)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f'review {action}: [review] kind = "auto" has no reviewer to {action} {word}: '
                                      "routed items are accepted with the ensemble's label as the round runs")
        assert 'set kind = "label_studio"' in proc.stdout


def test_run_ends_saying_how_many_items_wait_for_review_and_where(tmp_path):
    """A round that routes items to a reviewer ended with the table and "stopped: ...": nothing said that items
    waited for a person (in Label Studio, its project's address), nor what takes their reviews in."""
    from tests.conftest import sqlite_count

    cfg = replay_config(tmp_path, rounds="max_rounds = 1\ninitial_size = 20\nconcurrency = 4",
                        extra='[review]\nkind = "simulated"\ndelay_rounds = 5')
    cfg.write_text(cfg.read_text().replace("min_agreement = 0.7", "min_agreement = 1.0"))
    proc = cli("run", cfg)
    said = " ".join(proc.stdout.split())
    assert proc.returncode == 0, proc.stderr
    waiting = int(re.search(r"review: (\d+) item\(s\) wait for a reviewer \(simulated\); the next `distilloop run` "
                            r"\(or `distilloop review pull`\) takes the finished ones", said)[1])
    assert waiting > 0 and waiting == sqlite_count(tmp_path / "t.distilloop.db",
                                   "select count(*) from review_queue where status = 'pending'")


def test_init_on_a_file_without_gold_labels_says_what_calibration_assumes(tmp_path):
    """Without a gold sample calibration fits the teachers to equal label shares, which on a pool 90% one label
    made 17 points fewer labels right than no calibration (benchmarks/prior_without_gold.py); nothing said so."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "text": f"review {i}"}) + "\n" for i in range(40)))
    proc = cli("init", data, "--labels", "ham,spam", "--task", "Spam?", "--out", tmp_path / "c.toml")
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stdout.split())
    assert "no gold labels, so calibration takes every label as equally common" in said and "calibrate_prior" in said
    gold = tmp_path / "g.jsonl"
    gold.write_text("".join(json.dumps({"id": str(i), "text": f"review {i}", "label": "ham" if i % 2 else "spam"}) + "\n"
                            for i in range(40)))
    assert "no gold labels" not in cli("init", gold, "--task", "Spam?", "--out", tmp_path / "g.toml").stdout


@pytest.mark.parametrize("example", sorted(p.parent.name for p in (ROOT / "examples").glob("*/campaign.toml")))
def test_every_example_campaign_opens_as_run_opens_it(example, monkeypatch):
    """The example campaigns are what users copy: each is read and built as `run` reads and builds it (the API
    one with keys in the environment, its Label Studio server not needed to build)."""
    from distilloop.loop.config import load_config
    from distilloop.loop.parts import build_parts

    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LABEL_STUDIO_API_KEY"):
        monkeypatch.setenv(var, "sk-example-test-key-0123456789")
    cfg = load_config(ROOT / "examples" / example / "campaign.toml")
    assert cfg.data_path.exists(), cfg.data_path
    parts = build_parts(cfg)
    assert parts.teachers and all(t.name in (cfg.routing.cascade or [t.name]) for t in parts.teachers)
