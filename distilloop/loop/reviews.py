"""The campaign side of human review and of the ensemble's verdict, shared by the runner and the CLI.

- :func:`aggregate_round`: verdicts for a round's items; an aggregator with ``aggregate_many`` (Dawid-Skene)
  is fitted on the campaign's whole history plus the human-reviewed labels as known truth.
- :func:`update_reliability`: each teacher's confusion matrix (Dawid-Skene on every item and review so far),
  kept in the store for ``distilloop status``.
- :func:`push_pending` / :func:`pull_reviews`: hand routed items to a reviewer, and bring finished reviews
  back (the human label wins; a corrected rationale replaces the teachers').
- :func:`review_agreement`: inter-reviewer agreement (Cohen's / Fleiss' kappa) on items reviewed more than once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from distilloop.annotators.aggregation import DawidSkene, reliability_rows
from distilloop.annotators.agreement import cohen_kappa, fleiss_kappa
from distilloop.annotators.review import Reviewer
from distilloop.core.answers import normalize_number
from distilloop.core.types import ReviewItem, Verdict, Vote
from distilloop.storage.store import Store


def votes_from_rows(rows: Sequence[Mapping[str, Any]] | None) -> list[Vote]:
    """Votes back from a stored vote table (:func:`~distilloop.annotators.aggregation.vote_table`)."""
    out = []
    for r in rows or []:
        calibrated = r.get("calibrated_distribution")
        out.append(Vote(r["teacher"], r.get("label"), r.get("rationale"), r.get("confidence"),
                        bool(r.get("valid", True)), calibrated or r.get("distribution"), r.get("answered"),
                        r.get("distribution") if calibrated else None))
    return out


def aggregate_round(aggregator: Any, store: Store, votes: Mapping[str, Sequence[Vote]], labels: Sequence[str]
                    ) -> dict[str, Verdict]:
    if hasattr(aggregator, "aggregate_many"):
        history = {ex: votes_from_rows(rows) for ex, rows in store.all_votes().items()}
        history.update({ex: list(v) for ex, v in votes.items()})
        verdicts = aggregator.aggregate_many(history, labels, known=store.human_labels())
        return {ex: verdicts[ex] for ex in votes}
    return {ex: aggregator.aggregate(v, labels) for ex, v in votes.items()}


def update_reliability(store: Store, labels: Sequence[str]) -> None:
    """Re-estimate every teacher's per-class reliability from all votes so far, reviews as known truth."""
    history = {ex: votes_from_rows(rows) for ex, rows in store.all_votes().items()}
    if not history:
        return
    known = store.human_labels()
    ds = DawidSkene()
    ds.fit(history, labels, known)
    store.save_reliability(reliability_rows(ds.reliability_), method=ds.name, n_items=len(history),
                           n_known=sum(1 for ex in history if ex in known))


def review_item(store: Store, example_id: str, round_no: int, labels: Sequence[str]) -> ReviewItem | None:
    cons = store.consensus(example_id)
    if cons is None:
        return None
    verdict = Verdict(cons["label"], cons["soft_label"] or {}, cons["agreement"] or 0.0, cons["entropy"] or 0.0,
                      cons["n_votes"] or 0, cons["rationale"], cons["method"], cons["votes"] or [],
                      vote_share=cons.get("vote_share"),
                      rationales_agree=None if cons.get("rationales_agree") is None else bool(cons["rationales_agree"]))
    return ReviewItem(example_id, store.example(example_id).fields, verdict, round_no, tuple(labels),
                      answer="label" if labels else "number")


def push_pending(store: Store, reviewer: Reviewer, labels: Sequence[str], *, force: bool = False) -> int:
    """Submit pending queue items this reviewer has not got yet (no external id, or another backend's);
    ``force`` re-submits every pending item (reviewers are idempotent: nothing is imported twice)."""
    pending = [r for r in store.pending_reviews()
               if force or r["external_id"] is None or r["backend"] != reviewer.name]
    items = [it for r in pending if (it := review_item(store, r["example_id"], r["round"], labels)) is not None]
    if not items:
        return 0
    external = reviewer.submit(items)
    with store.atomic():
        for it in items:
            store.set_review_external_id(it.example_id, reviewer.name, external.get(it.example_id))
    return len(items)


def pull_reviews(store: Store, reviewer: Reviewer, labels: Sequence[str], round_no: int,
                 warn: Callable[[str], None] | None = None) -> int:
    """Bring finished reviews into the training data: the human label wins, a corrected rationale replaces the
    teachers'. Items without an answer stay pending. Returns the number of decisions recorded."""
    pending = store.pending_reviews()
    if not pending:
        return 0
    for row in pending:
        row["consensus"] = store.consensus(row["example_id"])
    decisions = reviewer.collect(pending)
    numeric = not labels  # an empty label set: the campaign's answers are numbers
    recorded = 0
    with store.atomic():
        for d in decisions:
            if numeric:
                number = normalize_number(d.label)
                if number is None:
                    if warn:
                        warn(f"review of {d.example_id} gave answer '{d.label}', which is not a number; ignored "
                             "(the item stays in the queue)")
                    continue
                d = dataclasses.replace(d, label=number)
            elif d.label not in labels:
                if warn:
                    warn(f"review of {d.example_id} gave label '{d.label}' outside the label set; ignored "
                         "(fix the labeling config's choices)")
                continue
            store.record_review(d.example_id, round_no=round_no, reviewer=d.reviewer, label=d.label,
                                rationale=d.rationale, seconds_spent=d.seconds_spent, source=d.source,
                                external_id=d.external_id)
            cons = store.consensus(d.example_id) or {}
            store.accept_label(d.example_id, d.label, rationale=d.rationale or cons.get("rationale"),
                               source=d.source, round_no=round_no,
                               # a person's answer is certain; an automatic acceptance keeps the teachers' doubt
                               soft_label=(cons.get("soft_label") if d.source == "auto" and cons.get("soft_label")
                                           else {x: float(x == d.label) for x in labels or (d.label,)}))
            store.resolve_review(d.example_id, round_no)
            recorded += 1
    if recorded and not numeric and any(d.source != "auto" for d in decisions):
        update_reliability(store, labels)
    return recorded


def review_agreement(store: Store, labels: Sequence[str]) -> dict[str, Any]:
    """Kappa over items with more than one review (auto-accepts excluded): Cohen's when exactly two reviewers
    rated every such item, Fleiss' otherwise."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for r in store.reviews():
        if r["source"] != "auto":
            by_item.setdefault(r["example_id"], []).append(r)
    multi = {ex: rs for ex, rs in by_item.items() if len(rs) > 1}
    out: dict[str, Any] = {"items_reviewed": len(by_item), "items_multi": len(multi), "kappa": None, "method": None}
    if not multi:
        return out
    reviewers = {r["reviewer"] for rs in multi.values() for r in rs}
    if not labels:  # numeric answers: the categories are the answers the reviewers gave
        labels = sorted({r["label"] for rs in multi.values() for r in rs})
    if len(reviewers) == 2 and all(len(rs) == 2 for rs in multi.values()):
        a_name, b_name = sorted(reviewers)
        pairs = [({r["reviewer"]: r["label"] for r in rs}) for rs in multi.values()]
        pairs = [p for p in pairs if len(p) == 2]
        if pairs:
            out["kappa"] = cohen_kappa([p[a_name] for p in pairs], [p[b_name] for p in pairs], labels)
            out["method"] = "cohen"
            return out
    out["kappa"] = fleiss_kappa([[r["label"] for r in rs] for rs in multi.values()], labels)
    out["method"] = "fleiss"
    return out
