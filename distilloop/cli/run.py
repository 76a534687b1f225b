"""Running a campaign: ``run`` (rounds until a stopping rule holds) and ``estimate`` (what it will cost)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from distilloop.cli.common import console, load, with_config


def cmd_run(args: argparse.Namespace) -> int:
    from distilloop.loop.campaign import Campaign
    from distilloop.loop.progress import Progress
    from distilloop.reports.table import rounds_table

    config = load(args)
    progress = Progress(quiet=args.quiet)
    out = console()
    campaign = Campaign.open(config, progress=progress)
    try:
        def on_round(n: int) -> None:
            if not args.quiet:
                row = campaign.store.round_rows()[-1]
                acc = row.accuracy
                progress.note(f"round {n} done: {row.labeled} labeled, {row.tokens_in + row.tokens_out:,} tokens, "
                              f"${row.usd:.4f}, student accuracy {'-' if acc is None else f'{100 * acc:.1f}%'}")

        reason = campaign.run(max_rounds=args.rounds, on_round=on_round)
        out.print(rounds_table(campaign.store.round_rows(), title=f"Campaign {config.campaign.name}: learning curve"))
        out.print(f"stopped: {reason}")
        out.print(f"store: {config.store_path}", soft_wrap=True)
    finally:
        campaign.close()
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from distilloop.loop.estimate import estimate_campaign

    est = estimate_campaign(load(args))
    if args.json:
        print(json.dumps(est.as_dict(), indent=2, default=str))
        return 0
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
    c = console()
    c.print(table)
    caps = est.caps
    c.print(f"budget: ${est.spent.usd:.4f} spent of {'no cap' if caps.usd is None else f'${caps.usd:.2f}'}; "
            f"{est.verdict()}")
    c.print(f"method: {est.method}")
    return 0


def register(sub: Any) -> None:
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
