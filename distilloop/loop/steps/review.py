"""Review: routed items handed to a reviewer, and finished reviews brought back into the training data (the
human label wins; a corrected rationale replaces the teachers'), with each teacher's reliability re-estimated
and the agreement between reviewers measured.

- :func:`update_reliability`: each teacher's confusion matrix (Dawid-Skene on every item and review so far).
- :func:`push_pending` / :func:`pull_reviews`: hand routed items to a reviewer, bring finished reviews back.
- :func:`review_agreement`: inter-reviewer agreement (Cohen's / Fleiss' kappa) on items reviewed more than once.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from distilloop.annotators.aggregation import DawidSkene, reliability_rows, votes_from_rows
from distilloop.annotators.agreement import cohen_kappa, fleiss_kappa
from distilloop.annotators.review import Reviewer
from distilloop.core.answers import AnswerSpace
from distilloop.core.types import ReviewDecision, ReviewItem, Verdict
from distilloop.storage.store import Store


def update_reliability(store: Store, labels: Sequence[str]) -> None:
    """Re-estimate every teacher's per-class reliability from all votes so far, reviews as known truth."""
    history = {ex: votes_from_rows(rows) for ex, rows in store.all_votes().items()}
    if not history:
        return
    known = store.human_labels()
    ds = DawidSkene()
    ds.fit(history, labels, known)
    store.save_reliability(reliability_rows(ds.reliability_), method=ds.name, n_items=ds.n_informative_,
                           n_known=sum(1 for ex in history if ex in known))


def review_item(store: Store, example_id: str, round_no: int, space: AnswerSpace,
                guideline: str = "") -> ReviewItem | None:
    cons = store.consensus(example_id)
    if cons is None:
        if store.reference_of(example_id) != "audit":
            return None
        cons = {"label": None, "soft_label": {}, "agreement": 0.0, "entropy": 0.0, "n_votes": 0, "rationale": None,
                "method": "audit", "votes": []}  # an audit item: the reviewer answers without the teachers' vote
    verdict = Verdict(cons["label"], cons["soft_label"] or {}, cons["agreement"] or 0.0, cons["entropy"] or 0.0,
                      cons["n_votes"] or 0, cons["rationale"], cons["method"], cons["votes"] or [],
                      vote_share=cons.get("vote_share"),
                      rationales_agree=None if cons.get("rationales_agree") is None else bool(cons["rationales_agree"]))
    return ReviewItem(example_id, store.example(example_id).fields, verdict, round_no, space.labels, answer=space.kind,
                      guideline=guideline)


def push_pending(store: Store, reviewer: Reviewer, space: AnswerSpace, *, force: bool = False) -> int:
    """Submit pending queue items this reviewer has not got yet (no external id, or another backend's);
    ``force`` re-submits every pending item (reviewers are idempotent: nothing is imported twice)."""
    pending = [r for r in store.pending_reviews()
               if force or r["external_id"] is None or r["backend"] != reviewer.name]
    guideline = str((store.guidelines() or [{}])[-1].get("task") or "")  # what reviewers are told: the current task
    items = [it for r in pending
             if (it := review_item(store, r["example_id"], r["round"], space, guideline)) is not None]
    if not items:
        return 0
    external = reviewer.submit(items)
    with store.atomic():
        for it in items:
            store.set_review_external_id(it.example_id, reviewer.name, external.get(it.example_id))
    return len(items)


def pull_reviews(store: Store, reviewer: Reviewer, space: AnswerSpace, round_no: int,
                 warn: Callable[[str], None] | None = None, note: Callable[[str], None] | None = None) -> int:
    """Bring finished reviews into the training data: the human label wins, a corrected rationale replaces the
    teachers'. Items without an answer stay pending; reviews changed at the reviewer after their items were taken
    replace what was recorded (:func:`pull_revisions`). Returns the number of reviews recorded."""
    recorded, by_people = 0, False
    if pending := store.pending_reviews() + store.skipped_reviews():  # a skipped item is taken if answered later
        recorded, by_people = _take(store, reviewer, space, round_no, pending, warn, note)
    revised = pull_revisions(store, reviewer, space, round_no, warn, note)
    if ((recorded and by_people) or revised) and space.has_label_set:
        update_reliability(store, space.labels)
    return recorded + revised


def _take(store: Store, reviewer: Reviewer, space: AnswerSpace, round_no: int, pending: list[dict[str, Any]],
          warn: Callable[[str], None] | None, note: Callable[[str], None] | None) -> tuple[int, bool]:
    """Record the decisions for queued items; returns how many, and whether people (not `auto`) gave any."""
    for row in pending:
        row["consensus"] = store.consensus(row["example_id"])
    decisions = reviewer.collect(pending)
    if lost := reviewer.lost():  # deleted at the reviewer: queued to be sent again, nothing lost here
        with store.atomic():
            for ex in lost:
                store.requeue_review(ex, reviewer.name)
        if warn:
            warn(f"{len(lost)} item(s) sent for review are no longer in {reviewer.name} (deleted there, or its data "
                 "reset): queued again, the next round or `distilloop review push` sends them")
    if (unread := reviewer.unread()) and warn:
        ex, why = unread[0]
        warn(f"{len(unread)} item(s) answered in {reviewer.name} give no label the campaign can read ({ex}: {why}); "
             "they stay pending until it can")
    waiting = {r["example_id"] for r in pending if r["status"] == "pending"}
    if skipped := [ex for ex in reviewer.skipped() if ex in waiting]:
        with store.atomic():
            for ex in skipped:
                store.skip_review(ex, round_no)
        if note:
            note(f"{len(skipped)} item(s) skipped by their reviewers in {reviewer.name}, which counts them done: left "
                 "out of training (an answer given there later is taken)")
    recorded = 0
    with store.atomic():
        for ex, reviews in _in_label_set(decisions, space, warn).items():
            for d in reviews:  # every review is kept (reviewer agreement reads them)
                store.record_review(ex, round_no=round_no, reviewer=d.reviewer, label=d.label,
                                    rationale=d.rationale, seconds_spent=d.seconds_spent, source=d.source,
                                    external_id=d.external_id, ref=d.ref, version=d.version)
            recorded += len(reviews)
            cons = store.consensus(ex) or {}
            d = settle(reviews, cons.get("label"))
            if store.reference_of(ex) == "audit":  # an audit answer: the reference, not training data
                store.set_reference_label("audit", ex, d.label, source=d.source, round_no=round_no)
                store.resolve_review(ex, round_no)
                continue
            store.accept_label(ex, d.label, rationale=d.rationale or rationale_for(d.label, cons, space),
                               source=d.source, round_no=round_no,
                               # a person's answer is certain; an automatic acceptance keeps the teachers' doubt
                               soft_label=(cons.get("soft_label") if d.source == "auto" and cons.get("soft_label")
                                           else space.certain(d.label)))
            store.resolve_review(ex, round_no)
    return recorded, any(d.source != "auto" for d in decisions)


def pull_revisions(store: Store, reviewer: Reviewer, space: AnswerSpace, round_no: int,
                   warn: Callable[[str], None] | None = None, note: Callable[[str], None] | None = None) -> int:
    """Reviews a reviewer changed, added or deleted after the campaign took their items: a changed one replaces
    the review it revises, a deleted one is dropped, and the item's label is settled again from the reviews of the
    task it was last sent as (the label keeps its round; the next student trains on it); an item left with no
    review is pending again, untrained on. Returns the number of reviews changed, added or deleted."""
    taken = store.taken_reviews(reviewer.name)
    if not taken:
        return 0
    by_ref = {(r["example_id"], r["ref"]): r for r in taken if r["ref"]}
    current = {r["example_id"]: r["queued_as"] for r in taken}
    decided = _in_label_set(reviewer.revised(taken), space, warn)
    gone = [by_ref[key] for key in reviewer.retracted() if key in by_ref]
    touched: dict[str, set[str | None]] = {}  # item -> the tasks whose reviews changed
    changed: dict[str, str | None] = {}
    reopened: list[str] = []
    with store.atomic():
        for ex, decisions in decided.items():
            for d in decisions:
                if (row := by_ref.get((ex, d.ref))) is not None:
                    store.revise_review(row["id"], reviewer=d.reviewer, label=d.label, rationale=d.rationale,
                                        seconds_spent=d.seconds_spent, version=d.version)
                else:
                    store.record_review(ex, round_no=round_no, reviewer=d.reviewer, label=d.label,
                                        rationale=d.rationale, seconds_spent=d.seconds_spent, source=d.source,
                                        external_id=d.external_id, ref=d.ref, version=d.version)
                touched.setdefault(ex, set()).add(d.external_id)
        for row in gone:
            store.delete_review(row["id"])
            touched.setdefault(row["example_id"], set()).add(row["external_id"])
        for ex, tasks in touched.items():
            if current[ex] not in tasks or store.reference_of(ex) == "audit" and not decided.get(ex):
                continue  # sent again since (the new task decides it), or an audit answer taken back (kept)
            reviews = [ReviewDecision(ex, r["label"], r["rationale"], r["reviewer"], r["source"])
                       for r in store.reviews(ex) if r["source"] != "auto" and r["external_id"] == current[ex]]
            if not reviews:  # every answer taken back: it waits for a reviewer again
                store.unaccept_label(ex)
                store.reopen_review(ex)
                reopened.append(ex)
                continue
            cons = store.consensus(ex) or {}
            d = settle(reviews, cons.get("label"))
            if store.reference_of(ex) == "audit":
                store.set_reference_label("audit", ex, d.label, source=d.source, round_no=round_no)
                continue
            before = store.revise_label(ex, d.label, rationale=d.rationale or rationale_for(d.label, cons, space),
                                        source=d.source, soft_label=space.certain(d.label))
            if before != d.label:
                changed[ex] = before
    n = sum(len(v) for v in decided.values())
    if (n or gone) and note:
        said = []
        if changed:
            said.append(f"{len(changed)} label(s) now differ ({_sample(changed, store)}); the next student trains "
                        "on them")
        if reopened:
            said.append(f"{len(reopened)} item(s) lost every review ({', '.join(reopened[:3])}) and wait for a "
                        "reviewer again, untrained on")
        done = " and ".join([f"{n} review(s) changed"] * bool(n) + [f"{len(gone)} review(s) deleted"] * bool(gone))
        note(f"{done} in {reviewer.name} after their items were taken: {'; '.join(said) or 'no label changed'}")
    return n + len(gone)


def _sample(changed: dict[str, str | None], store: Store) -> str:
    labels = store.accepted_labels(list(changed)[:3])
    shown = ", ".join(f"{ex}: {changed[ex]} -> {labels.get(ex)}" for ex in list(changed)[:3])
    return shown + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")


def _in_label_set(decisions: Sequence[ReviewDecision], space: AnswerSpace,
                  warn: Callable[[str], None] | None) -> dict[str, list[ReviewDecision]]:
    """Decisions by item, their labels normalised; one outside the label set is said and dropped."""
    by_item: dict[str, list[ReviewDecision]] = {}
    for d in decisions:
        label = space.normalize(d.label)
        if label is None:
            if warn:
                warn(f"review of {d.example_id} gave {d.label!r}, which is not one of the {space.describe()}; "
                     "ignored (an item sent for review stays in the queue until a review gives one of them)")
            continue
        by_item.setdefault(d.example_id, []).append(dataclasses.replace(d, label=label))
    return by_item


def settle(reviews: Sequence[ReviewDecision], teachers: str | None) -> ReviewDecision:
    """The review that decides an item several people reviewed (a project with two annotators per task): the
    label most of them gave; on a tie the teachers' label if it is among the tied, else the latest review's. Its
    rationale is the latest one written for that label."""
    counts = Counter(d.label for d in reviews)
    top = max(counts.values())
    tied = [label for label, n in counts.items() if n == top]
    label = teachers if teachers in tied else next(d.label for d in reversed(reviews) if d.label in tied)
    chosen = [d for d in reviews if d.label == label]
    written = [d.rationale for d in chosen if d.rationale]
    return dataclasses.replace(chosen[-1], rationale=written[-1] if written else None)


def rationale_for(label: str, cons: dict[str, Any], space: AnswerSpace) -> str | None:
    """The teachers' rationale that goes with a reviewer's ``label`` when the reviewer wrote none: the verdict's
    where the reviewer kept its label, else that of the most confident teacher who answered ``label``, else none
    (a rationale arguing for the label the reviewer overruled would teach a step-by-step student the opposite)."""
    if cons.get("label") is not None and space.normalize(str(cons["label"])) == label:
        return cons.get("rationale")
    agreeing = [v for v in cons.get("votes") or [] if v.get("valid", True) and v.get("rationale")
                and v.get("label") is not None and space.normalize(str(v["label"])) == label]
    best = max(agreeing, key=lambda v: v.get("confidence") or 0.0, default=None)
    return best["rationale"] if best is not None else None


def by_reviewer(store: Store) -> list[dict[str, Any]]:
    """Per reviewer (auto-accepts excluded): how many reviews, the median seconds spent on one, and how many gave
    another label than the teachers' ensemble (what review changed), the busiest first."""
    out: dict[str, dict[str, Any]] = {}
    ensemble: dict[str, Any] = {}
    for r in store.reviews():
        if r["source"] == "auto":
            continue
        row = out.setdefault(r["reviewer"], {"reviewer": r["reviewer"], "source": r["source"], "reviews": 0,
                                             "changed": 0, "seconds": []})
        row["reviews"] += 1
        if r["seconds_spent"] is not None:
            row["seconds"].append(float(r["seconds_spent"]))
        if r["example_id"] not in ensemble:
            ensemble[r["example_id"]] = (store.consensus(r["example_id"]) or {}).get("label")
        row["changed"] += ensemble[r["example_id"]] is not None and r["label"] != ensemble[r["example_id"]]
    for row in out.values():
        seconds = row.pop("seconds")
        row["median_seconds"] = statistics.median(seconds) if seconds else None
    return sorted(out.values(), key=lambda x: (-x["reviews"], x["reviewer"]))


def review_agreement(store: Store, space: AnswerSpace) -> dict[str, Any]:
    """Kappa over items with more than one review (auto-accepts excluded): Cohen's when exactly two reviewers
    rated every such item, Fleiss' otherwise."""
    by_item: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for r in store.reviews():  # per item as sent (an item re-asked under a new guideline is reviewed anew)
        if r["source"] != "auto":
            by_item.setdefault((r["example_id"], r["external_id"]), []).append(r)
    multi = {ex: rs for ex, rs in by_item.items() if len(rs) > 1}
    out: dict[str, Any] = {"items_reviewed": len({ex for ex, _ in by_item}), "items_multi": len(multi),
                           "kappa": None, "method": None}
    if not multi:
        return out
    reviewers = {r["reviewer"] for rs in multi.values() for r in rs}
    # the categories: the label set, or (numeric answers) the answers the reviewers gave
    labels = list(space.labels) or sorted({r["label"] for rs in multi.values() for r in rs})
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
