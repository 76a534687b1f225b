"""Decide: the ensemble's verdict on each item, its route (accept, or human review), and the commit: consensus,
accepted labels and the review queue written in one transaction, the routed items handed to the reviewer."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from distilloop.annotators.aggregation import votes_from_rows
from distilloop.core.answers import AnswerSpace
from distilloop.core.failpoints import failpoint
from distilloop.core.types import ReviewItem, Verdict, Vote
from distilloop.errors import ReviewError
from distilloop.loop.env import Env
from distilloop.loop.routing import ACCEPT, REVIEW
from distilloop.loop.steps.annotate import Annotation
from distilloop.loop.steps.review import update_reliability
from distilloop.storage.store import Store


@dataclass
class Decision:
    example_id: str
    verdict: Verdict
    route: str  # "accept" or "review"


def aggregate(aggregator: object, space: AnswerSpace, store: Store,
              votes: Mapping[str, Sequence[Vote]]) -> dict[str, Verdict]:
    """Verdicts for a round's items. An aggregator fitted over the campaign (``aggregate_many``: Dawid-Skene)
    sees the whole history, with the human-reviewed labels as known truth; the others each item alone, over
    the labels its votes are counted over."""
    if hasattr(aggregator, "aggregate_many"):
        history = {ex: votes_from_rows(rows) for ex, rows in store.all_votes().items()}
        history.update({ex: list(v) for ex, v in votes.items()})
        verdicts = aggregator.aggregate_many(history, space.labels, known=store.human_labels())
        out = {ex: verdicts[ex] for ex in votes}
    else:
        out = {ex: aggregator.aggregate(v, space.support(v)) for ex, v in votes.items()}  # type: ignore[attr-defined]
    if not space.rationales_take_sides:
        out = {ex: dataclasses.replace(v, rationales_agree=None) for ex, v in out.items()}
    return out


def decide(env: Env, ann: Annotation) -> list[Decision]:
    by_id = aggregate(env.parts.aggregator, env.parts.space, env.store, ann.votes)
    verdicts = [(i, by_id[i]) for i in ann.ids if i in by_id]
    routes = env.parts.router.route(verdicts)
    failpoint("aggregated")
    return [Decision(i, v, routes[i]) for i, v in verdicts]


def commit(env: Env, ann: Annotation, decisions: Sequence[Decision]) -> None:
    """Consensus, accepted labels and the review queue in one transaction; the round moves on to training."""
    store, round_no, space = env.store, ann.round_no, env.parts.space
    reviewer = env.parts.reviewer
    to_review: list[ReviewItem] = []
    with store.atomic():
        rows = []
        for d in decisions:
            v = d.verdict
            rows.append({"example_id": d.example_id, "round": round_no, "label": v.label, "soft_label": v.soft_label,
                         "agreement": v.agreement, "entropy": v.entropy, "n_votes": v.n_votes, "method": v.method,
                         "route": d.route, "rationale": v.rationale, "votes": v.votes, "vote_share": v.vote_share,
                         "tiers_asked": ann.tiers_asked.get(d.example_id),
                         "rationales_agree": None if v.rationales_agree is None else int(v.rationales_agree)})
            if d.route == ACCEPT and v.label is not None:
                store.accept_label(d.example_id, v.label, rationale=v.rationale, source="teachers", round_no=round_no,
                                   soft_label=v.soft_label)
            elif d.route == REVIEW:
                to_review.append(ReviewItem(d.example_id, env.examples[d.example_id].fields, v, round_no, space.labels,
                                            answer=space.kind))
        store.save_consensus(rows)
        if to_review:
            try:
                external = reviewer.submit(to_review)
            except ReviewError as exc:  # queued anyway: pushed again next round or by `distilloop review push`
                env.progress.warn(f"{len(to_review)} item(s) queued for review but not sent: {exc}")
                external = {}
            for it in to_review:
                store.enqueue_review(it.example_id, round_no, reviewer.name, external.get(it.example_id))
        if space.has_label_set:  # per-class reliability (Dawid-Skene) needs a label set; in the same unit of work
            update_reliability(store, space.labels)
        store.set_round_status(round_no, "training")
    failpoint("committed")
