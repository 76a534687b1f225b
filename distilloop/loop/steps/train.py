"""Train: a student fitted on every accepted label (with rationales and soft labels where it uses them),
scored on every evaluation reference (:mod:`distilloop.loop.references`) and on the newest labels, saved as a new
version, and promoted by the one rule of :func:`~distilloop.students.promotion.should_promote` on the reference
the campaign decides on (frozen across refreshes).

A reviewer's answer is certain, but on the items that go to review (the ones the teachers doubt) a certain
target is not always the one a student learns best from: on Rotten Tomatoes, the frozen-encoder student trained
on the ensemble's soft labels beats the same student trained on the gold labels of the same items (docs/review.md).
So a soft-label student reads reviews as ``[routing] review_trust`` says: ``label`` (the reviewer's answer is the
target), ``vote`` (one more, certain vote beside the teachers' distribution, each valid teacher vote and the
reviewer's counting once), or ``auto``: a student cheap to refit is fitted both ways and the one scoring better
on the decision reference is kept (a tie keeps ``vote``, the reading measured at least as good on the recorded
items: docs/review.md); any other student takes ``label``. The scores of both
are recorded with the student.

In the same way a student cheap to refit may offer :meth:`~distilloop.students.base.Student.variants` (the
embedding student: its ``C`` and a third and three times it, ``tune_C``, each with either class weight,
``tune_class_weight``): the best regularisation for 20 labels is not the best for 600 noisy ones, a small
sample's class proportions are not the data's, and the decision reference is the held-out set that tells them apart. Neither
choice is made on the test split (the last-resort decision reference): the report's test score stays unselected.
"""

from __future__ import annotations

import shutil
from typing import Any

from distilloop.core.failpoints import failpoint
from distilloop.loop import references, stopping
from distilloop.loop.env import Env
from distilloop.loop.progress import embedding_status
from distilloop.storage.store import Store
from distilloop.students.base import Student, reporting
from distilloop.students.promotion import should_promote

#: label sources that are a reviewer's answer
REVIEWED = ("human", "simulated")
#: decision references a student is not chosen among variants on: none, or the test split the report shows (a
#: choice made on it would make the reported score the best of several)
UNCHOSEN = (None, "gold:test")
#: salt of the stop set's generator (round 0): apart from every round's selection draws
STOP_SET_SALT = 57


def load_active(store: Store) -> Student | None:
    row = store.active_student()
    return Student.load(row["path"]) if row is not None else None


def stop_set(env: Env) -> list[str]:
    """The fixed stop set of stabilizing predictions: chosen once from the unlabeled pool (seeded by the
    campaign seed), then read back from the store, so a resumed campaign predicts the same items."""
    return stopping.ensure_stop_set(env.store, [e.id for e in env.unlabeled_pool()],
                                    env.config.stopping.stop_set_size, env.rng(0, salt=STOP_SET_SALT))


def evaluate(env: Env, student: Student) -> dict[str, Any]:
    """``student``'s scores on every reference the campaign has (each with its majority-class baseline and a 95%
    interval), the one decisions use, and, at the top level, its score on ``[evaluation] split``'s gold labels."""
    refs = references.available(env.store, env.examples)
    scores = _scored(env, student, refs)
    chosen = references.decision(env.config.evaluation.reference, refs)
    metrics: dict[str, Any] = dict(scores.get(f"gold:{env.config.evaluation.split}", {}))
    metrics.update({f"dev_{k}": v for k, v in scores.get("gold:dev", {}).items() if k in ("accuracy", "macro_f1")})
    metrics["refs"] = scores
    metrics["reference"] = chosen.name if chosen else None
    return metrics


def _scored(env: Env, student: Student, refs: dict[str, references.Reference]) -> dict[str, dict[str, Any]]:
    """``student``'s scores on each of ``refs`` (each item predicted once, however many references hold it)."""
    ids = list(dict.fromkeys(i for ref in refs.values() for i in ref.ids))
    pred = dict(zip(ids, student.predict([env.examples[i].text for i in ids]) if ids else []))
    return {name: references.score([pred[i] for i in ref.ids], ref, env.parts.space) for name, ref in refs.items()}


def active_score(env: Env, active: dict[str, Any] | None, reference: str | None) -> dict[str, Any] | None:
    """The active student's scores on ``reference``: as recorded when it was scored on the same items and labels,
    else scored again now (a reference that grew, such as an audit set answered since, or whose items were labeled
    again, such as the teachers' held-out set after the label set grew)."""
    if active is None or reference is None:
        return None
    ref = references.available(env.store, env.examples).get(reference)
    recorded = (active["metrics"].get("refs") or {}).get(reference)
    if ref is None or (recorded is not None and recorded.get("n") == len(ref.ids)
                       and recorded.get("labels_sha", references.labels_sha(ref)) == references.labels_sha(ref)):
        return recorded
    student = Student.load(active["path"])
    return references.score(student.predict([env.examples[i].text for i in ref.ids]), ref, env.parts.space)


def _described(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The reference a student was decided on, as recorded with it: its name and size."""
    name = metrics.get("reference")
    return {"name": name, "n": metrics["refs"][name]["n"]} if name else None


def review_targets(store: Store, labeled: list[dict[str, Any]], how: str) -> list[dict[str, float] | None]:
    """The soft labels a student trains on: as accepted, except, under ``how = "vote"``, a reviewed item's:
    the teachers' distribution with the reviewer's certain answer as one more vote."""
    soft = [r["soft_label"] for r in labeled]
    if how != "vote":
        return soft
    for i, r in enumerate(labeled):
        if r["source"] not in REVIEWED:
            continue
        cons = store.consensus(r["example_id"]) or {}
        teachers = cons.get("soft_label")
        if not teachers:  # reviewed without a verdict (an audit answer turned label): the reviewer's alone
            continue
        w = 1.0 / (max(1, int(cons.get("n_votes") or 1)) + 1)
        soft[i] = {c: (1 - w) * float(teachers.get(c, 0.0)) + w * (c == r["label"])
                   for c in dict.fromkeys([*teachers, r["label"]])}
    return soft


def review_readings(env: Env, labeled: list[dict[str, Any]]) -> tuple[str, ...]:
    """The ways of reading the reviews this round's student is fitted with (one, unless ``auto`` compares)."""
    student = env.parts.student
    if not student.uses_soft_labels or not any(r["source"] in REVIEWED for r in labeled):
        return ("label",)
    how = env.config.routing.review_trust
    if how == "auto":
        return ("label", "vote") if student.cheap_to_refit else ("label",)
    return (how,)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


Fitted = tuple[str, dict[str, Any], Student, dict[str, Any], float]  # reading, parameters, student, metrics, score


def kept(fitted: list[Fitted]) -> Fitted:
    """The fitted student a round keeps: the best score; among equals, reviews read as votes (the reading measured
    at least as good on the recorded items, docs/review.md), then the first fitted (the configured parameters)."""
    return max(fitted, key=lambda f: (f[4], f[0] == "vote"))


def fit_student(env: Env, round_no: int, labeled: list[dict[str, Any]],
                previous: Student | None) -> tuple[Student, dict[str, Any]]:
    """This round's student and its metrics: each of the student's :meth:`~Student.variants` fitted once per way
    of reading the reviews (:func:`review_readings`), then the variants the student offers around the winner (read
    the winner's way), the best on the decision reference kept (the first on a tie: reviews read as votes where they are
    read both ways, then the configured parameters)."""
    texts = [env.examples[r["example_id"]].text for r in labeled]
    readings = review_readings(env, labeled)
    targets: dict[str, list[dict[str, float] | None]] = {}
    fitted: list[Fitted] = []

    configured = env.parts.student
    warm = configured.continues(previous)
    what = f"round {round_no}: training {configured.kind} on {len(texts)} labels"
    if previous is not None and configured.supports_warm_start and warm is None:
        other = [k for k in configured.warm_start_keys if configured.get_params().get(k) != previous.get_params().get(k)]
        what += (f" (from scratch: the active student is {previous.kind}"
                 + (f" with another {', '.join(other)})" if previous.kind == configured.kind else ")"))

    def fit(candidates: list[tuple[str, dict[str, Any], Student]]) -> bool:
        """Fit and score ``candidates``; False once only the test split could choose (nothing more is fitted)."""
        for how, params, student in candidates:
            if how not in targets:
                targets[how] = review_targets(env.store, labeled, how)
            extra = [f"reviews read as {how}"] * (len(readings) > 1) + [_params(params)] * bool(params)
            show(what + (f" ({'; '.join(extra)})" if extra else ""))
            student.fit(texts, [r["label"] for r in labeled], classes=list(env.parts.space.labels),
                        rationales=[r["rationale"] for r in labeled], soft_labels=targets[how], warm_start=warm)
            metrics = evaluate(env, student)
            ref = metrics["reference"]
            score = (metrics["refs"][ref].get(env.config.evaluation.metric) if ref else None)
            fitted.append((how, params, student, metrics, -1.0 if score is None else score))
            if ref in UNCHOSEN:  # nothing to choose on: the configured student, reviews read as labels
                return False
        return True

    # one line a round, the variant being fitted on the spinner (and a long embedding pass: a large test split)
    with env.progress.status(what) as show, reporting(embedding_status(what, configured, show)):
        if fit([(how, params, student) for how in readings for params, student in configured.variants()]):
            how, params = kept(fitted)[:2]
            fit([(how, p, s) for p, s in configured.variants(chosen=params)])
    how, params, student, metrics, _ = kept(fitted)
    reviewed = sum(r["source"] in REVIEWED for r in labeled)

    def best(scores: list[float]) -> float | None:
        return None if max(scores) < 0 else max(scores)

    if reviewed and configured.uses_soft_labels:
        metrics["review_trust"] = {"setting": env.config.routing.review_trust, "chosen": how, "reviewed": reviewed,
                                   "reference": metrics["reference"],
                                   "scores": {h: best([f[4] for f in fitted if f[0] == h])
                                              for h in dict.fromkeys(f[0] for f in fitted)}}
    if any(f[1] for f in fitted) and len(fitted) > len(readings):
        by: dict[str, list[float]] = {}
        for f in fitted:
            by.setdefault(_params(f[1]), []).append(f[4])
        metrics["tuned"] = {"chosen": params, "reference": metrics["reference"],
                            "scores": {k: best(v) for k, v in by.items()}}
    return student, metrics


def train(env: Env, round_no: int) -> dict[str, Any] | None:
    """Train, evaluate, save and record round ``round_no``'s student; its metrics (None with no label yet).
    A round whose student was already recorded (a crash before the round was marked done) is not trained again."""
    store = env.store
    done = store.student_of_round(round_no)
    if done is not None:
        return done["metrics"]
    labeled = store.labeled()
    if not labeled:
        return None
    previous = load_active(store)
    student, metrics = fit_student(env, round_no, labeled, previous)
    failpoint("trained")
    active = store.active_student()
    metric, reference = env.config.evaluation.metric, metrics["reference"]
    if reference is None:
        promote = True
        env.progress.warn("no evaluation reference: the newest student was promoted without a score; give the data "
                          "gold dev labels, or set [evaluation] heldout_size (a teacher-labeled held-out set) or "
                          "audit_size (a human audit set)")
    else:
        promote = should_promote(metrics["refs"][reference], active_score(env, active, reference), metric=metric,
                                 margin=env.config.evaluation.promote_margin)
    newest = references.newest(store, env.parts.space, student, previous)
    path = env.config.students_dir / f"r{round_no:03d}-{student.version_}"
    if path.exists():  # saved by a run that stopped before recording it
        shutil.rmtree(path)
    student.save(path)
    failpoint("student_saved")  # files written, not recorded: the resumed run trains and saves again
    existing = {s["version"] for s in store.students()}
    version = student.version_ if student.version_ not in existing else f"{student.version_}-r{round_no}"
    stop_ids = stop_set(env) if env.config.stopping.stabilizing else []
    stop_pred = student.predict([env.examples[i].text for i in stop_ids]) if stop_ids else []
    with store.atomic():
        store.record_student(version=version, round_no=round_no, kind=student.kind, path=str(path),
                             parent=active["version"] if active else None, metrics=metrics, n_train=len(labeled),
                             train_seconds=student.fit_seconds_, promoted=promote,
                             reference=_described(metrics), newest=newest)
        if stop_ids:
            stopping.record_predictions(store, round_no, version, stop_ids, stop_pred)
    failpoint("student_recorded")  # recorded (and promoted), the round not marked done: never trained twice
    if not promote:
        _score_kept_on_added_rows(env, active)
    return metrics


def _score_kept_on_added_rows(env: Env, active: dict[str, Any] | None) -> None:
    """The active student a round kept, scored on the gold rows added to a split since it was scored (the
    ``gold:test added`` reference: how it does on the new data, as `status` shows it)."""
    if active is None:
        return
    recorded = active["metrics"].get("refs") or {}
    todo = {name: ref for name, ref in references.available(env.store, env.examples).items()
            if name.endswith(" added") and (recorded.get(name) or {}).get("n") != len(ref.ids)}
    if not todo:
        return
    env.store.add_student_scores(active["version"], _scored(env, Student.load(active["path"]), todo))
