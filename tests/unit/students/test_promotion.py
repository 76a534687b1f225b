import numpy as np
import pytest

from distilloop.errors import StudentError, UserInputError
from distilloop.storage.store import Store
from distilloop.students.base import Student
from distilloop.students.promotion import StudentRegistry, evaluate, should_promote
from distilloop.students.tfidf import TfidfLogReg
from tests.contracts.student import CLASSES, LABELS, TEXTS


def test_should_promote_rules():
    assert should_promote({"accuracy": 0.6}, None)
    assert should_promote({"accuracy": 0.8}, {"accuracy": 0.7})
    assert should_promote({"accuracy": 0.7}, {"accuracy": 0.7})  # a tie promotes the newer student
    assert not should_promote({"accuracy": 0.69}, {"accuracy": 0.7})
    assert should_promote({"accuracy": 0.66}, {"accuracy": 0.7}, margin=0.05)  # a tolerated regression
    assert not should_promote({"accuracy": 0.64}, {"accuracy": 0.7}, margin=0.05)
    assert should_promote({"log_loss": 0.3}, {"log_loss": 0.5}, metric="log_loss")  # lower is better
    assert not should_promote({"log_loss": 0.6}, {"log_loss": 0.5}, metric="log_loss")
    assert not should_promote({"score": 0.6}, {"score": 0.5}, metric="score", higher_is_better=False)
    with pytest.raises(StudentError, match="macro_f1"):
        should_promote({"accuracy": 0.8}, {"accuracy": 0.7}, metric="macro_f1")
    with pytest.raises(StudentError, match="margin"):
        should_promote({"accuracy": 0.8}, None, margin=-1)


def test_evaluate_metrics():
    s = TfidfLogReg().fit(TEXTS, LABELS, classes=CLASSES)
    m = evaluate(s, TEXTS, LABELS)
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["error"] == 0.0 and m["log_loss"] > 0
    flipped = ["neg" if y == "pos" else "pos" for y in LABELS]
    assert evaluate(s, TEXTS, flipped)["accuracy"] == 0.0


def _students():
    good = TfidfLogReg().fit(TEXTS, LABELS, classes=CLASSES)
    # trained on flipped labels: worse on the frozen evaluation split
    flipped = ["neg" if y == "pos" else "pos" for y in LABELS]
    bad = TfidfLogReg().fit(TEXTS, flipped, classes=CLASSES)
    return good, bad


def test_worse_student_is_not_promoted_and_rollback_restores(tmp_path):
    store = Store.create(tmp_path / "campaign.db", [], {})
    reg = StudentRegistry(store, tmp_path / "students")
    good, bad = _students()
    assert reg.register(good, round_no=1, metrics=evaluate(good, TEXTS, LABELS), n_train=8)
    assert store.active_student()["version"] == good.version_
    assert not reg.register(bad, round_no=2, metrics=evaluate(bad, TEXTS, LABELS), n_train=8)
    assert store.active_student()["version"] == good.version_  # the worse one was recorded, not promoted
    rows = {r["version"]: r for r in store.students()}
    assert rows[bad.version_]["promoted"] == 0 and rows[bad.version_]["parent"] == good.version_
    # a better one (different data) is promoted; rollback brings back the previous promoted version
    better = TfidfLogReg(C=8.0).fit(TEXTS + ["good good"], LABELS + ["pos"], classes=CLASSES)
    assert reg.register(better, round_no=3, metrics={"accuracy": 1.01}, n_train=9)
    assert store.active_student()["version"] == better.version_
    assert reg.rollback() == good.version_
    assert store.active_student()["version"] == good.version_
    np.testing.assert_allclose(reg.load().predict_proba(TEXTS), good.predict_proba(TEXTS))
    with pytest.raises(UserInputError, match="nothing to roll back"):
        reg.rollback()
    assert reg.rollback(to=better.version_) == better.version_
    with pytest.raises(UserInputError, match="no student version"):
        reg.rollback(to="nope")


def test_export_is_loadable(tmp_path):
    store = Store.memory()
    reg = StudentRegistry(store, tmp_path / "students")
    good, _ = _students()
    reg.register(good, round_no=1, metrics={"accuracy": 1.0}, n_train=8)
    out = reg.export(tmp_path / "export")
    assert Student.load(out).predict(TEXTS) == good.predict(TEXTS)
    with pytest.raises(UserInputError, match="not an empty folder"):
        reg.export(tmp_path / "export")


def test_unfitted_student_cannot_be_registered(tmp_path):
    with pytest.raises(StudentError, match="fitted"):
        StudentRegistry(Store.memory(), tmp_path).register(TfidfLogReg(), round_no=1, metrics={}, n_train=0)
