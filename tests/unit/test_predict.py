"""`distilloop predict`: the active or a named student labels a file, streaming in batches with constant memory
and a progress bar; its labels are the student's own `predict` on the same texts."""

import gc
import io
import json
import tracemalloc

import pytest
from rich.console import Console

from distilloop.data import DataSpec
from distilloop.loop.predict import Served, predict_file
from distilloop.loop.progress import Progress
from distilloop.students.base import Student
from tests.conftest import replay_config, sqlite_count
from tests.unit.loop.living_helpers import cli, fixture_rows, one_line_error


def texts_file(path, n, csv=False):
    pool, test = fixture_rows()
    texts = [r["text"] for r in pool + test]
    if csv:
        import csv as _csv

        with open(path, "w", newline="") as f:
            w = _csv.writer(f)
            w.writerow(["id", "text"])
            for i in range(n):
                w.writerow([f"q{i}", f"{texts[i % len(texts)]} #{i}"])
    else:
        path.write_text("".join(json.dumps({"id": f"q{i}", "text": f"{texts[i % len(texts)]} #{i}"}) + "\n"
                                for i in range(n)))
    return path


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict")
    cfg = replay_config(tmp, rounds="max_rounds = 2\ninitial_size = 30\nbatch_size = 30\nconcurrency = 4")
    assert cli("run", "-q", cfg).returncode == 0
    return cfg


def students(cfg):
    import sqlite3

    con = sqlite3.connect(cfg.parent / "t.distilloop.db")
    try:
        return con.execute("select version, path, active from students order by round").fetchall()
    finally:
        con.close()


def test_predict_labels_10000_rows_as_the_students_own_predict_with_a_progress_bar(campaign, tmp_path):
    data = texts_file(tmp_path / "incoming.jsonl", 10_000)
    out = tmp_path / "labeled.jsonl"
    proc = cli("predict", campaign, data, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "10000/10000" in proc.stderr and "predicting with" in proc.stderr  # the progress bar
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    version, path, _ = next(s for s in students(campaign) if s[2])
    student = Student.load(campaign.parent / path)
    texts = [json.loads(x)["text"] for x in data.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(10_000)]
    assert [r["label"] for r in rows] == student.predict(texts)
    assert {r["student"] for r in rows} == {version}
    first = rows[0]["distribution"]
    assert set(first) == {"negative", "positive"} and abs(sum(first.values()) - 1) < 1e-5


def test_a_named_version_a_csv_file_and_the_default_output(campaign, tmp_path):
    older, path, active = students(campaign)[0]
    assert not active
    data = texts_file(tmp_path / "incoming.csv", 50, csv=True)
    proc = cli("predict", campaign, data, "--version", older, "-q")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "incoming.predictions.jsonl").read_text().splitlines()]
    student = Student.load(campaign.parent / path)
    assert [r["label"] for r in rows] == student.predict([f"{r}" for r in _csv_texts(data)])
    assert {r["student"] for r in rows} == {older}
    one_line_error(cli("predict", campaign, data, "--version", "nope"), "no student version 'nope'")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "body": "no text field"}\n')
    one_line_error(cli("predict", campaign, bad, "-o", tmp_path / "never.jsonl"),
                   "row has no 'text'.*as the campaign's data does")
    assert not (tmp_path / "never.jsonl").exists()
    assert sqlite_count(campaign.parent / "t.distilloop.db", "select count(*) from students") == 2


def _csv_texts(path):
    import csv

    with open(path, newline="") as f:
        return [r["text"] for r in csv.DictReader(f)]


class LengthStudent(Student):
    """A student whose cost is nothing but the stream around it: "positive" for long texts."""

    kind = "length"

    def _fit(self, texts, labels, **kw):
        pass

    def predict_proba(self, texts):
        import numpy as np

        p = np.array([min(1.0, len(t) / 200) for t in texts])
        return np.stack([1 - p, p], axis=1)

    def _save(self, path):
        pass

    def _load(self, path):
        pass


def test_memory_stays_constant_however_long_the_file(tmp_path):
    student = LengthStudent()
    student.classes_, student.version_ = ["negative", "positive"], "length-1"
    served = Served(student, "length-1")
    spec = DataSpec(("text",))

    def peak(n):
        data = texts_file(tmp_path / f"in{n}.jsonl", n)
        gc.collect()
        tracemalloc.start()
        predict_file(served, data, spec, tmp_path / f"out{n}.jsonl", batch_size=200)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(2_000), peak(20_000)
    # Keeping only the output lines of the 18,000 extra rows would cost over 2 MB; tracemalloc also sees what
    # other threads allocate meanwhile (a few hundred KB in a full CI run), hence the absolute margin.
    assert large < small + 1_000_000, (small, large)
    rows = (tmp_path / "out20000.jsonl").read_text().splitlines()
    assert len(rows) == 20_000 and json.loads(rows[-1])["id"] == "q19999"


def test_the_progress_bar_can_be_shown_in_process(campaign, tmp_path):
    _, path, _ = next(s for s in students(campaign) if s[2])
    buf = io.StringIO()
    progress = Progress(console=Console(file=buf, width=120, force_terminal=False))
    n = predict_file(Served(Student.load(campaign.parent / path), "v"), texts_file(tmp_path / "a.jsonl", 300),
                     DataSpec(("text",)), tmp_path / "b.jsonl", batch_size=64, progress=progress)
    assert n == 300 and "300/300" in buf.getvalue()


def test_no_output_replaces_a_file_the_campaign_or_the_command_reads(campaign, tmp_path):
    """`-o` on the file being labeled, or `--html`/`-o`/`--export` on the campaign's data file, campaign file or
    store replaced it (a user's `predict new.json -o new.json` lost the data): each is refused, exit 2, untouched."""
    from distilloop.loop.config import load_config

    config = load_config(campaign)
    data = texts_file(tmp_path / "incoming.jsonl", 5)
    before = {p: p.read_bytes() for p in (data, config.data_path, campaign, config.store_path)}
    for args, what in (
            (("predict", campaign, data, "-o", data), "is the file to label"),
            (("predict", campaign, data, "-o", config.data_path), "is the campaign's data file"),
            (("report", campaign, "--html", config.data_path), "is the campaign's data file"),
            (("export", campaign, "-o", campaign), "is the campaign file"),
            (("export", campaign, "--format", "parquet", "-o", config.store_path), "is the campaign's store"),
            (("students", campaign, "--export", config.data_path), "exists and is not an empty folder")):
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        one_line_error(proc, what)
    assert {p: p.read_bytes() for p in before} == before
    assert cli("predict", campaign, data, "-q").returncode == 0  # the default output is beside the input
    assert len((tmp_path / "incoming.predictions.jsonl").read_text().splitlines()) == 5


def test_a_file_whose_id_column_is_in_another_case_keeps_its_ids(campaign, tmp_path):
    """A file headed "ID,text" for a campaign of "id": its ids were ignored and the predictions came out row-2,
    row-3... (the user joins them back by id). Its own id column is read; a missing input field still is an error
    naming the column of another case."""
    cfg = campaign
    data = tmp_path / "caps.csv"
    data.write_text("ID,text\nq7,a fine film\nq9,an awful film\n")
    proc = cli("predict", cfg, data, "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == ["q7", "q9"]
    data.write_text("id,Text\nq7,a fine film\n")
    one_line_error(cli("predict", cfg, data, "-o", "-"), r"row has no 'text' \(an input field\) but has 'Text'")


def test_a_csv_output_name_gets_csv_from_predict_and_export(campaign, tmp_path):
    """`predict -o out.csv` and `export -o labels.csv` wrote JSON lines into a file named .csv (a spreadsheet
    shows one garbled column): both write CSV there, which reads back as the JSON would."""
    import csv

    data = texts_file(tmp_path / "incoming.jsonl", 20)
    assert cli("predict", campaign, data, "-o", tmp_path / "p.jsonl", "-q").returncode == 0
    assert cli("predict", campaign, data, "-o", tmp_path / "p.csv", "-q").returncode == 0
    want = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == ["id", "label", "student", "p(negative)", "p(positive)"]
    assert [(r["id"], r["label"], float(r["p(positive)"])) for r in got] == \
        [(r["id"], r["label"], r["distribution"]["positive"]) for r in want]
    assert cli("export", campaign, "-o", tmp_path / "labels.jsonl").returncode == 0
    proc = cli("export", campaign, "-o", tmp_path / "labels.csv", "--include-gold")
    assert proc.returncode == 0 and "wrote 60 labeled examples" in proc.stdout, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    with open(tmp_path / "labels.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:6] == ["id", "text", "label", "rationale", "gold", "source"]
    assert [(t["id"], t["text"], t["label"], t["source"], int(t["round"])) for t in table] == \
        [(r["id"], r["text"], r["label"], r["provenance"]["source"], r["provenance"]["round"]) for r in rows]
    assert [float(t["p(positive)"]) for t in table] == pytest.approx([r["soft_label"]["positive"] for r in rows])
    assert [json.loads(t["teachers"]) for t in table] == [r["provenance"]["teachers"] for r in rows]
    piped = cli("export", campaign, "--format", "csv", "-o", "-", "--include-gold")  # for a pipe
    assert piped.returncode == 0 and piped.stdout == (tmp_path / "labels.csv").read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*tmp"))


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text():
    """Texts, ids and rationales come from data files and teachers (not trusted): a CSV cell starting a formula
    (`=HYPERLINK(...)`, `@SUM`, `-1+cmd`) would run when the export is opened in a spreadsheet. It is written
    with a leading apostrophe (shown as text); plain numbers (a numeric answer's "-5") and JSON lines are left."""
    import csv
    import io

    from distilloop.loop.predict import row_writer
    from distilloop.storage.export import csv_row

    record = {"id": "=1+1", "text": '=HYPERLINK("http://x.example","click")', "label": "-5",
              "rationale": "@SUM(A1:A9)", "soft_label": None,
              "provenance": {"campaign": "c", "source": "teachers", "round": 1, "teachers": [], "reviews": []}}
    row = csv_row(record, [])
    assert (row["id"], row["text"], row["label"], row["rationale"], row["round"]) == \
        ("'=1+1", '\'=HYPERLINK("http://x.example","click")', "-5", "'@SUM(A1:A9)", 1)
    out = io.StringIO()
    write = row_writer(out, as_csv=True)
    write({"id": "-1+cmd", "label": "ok", "student": "s", "distribution": {"ok": 1.0}})
    assert list(csv.reader(io.StringIO(out.getvalue())))[1][:2] == ["'-1+cmd", "ok"]
    out = io.StringIO()
    row_writer(out, as_csv=False)({"id": "=1+1", "label": "ok"})
    assert json.loads(out.getvalue())["id"] == "=1+1"
