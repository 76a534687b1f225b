"""The self-contained HTML campaign report: every section with numbers that match the store, escaping of
untrusted text, no external resources, empty campaigns, atomic writes, the CLI, and a headless Chromium render."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from distilloop.cli import main
from distilloop.core.types import Example
from distilloop.errors import StudentError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.reports import html as html_report
from distilloop.reports.html import SECTIONS, render_html, write_html_report
from distilloop.storage.store import Store
from tests.conftest import replay_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Doc(HTMLParser):
    """Tables by id (rows of cell texts), section ids and image sources of an HTML document."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.sections: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id", ""))
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _int(cell: str) -> int:
    return int(cell.replace(",", ""))


def _usd(cell: str) -> float:
    return float(cell.lstrip("$"))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A finished three-round replay campaign (its store path and config path)."""
    tmp = tmp_path_factory.mktemp("report")
    config = load_config(replay_config(tmp))
    c = Campaign.open(config)
    c.run()
    c.close()
    return config.store_path, config.path


@pytest.fixture
def store(campaign):
    s = Store.open(campaign[0])
    yield s
    s.close()


@pytest.fixture
def store_copy(campaign, tmp_path):
    """A private copy of the campaign's folder (store and students), safe to tamper with."""
    src = Store.open(campaign[0])
    src.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    src.close()
    shutil.copytree(campaign[0].parent, tmp_path / "moved")
    s = Store.open(tmp_path / "moved" / campaign[0].name)
    yield s
    s.close()


def test_every_section_is_there_with_numbers_that_match_the_store(store):
    doc = _Doc(render_html(store))
    assert doc.sections == [sid for sid, _ in SECTIONS]
    # plots: learning curve, spend, confusion matrix, all inline PNGs
    assert len(doc.images) == 3 and all(src.startswith("data:image/png;base64,") for src in doc.images)

    spent = store.spent()
    for table in ("spend-table", "spend-teacher-table"):
        rows = doc.tables[table]
        total, body = rows[-1], rows[1:-1]
        assert total[0] == "total"
        assert (_int(total[-3]), _int(total[-2])) == (spent.tokens_in, spent.tokens_out)
        assert _usd(total[-1]) == pytest.approx(spent.usd, abs=1e-6)
        assert sum(_int(r[-3]) for r in body) == spent.tokens_in
        assert sum(_usd(r[-1]) for r in body) == pytest.approx(spent.usd, abs=1e-5)
    assert {r[0] for r in doc.tables["spend-teacher-table"][1:-1]} == {"a", "b", "c"}
    assert len(doc.tables["spend-table"]) - 2 == 3 * 3  # three rounds, three teachers

    curve = doc.tables["learning-curve-table"][1:]
    students = {s["round"]: s["metrics"] for s in store.students()}
    assert [_int(r[0]) for r in curve] == [1, 2, 3]
    for r in curve:  # accuracy and macro-F1 alike in percent (macro-F1 read 0.484 beside accuracy's 93.8%)
        assert float(r[6].rstrip("%")) == pytest.approx(100 * students[_int(r[0])]["accuracy"], abs=0.05)
        assert float(r[7].rstrip("%")) == pytest.approx(100 * students[_int(r[0])]["macro_f1"], abs=0.05)

    test_n = store.count("examples", "split = 'test' and gold is not null")
    confusion = doc.tables["confusion-table"]
    assert confusion[0] == ["gold \\ predicted", "negative", "positive"]
    assert sum(_int(c) for row in confusion[1:] for c in row[1:]) == test_n == 80

    agreement = doc.tables["agreement-table"][1:]
    assert sum(_int(r[1]) for r in agreement) == store.count("consensus")
    assert sum(_int(r[5]) for r in agreement) == store.count("consensus", "route = 'review'")
    # unanimous: every asked teacher gave the same valid label (the weighted agreement is below 1 even then)
    votes = [json.loads(v) for (v,) in store.db.execute("select votes from consensus").fetchall()]
    same = sum(1 for vs in votes if all(v["valid"] for v in vs) and len({v["label"] for v in vs}) == 1)
    assert 0 < same < len(votes)
    shown = sum(float(r[3].rstrip("%")) / 100 * _int(r[1]) for r in agreement)
    assert abs(shown - same) < 0.01 * len(votes) + 0.5

    reliability = {r[0]: r for r in doc.tables["reliability-table"][1:]}
    assert set(reliability) == {"a", "b", "c"}
    for name, row in reliability.items():
        calls = store.count("teacher_calls", "teacher = ?", [name])
        assert _int(row[1]) == calls
        ok = [c for c in store.calls(status="ok") if c.teacher == name and c.valid]
        gold = {e.id: e.gold for e in store.examples() if e.gold}
        judged = [c for c in ok if c.example_id in gold]
        assert _int(row[5]) == len(judged)
        acc = sum(c.label == gold[c.example_id] for c in judged) / len(judged)
        assert float(row[6].rstrip("%")) == pytest.approx(100 * acc, abs=0.05)

    review = doc.tables["review-table"]
    assert review[-1][0] == "total"
    assert _int(review[-1][1]) == store.count("review_queue")
    assert _int(review[-1][2]) == store.count("review_queue", "status = 'done'")

    budget = {r[0]: r for r in doc.tables["budget-table"][1:]}
    assert _int(budget["tokens in"][1]) == spent.tokens_in and budget["tokens in"][2] == "200,000"
    assert budget["USD"][2] == "$1.000000"

    summary = {r[0]: r[1] for r in doc.tables["summary-table"]}
    assert summary["stop reason"] == store.get_meta("stop_reason") == "max rounds reached (3)"


def test_hardest_items_show_every_vote_and_the_review(store):
    doc = _Doc(render_html(store, n_hardest=5))
    worst = min(r["agreement"] for r in store.db.query("select agreement from consensus"))
    hardest = [t for t in doc.tables if t.startswith("votes-")]
    assert len(hardest) == 5
    first = hardest[0].removeprefix("votes-")
    assert store.consensus(first)["agreement"] == worst
    votes = doc.tables[hardest[0]][1:]
    assert [v[0] for v in votes] == ["a", "b", "c"]
    assert votes[0][3] == f"synthetic rationale of a for {first}"
    html = render_html(store, n_hardest=5)
    for rv in store.reviews(first):
        assert f"Review</b> by {rv['reviewer']}" in html


def test_untrusted_text_is_escaped(store_copy):
    worst = store_copy.hardest_items(1)[0]
    store_copy.db["examples"].update(worst.example_id, {"fields": json.dumps(
        {"text": "nice <script>alert(1)</script> & more"})})
    votes = worst.votes
    votes[0]["rationale"] = '<img src=x onerror="alert(2)">'
    votes[1]["teacher"] = "<b>evil</b>"
    store_copy.db["consensus"].update(worst.example_id, {"votes": json.dumps(votes)})

    html = render_html(store_copy)
    assert "<script" not in html.lower()
    assert "nice &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in html
    assert sum(t == "img" for t in _Doc(html).tags) == 3  # only the plots, no injected image


def test_no_external_resources_and_no_scripts(store):
    html = render_html(store)
    assert not re.search(r"https?://", html), "the report must not reference anything on a network"
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert all(src.startswith("data:") for src in _Doc(html).images)


def test_the_estimated_reliability_table_is_shown(store_copy):
    store_copy.save_reliability([
        {"teacher": "a", "true_label": t, "given_label": g, "prob": p, "support": n}
        for t, g, p, n in [("negative", "negative", 0.91, 10.0), ("negative", "positive", 0.09, 10.0),
                           ("positive", "negative", 0.3, 4.0), ("positive", "positive", 0.7, 4.0)]],
        method="dawid_skene", n_items=14, n_known=2)
    html = render_html(store_copy)
    table = _Doc(html).tables["reliability-estimates"]
    assert table[0][:4] == ["teacher", "items", "balanced accuracy", "chance"]
    assert table[1] == ["a", "14", "0.805", "0.500", "negative 0.91 (n~10), positive 0.70 (n~4)"] and len(table) == 2
    assert "dawid_skene over 14 items answered by two or more teachers or reviewed, 2 human-reviewed" in html


def test_many_labels_show_each_teachers_lowest_rates_not_the_whole_matrix(store_copy):
    labels = [f"intent_{i:02d}" for i in range(30)]
    rows = [{"teacher": t, "true_label": a, "given_label": b, "prob": (0.2 + i / 100 if a == b else 0.01),
             "support": 3.0 if a == b else 0.0} for t in ("gpt", "claude") for i, a in enumerate(labels) for b in labels]
    store_copy.save_reliability(rows, method="dawid_skene", n_items=90, n_known=0)
    html = render_html(store_copy)
    table = _Doc(html).tables["reliability-estimates"]
    assert [r[0] for r in table[1:]] == ["claude", "gpt"]  # one row a teacher, not 900
    assert table[1][4].startswith("lowest 8 of 30: intent_00 0.20 (n~3), intent_01 0.21 (n~3)")
    assert "intent_08" not in table[1][4]
    assert "Two teachers and no review" in html


def test_many_labels_rate_only_the_classes_with_items_enough(store_copy):
    """77 intents on 60 items: two teachers right on every item read "balanced accuracy 0.45" and "lowest 8 of 77:
    intent_58 0.50 (n~1)...": each class's rate on its one item is mostly the prior. Classes on fewer than 3
    items are neither ranked nor averaged; where none has 3, nothing is."""
    labels = [f"intent_{i:02d}" for i in range(40)]

    def save(support):
        store_copy.save_reliability([
            {"teacher": "gpt", "true_label": a, "given_label": b, "prob": (0.95 if support(i) >= 3 else 0.5)
             if a == b else 0.0, "support": support(i) if a == b else 0.0}
            for i, a in enumerate(labels) for b in labels], method="dawid_skene", n_items=60, n_known=0)
        return _Doc(render_html(store_copy)).tables["reliability-estimates"][1]

    row = save(lambda i: 1.0 if i >= 10 else 5.0)  # 10 classes on 5 items, 30 on one
    assert row[2] == "0.950" and row[4].startswith("lowest 8 of the 10 classes on 3+ items: intent_00 0.95 (n~5)")
    assert row[4].endswith("; 30 on fewer")
    row = save(lambda i: 1.5)
    assert row[2] == "-" and row[4] == "not estimated yet (each of the 40 classes on fewer than 3 items: too few to rank)"


def test_reliability_resting_on_no_item_says_it_is_not_estimated(store_copy):
    store_copy.save_reliability([{"teacher": "a", "true_label": "negative", "given_label": "negative", "prob": 0.5,
                                  "support": 0.0}], method="dawid_skene", n_items=0, n_known=0)
    html = render_html(store_copy)
    assert "reliability-estimates" not in _Doc(html).tables
    assert "Not estimated yet (no item has answers of two teachers or a human review" in html


def test_a_student_that_cannot_be_reloaded_is_reported_not_raised(store):
    def broken(path):
        raise StudentError(f"{path} is not a saved distilloop student")

    html = render_html(store, student_loader=broken)
    doc = _Doc(html)
    assert "confusion-table" not in doc.tables
    assert "Could not reload the active student" in html and "confusion" in doc.sections


def test_an_empty_campaign_renders_every_section(tmp_path):
    store = Store.create(tmp_path / "empty.db", [Example("x1", {"text": "hi"}, "pool"),
                                                 Example("x2", {"text": "yo"}, "test", gold="pos")],
                         {"name": "empty", "labels": ["neg", "pos"]})
    try:
        html = render_html(store)
    finally:
        store.close()
    doc = _Doc(html)
    assert doc.sections == [sid for sid, _ in SECTIONS]
    assert doc.images == []
    assert "No rounds yet." in html and "Nothing spent yet." in html
    assert "No student has been trained yet." in html and "No items annotated yet." in html
    budget = {r[0]: r for r in doc.tables["budget-table"][1:]}
    assert budget["USD"][1:] == ["$0.000000", "no cap", "-"]


def test_written_atomically(store, tmp_path, monkeypatch):
    out = write_html_report(store, tmp_path / "r" / "report.html")
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert out.stat().st_mode & 0o777 == 0o644
    before = out.read_text()

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(html_report.os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_html_report(store, out)
    assert out.read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_cli_writes_the_default_file_next_to_the_store(campaign, tmp_path, capsys):
    store_path, config_path = campaign
    assert main(["report", str(config_path), "--html"]) == 0
    default = store_path.with_name("t.report.html")
    assert default.exists() and f"wrote the HTML report to {default}" in capsys.readouterr().out
    target = tmp_path / "mine.html"
    assert main(["report", str(config_path), "--html", str(target)]) == 0
    assert [s for s in _Doc(target.read_text()).sections] == [sid for sid, _ in SECTIONS]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); "
                                             "the headless render check needs it")
def test_renders_in_headless_chromium(store, tmp_path):
    from matplotlib import image

    report = write_html_report(store, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    profile.mkdir()
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,4000", report.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    px = image.imread(str(shot))
    assert px.shape[:2] == (4000, 1280)
    rgb = (px[..., :3] * 255).astype("uint8").reshape(-1, 3)
    non_white = (rgb < 240).any(axis=1).mean()
    colours = len({tuple(c) for c in rgb[::97]})
    assert non_white > 0.03, f"the page looks blank ({non_white:.1%} non-white pixels)"
    assert colours > 50, f"the page has too little variety to hold plots ({colours} colours)"


def test_what_was_paid_before_round_1_is_named_and_a_round_that_paid_nothing_is_kept(tmp_path, monkeypatch):
    """After a pilot, the spend chart's first bar was "0" and round 1 (on the pilot's answers, free) was left out:
    the first round seemed to be round 0. Round 0 is "before round 1" now, said in a note, and round 1 is there."""
    from tests.unit.loop.living_helpers import cli

    cfg = replay_config(tmp_path, rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 10")
    assert cli("pilot", cfg, "-n", "20", "-q").returncode == 0
    assert cli("run", cfg, "-q").returncode == 0
    shown = {}
    monkeypatch.setattr(html_report.plots, "spend", lambda table, teachers, **kw: shown.update(kw) or "")
    store = Store.open(load_config(cfg).store_path)
    try:
        assert 1 not in store.spend_by_round_and_teacher()  # the pilot's answers paid for round 1
        text = render_html(store)
    finally:
        store.close()
    assert shown["rounds"] == [0, 1, 2]
    assert {row[0] for row in _Doc(text).tables["spend-table"][1:-1]} == {"0 (before round 1)", "2"}
    assert "Round 0 is what was paid before round 1: a pilot's answers" in html.unescape(text)


def test_many_labels_show_the_most_frequent_confusions_not_every_cell(monkeypatch):
    """A 77-intent campaign's report held a 77 x 78 table (6,000 cells) under the matrix image: beyond 12 labels
    the table is the confusions that happen most, gold and predicted, with their counts."""
    from distilloop.core.answers import answer_space
    from distilloop.reports import html as html_module

    labels = [f"intent_{i:02d}" for i in range(20)]
    m = [[10 if i == j else 0 for j in range(20)] for i in range(20)]
    m[3][4], m[7][2], m[9][1] = 6, 2, 2
    monkeypatch.setattr(html_module, "confusion", lambda store, **kw: (m, "On the test split."))
    monkeypatch.setattr(html_module.plots, "confusion", lambda m, labels: "<img>")
    doc = _Doc(html_module._confusion(None, "test", answer_space("label", labels), None))
    assert "confusion-table" not in doc.tables
    assert doc.tables["confusion-pairs"] == [["gold", "predicted", "items"], ["intent_03", "intent_04", "6"],
                                             ["intent_07", "intent_02", "2"], ["intent_09", "intent_01", "2"]]


def test_the_token_axis_says_counts_as_ticks_do():
    """The learning curve's token axis printed every 2,000 tokens in full ("10000 12000 14000...") and the labels
    ran together under a 5-inch axis: at most 6 ticks now, written 4k, 12.5k, 1.2M."""
    from distilloop.reports.plots import compact

    assert [compact(v) for v in (0, 950, 4000, 12500, 1.2e6, 3e9)] == ["0", "950", "4k", "12.5k", "1.2M", "3G"]


def test_names_the_plots_font_cannot_draw_are_numbered_and_said(recwarn):
    """Labels in Chinese (or with an emoji) were drawn as boxes in the confusion matrix, and matplotlib printed a
    'Glyph ... missing from font(s)' warning per character into `report --html`'s output: the plot numbers them,
    a note under it says which is which, and nothing is printed."""
    from distilloop.reports.plots import confusion, drawn, spend

    assert drawn(["negative", "Sci/Tech", "naïve $x"], "labels") == (["negative", "Sci/Tech", r"naïve \$x"], "")
    names, note = drawn(["正面", "负面", "neutral 😐"], "labels")
    assert names == ["1", "2", "3"]
    assert note == ('<p class="muted">The plot numbers the labels (its font cannot draw their names): 1 = 正面, '
                    '2 = 负面, 3 = neutral 😐.</p>')
    out = confusion([[3, 1, 0], [0, 2, 1], [1, 0, 4]], ["正面", "负面", "<b>中性</b>"])
    assert out.startswith('<img alt="plot" src="data:image/png;base64,') and "3 = &lt;b&gt;中性&lt;/b&gt;" in out
    from distilloop.core.types import Spend

    out = spend({1: {"老师": Spend(10, 2, 0.0)}}, ["老师"], use_usd=False)
    assert "The plot numbers the teachers (its font cannot draw their names): 1 = 老师." in out
    assert not [w for w in recwarn if "Glyph" in str(w.message)]
