"""Review sessions run by hand: ``review push``, ``review pull`` and ``review status``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from distilloop.cli.common import open_store, with_config


def cmd_review(args: argparse.Namespace) -> int:
    from distilloop.loop.parts import build_reviewer
    from distilloop.loop.steps.review import by_reviewer, pull_reviews, push_pending, review_agreement

    config, store = open_store(args, writer=None if args.action == "status" else f"review {args.action}")
    try:
        space = config.space
        if args.action == "status":
            pending = store.pending_reviews()
            by: dict[str, int] = {}
            for r in pending:
                key = f"{r['backend']} round {r['round']}" + ("" if r["external_id"] else " (not pushed)")
                by[key] = by.get(key, 0) + 1
            sources = store.review_sources()
            ra = review_agreement(store, space)
            people = by_reviewer(store)
            out = {"pending": len(pending), "pending_by": by, "reviews": sum(sources.values()), "by_source": sources,
                   "kappa": ra["kappa"], "kappa_method": ra["method"], "items_reviewed_more_than_once": ra["items_multi"],
                   "by_reviewer": people, "skipped": len(store.skipped_reviews())}
            if args.json:
                print(json.dumps(out, indent=2))
            else:
                print(f"pending: {out['pending']} ({', '.join(f'{k}: {v}' for k, v in by.items()) or '-'}); "
                      f"reviews recorded: {out['reviews']}"
                      + (f" ({', '.join(f'{k}: {v}' for k, v in out['by_source'].items())})" if out["by_source"] else "")
                      + (f"; skipped by every reviewer: {out['skipped']} (left out of training)" if out["skipped"]
                         else ""))
                for p in people:
                    took = "" if p["median_seconds"] is None else f", median {p['median_seconds']:.0f} s each"
                    print(f"  {p['reviewer']}: {p['reviews']} review(s){took}; {p['changed']} gave another label than "
                          "the teachers' ensemble")
                if ra["kappa"] is not None:
                    print(f"reviewer agreement: {ra['method']} kappa {ra['kappa']:.3f} over {ra['items_multi']} items")
                if sources.get("simulated"):
                    print("note: simulated reviews (SimulatedReviewer answers from gold labels) are not human work")
            return 0
        if config.review.kind == "auto":  # nothing to send or fetch: the round itself accepts what it routes
            print(f"review {args.action}: [review] kind = \"auto\" has no reviewer to {args.action} "
                  f"{'to' if args.action == 'push' else 'from'}: routed items are accepted with the ensemble's label "
                  "as the round runs" + (f" ({waiting} wait: the teachers split evenly, no label to accept)"
                                           if (waiting := store.pending_review_count()) else "")
                  + "; set kind = \"label_studio\" to send them to people (docs/review.md)")
            return 0
        reviewer = build_reviewer(config)
        reviewer.attach(store)
        try:
            if args.action == "push":
                n = push_pending(store, reviewer, space, force=args.force)
                print(f"pushed {n} pending item(s) to {reviewer.name}")
            else:
                last = max((r["round"] for r in store.rounds()), default=0)
                n = pull_reviews(store, reviewer, space, last, warn=lambda m: print(f"warning: {m}", file=sys.stderr),
                                 note=print)
                print(f"pulled {n} review(s); {store.pending_review_count()} still pending")
        finally:
            reviewer.close()
    finally:
        store.close()
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("review", help="push routed items to the reviewer, pull finished reviews, or show the queue",
                        description="For review sessions run by hand: `push` sends pending items the reviewer has not "
                                    "got yet (e.g. Label Studio was down during the round), `pull` records finished "
                                    "reviews (the human label wins), `status` shows the queue and reviewer agreement.")
    sp.add_argument("action", choices=["push", "pull", "status"], help="push, pull or status")
    with_config(sp)
    sp.add_argument("--force", action="store_true", help="push: re-send every pending item (nothing is imported twice)")
    sp.add_argument("--json", action="store_true", help="status: machine-readable output")
    sp.set_defaults(func=cmd_review)
