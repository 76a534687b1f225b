"""The campaign report as one self-contained HTML file (``distilloop report --html``).

Everything is inline: CSS in a ``<style>`` block, plots as base64 PNGs drawn by matplotlib's Agg canvas
(imported lazily, the ``report`` extra), no scripts and no external URLs, so the file opens in any browser
without a network. Every string that comes from the store (texts, labels, rationales, teacher names) is
HTML-escaped: examples and teacher answers are untrusted data.

Sections: summary (stop reason, budget caps against spend), learning curve (student accuracy against
cumulative tokens and dollars), spend per teacher and round, agreement per round and per-teacher
reliability, review throughput, the active student's confusion matrix on the evaluation split, and the
hardest items (lowest agreement, highest vote entropy) with every teacher's answer and any human review.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from distilloop.core.answers import AnswerSpace, answer_space
from distilloop.errors import DistilloopError
from distilloop.reports import plots
from distilloop.reports.table import (
    RELIABILITY_NOT_YET,
    describe_scores,
    reliability_summary,
)
from distilloop.storage.store import Store

SECTIONS = [("summary", "Summary"), ("learning-curve", "Learning curve"), ("spend", "Spend per teacher and round"),
            ("agreement", "Agreement and teacher reliability"), ("reviews", "Review throughput"),
            ("confusion", "Confusion matrix of the active student"), ("versions", "Guideline and data versions"),
            ("hardest", "Hardest items")]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:16px 24px;
color:#1d2430;background:#fff;font-size:14px;line-height:1.4}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;border-bottom:2px solid #d8dee8;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:16px 0 6px}nav a{margin-right:12px;color:#2456a6}.muted{color:#667085}
.warn{background:#fff7e6;border-left:4px solid #f5a623;padding:8px 12px 8px 28px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{border:1px solid #d8dee8;padding:3px 8px}
th{background:#f2f5f9;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#f8fafc}img{max-width:100%;border:1px solid #eef1f5}
.item{border:1px solid #d8dee8;border-radius:6px;padding:8px 12px;margin:10px 0}
.item .text{background:#f8fafc;padding:6px 8px;border-left:3px solid #2456a6;white-space:pre-wrap}
.bad{color:#b42318}.good{color:#067647}.kv td:first-child{font-weight:600;background:#f8fafc}
"""


# -- helpers ---------------------------------------------------------------------------------------------
def _e(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def _num(v: Any, kind: str = "") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "usd":
        return f"${v:.6f}"
    if kind == "s":
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.3f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _table(table_id: str, head: Sequence[str], rows: Sequence[Sequence[Any]], *,
           total: Sequence[Any] | None = None, cls: str = "") -> str:
    """Cells are (value, kind) pairs or plain values; numbers are right-aligned."""

    def cell(c: Any, tag: str = "td") -> str:
        value, kind = c if isinstance(c, tuple) else (c, "")
        numeric = isinstance(value, int | float) and not isinstance(value, bool) or value is None
        return f'<{tag}{" class=n" if numeric and tag == "td" else ""}>{_e(_num(value, kind))}</{tag}>'

    out = [f'<table id="{_e(table_id)}"{f" class={cls}" if cls else ""}><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(cell(c) for c in r) + "</tr>")
    if total is not None:
        out.append('<tr class="total">' + "".join(cell(c) for c in total) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _config_value(store: Store, section: str, key: str, default: Any = None) -> Any:
    raw = store.get_meta("config") or {}
    return (raw.get(section) or {}).get(key, default)


# -- data ------------------------------------------------------------------------------------------------
def confusion(store: Store, *, split: str, labels: Sequence[str],
              loader: Callable[[str], Any] | None = None) -> tuple[list[list[int]] | None, str]:
    """The active student's confusion matrix (rows gold, columns predicted) on ``split``, or why there is none."""
    active = store.active_student()
    if active is None:
        return None, "No student has been trained yet."
    examples = [e for e in store.examples(split) if e.gold is not None]
    if not examples:
        return None, f"The '{split}' split has no examples with a gold label."
    if loader is None:
        from distilloop.students.base import Student

        loader = Student.load
    try:
        student = loader(active["path"])
        pred = student.predict([e.text for e in examples])
    except (DistilloopError, OSError) as exc:
        return None, f"Could not reload the active student {active['version']} from {active['path']}: {exc}"
    index = {lab: i for i, lab in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for e, p in zip(examples, pred, strict=True):
        if e.gold in index and p in index:
            m[index[e.gold]][index[p]] += 1
    return m, (f"Student {active['version']} (round {active['round']}) on the {len(examples)} '{split}' "
               "examples with gold; rows are gold labels, columns predictions.")



# -- sections --------------------------------------------------------------------------------------------
def _summary(store: Store, caps: Any, eval_split: str) -> str:
    spent = store.spent()
    rounds = store.rounds()
    active = store.active_student()
    kv = [("campaign", store.get_meta("name")), ("labels", ", ".join(store.get_meta("labels") or []) or "none: the answers are numbers"),
          ("rounds", len(rounds)), ("stop reason", store.get_meta("stop_reason") or "not stopped (resumable)"),
          ("examples", ", ".join(f"{s} {n:,}" for s, n in store.split_counts().items())),
          ("accepted labels", ", ".join(f"{src} {n:,}" for src, n in store.label_sources().items()) or "none"),
          ("pending reviews", store.pending_review_count()),
          ("active student", f"{active['version']} (round {active['round']}): "
           + describe_scores(active["metrics"], _config_value(store, "evaluation", "metric", "accuracy"))
           if active else "none"),
          ("evaluation split", eval_split), ("guideline version", store.current_guideline() or "-")]
    html = ['<table id="summary-table" class="kv"><tbody>']
    html += [f"<tr><td>{_e(k)}</td><td>{_e(_num(v))}</td></tr>" for k, v in kv]
    html.append("</tbody></table><h3>Budget: caps against spend</h3>")
    rows = []
    for key, head, kind in (("tokens_in", "tokens in", ""), ("tokens_out", "tokens out", ""), ("usd", "USD", "usd")):
        cap = getattr(caps, key, None) if caps is not None else None
        used = getattr(spent, key)
        rows.append([head, (used, kind), (cap, kind) if cap is not None else "no cap",
                     (used / cap, "pct") if cap else None])
    html.append(_table("budget-table", ["resource", "spent", "cap", "used"], rows))
    return "".join(html)


def _learning_curve(store: Store) -> str:
    rows = store.round_rows()
    if not rows:
        return '<p class="muted">No rounds yet.</p>'
    html = []
    metric = _config_value(store, "evaluation", "metric", "accuracy")
    pts = [r for r in rows if r.score(metric) is not None]
    html.append(plots.learning_curve(pts, metric) if pts else
                '<p class="muted">No student metrics yet (no evaluation split with gold, or no training).</p>')
    html.append(_table("learning-curve-table",
                       ["round", "strategy", "labeled", "tokens in", "tokens out", "USD", "student acc",
                        "macro F1", "promoted"],
                       [[r.round, r.strategy, r.labeled, r.tokens_in, r.tokens_out, (r.usd, "usd"),
                         (r.accuracy, "pct"), (r.macro_f1, "pct"), "yes" if r.promoted else "no"] for r in rows]))
    return "".join(html)


#: how round 0 (what was paid before the first round) is named in the spend table
BEFORE_ROUND_1 = "0 (before round 1)"


def _spend(store: Store) -> str:
    table = store.spend_by_round_and_teacher()
    if not table:
        return '<p class="muted">Nothing spent yet.</p>'
    teachers = sorted({t for by in table.values() for t in by})
    total = store.spent()
    rows = [[BEFORE_ROUND_1 if r == 0 else r, t, s.tokens_in, s.tokens_out, (s.usd, "usd")]
            for r in sorted(table) for t in teachers if (s := table[r].get(t)) is not None]
    by_teacher = [[t, sp.tokens_in, sp.tokens_out, (sp.usd, "usd")] for t, sp in store.spend_by_teacher().items()]
    # a round that paid nothing (the first, on a pilot's answers) is a bar of nothing, not a round left out
    rounds = sorted(set(table) | {int(r["round"]) for r in store.rounds()})
    note = ('<p class="muted">Round 0 is what was paid before round 1: a pilot\'s answers (the first round reuses '
            "them for free) and the teachers' labels of a held-out set.</p>" if 0 in table else "")
    return "".join([
        plots.spend(table, teachers, use_usd=total.usd > 0, rounds=rounds), note, "<h3>Per teacher</h3>",
        _table("spend-teacher-table", ["teacher", "tokens in", "tokens out", "USD"], by_teacher,
               total=["total", total.tokens_in, total.tokens_out, (total.usd, "usd")]),
        "<h3>Per round and teacher</h3>",
        _table("spend-table", ["round", "teacher", "tokens in", "tokens out", "USD"], rows,
               total=["total", "", total.tokens_in, total.tokens_out, (total.usd, "usd")])])


def _agreement(store: Store) -> str:
    rows = store.agreement_rows()
    html = []
    if rows:
        html.append(_table("agreement-table", ["round", "items", "mean agreement", "unanimous", "mean entropy",
                                               "routed to review", "accepted", "consensus acc (gold)"],
                           [[r.round, r.items, (r.agreement, "pct"), (r.unanimous, "pct"), r.entropy, r.review,
                             r.accept, (r.consensus_acc, "pct")] for r in rows]))
    else:
        html.append('<p class="muted">No rounds yet.</p>')
    estimated = store.reliability()
    if estimated:  # each teacher's confusion matrix, estimated by Dawid-Skene with the reviews as known truth
        html.append("<h3>Teacher reliability per class: P(teacher says the class | true class)</h3>")
        html.append(_estimated_reliability(estimated, _config_value(store, "routing", "cascade")))
    rel = store.teacher_stats()
    html.append("<h3>Teacher reliability (accuracy against gold where it exists, else the accepted label)</h3>")
    if rel:
        html.append(_table("reliability-table",
                           ["teacher", "calls", "answered", "errors", "invalid rate", "judged on gold", "acc (gold)",
                            "judged on accepted", "acc (accepted)", "mean confidence"],
                           [[s.teacher, s.calls, s.answered, s.errors, (s.invalid_rate, "pct"), s.gold_n,
                             (s.acc_gold, "pct"), s.acc_n, (s.acc_accepted, "pct"), s.mean_confidence] for s in rel]))
    else:
        html.append('<p class="muted">No teacher calls yet.</p>')
    return "".join(html)


def _estimated_reliability(rel: list[dict[str, Any]], cascade: Any) -> str:
    """The Dawid-Skene estimate as ``status`` words it: what it rests on, each teacher's rates, the caveats."""
    s = reliability_summary(rel, cascade or None)
    if s is None:
        return f'<p class="muted">{_e(RELIABILITY_NOT_YET[0].upper() + RELIABILITY_NOT_YET[1:])}.</p>'
    rows = [[t.teacher, round(t.items), t.balanced, t.chance,
             t.classes() if t.balanced is not None else t.not_yet()]
            for t in s.teachers]
    notes = "".join(f'<p class="muted">{_e(n[0].upper() + n[1:])}.</p>' for n in s.notes)
    return (f"<p>{_e(s.method)} over {_e(s.n_items)} items answered by two or more teachers or reviewed, "
            f"{_e(s.n_known)} human-reviewed as known truth.</p>"
            + _table("reliability-estimates", ["teacher", "items", "balanced accuracy", "chance",
                                               "per class: P(says it | true), items"], rows) + notes)


def _reviews(store: Store) -> str:
    rows = store.review_rows()
    if not rows:
        return '<p class="muted">No item was routed to review.</p>'
    secs = store.review_seconds()
    skips = any(r.skipped for r in rows)  # a column only where reviewers skipped items their reviewer counts done
    return _table("review-table", ["round", "routed to review", "answered", "pending"] + ["skipped"] * skips
                  + ["median seconds per review", "answered by"],
                  [[r.round, r.routed, r.answered, r.pending] + [r.skipped] * skips
                   + [(r.median_s, "s"), ", ".join(f"{k} {v}" for k, v in sorted(r.by.items())) or "-"] for r in rows],
                  total=["total", sum(r.routed for r in rows), sum(r.answered for r in rows),
                         sum(r.pending for r in rows)] + [sum(r.skipped for r in rows)] * skips
                  + [(statistics.median(secs) if secs else None, "s"), ""])


def _confusion(store: Store, split: str, space: AnswerSpace, loader: Callable[[str], Any] | None) -> str:
    if not space.has_label_set:
        return (f'<p class="muted">No confusion matrix: this campaign has {_e(space.describe())}, no label set; the '
                "student's accuracy is the share of exact matches, in the learning curve above.</p>")
    labels = list(space.labels)
    m, note = confusion(store, split=split, labels=labels, loader=loader)
    if m is None:
        return f'<p class="muted">{_e(note)}</p>'
    k = len(labels)
    correct = sum(m[i][i] for i in range(k))
    n = sum(map(sum, m))
    if k <= MATRIX_TABLE_LABELS:
        table = _table("confusion-table", ["gold \\ predicted", *labels], [[labels[i], *m[i]] for i in range(k)])
    else:  # a 77-intent matrix as a table is 6,000 cells nobody reads: the confusions that happen most
        pairs = sorted(((m[i][j], labels[i], labels[j]) for i in range(k) for j in range(k) if i != j and m[i][j]),
                       key=lambda x: (-x[0], x[1], x[2]))[:CONFUSED_PAIRS]
        table = (f"<p>The {len(pairs)} most frequent confusions (of {k} labels the full table would be {k} x {k}):"
                 "</p>" + _table("confusion-pairs", ["gold", "predicted", "items"], [[g, p, c] for c, g, p in pairs]))
    return "".join([f"<p>{_e(note)} Accuracy {_e(_num(correct / n if n else None, 'pct'))}.</p>",
                    plots.confusion(m, labels), table])


#: beyond this many labels the confusion matrix is shown as its most frequent confusions, not a table of every cell
MATRIX_TABLE_LABELS = 12
CONFUSED_PAIRS = 15


def _versions(store: Store) -> str:
    """Each guideline version (what changed, the labels made under it) and each data version (rows added)."""
    guidelines = store.guidelines()
    if not guidelines:
        return '<p class="muted">No guideline version recorded yet.</p>'
    by = store.labels_by_guideline()
    current = guidelines[-1]["version"]
    stale = sum(n for v, n in by.items() if v is None or v < current)
    html = [f"<p>Guideline version {_e(current)}; {_e(stale)} accepted label(s) were made under an older one"
            + (" (<code>distilloop relabel --stale</code> re-asks them)" if stale else "") + ".</p>",
            _table("guidelines-table", ["version", "recorded", "changes", "task", "labels made under it"],
                   [[g["version"], g["created_at"], g["changes"], g["task"], by.get(g["version"], 0)]
                    for g in guidelines]),
            "<h3>Data versions</h3>",
            _table("data-versions-table", ["version", "recorded", "file", "sha256", "rows", "added", "skipped"],
                   [[d["version"], d["created_at"], d["path"], (d["sha256"] or "-")[:16], d["n_rows"], d["n_added"],
                     d["n_skipped"]] for d in store.data_versions()])]
    return "".join(html)


def _hardest(store: Store, n: int) -> str:
    items = store.hardest_items(n)
    if not items:
        return '<p class="muted">No items annotated yet.</p>'
    html = [f'<p class="muted">The {len(items)} items with the lowest agreement (then highest vote entropy).</p>']
    for it in items:
        text = "\n".join(f"{k}: {v}" for k, v in it.fields.items()) if len(it.fields) > 1 else \
            next(iter(it.fields.values()), "")
        verdict = (f"consensus <b>{_e(it.label)}</b> (agreement {_e(_num(it.agreement, 'pct'))}, entropy "
                   f"{_e(_num(it.entropy))}, routed to {_e(it.route)}); accepted "
                   f"<b>{_e(it.accepted or 'none yet')}</b>"
                   + (f" from {_e(it.accepted_source)}" if it.accepted_source else "")
                   + (f"; gold <b>{_e(it.gold)}</b>" if it.gold is not None else ""))
        votes = [[v.get("teacher"), v.get("label") if v.get("valid") else f"{v.get('label')} (invalid)",
                  v.get("confidence"), v.get("rationale")] for v in it.votes]
        html.append(f'<div class="item" data-example="{_e(it.example_id)}"><h3>{_e(it.example_id)} '
                    f'<span class="muted">round {_e(it.round)}</span></h3><div class="text">{_e(text)}</div>'
                    f"<p>{verdict}</p>")
        html.append(_table(f"votes-{it.example_id}", ["teacher", "label", "confidence", "rationale"], votes))
        for rv in it.reviews:
            html.append(f"<p><b>Review</b> by {_e(rv['reviewer'])} ({_e(rv['source'])}, round {_e(rv['round'])}"
                        + (f", {_e(_num(rv['seconds_spent'], 's'))} s" if rv["seconds_spent"] is not None else "")
                        + f"): <b>{_e(rv['label'])}</b>"
                        + (f" &mdash; {_e(rv['rationale'])}" if rv["rationale"] else "") + "</p>")
        html.append("</div>")
    return "".join(html)


# -- the document ----------------------------------------------------------------------------------------
def render_html(store: Store, *, caps: Any = None, eval_split: str | None = None, n_hardest: int = 12,
                student_loader: Callable[[str], Any] | None = None, warnings: Sequence[str] = ()) -> str:
    """The report as a string. ``caps`` (a :class:`~distilloop.core.ledger.Caps`) defaults to the budget in
    the campaign's recorded config; ``eval_split`` to its ``[evaluation] split`` (``test``); ``warnings`` (what
    ``status`` warns of) open the summary."""
    if caps is None:
        from distilloop.core.ledger import Caps

        b = (store.get_meta("config") or {}).get("budget") or {}
        caps = Caps(b.get("max_tokens_in"), b.get("max_tokens_out"), b.get("max_usd"))
    eval_split = eval_split or _config_value(store, "evaluation", "split", "test")
    space = answer_space(_config_value(store, "campaign", "answer", "label"), store.get_meta("labels") or [])
    name = store.get_meta("name") or "campaign"
    warned = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    bodies = {"summary": (f'<ul id="warnings" class="warn">{warned}</ul>' if warned else "")
              + _summary(store, caps, eval_split), "learning-curve": _learning_curve(store),
              "spend": _spend(store), "agreement": _agreement(store), "reviews": _reviews(store),
              "confusion": _confusion(store, eval_split, space, student_loader), "versions": _versions(store),
              "hardest": _hardest(store, n_hardest)}
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title in SECTIONS)
    sections = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{bodies[sid]}</section>' for sid, title in SECTIONS)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>distilloop report: {_e(name)}</title><style>{CSS}</style></head><body>"
            f'<h1>distilloop report: {_e(name)}</h1><p class="muted">written {stamp}</p><nav>{nav}</nav>'
            f"{sections}</body></html>\n")


def write_html_report(store: Store, path: str | Path, **kwargs: Any) -> Path:
    """Render the report and write it atomically (a temporary file next to ``path``, then a rename)."""
    path = Path(path)
    text = render_html(store, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
