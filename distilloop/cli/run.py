"""Running a campaign: ``run`` (rounds until a stopping rule holds) and ``estimate`` (what it will cost)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from distilloop.cli.common import console, load, usd_cap, with_config
from distilloop.errors import UserInputError


def cmd_run(args: argparse.Namespace) -> int:
    from distilloop.loop.additions import data_file_changed, other_campaigns_on_this_data
    from distilloop.loop.campaign import Campaign
    from distilloop.loop.progress import Progress
    from distilloop.reports.table import metric_name, rounds_table

    if args.rounds is not None and args.rounds < 1:  # 0 or -2 ran nothing and said the campaign had stopped
        raise UserInputError(f"--rounds: run at least one round, got {args.rounds}")
    config = load(args)
    progress = Progress(quiet=args.quiet)
    out = console()
    elsewhere = other_campaigns_on_this_data(config)
    campaign = Campaign.open(config, progress=progress)
    try:
        def on_round(n: int) -> None:
            if not args.quiet:
                row = campaign.store.round_rows()[-1]
                metric = config.evaluation.metric
                score = row.score(metric)
                progress.note(f"round {n} done: {row.labeled} labeled, {row.tokens_in + row.tokens_out:,} tokens, "
                              f"${row.usd:.4f}, student {metric_name(metric)} "
                              f"{'-' if score is None else f'{100 * score:.1f}%'}")

        if elsewhere:
            progress.warn(elsewhere)
        if changed := data_file_changed(config, campaign.store):  # rows appended to the file are not in the pool
            progress.warn(changed)
        def finished() -> int:  # a resumed round counts as run: it is done now
            return sum(r["status"] == "done" for r in campaign.store.rounds())

        before = finished()
        reason = campaign.run(max_rounds=args.rounds, on_round=on_round)
        out.print(rounds_table(campaign.store.round_rows(), title=f"Campaign {config.campaign.name}: learning curve",
                                metric=config.evaluation.metric))
        out.print(f"stopped: {reason}", markup=False)
        if reason.startswith("max rounds reached") and finished() == before and \
                (left := len(campaign.env.unlabeled_pool())):  # after `add`: nothing ran, nothing said why
            progress.warn(f"no round ran: the campaign has run its [rounds] max_rounds = {config.rounds.max_rounds} "
                          f"and {left:,} pool row(s) are unlabeled; raise max_rounds (one more per round wanted) "
                          "and run again")
        if (waiting := campaign.store.pending_review_count()) and config.review.kind != "auto":
            unsent = sum(1 for r in campaign.store.pending_reviews() if not r["external_id"]) \
                if campaign.reviewer.uses_external_ids else 0  # (a reviewer that keeps no ids: sent when queued)
            out.print(f"review: {waiting} item(s) wait for a reviewer{review_place(config, campaign.store)}"
                      + (f", {unsent} of them not sent (the reviewer could not be reached: the warnings above say why; "
                         "`distilloop review push` sends them)" if unsent else "")
                      + "; the next `distilloop run` (or `distilloop review pull`) takes the finished ones", markup=False)
        if skipped := len(campaign.store.skipped_reviews()):
            out.print(f"review: {skipped} item(s) skipped by every reviewer are left out of training (an answer given "
                      "there later is taken)", markup=False)
        out.print(f"store: {config.store_path}", soft_wrap=True)
    finally:
        campaign.close()
    return 0


def review_place(config: Any, store: Any) -> str:
    """Where the items waiting for review are: a Label Studio project's address, else the reviewer's kind."""
    if config.review.kind == "label_studio" and (project := store.get_meta("label_studio_project_id")) is not None:
        return f" in Label Studio: {str(config.review.params.get('url', '')).rstrip('/')}/projects/{project}"
    return f" ({config.review.kind})"


def cmd_estimate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from distilloop.loop.estimate import estimate_campaign

    est = estimate_campaign(load(args))
    if args.json:
        print(json.dumps(est.as_dict(), indent=2, default=str))
        return 0
    if not est.campaign_items:
        why = ("every pool item is labeled or set aside for a reference; `distilloop add DATA` grows the pool"
               if not est.pool_left else f"the campaign has run its {est.next_round - 1} round(s), {est.pool_left} "
               "pool item(s) unlabeled; raise \\[rounds] max_rounds for more")
        console().print(f"{est.name}: nothing left to estimate: {why}")
        return 0
    table = Table(title=f"Estimate for {est.name}: the next round, {est.next_round} ({est.next_round_items} items); "
                        f"the campaign: {est.remaining_rounds} round(s) left, this one included "
                        f"({est.campaign_items} items)")
    for col in ("teacher", "mode", "next round tokens in/out", "next round $", "campaign tokens in/out",
                "campaign $", "campaign $ upper bound"):
        table.add_column(col, justify="left" if col in ("teacher", "mode") else "right")
    rows = [(t.teacher, t.mode, t.next_round, t.campaign, t.campaign_upper) for t in est.teachers]
    rows.append(("total", "", est.total("next_round"), est.total("campaign"), est.total("campaign_upper")))
    for name, mode, nxt, camp, upper in rows:
        table.add_row(name, mode, f"{nxt.tokens_in:,} / {nxt.tokens_out:,}", f"${nxt.usd:.4f}",
                      f"{camp.tokens_in:,} / {camp.tokens_out:,}", f"${camp.usd:.4f}", f"${upper.usd:.4f}")
    c = console()
    c.print(table)
    caps = est.caps
    c.print(f"budget: ${est.spent.usd:.4f} spent of {usd_cap(caps.usd)}; {est.verdict()}", markup=False)
    for note in est.notes:
        c.print(f"note: {note}", markup=False)
    c.print(f"method: {est.method}")
    return 0


def cmd_pilot(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from distilloop.loop.campaign import Campaign
    from distilloop.loop.pilot import describe_counts, run_pilot, spare_teachers
    from distilloop.loop.progress import Progress

    if args.n < 1:
        raise UserInputError(f"-n: the pilot needs at least one item, got {args.n}")
    config = load(args)
    campaign = Campaign.open(config, progress=Progress(quiet=args.quiet))
    try:
        campaign.settle_cut_calls()
        rep = run_pilot(campaign.env, args.n)
    finally:
        campaign.close()
    if args.json:
        print(json.dumps(dataclasses.asdict(rep), indent=2, default=str))
        return 0
    c = console()
    how = ("every teacher" if not config.routing.cascade else
           "the teachers as the campaign asks them (cascade: a later tier only where the one before is unsure)")
    table = Table(title=f"Pilot of {config.campaign.name}: {how} on {rep.n} pool items")
    for col in ("teacher", "answered", "invalid", "failed", "labels given", "accuracy (gold)", "tokens / item",
                "$ / item", "seconds / item"):
        table.add_column(col, justify="left" if col in ("teacher", "labels given") else "right")
    for p in rep.teachers:
        n = max(1, p.answered)
        table.add_row(p.teacher, str(p.answered), str(p.invalid), str(p.failed), describe_counts(p.labels),
                      "-" if p.accuracy is None else f"{100 * p.accuracy:.1f}% (n={p.judged})",
                      f"{p.spend.tokens / n:,.0f}", f"${p.spend.usd / n:.5f}", f"{p.seconds / n:.2f}")
    c.print(table)
    for pair, k in rep.kappa.items():
        c.print(f"agreement {pair}: Cohen's kappa {k:.2f}")
    acc = "" if rep.ensemble_accuracy is None else f"; the ensemble's labels are {100 * rep.ensemble_accuracy:.1f}% right"
    c.print(f"at \\[routing] min_agreement = {config.routing.min_agreement}, {100 * rep.review_share:.0f}% of the items "
            f"would go to review{acc}")
    if rep.without:
        c.print("the ensemble's labels with one teacher left out (the others decide as a round decides): "
                + ", ".join(f"without {t} {100 * a:.1f}% right" for t, a in rep.without.items()))
    for p in spare_teachers(rep):
        alone = rep.without[p.teacher]
        if rep.ensemble_accuracy is not None:
            worse = alone > rep.ensemble_accuracy + 0.02
            c.print(f"note: teacher {p.teacher} {'makes the labels worse' if worse else 'adds nothing to the labels'} "
                    f"on these items ({100 * alone:.1f}% right "
                    f"without it, {100 * rep.ensemble_accuracy:.1f}% with it) and costs "
                    f"{p.spend.tokens / p.answered:,.0f} tokens an answer: leaving it out of \\[\\[teachers]]"
                    + (" and \\[routing] cascade" if config.routing.cascade else "")
                    + f" saves that (judged on {rep.judged} gold items)")
    c.print(f"pilot: {rep.spend.tokens:,} tokens, ${rep.spend.usd:.4f}, {rep.seconds:.0f} s (charged to the budget; "
            "the campaign reuses these answers)")
    held = (f" and {rep.reference_items} held-out items the teachers label first (no gold dev or test rows to choose "
            "the student on)" if rep.reference_items else "")
    silent = bool(rep.teachers) and all(p.answered == 0 and p.failed for p in rep.teachers)
    if silent:  # "projected campaign: 100 items, 0 tokens, $0.0000" read as a free campaign
        c.print("projected campaign: none: no teacher answered (the warnings below say why); fix that and run "
                "`distilloop pilot` again")
    elif rep.campaign_items or rep.reference_items:
        c.print(f"projected campaign: {rep.campaign_items} items{held}, {rep.projected.tokens:,} tokens, "
                f"${rep.projected.usd:.4f}, "
                f"about {rep.projected_seconds / 60:.0f} min of teacher time, about {rep.projected_reviews:.0f} reviews")
    else:  # "projected campaign: 0 items, 0 tokens" read as if the pilot had found the campaign free
        c.print("projected campaign: nothing left to label (its rounds are run or its pool is labeled: `distilloop "
                "estimate` says which and what to raise)")
    for p in rep.teachers:
        if p.failed:
            c.print(f"[yellow]warning:[/yellow] teacher {p.teacher} gave no answer to {p.failed} of the "
                    f"{p.failed + p.answered} items it was asked about" + (f"; the last error: {escape(p.error)}"
                                                                          if p.error else ""))
        if p.invalid:
            c.print(f"[yellow]warning:[/yellow] teacher {p.teacher} gave {p.invalid} invalid answer(s) of {p.answered} "
                    "(paid for, of no use)" + (f"; the last: {escape(p.invalid_error)}" if p.invalid_error else ""))
        # as the campaign counts its votes: a lean that calibration removes (a cascade's later teacher, asked only
        # where the first is unsure, may say "positive" to all of them) is not a teacher ignoring its input
        if p.one_label is not None:
            label, k, n = p.one_label
            c.print(f"[yellow]warning:[/yellow] teacher {p.teacher} answered {escape(repr(label))} to {k} of {n} items"
                    + (" (its calibrated votes)" if p.counted else "") + ": it is hardly reading the input")
    return 1 if silent else 0


def register(sub: Any) -> None:
    sp = sub.add_parser("pilot", help="ask every teacher about a small sample first: their answers, cost and speed",
                        description="Before the money: every teacher answers a seeded sample of the pool (charged to "
                                    "the budget; the campaign reuses these answers), and the pilot shows each "
                                    "teacher's labels, their agreement, accuracy where the data has gold, tokens, "
                                    "dollars and seconds per item, the review share, and the whole campaign's "
                                    "projected cost, time and review load.")
    with_config(sp)
    sp.add_argument("-n", type=int, default=30, help="how many pool items to ask about (default 30)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_pilot)

    sp = sub.add_parser("run", help="run (or resume) a campaign until a stopping rule holds",
                        description="Run rounds of select, annotate, aggregate, route, train, evaluate; print the "
                                    "learning curve. A campaign stopped at any point resumes where it was.")
    with_config(sp)
    sp.add_argument("--rounds", type=int, help="run at most this many rounds now (the campaign's own limits still apply)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("estimate", help="expected tokens and dollars of the next round and the campaign, per teacher",
                        description="Pre-flight estimate before anything is paid: expected and upper-bound tokens "
                                    "and USD per teacher, for the next round and every remaining round. The "
                                    "campaign file is checked exactly as `run` checks it.")
    with_config(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_estimate)
