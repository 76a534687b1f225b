"""The campaign: opened (created from its data file, or resumed from its store), then run round after round
of steps until a stopping rule holds. Each step ends in a checkpoint (the round's ``status`` in the store), so a
campaign killed at any point continues with ``distilloop run``: a round is resumed at the step it was in, and
teacher answers already paid for are reused by request hash, never bought again. ``with Campaign.open(config) as
campaign:`` closes it (the store, its lock, the reviewer's and the engine's connections) however the block ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from distilloop.annotators.base import Teacher
from distilloop.annotators.review import Reviewer
from distilloop.core.failpoints import failpoint
from distilloop.core.ledger import Budget
from distilloop.core.secrets import scrub
from distilloop.data import check_pool, file_sha256, load_examples
from distilloop.errors import BatchPending, BudgetExhausted, ReviewError, TeachersFailed
from distilloop.loop import diagnostics, guidelines, stopping
from distilloop.loop.config import CampaignConfig
from distilloop.loop.env import Env
from distilloop.loop.parts import Parts, build_parts, engine_for
from distilloop.loop.progress import Progress
from distilloop.loop.steps import annotate, decide, reference, review, select, train
from distilloop.storage.lock import WriterLock
from distilloop.storage.store import Store

log = logging.getLogger(__name__)


class Campaign:
    """One campaign: its config, its store and its parts. Use :meth:`open` to create or resume one."""

    def __init__(self, config: CampaignConfig, store: Store, *, progress: Progress | None = None,
                 teachers: list[Teacher] | None = None, reviewer: Reviewer | None = None) -> None:
        self.config = config
        self.store = store
        parts = build_parts(config, teachers=teachers, reviewer=reviewer)
        engine = engine_for(config, store)
        engine.attach(parts.student)  # a frozen encoder: each text embedded once per campaign, into its shards
        parts.reviewer.attach(store)
        caps, round_caps = config.budget.caps()
        self.env = Env(config, store, parts, Budget(caps, round_caps, spent=store.spent()),
                       progress or Progress(quiet=True), {e.id: e for e in store.examples()}, engine)
        self.warned: set[str] = set()  # the warnings said in this run

    @property
    def parts(self) -> Parts:
        return self.env.parts

    @property
    def teachers(self) -> list[Teacher]:
        return self.env.parts.teachers

    @property
    def reviewer(self) -> Reviewer:
        return self.env.parts.reviewer

    @property
    def progress(self) -> Progress:
        return self.env.progress

    # -- opening -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, config: CampaignConfig, **kwargs: Any) -> Campaign:
        """Create the store from the data file (every part built and checked first, the data validated: bad input
        leaves nothing behind) or reopen it, an edited guideline a new version (not ``record_guideline=False``)."""
        path, record = config.store_path, kwargs.pop("record_guideline", True)
        # before looking: one writer, and no race to create the store
        lock = WriterLock.acquire(path, kwargs.pop("writer", "run"))
        if path.exists():
            store = Store.open(path, lock=lock)
            try:
                guidelines.check_fixed(store, config)  # the label set, answer kind and input fields stay
                stopping.check_dev_split(config, store.examples("dev"))
                campaign = cls(config, store, **kwargs)
                if record:  # an edited guideline is a new version
                    guidelines.sync(store, config, campaign.progress)
                return campaign
            except BaseException:
                store.close()
                raise
        created: Store | None = None
        try:
            build_parts(config, teachers=kwargs.get("teachers"), reviewer=kwargs.get("reviewer"))
            examples = load_examples(config.data_path, config.data_spec(), config.campaign.labels,
                                     config.campaign.answer)
            check_pool(examples, config.data_path, config.data_spec())
            stopping.check_dev_split(config, examples)
            created = Store.create(path, examples, {"name": config.campaign.name, "labels": config.campaign.labels,
                                                    "config": scrub(config.raw)},
                                   source=str(config.data_path), sha256=file_sha256(config.data_path), lock=lock)
            guidelines.sync(created, config)
            return cls(config, created, **kwargs)
        except BaseException:
            created.close() if created is not None else lock.release()  # closing the store releases its lock
            raise

    # -- the loop ------------------------------------------------------------------------------------
    def settle_cut_calls(self) -> int:
        """Before a writer asks the teachers again: the calls a killed command left in flight are charged at their
        expected cost and found again where a provider keeps them (a model in the process billed nothing); the
        rest are asked again (re-sent in ``distilloop status``). Returns how many there were."""
        env, store = self.env, self.store
        cut = store.recover_interrupted_calls(unbilled={t.name for t in env.parts.teachers if not t.billed_when_cut})
        if cut:
            log.warning("%d call(s) were in flight when the last command stopped: charged at their expected cost "
                        "where a provider may have billed them, else asked again (`distilloop status`)", cut)
            env.budget.spent = store.spent()
        return cut

    def run(self, *, max_rounds: int | None = None, on_round: Callable[[int], None] | None = None) -> str:
        """Run rounds until a stopping rule holds; return the stop reason."""
        env, store = self.env, self.store
        self.settle_cut_calls()
        if self.config.stopping.stabilizing:
            train.stop_set(env)  # before the first selection of this campaign (or of the rule): from the whole pool
        reference.prepare(env)  # the evaluation references set aside (once) and the held-out set labeled
        rounds_run = 0
        while True:
            rounds = store.rounds()
            last = rounds[-1] if rounds else None
            if last is None or last["status"] == "done":
                reason = self.stop_reason()
                if reason is None and max_rounds is not None and rounds_run >= max_rounds:
                    reason = "--rounds limit of this run reached"
                if reason is not None:
                    store.set_meta("stop_reason", reason)
                    self.pull_reviews((last or {}).get("round", 0))
                    return reason
                round_no = (last["round"] + 1) if last else 1
                if select.select(env, round_no) is None:
                    reason = select.NO_ROOM
                    store.set_meta("stop_reason", reason)
                    return reason
            else:
                round_no = last["round"]
                env.progress.note(f"resuming round {round_no} at step '{last['status']}'")
            pending = self.finish_round(round_no)
            if pending is not None:
                return pending
            rounds_run += 1
            if on_round:
                on_round(round_no)

    def finish_round(self, round_no: int) -> str | None:
        """Take a recorded round from the step it is at to its end: annotate, decide, review, train. Returns why
        it stopped early (a provider batch still running: the round resumes there on the next run), else None."""
        env, store = self.env, self.store
        env.budget.new_round(round_no, store.spent(round_no))
        status = (store.round_row(round_no) or {})["status"]
        if status == "annotating":
            try:
                ann = annotate.annotate(env, round_no)
            except (BatchPending, BudgetExhausted) as exc:  # the round resumes here on the next `distilloop run`
                store.set_meta("stop_reason", str(exc))
                return str(exc)
            except TeachersFailed as exc:  # no key, an outage: stop, with the reason, rather than burn rounds
                store.set_meta("stop_reason", str(exc))
                raise
            decide.commit(env, ann, decide.explain_for_review(env, ann, decide.decide(env, ann)))
            status = "training"
        if status == "training":
            self.pull_reviews(round_no)  # also after a stop between the commit and the training
            failpoint("reviews_pulled")
            train.train(env, round_no)
            store.set_round_status(round_no, "done")
            diagnostics.warn_once(store, env.parts.space, self.config.evaluation.metric, self.warned, env.progress.warn,
                                  calibrated=self.config.aggregation.params.get("calibrate") == "batch",
                                  student=self.config.student)
        return None

    def stop_reason(self) -> str | None:
        return stopping.campaign_stop_reason(self.store, self.config, self.env.unlabeled_pool(), self.env.budget)

    def pull_reviews(self, round_no: int) -> int:
        """Bring finished reviews into the training data (pending items a reviewer never got are pushed first)."""
        reviewer, space, say = self.env.parts.reviewer, self.env.parts.space, self.env.progress
        try:
            if reviewer.uses_external_ids:
                review.push_pending(self.store, reviewer, space)
            return review.pull_reviews(self.store, reviewer, space, round_no, warn=say.warn, note=say.note)
        except ReviewError as exc:  # the campaign goes on; pending reviews stay queued for a later round
            self.env.progress.warn(f"reviews not collected this round: {exc}")
            return 0

    def close(self) -> None:
        self.env.parts.reviewer.close()
        self.env.engine.close()
        self.store.close()

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

