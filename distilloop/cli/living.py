"""A campaign that keeps going: ``add`` (new data), ``relabel`` (targeted re-asking under the current guideline)
and ``predict`` (the distilled student labels a file)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from distilloop.cli.common import console, load, open_store, refuse_overwriting, with_config


def _config_and_data(args: argparse.Namespace) -> None:
    """``add`` and ``predict`` take ``[CONFIG] DATA``: with one argument it is the data file."""
    from distilloop.cli.common import DEFAULT_CONFIG
    from distilloop.errors import UserInputError

    if args.data is None:
        if str(args.config).endswith(".toml"):
            raise UserInputError(f"{args.command}: name the data file: `distilloop {args.command} [CONFIG] DATA`")
        args.config, args.data = DEFAULT_CONFIG, args.config


def cmd_add(args: argparse.Namespace) -> int:
    from distilloop.data import first_row
    from distilloop.loop.additions import add_data

    _config_and_data(args)
    config = load(args)
    result = add_data(config, args.data)
    out = console()
    if result.version is None:
        out.print(f"nothing new: all {result.n_rows} row(s) of {args.data} are already in the campaign "
                  f"(skipped {result.skipped}); no data version recorded")
        return 0
    by = ", ".join(f"{split} {n}" for split, n in sorted(result.added.items()))
    out.print(f"data version {result.version}: added {result.n_added} row(s) ({by}) from {args.data}; skipped "
              f"{result.skipped} already in the campaign; sha256 {result.sha256[:16]}")
    if result.added.get("pool"):
        out.print("the next `distilloop run` selects from the grown pool (raise [rounds] max_rounds if the campaign "
                  "has run all its rounds)", markup=False)
    if leak := _held_out_in_pool(config):
        out.print(f"note: {leak}", markup=False)
    if (first_row(Path(args.data)) or {}).get(config.data.id_field) in (None, ""):
        out.print(f"note: {args.data} has no '{config.data.id_field}' column: its rows are known by their line "
                  "(row-<line>) in exports and predictions, and a later file without ids would collide with them; "
                  f"give the rows values in column '{config.data.id_field}'", markup=False)
    return 0


def _held_out_in_pool(config: Any) -> str | None:
    """:func:`distilloop.data.held_out_in_pool` over the campaign's rows, the new ones included."""
    from distilloop.data import held_out_in_pool
    from distilloop.storage.store import Store

    store = Store.open(config.store_path)
    try:
        return held_out_in_pool(store.examples())
    finally:
        store.close()


def _read_ids(path: str) -> list[str]:
    from distilloop.errors import UserInputError

    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise UserInputError(f"relabel --ids: cannot read {path} ({exc.strerror}); give a file of ids, one a line") from None
    except UnicodeDecodeError:
        raise UserInputError(f"relabel --ids: {path} is not UTF-8 text; give a file of ids, one a line") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def cmd_relabel(args: argparse.Namespace) -> int:
    from distilloop.loop.campaign import Campaign
    from distilloop.loop.progress import Progress
    from distilloop.loop.references import decision_score
    from distilloop.loop.relabel import Selectors, plan_relabel, relabel, unfinished

    config = load(args)
    if not config.store_path.exists():
        from distilloop.errors import UserInputError

        raise UserInputError(f"no campaign store at {config.store_path}; run the campaign first (`distilloop run`)")
    selectors = Selectors(stale=args.stale, below_agreement=args.below_agreement, round=args.round,
                          ids=_read_ids(args.ids) if args.ids else None, include_reviewed=args.include_reviewed,
                          labels=args.label)
    campaign = Campaign.open(config, progress=Progress(quiet=args.quiet or args.json),
                             record_guideline=not args.dry_run,
                             writer="relabel --dry-run" if args.dry_run else "relabel")
    out = console()
    try:
        plan = None if unfinished(campaign) is not None else plan_relabel(campaign, selectors)
        if args.dry_run:
            if plan is None:
                out.print("a relabel round is unfinished: `distilloop relabel` (without --dry-run) resumes it")
                return 0
            if args.json:
                print(json.dumps(plan.as_dict(), indent=2, default=str))
                return 0
            _print_plan(out, plan)
            return 0
        result = relabel(campaign, plan)
        if args.json:
            print(json.dumps({**vars(result), "spent": vars(result.spent)}, indent=2, default=str))
            return 0
        if result.stop:
            out.print(f"stopped: {result.stop}", markup=False)
            return 0
        out.print(f"relabel round {result.round_no}: re-asked {result.asked} item(s) under guideline "
                  f"{plan.guideline if plan else campaign.store.current_guideline()}: {len(result.changed)} label(s) "
                  f"changed, {result.unchanged} unchanged, {result.in_review} waiting for review, {result.no_answer} "
                  "without an answer (kept)")
        h = result.heldout
        out.print(f"teacher answers: {result.paid_calls} paid, {result.reused} reused from the store; spent "
                  f"{result.spent.tokens_in:,} tokens in, {result.spent.tokens_out:,} out, ${result.spent.usd:.4f}"
                  + (f" (of which the held-out set, labeled again under this guideline first: {h.tokens_in:,} in, "
                     f"{h.tokens_out:,} out, ${h.usd:.4f})" if h.tokens_in or h.tokens_out else ""))
        if result.changed:
            out.print("changed: " + ", ".join(result.changed[:20]) + (" ..." if len(result.changed) > 20 else ""))
        s = result.student
        if s is not None:
            metric = campaign.config.evaluation.metric
            score = decision_score(s["metrics"], metric)
            where = s["metrics"].get("reference") or "no reference"
            active = campaign.store.active_student()
            held = decision_score(active["metrics"], metric) if active is not None and not s["promoted"] else None
            why = (f" (the active student, round {active['round']}, scores {100 * held:.1f}% there)"
                   if active is not None and held is not None else " (it regresses)")
            value = "-" if score is None else f"{100 * score:.1f}%"
            out.print(f"student {s['version']}: {metric} {value} on {where}; "
                      f"{'promoted' if s['promoted'] else 'not promoted' + why}")
    finally:
        campaign.close()
    return 0


def _print_plan(out: Any, plan: Any) -> None:
    if plan.new_guideline:
        out.print(f"the campaign file's guideline is new: it becomes version {plan.guideline} at the next run or "
                  "relabel")
    out.print(f"would re-ask {len(plan.ids)} item(s) under guideline {plan.guideline}:")
    out.print(" ".join(plan.ids) if plan.ids else "(none)", soft_wrap=True)
    if plan.kept_reviewed:
        out.print(f"kept: {len(plan.kept_reviewed)} human-reviewed label(s) (--include-reviewed re-asks them)")
    if plan.not_labeled:
        out.print(f"not labeled, so not relabeled: {', '.join(plan.not_labeled[:20])}")
    e, u = plan.expected, plan.upper
    out.print(f"teacher requests: {plan.requests}: {plan.reused} answered already (reused for free), "
              f"{plan.requests - plan.reused} to pay"
              + (" at most: the cascade asks " + ", ".join(f"{k} about {v:.0%}" for k, v in plan.reach.items())
                 + " of them, as their last verdicts did (else as the campaign's rounds did; the expected cost "
                 "counts that)" if plan.reach else ""))
    out.print(f"estimated cost: {e.tokens_in:,} tokens in, {e.tokens_out:,} out, ${e.usd:.4f} expected; "
              f"${u.usd:.4f} ({u.tokens_in:,} in, {u.tokens_out:,} out) at most")
    left = ", ".join(f"{k} {'no cap' if v is None else (f'${v:.4f}' if k == 'usd' else f'{v:,.0f}')}"
                     for k, v in plan.budget_left.items())
    out.print(f"budget left: {left}")
    if plan.heldout:
        out.print(f"first, the teachers label the {plan.heldout} items of the held-out set again (the guideline "
                  "changed; students are judged on it): not in the cost above (`distilloop estimate` counts it)")
    short = plan.short_of()
    if short:
        out.print(f"the expected cost is more than the budget has left ({', '.join(short)}): the calls it has no room "
                  "for are not sent (their items are decided without them); raise the [budget] cap first", markup=False)


def cmd_predict(args: argparse.Namespace) -> int:
    from distilloop.data import data_stem, first_row, for_campaign_rows, other_case
    from distilloop.loop.predict import predict_file, serving_student
    from distilloop.loop.progress import Progress

    _config_and_data(args)
    config, store = open_store(args)
    try:
        served = serving_student(store, args.version)
    finally:
        store.close()
    data = Path(args.data)
    stem = data_stem(data.name) or data.name
    out = args.out if args.out is not None else str(data.with_name(stem + ".predictions.jsonl"))
    if out != "-":
        refuse_overwriting(out, config, the_file_to_label=data)
    spec = for_campaign_rows(config.data_spec())
    first = first_row(data) or {}
    ids = dict(other_case(first, spec)).get(spec.id_field)
    if ids is None and spec.id_field not in first and "id" in first:  # `distilloop export`'s rows name theirs "id"
        ids = "id"
    if ids is not None:  # the file's "id" for the campaign's "Id": its ids, not row-<line> (an output, not the store)
        spec = dataclasses.replace(spec, id_field=ids)
    n = predict_file(served, data, spec, out, batch_size=args.batch_size, progress=Progress(quiet=args.quiet),
                     rationales=args.rationales)
    if out != "-":
        console().print(f"labeled {n} row(s) with student {served.version}; wrote {out}", soft_wrap=True)
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("add", help="add new rows to a running campaign's pool (a recorded data version)",
                        description="Append the rows of DATA (same input fields; a row may name its split) to the "
                                    "campaign. New ids join; a known id with identical content is skipped and "
                                    "counted; a known id with other content stops the command (exit 2) and nothing "
                                    "is added. Each addition is a data version: when, how many, the file's sha256.")
    with_config(sp)
    sp.add_argument("data", nargs="?", help="the data file to add (.jsonl, .json, .csv, .tsv, optionally .gz; "
                    ".parquet, .arrow or a Hugging Face dataset's folder)")
    sp.set_defaults(func=cmd_add)

    sp = sub.add_parser("relabel", help="re-ask chosen labeled items under the current guideline",
                        description="Re-ask labeled items under the current guideline version as a round of its "
                                    "own: stored answers whose request is unchanged are reused for free, the rest "
                                    "is charged to the budget, disagreements go to review, a student is trained "
                                    "and promoted by the regression gate; prints how many labels changed. The "
                                    "selectors narrow each other.")
    with_config(sp)
    sp.add_argument("--stale", action="store_true", help="items labeled under an older guideline version")
    sp.add_argument("--below-agreement", type=float, metavar="X", help="items whose teachers agreed less than X")
    sp.add_argument("--round", type=int, metavar="N", help="items annotated in round N")
    sp.add_argument("--ids", metavar="FILE", help="items listed in FILE, one id a line")
    sp.add_argument("--label", action="append", metavar="L",
                    help="items labeled L now (repeat for several): the items of a label a new one splits")
    sp.add_argument("--include-reviewed", action="store_true",
                    help="also re-ask items whose label a person gave in review (kept otherwise)")
    sp.add_argument("--dry-run", action="store_true",
                    help="list the items it would re-ask and its estimated cost; send and write nothing (an edited "
                         "guideline is recorded by the next run or relabel)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_relabel)

    sp = sub.add_parser("predict", help="label a file with the active (or a named) student",
                        description="Label every row of DATA (JSONL, JSON, CSV, TSV or Parquet with the campaign's "
                                    "input fields) with the student, streaming in batches with constant memory; each output line has "
                                    "the id, the label, the label distribution and the student version.")
    with_config(sp)
    sp.add_argument("data", nargs="?", help="the file to label (.jsonl, .json, .csv, .tsv, optionally .gz; "
                    ".parquet, .arrow or a Hugging Face dataset's folder)")
    sp.add_argument("-o", "--out", help="output file: JSON lines, or CSV where it ends in .csv; '-' for stdout (default: "
                                        "<DATA>.predictions.jsonl)")
    sp.add_argument("--version", help="the student version to use (default: the active one)")
    sp.add_argument("--batch-size", type=int, default=256, help="rows labeled per batch (default: 256)")
    sp.add_argument("--rationales", action="store_true",
                    help="also the rationale the student generates for each row (a step_by_step student)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_predict)
