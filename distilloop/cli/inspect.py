"""Looking at a campaign without changing it: ``status``, ``report``, ``export`` and ``students``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from distilloop.cli.common import console, open_store, refuse_overwriting, usd_cap, with_config
from distilloop.errors import UserInputError


def _warnings(store: Any, config: Any) -> list[str]:
    """Every warning that holds for the campaign now (what `run` says after each round)."""
    from distilloop.loop import diagnostics

    return diagnostics.warnings(store, config.space, config.evaluation.metric,
                                config.aggregation.params.get("calibrate") == "batch", config.student)


def cmd_status(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from distilloop.loop.steps.review import review_agreement
    from distilloop.loop.stopping import kappa_history, stop_set
    from distilloop.reports.table import rounds_table, row_dict, summary, versions_summary
    from distilloop.storage.lock import holder

    config, store = open_store(args)
    try:
        caps, _ = config.budget.caps()
        s = summary(store, caps)
        s["writer"] = holder(config.store_path)
        kappas = kappa_history(store)
        rows = store.round_rows()
        versions = versions_summary(store, config)
        if args.json:
            s.update(versions)
            s["stop_set_size"] = len(stop_set(store) or [])
            s["kappa_history"] = kappas
            s["rounds_table"] = [row_dict(r) for r in rows]
            s["teacher_reliability"] = store.reliability()
            s["review_agreement"] = review_agreement(store, config.space)
            s["warnings"] = _warnings(store, config)
            s["short_votes"] = store.short_votes()
            s["calibration_prior"] = store.get_meta("calibration_prior")
            print(json.dumps(s, indent=2, default=str))
            return 0
        out = console()
        ex = s["examples"]
        out.print(f"[bold]{s['name']}[/bold]: {s['rounds']} round(s); pool {ex['pool']}, test {ex['test']}, "
                  f"dev {ex['dev']}")
        if s["writer"] is not None:
            w = s["writer"]
            out.print(f"being written now by `distilloop {w.get('command', '?')}` (pid {w.get('pid', '?')}, since "
                      f"{w.get('since', '?')})")
        _print_spend(out, s, caps)
        short = store.short_votes()
        if short:
            out.print(f"{short} verdict(s) rest on fewer valid votes than teachers asked (a failed, refused or "
                      "invalid answer counts as dissent)")
        _print_teachers(out, s)
        prior = store.get_meta("calibration_prior")
        if config.aggregation.params.get("calibrate") == "batch" and prior:
            out.print(escape(_calibration_line(prior, config.aggregation.params.get("calibrate_prior", "auto"))))
        ch = s["charging"]
        if ch["estimated"] or ch["recovered"] or ch["resent"]:
            out.print(f"charged at an estimate (the provider may have billed them; no answer came): {ch['estimated']} "
                      f"call(s), ${ch['estimated_usd']:.4f}; found again at the provider: {ch['recovered']}; "
                      f"re-sent after a crash: {ch['resent']}")
        _print_student(out, s, config.evaluation.metric)
        _print_review_state(out, store, config)
        _print_versions(out, versions)
        out.print(rounds_table(rows, metric=config.evaluation.metric))
        for message in _warnings(store, config):
            out.print(f"[yellow]warning:[/yellow] {escape(message)}")
        if kappas:
            by_round = ", ".join(f"round {k['round']} {k['kappa']:.3f}" for k in kappas)
            out.print(f"stabilizing predictions: kappa with the previous round on {len(stop_set(store) or [])} "
                      f"stop-set items: {by_round}")
        if s["stop_reason"]:
            out.print(f"last stop: {escape(s['stop_reason'])}")
    finally:
        store.close()
    return 0


def _calibration_line(prior: dict[str, Any], setting: Any) -> str:
    """What the teachers' votes were calibrated to (the store's ``calibration_prior``)."""
    if prior.get("shares"):
        from distilloop.loop.steps.annotate import shares_text

        return f"calibration: fitted to the class shares of {prior['source']} ({shares_text(prior)})"
    why = ("no gold sample shows otherwise; if a label is rare in your data, give it a dev split with gold labels, "
           "an audit set, or [aggregation] calibrate_prior" if setting == "auto"
           else '[aggregation] calibrate_prior = "uniform"')
    return f"calibration: every label taken as equally common ({why})"


def _print_spend(out: Any, s: dict[str, Any], caps: Any) -> None:
    """Spend against the budget's caps, and the accepted labels by source, the review queue and the calls."""
    spent = s["spent"]

    def cap(v: Any, fmt: str = "{:,}") -> str:
        return "no cap" if v is None else fmt.format(v)

    out.print(f"spent: {spent['tokens_in']:,} / {cap(caps.tokens_in)} tokens in, {spent['tokens_out']:,} / "
              f"{cap(caps.tokens_out)} tokens out, ${spent['usd']:.4f} / {usd_cap(caps.usd)}")
    out.print(f"labeled: {s['labeled']} ({', '.join(f'{k}: {v}' for k, v in s['labeled_by'].items()) or '-'}); "
              f"pending review: {s['pending_reviews']}"
              + (f" ({s['skipped_reviews']} more skipped by every reviewer, untrained on)" if s["skipped_reviews"]
                 else "") + "; calls: "
              f"{', '.join(f'{k}: {v}' for k, v in s['calls'].items()) or '-'}"
              + (" (in_flight: cut off when the command asking them stopped; the next `distilloop run` settles them)"
                 if s["calls"].get("in_flight") and "writer" in s and s["writer"] is None else ""))


def _print_teachers(out: Any, s: dict[str, Any]) -> None:
    for name, sp in s["by_teacher"].items():
        out.print(f"  teacher {name}: {sp['tokens_in']:,} in, {sp['tokens_out']:,} out, ${sp['usd']:.4f}")


def _print_student(out: Any, s: dict[str, Any], metric: str) -> None:
    from distilloop.reports.table import describe_scores

    a = s["active_student"]
    if a:
        out.print(f"active student: {a['version']} (round {a['round']}): {describe_scores(a['metrics'], metric)}")
    else:
        out.print("active student: none yet (no round has promoted one)")


def _print_versions(out: Any, versions: dict[str, Any]) -> None:
    """The guideline versions (labels made under each, how many are stale) and the data versions."""
    from rich.markup import escape

    g = versions["guidelines"]
    if g["current"] is not None:
        per = ", ".join(f"v{v['version']} {v['labels']}" for v in g["versions"])
        out.print(f"guideline: version {g['current']} ({escape(g['versions'][-1]['changes'])}); labels by guideline: {per}; "
                  f"stale: {g['stale_labels']}" + (" (`distilloop relabel --stale` re-asks them)"
                                                     if g["stale_labels"] else ""))
        if g.get("pending"):
            labels = sum(v["labels"] for v in g["versions"])
            out.print(f"guideline edited: the campaign file differs from version {g['current']} ({escape(g['pending'])}); it "
                      f"becomes version {g['current'] + 1} at the next run or relabel, and the {labels} label(s) made "
                      "so far stale (`distilloop relabel --stale --dry-run`: what re-asking them costs)")
    for d in versions["data_versions"]:
        by = ", ".join(f"{k} {n}" for k, n in sorted(d["splits"].items()))
        out.print(f"  data version {d['version']} ({(d['created_at'] or '-')[:19]}): {d['n_added']} row(s) added "
                  f"({by or '-'}), {d['n_skipped']} skipped" + (f", sha256 {d['sha256'][:12]}" if d["sha256"] else ""))


def _print_reliability(out: Any, rel: list[dict[str, Any]], cascade: list[str] | None = None) -> None:
    """Each teacher's per-class reliability (Dawid-Skene), and what it rests on: the items answered by two or
    more teachers or reviewed (an item one teacher answered alone says nothing of that teacher's errors); with a
    cascade those are the items its first teacher was unsure of, not a sample of the pool."""
    from distilloop.reports.table import RELIABILITY_NOT_YET, reliability_summary

    s = reliability_summary(rel, cascade)
    if s is None:
        out.print(f"teacher reliability per class: {RELIABILITY_NOT_YET}")
        return
    out.print(f"teacher reliability per class ({s.method} over {s.n_items} items answered by two or more "
              f"teachers or reviewed, {s.n_known} human-reviewed as known truth): "
              "P(teacher says the class | true class)")
    for t in s.teachers:
        if t.balanced is None:
            out.print(f"  {t.teacher}: {t.not_yet()}")
            continue
        out.print(f"  {t.teacher}: balanced accuracy {t.balanced:.2f} (chance {t.chance:.2f}); {t.classes()}")
    for note in s.notes:
        out.print(f"  ({note})")


def _print_review_state(out: Any, store: Any, config: Any) -> None:
    """Teacher reliability per class, rationale agreement, inter-reviewer kappa, and a simulation notice."""
    from distilloop.loop.steps.review import review_agreement

    rel = store.reliability()
    if rel:
        _print_reliability(out, rel, list(config.routing.cascade or []))
    agree, sided = store.rationale_agreement()
    if sided:
        out.print(f"rationales support one label on {agree} of {sided} items where they take a side")
    ra = review_agreement(store, config.space)
    if ra["items_multi"]:
        out.print(f"reviewer agreement: {ra['method']} kappa {ra['kappa']:.3f} over {ra['items_multi']} items "
                  "reviewed more than once")
    sim = store.review_sources().get("simulated", 0)
    if sim:
        out.print(f"[yellow]note: {sim} review(s) are SIMULATED (answered from gold labels by SimulatedReviewer), "
                  "not human work[/yellow]")


def cmd_report(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from distilloop.reports.table import rounds_table, row_dict, summary

    config, store = open_store(args)
    try:
        caps, _ = config.budget.caps()
        s = summary(store, caps)
        rows = store.round_rows()
        warned = _warnings(store, config)
        if args.html is not None:
            from distilloop.reports.html import write_html_report

            path = Path(args.html) if args.html else config.beside_store(".report.html")
            refuse_overwriting(path, config)
            write_html_report(store, path, caps=caps, eval_split=config.evaluation.split, warnings=warned)
            print(f"wrote the HTML report to {path}")
            return 0
        if args.json:
            print(json.dumps({"summary": s, "rounds": [row_dict(r) for r in rows], "warnings": warned}, indent=2,
                             default=str))
            return 0
        out = console()
        out.rule(f"distilloop report: {s['name']}")
        out.print(rounds_table(rows, title="Learning curve (cumulative spend)", metric=config.evaluation.metric))
        _print_spend(out, s, caps)
        _print_teachers(out, s)
        _print_student(out, s, config.evaluation.metric)
        for message in warned:
            out.print(f"[yellow]warning:[/yellow] {escape(message)}")
        out.print(f"stop reason: {escape(s['stop_reason'] or 'not stopped (`distilloop run` continues it)')}")
    finally:
        store.close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from distilloop.storage.export import (
        SUFFIX_FORMATS,
        export_csv,
        export_jsonl,
        export_table,
        write_csv,
        write_jsonl,
    )

    config, store = open_store(args)
    try:
        if args.format is None:  # as the file's name says (labels.csv), else JSON lines
            args.format = SUFFIX_FORMATS.get(Path(args.out).suffix.lower(), "jsonl") if args.out else "jsonl"
        suffix = {"jsonl": ".export.jsonl", "csv": ".export.csv", "hf": ".export.hf",
                  "parquet": ".export.parquet"}[args.format]
        if args.out == "-":  # JSON lines (or CSV) on stdout, for a pipe
            if args.format not in ("jsonl", "csv"):
                raise UserInputError(f"-o -: {args.format} is written to a folder or file, not to stdout; give a path, "
                                     "or use --format jsonl or csv")
            import sys

            n = (write_csv(store, sys.stdout, list(config.space.labels), include_gold=args.include_gold)
                 if args.format == "csv" else write_jsonl(store, sys.stdout, include_gold=args.include_gold))
            print(f"wrote {n} labeled examples to stdout", file=sys.stderr)
            return 0
        path = Path(args.out) if args.out else config.beside_store(suffix)
        refuse_overwriting(path, config)
        if args.format == "jsonl":
            n = export_jsonl(store, path, include_gold=args.include_gold)
        elif args.format == "csv":
            n = export_csv(store, path, list(config.space.labels), include_gold=args.include_gold)
        else:
            n = export_table(store, path, args.format, include_gold=args.include_gold, labels=list(config.space.labels))
        how = {"hf": " (datasets.load_from_disk reads it)"}.get(args.format, "")
        print(f"wrote {n} labeled examples to {path}{how}")
    finally:
        store.close()
    return 0


def cmd_students(args: argparse.Namespace) -> int:
    from distilloop.loop.references import decision_score
    from distilloop.students.promotion import StudentRegistry

    config, store = open_store(args, writer=None if args.rollback is None else "students --rollback")
    try:
        registry = StudentRegistry(store, config.students_dir)
        if args.rollback is not None:
            version = registry.rollback(args.rollback or None)
            print(f"active student is now {version}")
        if args.export:
            dest = registry.export(args.export, args.version)
            print(f"exported {args.version or 'the active student'} to {dest} (load with "
                  "distilloop.students.base.Student.load)")
        if args.rollback is None and not args.export:
            metric, rows = config.evaluation.metric, store.students()
            if args.json:  # what a script needs: each version, where it lies (Student.load), its scores
                keys = ("version", "round", "active", "promoted", "n_train", "guideline", "data_version", "path",
                        "metrics", "reference", "newest")
                print(json.dumps([{k: bool(row[k]) if k in ("active", "promoted") else row.get(k) for k in keys}
                                  for row in rows], indent=2, default=str))
            elif not rows:
                print("no student yet: `distilloop run` trains one each round")
            for row in rows if not args.json else []:
                mark = "*" if row["active"] else " "
                ref, newest = row.get("reference") or {}, row.get("newest") or {}
                where = f"{ref.get('name') or ref.get('split')}, {ref['n']} rows" if ref else "none"
                value = decision_score(row["metrics"], metric)
                new = (newest.get("metrics") or {}).get(metric)
                prev = (newest.get("previous") or {}).get(metric)
                print(f"{mark} {row['version']:32} round {row['round']:3}  reference ({where}) {metric} {_f(value)}  "
                      f"newest ({newest.get('n', 0)} labels) {_f(new)}" + (f" (before: {_f(prev)})" if prev is not None
                                                                         else "")
                      + f"  trained on {row['n_train']}  guideline {row.get('guideline') or '-'}  data "
                      f"{row.get('data_version') or '-'}  {'promoted' if row['promoted'] else 'not promoted'}")
    finally:
        store.close()
    return 0


def _f(value: Any) -> str:
    """A score as `status` shows it (percent)."""
    return "-" if value is None else f"{100 * value:.1f}%"


def register(sub: Any) -> None:
    sp = sub.add_parser("status", help="rounds, spend against budget, agreement, student metrics",
                        description="Show where a campaign stands without changing it.")
    with_config(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("export", help="write the distilled data set (labels, rationales, provenance)",
                        description="Write every accepted label with its rationale, soft label, provenance (source, "
                                    "round, guideline and data version, each teacher's vote, reviews) as JSON lines, "
                                    "CSV, a Hugging Face datasets folder or Parquet.")
    with_config(sp)
    sp.add_argument("-o", "--out", help="output file (default: <name>.export.jsonl next to the store; - for stdout); "
                                        "its name gives the format where --format does not (.csv, .parquet, else "
                                        "JSON lines)")
    sp.add_argument("--include-gold", action="store_true", help="also write the gold label where the data has one")
    sp.add_argument("--format", choices=("jsonl", "csv", "hf", "parquet"), default=None,
                    help="jsonl (the default), csv (one column per provenance field and per label's probability; "
                         "votes and reviews as JSON text), hf (a Hugging Face datasets folder, save_to_disk) or "
                         "parquet; hf and parquet need the `export` extra")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("report", help="a summary of the campaign: learning curve, spend, labels, student",
                        description="Print a campaign summary (use --json for machine-readable output).")
    with_config(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--html", nargs="?", const="", metavar="FILE",
                    help="write a self-contained HTML report (plots, spend, reliability, reviews, confusion matrix, "
                         "hardest items) to FILE (default: <name>.report.html next to the store)")
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("students", help="list student versions, roll back, export one",
                        description="List every student version with its metric on the frozen evaluation "
                                    "reference and on the labels new since the last promoted student (* marks the "
                                    "active one); "
                                    "--rollback makes an earlier version active; --export copies a version's "
                                    "directory for use outside the campaign.")
    with_config(sp)
    sp.add_argument("--rollback", nargs="?", const="", metavar="VERSION",
                    help="make VERSION active (default: the promoted version before the active one)")
    sp.add_argument("--export", metavar="DIR", help="copy a version's directory to DIR")
    sp.add_argument("--version", help="the version to export (default: the active one)")
    sp.add_argument("--json", action="store_true", help="the list, machine-readable (each version's path included)")
    sp.set_defaults(func=cmd_students)
