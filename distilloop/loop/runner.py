"""The round runner: select, annotate, aggregate, route, train, evaluate, checkpoint; stop when done.

Each step ends in a checkpoint (the round's ``status`` in the store), so a campaign killed at any point
continues with ``distilloop run``: a round is resumed at the step it was in, and teacher answers already paid
for are reused by request hash, never bought again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.annotators.base import Teacher
from distilloop.annotators.ensemble import AnnotationResult, TeacherEnsemble
from distilloop.core.answers import answer_support
from distilloop.core.ledger import Budget
from distilloop.core.types import Example, LabelingItem, ReviewItem, Spend, Vote
from distilloop.data import load_examples
from distilloop.errors import BatchPending, ConfigError, ReviewError, StoreError
from distilloop.loop import factory, stopping
from distilloop.loop.config import CampaignConfig
from distilloop.loop.metrics import evaluate
from distilloop.loop.progress import Progress
from distilloop.loop.reviews import (
    aggregate_round,
    pull_reviews,
    push_pending,
    update_reliability,
    votes_from_rows,
)
from distilloop.loop.routing import ACCEPT, ASK_NEXT, REVIEW, CascadePolicy, ThresholdRouter
from distilloop.storage.store import Store
from distilloop.strategies.base import SelectionContext
from distilloop.students.base import Student

log = logging.getLogger(__name__)

#: salt of the stop set's generator (round 0): apart from every round's selection draws
STOP_SET_SALT = 57


@dataclass
class RoundOutcome:
    round: int
    stop_reason: str | None = None


class Campaign:
    """One campaign: its config, its store and its parts. Use :meth:`open` to create or resume one."""

    def __init__(self, config: CampaignConfig, store: Store, *, progress: Progress | None = None,
                 teachers: list[Teacher] | None = None, reviewer: Any = None) -> None:
        self.config = config
        self.store = store
        self.progress = progress or Progress(quiet=True)
        self.labels = list(config.campaign.labels)
        self.numeric = config.campaign.numeric  # open numeric answers: each item's label set is its answers
        self.teachers = teachers if teachers is not None else factory.build_teachers(config)
        self.strategy = factory.build_strategy(config)
        self.student_template: Student = factory.build_student(config)
        if hasattr(self.student_template, "attach_cache"):  # e.g. embeddings: computed once per campaign
            self.student_template.attach_cache(store)
        self.reviewer = reviewer if reviewer is not None else factory.build_reviewer(config)
        self.reviewer.attach(store)
        self.aggregator = factory.build_aggregator(config)
        self.calibration = factory.build_calibration(config)
        self.router = ThresholdRouter(config.routing.min_agreement, config.routing.max_review_per_round)
        tiers = config.routing.tiers()
        self.cascade = CascadePolicy(tiers, config.routing.cascade_min_confidence) if tiers else None
        caps, round_caps = config.budget.caps()
        self.budget = Budget(caps, round_caps, spent=store.spent())
        self.ensemble = TeacherEnsemble(self.teachers, store, self.budget, concurrency=config.rounds.concurrency)
        self._examples = {e.id: e for e in store.examples()}

    # -- opening -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, config: CampaignConfig, **kwargs: Any) -> Campaign:
        """Create the store from the data file (validated first: bad data leaves nothing behind) or reopen it."""
        factory.check_answer_kind(config)  # every run: the student or strategy may have changed in the file
        path = config.store_path
        fingerprint = config.fingerprint()
        if path.exists():
            store = Store.open(path)
            recorded = store.get_meta("fingerprint")
            if recorded is not None and recorded != fingerprint:
                store.close()
                raise StoreError(
                    f"{path} belongs to a campaign with other labels, data or teachers than {config.path}; "
                    "changing those under a running campaign would mix incompatible answers: set a new "
                    "[campaign] store (or name) to start a new campaign")
            try:
                stopping.check_dev_split(config, store.examples("dev"))
            except ConfigError:
                store.close()
                raise
        else:
            # build every part first, so a config error leaves no store behind
            factory.build_teachers(config)
            factory.build_strategy(config)
            factory.build_student(config)
            factory.build_aggregator(config)
            factory.build_calibration(config)
            examples = load_examples(config.data_path, config.data_spec(), config.campaign.labels,
                                     config.campaign.answer)
            stopping.check_dev_split(config, examples)
            store = Store.create(path, examples, {"fingerprint": fingerprint, "name": config.campaign.name,
                                                  "labels": config.campaign.labels, "config": config.raw})
        return cls(config, store, **kwargs)

    # -- helpers -------------------------------------------------------------------------------------
    def item(self, e: Example) -> LabelingItem:
        # the gold label reaches a teacher only when its prompt style asks for it (ground-truth priming)
        gold = e.gold if any(getattr(t.style, "needs_gold", False) for t in self.teachers) else None
        return LabelingItem(e.id, e.fields, tuple(self.labels), self.config.campaign.task, gold=gold,
                            answer=self.config.campaign.answer)

    def label_set(self, votes: Sequence[Vote]) -> tuple[str, ...]:
        """The labels an item's votes are counted over: the campaign's, or for numeric answers the answers given."""
        return answer_support(votes) if self.numeric else tuple(self.labels)

    def with_student_explanations(self, items: list[LabelingItem], round_no: int) -> list[LabelingItem]:
        """For explanation revision (ELAD): the student's explanation the ``elad`` strategy kept for each item."""
        if not any(getattr(t.style, "uses_student_explanation", False) for t in self.teachers):
            return items
        out = []
        for it in items:
            raw = self.store.cache_get("student_explanation", f"{round_no}:{it.example_id}")
            if raw:
                steps = json.loads(raw).get("steps") or []
                it = dataclasses.replace(it, student_explanation="\n".join(str(s) for s in steps))
            out.append(it)
        return out

    def students_dir(self) -> Path:
        return self.config.store_path.with_name(self.config.campaign.name + ".students")

    def active_student(self) -> Student | None:
        row = self.store.active_student()
        if row is None:
            return None
        return Student.load(row["path"])

    def unlabeled_pool(self) -> list[Example]:
        taken = {r["example_id"] for r in self.store.db.query("select example_id from consensus")}
        return [e for e in self._examples.values() if e.split == "pool" and e.id not in taken]

    def rng(self, round_no: int, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.config.campaign.seed, round_no, salt])

    def stop_set(self) -> list[str]:
        """The fixed stop set of stabilizing predictions: chosen once from the unlabeled pool (seeded by the
        campaign seed), then read back from the store, so a resumed campaign predicts the same items."""
        return stopping.ensure_stop_set(self.store, [e.id for e in self.unlabeled_pool()],
                                        self.config.stopping.stop_set_size, self.rng(0, salt=STOP_SET_SALT))

    # -- the loop ------------------------------------------------------------------------------------
    def run(self, *, max_rounds: int | None = None, on_round: Callable[[int], None] | None = None) -> str:
        """Run rounds until a stopping rule holds; return the stop reason."""
        recovered = self.store.recover_interrupted_calls()
        if recovered:
            log.warning("%d call(s) were in flight when the last run stopped; charged at their reservation",
                        recovered)
            self.budget.spent = self.store.spent()
        if self.config.stopping.stabilizing:
            self.stop_set()  # before the first selection of this campaign (or of the rule): from the whole pool
        rounds_run = 0
        while True:
            rounds = self.store.rounds()
            last = rounds[-1] if rounds else None
            if last is None or last["status"] == "done":
                reason = self.stop_reason()
                if reason is None and max_rounds is not None and rounds_run >= max_rounds:
                    reason = "--rounds limit of this run reached"
                if reason is not None:
                    self.store.set_meta("stop_reason", reason)
                    self.pull_reviews((last or {}).get("round", 0))
                    return reason
                round_no = (last["round"] + 1) if last else 1
                if not self.select(round_no):
                    reason = "budget spent: not enough left for one more item"
                    self.store.set_meta("stop_reason", reason)
                    return reason
            else:
                round_no = last["round"]
                self.progress.note(f"resuming round {round_no} at step '{last['status']}'")
            self.budget.new_round(round_no, self.store.spent(round_no))
            status = (self.store.round_row(round_no) or {})["status"]
            if status == "annotating":
                try:
                    self.annotate_and_route(round_no)
                except BatchPending as exc:  # the round resumes here on the next `distilloop run`
                    self.store.set_meta("stop_reason", str(exc))
                    return str(exc)
                status = "training"
            if status == "training":
                self.train(round_no)
                self.store.set_round_status(round_no, "done")
            rounds_run += 1
            if on_round:
                on_round(round_no)

    def stop_reason(self) -> str | None:
        done = [r for r in self.store.rounds() if r["status"] == "done"]
        if len(done) >= self.config.rounds.max_rounds:
            return f"max rounds reached ({self.config.rounds.max_rounds})"
        target = self.config.rounds.target
        active = self.store.active_student()
        metric = self.config.evaluation.metric
        if target is not None and active and active["metrics"].get(metric, 0) >= target:
            return f"target reached: {metric} {active['metrics'][metric]:.4f} >= {target}"
        reason = stopping.stopping_reason(self.store, self.config.stopping, metric)
        if reason is not None:
            return reason
        if not self.unlabeled_pool():
            return "pool exhausted: every pool example has been annotated"
        exhausted = self.budget.exhausted()
        if exhausted:
            return f"budget spent ({exhausted[0]} cap on {exhausted[1]})"
        return None

    # -- steps ---------------------------------------------------------------------------------------
    def per_item_estimate(self, pool: list[Example]) -> Spend:
        """The largest estimated cost of one item through every teacher, over a sample of the pool."""
        worst = Spend()
        sample = pool[:: max(1, len(pool) // 16)][:16]
        for e in sample:
            total = Spend()
            for t in self.teachers:
                total = total + t.estimate(t.render(self.item(e)), e.id)
            worst = Spend(max(worst.tokens_in, total.tokens_in), max(worst.tokens_out, total.tokens_out),
                          max(worst.usd, total.usd))
        return worst

    def item_costs(self, pool: list[Example]) -> dict[str, float]:
        """Expected cost of asking every teacher about each item: dollars when any teacher is paid, else tokens."""
        costs: dict[str, float] = {}
        paid = False
        for e in pool:
            total = Spend()
            for t in self.teachers:
                total = total + t.expected(t.render(self.item(e)))
            paid = paid or total.usd > 0
            costs[e.id] = total.usd if paid else float(total.tokens_in + total.tokens_out)
        if paid:  # recompute uniformly in dollars (the first items may have been counted in tokens)
            costs = {e.id: sum(t.expected(t.render(self.item(e))).usd for t in self.teachers) for e in pool}
        return costs

    def affordable(self, per_item: Spend) -> int:
        left = self.budget.remaining()
        n = math.inf
        for res in ("tokens_in", "tokens_out", "usd"):
            cap, need = left[res], getattr(per_item, res)
            if cap is not None and need > 0:
                n = min(n, math.floor(cap / need))
        return int(n) if n != math.inf else 10**9

    def select(self, round_no: int) -> bool:
        pool = self.unlabeled_pool()
        cfg = self.config.rounds
        n = cfg.size(round_no)
        self.budget.new_round(round_no, Spend())
        n = min(n, self.affordable(self.per_item_estimate(pool)))
        if n <= 0:
            return False
        student = self.active_student()
        strategy = self.strategy
        if strategy.requires_student and student is None:
            strategy = factory.build_strategy(self.config, self.config.rounds.initial_strategy)
        labeled = self.store.labeled()
        ctx = SelectionContext(
            unlabeled_ids=[e.id for e in pool], unlabeled_texts=[e.text for e in pool],
            labeled_ids=[r["example_id"] for r in labeled],
            labeled_texts=[self._examples[r["example_id"]].text for r in labeled],
            labeled_y=[r["label"] for r in labeled], classes=self.labels, rng=self.rng(round_no),
            student=student, store=self.store, round_no=round_no)
        if getattr(strategy, "needs_costs", False):
            ctx.extra["item_cost"] = self.item_costs(pool)
        with self.progress.status(f"round {round_no}: selecting {n} of {len(pool)} with {strategy.name}"):
            sel = strategy.select(ctx, n)
        self.store.start_round(round_no, strategy.name, sel.ids, sel.scores)
        return True

    def annotate_and_route(self, round_no: int) -> None:
        ids = self.store.selection(round_no)
        items = self.with_student_explanations([self.item(self._examples[i]) for i in ids], round_no)
        total = len(items) * len(self.teachers)
        with self.progress.bar(f"round {round_no}: teachers labeling", total) as advance:
            result, tiers_asked = asyncio.run(self._annotate(items, round_no, advance))
        if result.pending_batches:
            batches = ", ".join(f"{b} ({t})" for t, bs in result.pending_batches.items() for b in bs)
            raise BatchPending(f"round {round_no}: batch {batches} pending; run again later "
                               "(`distilloop run` ingests it when it has ended)", batches=result.pending_batches)
        for name, reason in result.disabled.items():
            self.progress.warn(f"teacher {name} was taken out of round {round_no}: {reason}")
        # never asked (budget): back to the pool
        asked_votes = self.calibrate({i: result.votes[i] for i in ids if result.votes.get(i)})
        if self.numeric:
            # a working mentions many numbers, so whether rationales "name the same label" means nothing here
            by_id = {ex: dataclasses.replace(self.aggregator.aggregate(v, self.label_set(v)), rationales_agree=None)
                     for ex, v in asked_votes.items()}
        else:
            by_id = aggregate_round(self.aggregator, self.store, asked_votes, self.labels)
        verdicts = [(i, by_id[i]) for i in ids if i in by_id]
        routes = self.router.route(verdicts)
        to_review = []
        with self.store.atomic():
            rows = []
            for i, v in verdicts:
                rows.append({"example_id": i, "round": round_no, "label": v.label, "soft_label": v.soft_label,
                             "agreement": v.agreement, "entropy": v.entropy, "n_votes": v.n_votes,
                             "method": v.method, "route": routes[i], "rationale": v.rationale, "votes": v.votes,
                             "vote_share": v.vote_share, "tiers_asked": tiers_asked.get(i),
                             "rationales_agree": None if v.rationales_agree is None else int(v.rationales_agree)})
                if routes[i] == ACCEPT and v.label is not None:
                    self.store.accept_label(i, v.label, rationale=v.rationale, source="teachers",
                                            round_no=round_no, soft_label=v.soft_label)
                elif routes[i] == REVIEW:
                    to_review.append(ReviewItem(i, self._examples[i].fields, v, round_no, tuple(self.labels),
                                                answer=self.config.campaign.answer))
            self.store.save_consensus(rows)
            if to_review:
                try:
                    external = self.reviewer.submit(to_review)
                except ReviewError as exc:  # queued anyway: pushed again next round or by `distilloop review push`
                    self.progress.warn(f"{len(to_review)} item(s) queued for review but not sent: {exc}")
                    external = {}
                for it in to_review:
                    self.store.enqueue_review(it.example_id, round_no, self.reviewer.name, external.get(it.example_id))
            self.store.set_round_status(round_no, "training")
        if not self.numeric:  # per-class reliability (Dawid-Skene) needs a label set
            update_reliability(self.store, self.labels)
        self.pull_reviews(round_no)

    def calibrate(self, votes: dict[str, list], round_votes: dict[str, list] | None = None,
                  history: dict[str, list] | None = None) -> dict[str, list]:
        """``votes`` with each teacher's label bias removed (``[aggregation] calibrate``), the bias estimated on
        every answer of that teacher so far: earlier rounds' (``history``, read from the store when not given)
        and this round's (``round_votes``, default ``votes``)."""
        if self.calibration is None:
            return votes
        fit = dict(self.stored_votes() if history is None else history)
        fit.update(votes if round_votes is None else round_votes)
        self.calibration.fit(fit.values(), self.labels)
        return self.calibration.apply(votes, self.labels)

    def stored_votes(self) -> dict[str, list]:
        return {ex: votes_from_rows(rows) for ex, rows in self.store.all_votes().items()}

    async def _annotate(self, items, round_no, advance):
        """Ask every teacher, or with a cascade the tiers in order, each only for the items still unsure."""
        try:
            if self.cascade is None:
                return await self.ensemble.annotate(items, round_no, on_progress=advance), {}
            by_name = {t.name: t for t in self.teachers}
            merged = None
            tiers_asked: dict[str, int] = {}
            todo = list(items)
            history = self.stored_votes() if self.calibration is not None else {}  # read once per round
            for k, tier in enumerate(self.cascade.tiers, 1):
                if not todo:
                    break
                res = await self.ensemble.annotate(todo, round_no, on_progress=advance,
                                                   teachers=[by_name[n] for n in tier])
                if merged is None:
                    merged = res
                else:
                    for ex, vs in res.votes.items():
                        merged.votes.setdefault(ex, []).extend(vs)
                    merged.disabled.update(res.disabled)
                    merged.budget_exhausted |= res.budget_exhausted
                    merged.paid_calls += res.paid_calls
                    merged.reused_calls += res.reused_calls
                    merged.failed_attempts += res.failed_attempts
                    merged.pending_batches.update(res.pending_batches)
                for it in todo:
                    tiers_asked[it.example_id] = k
                # the cascade decides on calibrated votes when calibration is on (the raw ones go on to aggregation)
                seen = self.calibrate({it.example_id: merged.votes.get(it.example_id, []) for it in todo},
                                      round_votes=merged.votes, history=history)
                todo = [it for it in todo
                        if self.cascade.next_step(seen[it.example_id], k, self.label_set(seen[it.example_id]))
                        == ASK_NEXT]
            return merged or AnnotationResult(), tiers_asked
        finally:
            for t in self.teachers:
                await t.aclose()

    def pull_reviews(self, round_no: int) -> int:
        """Bring finished reviews into the training data: the human label wins, a corrected rationale replaces
        the teachers'."""
        try:
            if getattr(self.reviewer, "uses_external_ids", False):
                push_pending(self.store, self.reviewer, self.labels)
            return pull_reviews(self.store, self.reviewer, self.labels, round_no, warn=self.progress.warn)
        except ReviewError as exc:  # the campaign goes on; pending reviews stay queued for a later round
            self.progress.warn(f"reviews not collected this round: {exc}")
            return 0

    def train(self, round_no: int) -> dict[str, Any] | None:
        labeled = self.store.labeled()
        if not labeled:
            return None
        texts = [self._examples[r["example_id"]].text for r in labeled]
        y = [r["label"] for r in labeled]
        previous = self.active_student()
        student = self.student_template.clone()
        with self.progress.status(f"round {round_no}: training {student.kind} on {len(texts)} labels"):
            student.fit(texts, y, classes=self.labels, rationales=[r["rationale"] for r in labeled],
                        soft_labels=[r["soft_label"] for r in labeled], warm_start=previous)
        metrics = self.evaluate(student)
        if self.config.stopping.dev_target is not None:
            dev = self.evaluate(student, split="dev")
            metrics.update({f"dev_{k}": v for k, v in dev.items() if k != "n"})
        active = self.store.active_student()
        metric = self.config.evaluation.metric
        promote = active is None or (
            metrics.get(metric, float("nan")) >= active["metrics"].get(metric, float("-inf"))
            + self.config.evaluation.promote_margin)
        path = self.students_dir() / f"r{round_no:03d}-{student.version_}"
        if path.exists():
            shutil.rmtree(path)
        student.save(path)
        existing = {s["version"] for s in self.store.students()}
        version = student.version_ if student.version_ not in existing else f"{student.version_}-r{round_no}"
        stop_ids = self.stop_set() if self.config.stopping.stabilizing else []
        stop_pred = student.predict([self._examples[i].text for i in stop_ids]) if stop_ids else []
        with self.store.atomic():
            self.store.record_student(version=version, round_no=round_no, kind=student.kind, path=str(path),
                                      parent=active["version"] if active else None, metrics=metrics,
                                      n_train=len(texts), train_seconds=student.fit_seconds_, promoted=promote)
            if stop_ids:
                stopping.record_predictions(self.store, round_no, version, stop_ids, stop_pred)
        return metrics

    def evaluate(self, student: Student, split: str | None = None) -> dict[str, float]:
        """``student``'s metrics on the gold-labeled rows of ``split`` (default: ``[evaluation] split``)."""
        name = split or self.config.evaluation.split
        rows = [e for e in self._examples.values() if e.split == name and e.gold]
        if not rows:
            return {}
        pred = student.predict([e.text for e in rows])
        if self.numeric:  # exact match of the canonical number; no label set to average F1 over
            return {"accuracy": sum(p == e.gold for p, e in zip(pred, rows)) / len(rows), "n": len(rows)}
        return evaluate([e.gold for e in rows], pred, self.labels)  # type: ignore[misc]

    def close(self) -> None:
        self.reviewer.close()
        self.store.close()
