"""Train: a student fitted on every accepted label (with rationales and soft labels where it uses them),
evaluated, saved as a new version, and promoted by the one rule of
:func:`~distilloop.students.promotion.should_promote`."""

from __future__ import annotations

import shutil
from typing import Any

from distilloop.core.failpoints import failpoint
from distilloop.loop import stopping
from distilloop.loop.env import Env
from distilloop.storage.store import Store
from distilloop.students.base import Student
from distilloop.students.promotion import should_promote

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


def evaluate(env: Env, student: Student, split: str | None = None) -> dict[str, float]:
    """``student``'s metrics on the gold-labeled rows of ``split`` (default: ``[evaluation] split``)."""
    name = split or env.config.evaluation.split
    rows = [e for e in env.examples.values() if e.split == name and e.gold]
    if not rows:
        return {}
    pred = student.predict([e.text for e in rows])
    return env.parts.space.metrics([str(e.gold) for e in rows], pred)


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
    texts = [env.examples[r["example_id"]].text for r in labeled]
    previous = load_active(store)
    student = env.parts.student.clone()
    with env.progress.status(f"round {round_no}: training {student.kind} on {len(texts)} labels"):
        student.fit(texts, [r["label"] for r in labeled], classes=list(env.parts.space.labels),
                    rationales=[r["rationale"] for r in labeled], soft_labels=[r["soft_label"] for r in labeled],
                    warm_start=previous)
    failpoint("trained")
    metrics: dict[str, Any] = evaluate(env, student)
    if env.config.stopping.dev_target is not None:
        dev = evaluate(env, student, split="dev")
        metrics.update({f"dev_{k}": v for k, v in dev.items() if k != "n"})
    active = store.active_student()
    metric = env.config.evaluation.metric
    promote = metric not in metrics or should_promote(
        metrics, active["metrics"] if active else None, metric=metric, margin=env.config.evaluation.promote_margin)
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
                             parent=active["version"] if active else None, metrics=metrics, n_train=len(texts),
                             train_seconds=student.fit_seconds_, promoted=promote)
        if stop_ids:
            stopping.record_predictions(store, round_no, version, stop_ids, stop_pred)
    failpoint("student_recorded")  # recorded (and promoted), the round not marked done: never trained twice
    return metrics
