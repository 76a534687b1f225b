"""A campaign that knows when it is failing (warnings in `run` and `status`, every student score beside its
baseline), and a pilot before the money whose answers the campaign reuses."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys

import pytest

from distilloop.core.types import Spend
from tests.conftest import FIXTURES, campaign_toml


def cli(*args):
    return subprocess.run([sys.executable, "-m", "distilloop.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def replay_teachers(tmp_path, rows, names):
    """`[[teachers]]` tables of replay teachers ``names``, answering from the recorded ``rows`` written to a file."""
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "m"\npath = "{rec}"\nsource = "{t}"\n'
                   for t in names)


def stuck_campaign(tmp_path):
    """Teacher 'a' as recorded; teacher 'stuck' answers "positive" to everything."""
    rows = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    out = [r for r in rows if r["teacher"] == "a"]
    out += [{**r, "teacher": "stuck", "raw": json.dumps({"rationale": "ok", "label": "positive"})}
            for r in rows if r["teacher"] == "a"]
    teachers = replay_teachers(tmp_path, out, ("a", "stuck"))
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name="stuck", rounds="max_rounds = 2\ninitial_size = 30\nbatch_size = 30",
                                  extra=teachers + "[routing]\nmin_agreement = 0.5\n"))
    return path


def test_a_constant_teacher_is_called_out_in_run_and_status_and_scores_show_their_baseline(tmp_path):
    cfg = stuck_campaign(tmp_path)
    run = cli("run", cfg)
    assert run.returncode == 0, run.stderr
    said = " ".join(run.stderr.split())
    assert re.search(r"teacher stuck answered 'positive' to \d+ of \d+ items \(the gold labels are \d+% 'positive'\): it is "
                     r"hardly reading the input", said)
    table = run.stdout
    assert "baseline" in table and " on " in table
    status = cli("status", cfg)
    out = " ".join(status.stdout.split())
    assert "teacher stuck answered 'positive'" in out
    assert re.search(r"accuracy [\d.]+% on gold:test \(n=\d+, baseline [\d.]+%, 95% CI", out)
    assert re.search(r"stuck: balanced accuracy 0\.[0-9]+ \(chance 0\.50\)", out)
    st = json.loads(cli("status", cfg, "--json").stdout)
    assert any("teacher stuck" in w for w in st["warnings"])
    assert all(r["baseline"] is not None for r in st["rounds_table"])


def pilot_of(tmp_path, name, rounds, extra, n):
    """`distilloop pilot -n n` on a campaign of two replay teachers, a and b, on the tiny RT fixture."""
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "gpt-4o-mini"\n'
                       f'path = "{FIXTURES / "rt_tiny_replay.jsonl.gz"}"\nsource = "{t}"\n' for t in ("a", "b"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name=name, rounds=rounds, extra=teachers + extra))
    return cli("pilot", cfg, "-n", str(n))


def test_the_pilot_shows_each_teacher_and_the_campaign_reuses_its_answers(tmp_path):
    pilot = pilot_of(tmp_path, "pilot", "max_rounds = 2\ninitial_size = 20\nbatch_size = 10",
                     "[routing]\nmin_agreement = 0.75\n", 12)
    cfg = tmp_path / "c.toml"
    assert pilot.returncode == 0, pilot.stderr
    out = " ".join(pilot.stdout.split())
    for needed in ("Pilot of pilot", "accuracy (gold)", "tokens / item", "agreement a / b: Cohen's kappa",
                   "would go to review", "projected campaign:"):
        assert needed in out, needed
    import sqlite3

    db = tmp_path / "pilot.distilloop.db"
    con = sqlite3.connect(db)
    pilot_ids = json.loads(con.execute("select value from meta where key = 'pilot_ids'").fetchone()[0])
    paid_before = con.execute("select count(*) from teacher_calls where status = 'ok'").fetchone()[0]
    con.close()
    assert len(pilot_ids) == 12 and paid_before == 24
    assert cli("run", cfg).returncode == 0
    con = sqlite3.connect(db)
    first = [r[0] for r in con.execute("select example_id from selections where round = 1 order by rank")]
    twice = con.execute("select count(*) from (select teacher, example_id, count(*) n from teacher_calls where "
                        "status = 'ok' group by teacher, example_id having n > 1)").fetchone()[0]
    con.close()
    assert first[:12] == pilot_ids  # round 1 starts with the pilot's items, already paid
    assert twice == 0  # no answer bought twice
    # a pilot of a campaign whose rounds are run said "projected campaign: 0 items, 0 tokens, $0.0000"
    again = cli("pilot", cfg)
    assert again.returncode == 0, again.stderr
    assert "projected campaign: nothing left to label" in " ".join(again.stdout.split())


def test_the_advice_on_a_student_at_chance_depends_on_the_student():
    from distilloop.loop.config import Component
    from distilloop.loop.student_warnings import weak_student

    class Active:  # the one thing weak_student reads of a store: the active student's metrics
        def __init__(self, score):
            self.metrics = {"accuracy": score, "reference": "gold:dev",
                            "refs": {"gold:dev": {"accuracy": score, "baseline": 0.24, "n": 300}}}

        def active_student(self):
            return {"metrics": self.metrics, "n_train": self.n_train}

        n_train = 50

    tfidf = Component("tfidf_logreg", {}, "[student]")
    mpnet = Component("embedding_linear", {"model": "mpnet"}, "[student]")
    assert weak_student(Active(0.80), "accuracy", mpnet) == []
    [to_mpnet] = weak_student(Active(0.22), "accuracy", tfidf)
    assert 'model = "mpnet"' in to_mpnet and "no better than always answering the most common label" in to_mpnet
    [reads_text] = weak_student(Active(0.22), "accuracy", mpnet)
    assert 'model = "mpnet"' not in reads_text and '"encoder"' in reads_text and '"step_by_step"' in reads_text
    # a math campaign's generating student: "use embedding_linear" was advice its answers (numbers) refuse
    [generates] = weak_student(Active(0.01), "accuracy", Component("step_by_step", {}, "[student]"), n_classes=0)
    assert "embedding_linear" not in generates and "label more items" in generates and "train_layers" in generates
    assert "the most common answer" in generates
    few = Active(0.22)
    few.n_train = 40  # five classes, 8 labels each: too few to call the student weak
    assert weak_student(few, "accuracy", mpnet, n_classes=5) == [] and weak_student(few, "accuracy", mpnet) != []
    small = Active(0.22)
    small.metrics["refs"]["gold:dev"]["n"] = 12  # a 12-item reference cannot tell
    assert weak_student(small, "accuracy", mpnet) == []
    # 91% negative data: 40 labels holding 2 'positive' are what the student lacks, not a stronger model
    from distilloop.core.answers import LabelSet

    lopsided = Active(0.22)
    lopsided.labeled = lambda: [{"label": "negative"}] * 38 + [{"label": "positive"}] * 2
    space = LabelSet(("negative", "positive"))
    [rare] = weak_student(lopsided, "accuracy", mpnet, 2, space)
    assert "its 40 labels hold 2 'positive': label more items until every label has 10 or more" in rare
    assert '"encoder"' not in rare
    lopsided.labeled = lambda: [{"label": "negative"}] * 30 + [{"label": "positive"}] * 10
    assert '"encoder"' in weak_student(lopsided, "accuracy", mpnet, 2, space)[0]


def test_the_pilot_counts_items_not_calls_where_texts_repeat(tmp_path):
    rows = [json.loads(x) for x in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()]
    pool = [r for r in rows if r["split"] == "pool"][:8]
    dups = [{**r, "id": r["id"] + "-again"} for r in pool[:4]]  # the same texts under other ids
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pool + dups + [r for r in rows if r["split"] == "test"]))
    rec = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    rec += [{**r, "example_id": r["example_id"] + "-again"} for r in rec if r["example_id"] in {d["id"] for d in pool[:4]}]
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rec))
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "gpt-4o-mini"\npath = "{path}"\n'
                       f'source = "{t}"\n' for t in ("a", "b"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name="dups", data=data, extra=teachers + "[routing]\nmin_agreement = 0.75\n"))
    pilot = cli("pilot", cfg, "-n", "12", "--json")
    assert pilot.returncode == 0, pilot.stderr
    rep = json.loads(pilot.stdout)
    assert rep["n"] == 12 and [t["answered"] for t in rep["teachers"]] == [12, 12]
    assert all(t["judged"] == 12 and sum(t["labels"].values()) == 12 for t in rep["teachers"])
    import sqlite3

    con = sqlite3.connect(tmp_path / "dups.distilloop.db")
    paid = con.execute("select count(*) from teacher_calls where status = 'ok'").fetchone()[0]
    con.close()
    assert paid == 16  # 8 distinct texts, 2 teachers: a repeated text is asked once


def test_a_macro_f1_student_is_compared_with_the_majority_labels_macro_f1():
    """At 85/15 always answering the majority label is 85% accurate but has a macro-F1 of 0.46: a student at 0.81
    macro-F1 is well above it, and its scores are shown beside that baseline (the interval is the accuracy's)."""
    from distilloop.core.answers import LabelSet
    from distilloop.loop.config import Component
    from distilloop.loop.references import Reference, score
    from distilloop.loop.student_warnings import weak_student
    from distilloop.reports.table import describe_scores

    gold = ["pos"] * 102 + ["neg"] * 18
    ref = Reference("gold:dev", [str(i) for i in range(120)], gold)
    pred = ["pos"] * 97 + ["neg"] * 5 + ["neg"] * 12 + ["pos"] * 6
    sc = score(pred, ref, LabelSet(("neg", "pos")))
    assert sc["baseline"] == pytest.approx(0.85) and sc["baseline_macro_f1"] == pytest.approx(0.4595, abs=1e-3)
    assert sc["macro_f1"] > 0.75

    class Active:
        def active_student(self):
            return {"metrics": {**sc, "reference": "gold:dev", "refs": {"gold:dev": sc}}, "n_train": 100}

    mpnet = Component("embedding_linear", {"model": "mpnet"}, "[student]")
    assert weak_student(Active(), "macro_f1", mpnet) == []
    text = describe_scores({"reference": "gold:dev", "refs": {"gold:dev": sc}}, "macro_f1")
    assert f"macro_f1 {100 * sc['macro_f1']:.1f}% on gold:dev (n=120, baseline 45.9%; accuracy 90.8%, 95% CI" in text


def test_a_teacher_that_answers_nothing_is_called_out_with_what_failed_and_how_to_ask_again(tmp_path):
    """A teacher whose server is down (a closed port on loopback) fails every question of the round: `status` says
    which teacher, how many questions, the last error, and the relabel that asks them again once it is fixed;
    after the fix that relabel pays only for the teacher that failed, and the warning is gone."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    replay = f'kind = "replay"\nmodel = "m"\npath = "{FIXTURES / "rt_tiny_replay.jsonl.gz"}"\n'
    dead = f'kind = "openai_compatible"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
    cfg = tmp_path / "c.toml"
    body = campaign_toml(name="dead", rounds="max_rounds = 1\ninitial_size = 12",
                         extra=f'[[teachers]]\nname = "a"\n{replay}source = "a"\n[[teachers]]\nname = "b"\nDEAD')
    cfg.write_text(body.replace("DEAD", dead))
    assert cli("run", cfg).returncode == 0
    out = " ".join(cli("status", cfg).stdout.split())
    said = re.search(r"teacher b answered none of its (\d+) question\(s\) in round 1 \((\d+) failed call\(s\), the "
                     r"last: cannot reach [^)]*\): those items were decided on the other teachers' answers", out)
    assert said and int(said[1]) == 12 and int(said[2]) >= 12
    assert "`distilloop relabel --round N` (N = 1)" in out
    assert any("teacher b answered none" in w for w in json.loads(cli("status", cfg, "--json").stdout)["warnings"])
    assert "warning: teacher b answered none" in " ".join(cli("report", cfg).stdout.split())  # the report says it
    assert any("teacher b answered none" in w for w in json.loads(cli("report", cfg, "--json").stdout)["warnings"])
    assert cli("report", cfg, "--html", tmp_path / "r.html").returncode == 0
    assert re.search(r'<ul id="warnings" class="warn"><li>teacher b answered none', (tmp_path / "r.html").read_text())
    cfg.write_text(body.replace("DEAD", f'{replay}source = "b"\n'))  # fixed
    relabel = cli("relabel", cfg, "--round", "1", "--json")
    assert relabel.returncode == 0, relabel.stderr
    result = json.loads(relabel.stdout)
    assert (result["paid_calls"], result["reused"]) == (12, 12)  # b's twelve answers; a's reused
    out = " ".join(cli("status", cfg).stdout.split())
    assert "answered none" not in out


def test_the_pilot_shows_a_teacher_that_fails_and_why(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name="pilot-dead", extra=(
        f'[[teachers]]\nname = "a"\nkind = "replay"\nmodel = "m"\npath = "{FIXTURES / "rt_tiny_replay.jsonl.gz"}"\n'
        f'source = "a"\n[[teachers]]\nname = "b"\nkind = "openai_compatible"\nmodel = "m"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\n')))
    out = cli("pilot", cfg, "-n", "6")
    assert out.returncode == 0, out.stderr
    said = " ".join(out.stdout.split())
    assert re.search(r"│ b +│ +0 │ +0 │ +6 │", out.stdout)  # answered, invalid, failed
    assert "warning: teacher b gave no answer to 6 of the 6 items it was asked about; the last error: cannot reach" \
        in said
    rep = json.loads(cli("pilot", cfg, "-n", "6", "--json").stdout)
    by = {t["teacher"]: t for t in rep["teachers"]}
    assert (by["a"]["answered"], by["a"]["failed"]) == (6, 0)
    assert by["b"]["failed"] == 6 and "cannot reach" in by["b"]["error"]
    # with no teacher answering, the projection said "100 items, 0 tokens, $0.0000" (a free campaign) and exit 0
    cfg.write_text(campaign_toml(name="pilot-dead-all", extra=(
        f'[[teachers]]\nname = "b"\nkind = "openai_compatible"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\n')))
    out = cli("pilot", cfg, "-n", "6")
    said = " ".join(out.stdout.split())
    assert out.returncode == 1 and "projected campaign: none: no teacher answered" in said, (out.stdout, out.stderr)
    assert "0 tokens, $0.0000, about" not in said


def test_with_calibration_a_lean_is_not_called_constant_but_a_constant_teacher_still_is(tmp_path):
    """'lean' answers "positive" to everything, but its distribution follows the input (0.95 on positive items,
    0.6 on negative ones): batch calibration turns its votes into labels that vary, so it is not called out;
    'stuck' gives the same distribution to every item, and its calibrated votes are one label still."""
    gold = {r["id"]: r["label"] for r in map(json.loads, (FIXTURES / "rt_tiny.jsonl").read_text().splitlines())}
    rows = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    out = [r for r in rows if r["teacher"] == "a"]
    for r in (r for r in rows if r["teacher"] == "a"):
        p = 0.95 if gold.get(r["example_id"]) == "positive" else 0.6
        raw = json.dumps({"rationale": "ok", "label": "positive"})
        out.append({**r, "teacher": "lean", "raw": raw, "distribution": {"positive": p, "negative": 1 - p}})
        out.append({**r, "teacher": "stuck", "raw": raw, "distribution": {"positive": 0.9, "negative": 0.1}})
    teachers = replay_teachers(tmp_path, out, ("a", "lean", "stuck"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name="lean", rounds="max_rounds = 1\ninitial_size = 40", extra=teachers + (
        '[routing]\nmin_agreement = 0.5\n[aggregation]\nmethod = "confidence_weighted"\ncalibrate = "batch"\n')))
    assert cli("run", cfg).returncode == 0
    warnings = json.loads(cli("status", cfg, "--json").stdout)["warnings"]
    said = [w for w in warnings if "hardly reading the input" in w]
    assert len(said) == 1 and said[0].startswith("teacher stuck answered")
    assert "(its calibrated votes)" in said[0]


def test_a_teacher_on_lopsided_data_is_not_called_constant_where_the_gold_labels_are_as_lopsided():
    """A sentiment set that is 91% negative: the local 1.5B teacher answered 'negative' to 95 of 100 items, which is
    what a teacher reading the input says there, and run warned at every round that it was hardly reading it. The
    data's own gold shares decide now; without gold, or on balanced gold, the share alone still does."""
    from distilloop.core.answers import LabelSet
    from distilloop.loop.diagnostics import class_shares, constant_teachers, one_label

    lopsided = {"negative": 0.91, "positive": 0.09}
    assert one_label({"negative": 95, "positive": 5}, lopsided) is None
    assert one_label({"negative": 38, "positive": 2}, lopsided) is None
    assert one_label({"negative": 100}, {"negative": 0.99, "positive": 0.01}) is None
    balanced = {"negative": 0.5, "positive": 0.5}
    assert one_label({"negative": 95, "positive": 5}, balanced) == ("negative", 95, 100)
    assert one_label({"negative": 95, "positive": 5}, None) == ("negative", 95, 100)
    # the lopsided data's minority label given to everything is not explained by it
    assert one_label({"positive": 100}, lopsided) == ("positive", 100, 100)
    assert one_label({"negative": 100}, lopsided) == ("negative", 100, 100)  # 9% positive: 0 of 100 is too few
    assert one_label({"negative": 90, "positive": 10}, balanced) is None  # under 95%: never
    assert one_label({"negative": 19}, None) is None  # too few answers to judge

    class Stats:
        def __init__(self, teacher, counts):
            self.teacher, self.label_counts = teacher, counts

    class Store:
        def __init__(self, gold):
            self.gold = gold

        def gold_labels(self):
            return {f"g{i}": g for i, g in enumerate(self.gold)}

        def teacher_stats(self):
            return [Stats("qwen", {"negative": 95, "positive": 5})]

    space = LabelSet(("negative", "positive"))
    assert class_shares(Store(["negative"] * 91 + ["positive"] * 9 + ["other"] * 50), space) == lopsided
    assert constant_teachers(Store(["negative"] * 109 + ["positive"] * 11), space) == []
    [said] = constant_teachers(Store(["negative", "positive"] * 60), space)
    assert said.startswith("teacher qwen answered 'negative' to 95 of 100 items (the gold labels are 50% 'negative')")
    assert constant_teachers(Store(["negative"] * 19), space)  # under 20 gold labels: the share alone decides


def test_macro_f1_decisions_on_a_handful_of_a_rare_label_are_called_out():
    """A 91%-negative file: 11 positive rows among 120 dev rows. The dev macro-F1 rose round by round (56% to 69%)
    and promoted while the test's fell (68% to 60%), and nothing said why it might not hold."""
    from distilloop.core.answers import LabelSet
    from distilloop.loop.student_warnings import rare_in_reference

    class Store:
        def __init__(self, dev, reference="gold:dev"):
            self.dev, self.reference = dev, reference

        def active_student(self):
            return {"metrics": {"reference": self.reference}}

        def gold_labels(self, split=None):
            assert split == "dev"
            return {f"d{i}": g for i, g in enumerate(self.dev)}

    space = LabelSet(("negative", "positive"))
    lopsided = ["negative"] * 109 + ["positive"] * 11
    [said] = rare_in_reference(Store(lopsided), "macro_f1", space)
    assert "macro-F1 over gold:dev, which holds 11 row(s) of 'positive' among 120" in said
    assert "Give it 20 or more" in said and 'split = "dev"' in said
    assert rare_in_reference(Store(lopsided), "accuracy", space) == []  # accuracy: the rare label weighs little
    assert rare_in_reference(Store(["negative"] * 100 + ["positive"] * 20), "macro_f1", space) == []
    assert rare_in_reference(Store(lopsided[:25]), "macro_f1", space) == []  # under 30 rows: small_reference says it
    assert rare_in_reference(Store(lopsided, "teachers"), "macro_f1", space) == []  # no gold split to count
    # twenty balanced intents of 10 dev rows each average out; one of them with 2 rows does not
    many = LabelSet(tuple(f"i{k:02d}" for k in range(20)))
    even = [f"i{k:02d}" for k in range(20) for _ in range(10)]
    assert rare_in_reference(Store(even), "macro_f1", many) == []
    assert "2 row(s) of 'i00'" in rare_in_reference(Store(even[8:]), "macro_f1", many)[0]


def test_items_the_auto_reviewer_cannot_decide_are_said_to_wait(tmp_path):
    """Two teachers that disagree on every item, majority votes, no confidences: every split is even, the auto
    reviewer has no label to accept, and `status` says which items wait and what decides them."""
    rows = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    out = []
    for r in (r for r in rows if r["teacher"] == "a"):
        label = json.loads(r["raw"])["label"]
        other = "negative" if label == "positive" else "positive"
        out += [r, {**r, "teacher": "contrary", "raw": json.dumps({"rationale": "ok", "label": other})}]
    teachers = replay_teachers(tmp_path, out, ("a", "contrary"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name="ties", rounds="max_rounds = 1\ninitial_size = 12", extra=teachers + (
        '[routing]\nmin_agreement = 0.75\n[aggregation]\nmethod = "majority"\n[review]\nkind = "auto"\n')))
    assert cli("run", cfg).returncode == 0
    warnings = json.loads(cli("status", cfg, "--json").stdout)["warnings"]
    said = [w for w in warnings if "cannot give" in w]
    assert len(said) == 1 and said[0].startswith('12 item(s) wait for a review that [review] kind = "auto" cannot give')
    assert "[review] kind = \"label_studio\" the next `run` (or `distilloop review push`) sends them" in said[0]


def test_decisions_on_a_handful_of_reference_rows_are_called_out(tmp_path):
    """A 90-row file with gold on half its rows and init's 10% dev split leaves 4 dev rows: every promotion and
    choice of C was a coin flip (a round promoted at 37.5% test accuracy after one at 62.5%), and nothing said so."""
    from distilloop.loop.student_warnings import MIN_DECISION_ROWS, small_reference

    class Store:
        def __init__(self, n, ref="gold:dev"):
            self.metrics = {"reference": ref, "refs": {ref: {"accuracy": 0.5, "n": n, "ci_low": 0.15,
                                                             "ci_high": 0.85}}}

        def active_student(self):
            return {"metrics": self.metrics}

    [said] = small_reference(Store(4), "accuracy")
    assert "on gold:dev, which has 4 row(s) (the active student's accuracy there: 95% interval 15%-85%)" in said
    assert "dev_fraction" in said and "heldout_size" in said
    assert small_reference(Store(MIN_DECISION_ROWS), "accuracy") == []
    assert small_reference(Store(0), "accuracy") == []  # nothing scored yet: nothing to say
    assert "95% interval" not in small_reference(Store(12), "macro_f1")[0]


def test_the_pilot_projection_counts_the_held_out_set_the_teachers_label_first(tmp_path):
    pilot = pilot_of(tmp_path, "held", "max_rounds = 2\ninitial_size = 10\nbatch_size = 10",
                     '[evaluation]\nreference = "teachers"\nheldout_size = 12\n', 6)
    assert pilot.returncode == 0, pilot.stderr
    out = " ".join(pilot.stdout.split())
    m = re.search(r"projected campaign: 20 items and 12 held-out items the teachers label first \(no gold dev or "
                  r"test rows to choose the student on\), ([\d,]+) tokens", out)
    assert m, out
    per_item = re.search(r"pilot: ([\d,]+) tokens", out)
    assert int(m.group(1).replace(",", "")) == pytest.approx(int(per_item.group(1).replace(",", "")) / 6 * 32, rel=0.02)


def test_the_pilot_lists_a_teachers_commonest_labels_and_counts_the_rest():
    """A 77-intent pilot listed every label a teacher gave in one table cell; the 8 commonest are named."""
    from distilloop.loop.pilot import describe_counts

    given = {f"intent_{i:02d}": 20 - i for i in range(12)}
    text = describe_counts(given)
    assert text.startswith("intent_00 11%, intent_01 11%, intent_02 10%") and "intent_08" not in text
    assert text.endswith("intent_07 7%, 4 others 24%")  # 12 + 11 + 10 + 9 = 42 of 174
    assert describe_counts({"a": 3, "b": 1}) == "a 75%, b 25%" and describe_counts({}) == "-"
    # class codes (AG News' 0-3) read as arithmetic ("1 40%, 0 27%"): quoted
    assert describe_counts({"1": 2, "0": 1, "-1": 1}) == "'1' 50%, '0' 25%, '-1' 25%"


def test_a_teacher_whose_confidence_the_calibration_dilutes_is_named():
    """With many labels an API's answers leave most of them out, and the calibration gives those mass: a 12-intent
    teacher's confidence fell from 0.92 to 0.70, so the cascade asked its next teacher and review took items the
    teachers agreed on, with nothing said. Said once it is a fifth or more, where labels are left out."""
    from distilloop.core.answers import answer_space
    from distilloop.loop.diagnostics import diluted_confidence

    labels = [f"intent_{i}" for i in range(12)]
    space = answer_space("label", labels)

    class Store:
        def __init__(self, calibrated_conf, left_out):
            raw = {x: (0.92 if i == 0 else 0.02 if i < 5 else 0.0) for i, x in enumerate(labels)}
            if not left_out:
                raw = {x: (0.92 if i == 0 else 0.08 / 11) for i, x in enumerate(labels)}
            self.votes = {f"e{i}": [{"teacher": "gpt", "label": labels[0], "confidence": calibrated_conf,
                                     "distribution": raw, "calibrated_distribution": {labels[0]: calibrated_conf}}]
                          for i in range(30)}

        def all_votes(self):
            return self.votes

    [said] = diluted_confidence(Store(0.70, True), space)
    assert said.startswith("teacher gpt's answers leave out 7 of 12 labels on average") and "0.92 to 0.70" in said
    assert 'calibrate = "none"' in said
    assert diluted_confidence(Store(0.85, True), space) == []  # lowered less than a fifth
    assert diluted_confidence(Store(0.50, False), space) == []  # a full distribution: the calibration's own say


def test_a_test_split_without_gold_is_said_where_the_dev_split_has_some():
    """GLUE's and the hub's test splits have no labels (-1): the student was reported on the dev split that also
    chose it, an optimistic figure, without a word. Said now; a campaign with no gold anywhere (the usual case)
    is not told to hold any out."""
    from distilloop.loop.student_warnings import test_without_gold

    class Store:
        def __init__(self, splits, gold):
            self.splits, self.gold = splits, gold

        def active_student(self):
            return {"metrics": {"refs": {"gold:dev": {}}}}

        def split_counts(self):
            return self.splits

        def gold_counts(self):
            return self.gold

    [said] = test_without_gold(Store({"pool": 300, "dev": 60, "test": 100}, {"pool": 300, "dev": 60, "test": 0}))
    assert said.startswith("the test split's 100 row(s) have no gold label") and "optimistic" in said
    [none] = test_without_gold(Store({"pool": 300, "dev": 60, "test": 0}, {"pool": 300, "dev": 60, "test": 0}))
    assert none.startswith("no row is in the test split")
    assert test_without_gold(Store({"pool": 300, "dev": 60, "test": 100}, {"pool": 0, "dev": 60, "test": 5})) == []
    assert test_without_gold(Store({"pool": 300, "dev": 0, "test": 100}, {"pool": 0, "dev": 0, "test": 0})) == []


def test_labels_that_gold_contradicts_are_called_out_with_the_commonest_confusion():
    """Teachers can agree with each other and still read the labels otherwise than the data (codes with 0 the
    positive class, star ratings): the label-accuracy column showed 17%, and no warning said what it means."""
    from distilloop.core.answers import LabelSet, OpenNumber
    from distilloop.loop.diagnostics import labels_against_gold

    class Store:
        def __init__(self, pairs):
            self.pairs = pairs

        def teacher_labels_with_gold(self):
            return self.pairs

    space = LabelSet(("0", "1"))
    swapped = [("1", "0")] * 18 + [("0", "1")] * 12 + [("0", "0")] * 3 + [("1", "1")] * 2
    [said] = labels_against_gold(Store(swapped), space)
    assert "no better than chance" in said and "over 35 labeled items with gold" in said
    assert "most often '1' where the gold says '0', 18 times" in said and "[campaign] task" in said
    right = [("1", "1")] * 15 + [("0", "0")] * 15 + [("1", "0")] * 5
    assert labels_against_gold(Store(right), space) == []
    # too few items, or a gold of (nearly) one label (every labeler's kappa is then about 0): not judged
    assert labels_against_gold(Store(swapped[:19]), space) == []
    assert labels_against_gold(Store([("1", "1")] * 30 + [("0", "1")] * 3 + [("1", "0")] * 4), space) == []
    assert labels_against_gold(Store(swapped), OpenNumber()) == []  # numbers: no label set


def one_round(tmp_path, name, rows, teachers, n):
    """`distilloop run` of one round of ``n`` items by replay teachers answering ``rows``: the campaign file and what
    the run said on stderr (whitespace joined)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name=name, rounds=f"max_rounds = 1\ninitial_size = {n}",
                                 extra=replay_teachers(tmp_path, rows, teachers)))
    run = cli("run", cfg)
    assert run.returncode == 0, run.stderr
    return cfg, " ".join(run.stderr.split())


def test_a_campaign_whose_teachers_swap_the_labels_is_warned_in_run_and_status(tmp_path):
    rows = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    flip = {"positive": "negative", "negative": "positive"}
    out = []
    for r in rows:
        raw = json.loads(r["raw"])
        out.append({**r, "raw": json.dumps({**raw, "label": flip[raw["label"]]})})
    cfg, said = one_round(tmp_path, "swapped", out, ("a", "b"), 40)
    assert re.search(r"the teachers' labels agree with the data's gold labels no better than chance \(Cohen's kappa "
                     r"-0\.\d\d, \d+% the same over \d+ labeled items with gold", said), said
    assert "teachers agree no better than chance" not in said  # they agree with each other
    assert any("gold labels no better than chance" in w for w in json.loads(cli("status", cfg, "--json").stdout)["warnings"])


def test_a_teacher_whose_every_answer_is_outside_the_label_set_is_called_out(tmp_path):
    """A teacher answering "very positive" to every item: every call succeeded and was paid, every answer was
    invalid, and `status` said "calls: ok: 120" with no word of it (the dead-server warning counted failed calls
    only)."""
    rows = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    out = [r for r in rows if r["teacher"] == "a"]
    out += [{**r, "teacher": "odd", "raw": json.dumps({"rationale": "ok", "label": "very positive"})}
            for r in rows if r["teacher"] == "a"]
    _, said = one_round(tmp_path, "odd", out, ("a", "odd"), 30)
    assert re.search(r"teacher odd gave no usable answer to its 30 question\(s\) in round 1 \(30 invalid answer\(s\), "
                     r"paid for; the last: label 'very positive' is not in the label set", said), said
    assert "teacher a gave no usable answer" not in said


def test_the_pilot_says_why_a_teachers_answers_were_invalid(tmp_path, monkeypatch):
    """A reasoning model whose every answer was cut at max_tokens showed "invalid 6" in the pilot's table and
    nothing about why; the pilot now warns with the last invalid answer's reason."""
    from distilloop.loop.campaign import Campaign
    from distilloop.loop.config import load_config
    from distilloop.loop.pilot import run_pilot
    from distilloop.testing.fake_api import FakeLLMAPI
    from tests.unit.annotators.remote_helpers import KEY, openai_teacher

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name="pilot-cut", extra=(
        '[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "http://fake.test/v1"\n'
        "max_tokens = 64\n")))
    api = FakeLLMAPI(api_key=KEY)
    api.faults = ["cut"] * 6
    c = Campaign.open(load_config(cfg), teachers=[openai_teacher(api, name="gpt", structured="json_schema",
                                                                 max_tokens=64)])
    try:
        [p] = run_pilot(c.env, 6).teachers
    finally:
        c.close()
    assert (p.answered, p.invalid) == (6, 6)
    assert "the answer was cut at max_tokens = 64: raise this teacher's max_tokens" in (p.invalid_error or "")


def test_the_pilot_says_when_the_budget_had_no_room_for_a_teachers_calls(tmp_path, monkeypatch):
    """A teacher whose calls the budget refused showed "failed 6" and a warning with no reason (no call failed,
    so there was no last error); the warning now says the budget had no room for them."""
    from distilloop.loop.campaign import Campaign
    from distilloop.loop.config import load_config
    from distilloop.loop.pilot import run_pilot
    from distilloop.testing.fake_api import FakeLLMAPI
    from tests.unit.annotators.remote_helpers import KEY, openai_teacher

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(name="pilot-budget", budget="max_tokens_out = 400", extra=(
        f'[[teachers]]\nname = "a"\nkind = "replay"\nmodel = "m"\npath = "{FIXTURES / "rt_tiny_replay.jsonl.gz"}"\n'
        'source = "a"\n[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\n'
        'base_url = "http://fake.test/v1"\nmax_tokens = 600\n')))
    api = FakeLLMAPI(api_key=KEY)
    c = Campaign.open(load_config(cfg))
    gpt = openai_teacher(api, name="gpt", structured="json_schema", max_tokens=600)
    c.close()
    c = Campaign.open(load_config(cfg), teachers=[*(t for t in c.parts.teachers if t.name == "a"), gpt])
    try:
        by = {p.teacher: p for p in run_pilot(c.env, 6).teachers}
    finally:
        c.close()
    assert (by["a"].answered, by["gpt"].answered, by["gpt"].failed) == (6, 0, 6) and api.bills == []
    assert by["gpt"].error.startswith("the budget had no room for 6 of its calls")


def test_the_pilot_says_what_each_teacher_adds_to_the_labels(tmp_path):
    """Each teacher's answers left out in turn: a teacher that answers one label to everything adds nothing to the
    labels; a note says leaving it out saves its tokens once enough gold items judge it (the demo's 0.5B teacher
    added nothing on 30 items and a point on 100)."""
    (tmp_path / "small").mkdir()
    small = " ".join(cli("pilot", stuck_campaign(tmp_path / "small"), "-n", "10").stdout.split())
    assert "without stuck" in small and "adds nothing" not in small  # on a handful of gold items one item decides
    cfg = stuck_campaign(tmp_path)
    rep = json.loads(cli("pilot", cfg, "-n", "120", "--json").stdout)
    without = rep["without"]
    assert set(without) == {"a", "stuck"}
    assert without["stuck"] > 0.85 and rep["ensemble_accuracy"] > without["a"]  # 'a' alone: as recorded
    assert without["a"] == pytest.approx(0.5, abs=0.2)  # 'stuck' alone: the share of positive items
    out = " ".join(cli("pilot", cfg, "-n", "120").stdout.split())
    assert (f"without a {100 * without['a']:.1f}% right, without stuck {100 * without['stuck']:.1f}% right") in out
    assert rep["judged"] < 100 and "adds nothing" not in out  # 120 items, ties left out: too few judged to say it
    # its votes as the campaign counts them (calibrated) are still one label: it is said to ignore its input
    assert "warning: teacher stuck answered 'positive' to 120 of 120 items (its calibrated votes)" in out
    # with a cascade, the first tier's only teacher is not left out: the next tier answered only what it was unsure of
    cfg.write_text(cfg.read_text().replace("[routing]\n", '[routing]\ncascade = ["a", "stuck"]\n'))
    assert set(json.loads(cli("pilot", cfg, "-n", "120", "--json").stdout)["without"]) == {"stuck"}


def test_a_teacher_is_said_to_add_nothing_only_on_enough_gold_items():
    from distilloop.loop.pilot import MIN_JUDGED, PilotReport, TeacherPilot, spare_teachers

    def report(judged, without):
        return PilotReport(judged, [TeacherPilot("a", answered=judged), TeacherPilot("b", answered=judged)], {}, 0.2,
                           0.85, Spend(), 1.0, 0, Spend(), 0.0, 0.0, 0, judged, without)

    assert MIN_JUDGED == 100
    assert [p.teacher for p in spare_teachers(report(120, {"a": 0.70, "b": 0.85}))] == ["b"]  # as right without b
    assert [p.teacher for p in spare_teachers(report(120, {"a": 0.70, "b": 0.86}))] == ["b"]
    assert spare_teachers(report(120, {"a": 0.70, "b": 0.84})) == []  # b adds a point
    assert spare_teachers(report(30, {"a": 0.70, "b": 0.90})) == []  # 30 items: one item decides


def test_the_pilot_leaves_out_each_teacher_as_a_round_decides_without_it():
    """Left out: its votes dropped and the others aggregated over the teachers left; an item left without a label
    (the teacher left was not asked, or failed it) is not judged, as the whole ensemble's split items are not."""
    from types import SimpleNamespace

    from distilloop.annotators.aggregation import MajorityVote
    from distilloop.core.answers import answer_space
    from distilloop.core.types import Vote
    from distilloop.loop.pilot import _accuracy_without

    votes = {"x": [Vote("a", "pos", confidence=0.9), Vote("b", "neg", confidence=0.9)],
             "y": [Vote("a", "neg", confidence=0.9), Vote("b", "neg", confidence=0.9)],
             "z": [Vote("b", "pos", confidence=0.9)]}
    env = SimpleNamespace(parts=SimpleNamespace(cascade=None, teachers=[SimpleNamespace(name="a"), SimpleNamespace(name="b")],
                                                aggregator=MajorityVote(), space=answer_space("label", ["neg", "pos"])),
                          store=None)
    ann = SimpleNamespace(votes=votes, tiers_asked={})
    gold = {"x": "pos", "y": "neg", "z": "neg"}
    assert _accuracy_without(env, ann, "b", gold) == 1.0  # a alone: x, y right; z: a failed it, no label
    assert _accuracy_without(env, ann, "a", gold) == pytest.approx(1 / 3)  # b alone: x, z wrong
