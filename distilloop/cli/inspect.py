"""Looking at a campaign without changing it: ``status``, ``report``, ``export`` and ``students``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from distilloop.cli.common import console, open_store, with_config


def cmd_status(args: argparse.Namespace) -> int:
    from distilloop.loop.steps.review import review_agreement
    from distilloop.loop.stopping import kappa_history, stop_set
    from distilloop.reports.table import rounds_table, row_dict, summary
    from distilloop.storage.lock import holder

    config, store = open_store(args)
    try:
        caps, _ = config.budget.caps()
        s = summary(store, caps)
        s["writer"] = holder(config.store_path)
        kappas = kappa_history(store)
        rows = store.round_rows()
        if args.json:
            s["stop_set_size"] = len(stop_set(store) or [])
            s["kappa_history"] = kappas
            s["rounds_table"] = [row_dict(r) for r in rows]
            s["teacher_reliability"] = store.reliability()
            s["review_agreement"] = review_agreement(store, config.space)
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
        spent = s["spent"]

        def cap(v: Any, fmt: str = "{:,}") -> str:
            return "no cap" if v is None else fmt.format(v)

        out.print(f"spent: {spent['tokens_in']:,} / {cap(caps.tokens_in)} tokens in, {spent['tokens_out']:,} / "
                  f"{cap(caps.tokens_out)} tokens out, ${spent['usd']:.4f} / {cap(caps.usd, '${:.2f}')}")
        out.print(f"labeled: {s['labeled']} ({', '.join(f'{k}: {v}' for k, v in s['labeled_by'].items()) or '-'}); "
                  f"pending review: {s['pending_reviews']}; calls: "
                  f"{', '.join(f'{k}: {v}' for k, v in s['calls'].items()) or '-'}")
        for name, sp in s["by_teacher"].items():
            out.print(f"  teacher {name}: {sp['tokens_in']:,} in, {sp['tokens_out']:,} out, ${sp['usd']:.4f}")
        ch = s["charging"]
        if ch["estimated"] or ch["recovered"] or ch["resent"]:
            out.print(f"charged at an estimate (the provider may have billed them; no answer came): {ch['estimated']} "
                      f"call(s), ${ch['estimated_usd']:.4f}; found again at the provider: {ch['recovered']}; "
                      f"re-sent after a crash: {ch['resent']}")
        a = s["active_student"]
        if a:
            m = ", ".join(f"{k} {v:.4f}" for k, v in a["metrics"].items() if k != "n")
            out.print(f"active student: {a['version']} (round {a['round']}): {m}")
        _print_review_state(out, store, config)
        out.print(rounds_table(rows))
        if kappas:
            by_round = ", ".join(f"round {k['round']} {k['kappa']:.3f}" for k in kappas)
            out.print(f"stabilizing predictions: kappa with the previous round on {len(stop_set(store) or [])} "
                      f"stop-set items: {by_round}")
        if s["stop_reason"]:
            out.print(f"last stop: {s['stop_reason']}")
    finally:
        store.close()
    return 0


def _print_review_state(out: Any, store: Any, config: Any) -> None:
    """Teacher reliability per class, rationale agreement, inter-reviewer kappa, and a simulation notice."""
    from distilloop.loop.steps.review import review_agreement

    rel = store.reliability()
    if rel:
        r0 = rel[0]
        out.print(f"teacher reliability per class ({r0['method']} over {r0['n_items']} items, "
                  f"{r0['n_known']} human-reviewed as known truth): P(teacher says the class | true class)")
        per: dict[str, list[str]] = {}
        for r in rel:
            if r["true_label"] == r["given_label"]:
                per.setdefault(r["teacher"], []).append(f"{r['true_label']} {r['prob']:.2f} (n~{r['support']:.0f})")
        for teacher, parts in per.items():
            out.print(f"  {teacher}: {', '.join(parts)}")
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
    from distilloop.reports.table import rounds_table, row_dict, summary

    config, store = open_store(args)
    try:
        caps, _ = config.budget.caps()
        s = summary(store, caps)
        rows = store.round_rows()
        if args.html is not None:
            from distilloop.reports.html import write_html_report

            path = Path(args.html) if args.html else config.beside_store(".report.html")
            write_html_report(store, path, caps=caps, eval_split=config.evaluation.split)
            print(f"wrote the HTML report to {path}")
            return 0
        if args.json:
            print(json.dumps({"summary": s, "rounds": [row_dict(r) for r in rows]}, indent=2, default=str))
            return 0
        out = console()
        out.rule(f"distilloop report: {s['name']}")
        out.print(rounds_table(rows, title="Learning curve (cumulative spend)"))
        out.print(f"spend: {s['spent']}")
        for name, sp in s["by_teacher"].items():
            out.print(f"  {name}: {sp}")
        out.print(f"labels: {s['labeled']} accepted {s['labeled_by']}, {s['pending_reviews']} pending review")
        if s["active_student"]:
            out.print(f"active student: {s['active_student']}")
        out.print(f"stop reason: {s['stop_reason']}")
    finally:
        store.close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from distilloop.storage.export import export_jsonl

    config, store = open_store(args)
    try:
        path = Path(args.out) if args.out else config.beside_store(".export.jsonl")
        n = export_jsonl(store, path, include_gold=args.include_gold)
        print(f"wrote {n} labeled examples to {path}")
    finally:
        store.close()
    return 0


def cmd_students(args: argparse.Namespace) -> int:
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
            metric = config.evaluation.metric
            for row in store.students():
                mark = "*" if row["active"] else " "
                value = row["metrics"].get(metric)
                shown = "-" if value is None else f"{value:.4f}"
                print(f"{mark} {row['version']:32} round {row['round']:3}  {metric} {shown}  "
                      f"trained on {row['n_train']}  {'promoted' if row['promoted'] else 'not promoted'}")
    finally:
        store.close()
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("status", help="rounds, spend against budget, agreement, student metrics",
                        description="Show where a campaign stands without changing it.")
    with_config(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("export", help="write the distilled data set (labels, rationales, provenance) as JSONL",
                        description="Write every accepted label with its rationale, soft label, source (teachers, "
                                    "human) and each teacher's vote as JSON lines.")
    with_config(sp)
    sp.add_argument("-o", "--out", help="output file (default: <name>.export.jsonl next to the store)")
    sp.add_argument("--include-gold", action="store_true", help="also write the gold label where the data has one")
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
                        description="List every student version with its metric (* marks the active one); "
                                    "--rollback makes an earlier version active; --export copies a version's "
                                    "directory for use outside the campaign.")
    with_config(sp)
    sp.add_argument("--rollback", nargs="?", const="", metavar="VERSION",
                    help="make VERSION active (default: the promoted version before the active one)")
    sp.add_argument("--export", metavar="DIR", help="copy a version's directory to DIR")
    sp.add_argument("--version", help="the version to export (default: the active one)")
    sp.set_defaults(func=cmd_students)
