"""Decide: the ensemble's verdict on each item, its route (accept, or human review), and the commit: consensus,
accepted labels and the review queue written in one transaction, the routed items handed to the reviewer."""

from __future__ import annotations

import asyncio
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
from distilloop.loop.steps.annotate import Annotation, ask, calibrate
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


def asked(env: Env, ann: Annotation, example_id: str) -> list[str]:
    """The teachers the campaign asked about an item: every teacher, or with a cascade the tiers it reached."""
    cascade = env.parts.cascade
    if cascade is None:
        return [t.name for t in env.parts.teachers]
    return [n for tier in cascade.tiers[: ann.tiers_asked.get(example_id, len(cascade.tiers))] for n in tier]


def with_missing_votes(votes: Sequence[Vote], teachers: Sequence[str]) -> list[Vote]:
    """``votes`` plus an invalid vote for each teacher asked that gave none (it failed, the budget refused it, or
    it was taken out of the round): a missing vote is dissent, never silence."""
    have = {v.teacher for v in votes}
    return [*votes, *(Vote(t, None, valid=False) for t in teachers if t not in have)]


def degrade(verdict: Verdict, n_asked: int) -> Verdict:
    """Agreement over the teachers asked, not over those who answered validly: one valid vote of two is at most
    0.5, so it is never accepted as unanimous."""
    share = verdict.n_votes / n_asked if n_asked else 0.0
    vote_share = None if verdict.vote_share is None else verdict.vote_share * share
    return dataclasses.replace(verdict, agreement=verdict.agreement * share, vote_share=vote_share, n_asked=n_asked)


def decide(env: Env, ann: Annotation) -> list[Decision]:
    """Each item's verdict, its agreement counted over the teachers asked, and its route."""
    expected = {i: asked(env, ann, i) for i in ann.votes}
    votes = {i: with_missing_votes(v, expected[i]) for i, v in ann.votes.items()}
    by_id = aggregate(env.parts.aggregator, env.parts.space, env.store, votes)
    verdicts = [(i, degrade(by_id[i], len(expected[i]))) for i in ann.ids if i in by_id]
    routes = env.parts.router.route(verdicts)
    failpoint("aggregated")
    return [Decision(i, v, routes[i]) for i, v in verdicts]


def explain_for_review(env: Env, ann: Annotation, decisions: list[Decision]) -> list[Decision]:
    """Items going to a person whose teachers gave no rationale (asked for the label alone) are asked again with
    the teachers' own prompt style, so the reviewer sees each teacher's reasoning; their verdicts are recomputed
    from the explained answers and they stay routed to review."""
    if env.parts.reviewer.name == "auto":
        return decisions
    todo = [d.example_id for d in decisions if d.route == REVIEW
            and not any(v.rationale for v in ann.votes.get(d.example_id, []))]
    if not todo:
        return decisions
    items = [env.item(env.examples[i], rationale=True) for i in todo]
    with env.progress.bar(f"round {ann.round_no}: teachers explaining items for review",
                          len(items) * len(env.parts.teachers)) as advance:
        result, _ = asyncio.run(ask(env, items, ann.round_no, advance))
    fresh = calibrate(env, {i: result.votes[i] for i in todo if result.votes.get(i)}, round_no=ann.round_no)
    explained = {i: with_missing_votes(v, asked(env, ann, i)) for i, v in fresh.items()}
    verdicts = aggregate(env.parts.aggregator, env.parts.space, env.store, explained)
    for i, v in fresh.items():
        ann.votes[i] = v
    return [Decision(d.example_id, degrade(verdicts[d.example_id], len(asked(env, ann, d.example_id))), REVIEW)
            if d.example_id in verdicts else d for d in decisions]


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
                         "n_asked": v.n_asked,
                         "tiers_asked": ann.tiers_asked.get(d.example_id),
                         "rationales_agree": None if v.rationales_agree is None else int(v.rationales_agree)})
            if d.route == ACCEPT and v.label is not None:
                store.accept_label(d.example_id, v.label, rationale=v.rationale, source="teachers", round_no=round_no,
                                   soft_label=v.soft_label)
            elif d.route == REVIEW:
                to_review.append(ReviewItem(d.example_id, env.examples[d.example_id].fields, v, round_no, space.labels,
                                            answer=space.kind, guideline=env.config.campaign.task))
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
