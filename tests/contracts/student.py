"""The Student contract suite: every student's test class inherits :class:`StudentContract`.

A subclass defines ``make_student(self, request)`` returning an unfitted student (fast settings), and may
override ``texts``/``labels``/``classes`` (a small separable two-class set by default).
"""

from __future__ import annotations

import numpy as np
import pytest

from distilloop.errors import StudentError
from distilloop.students.base import Student

TEXTS = ["a good movie", "great film", "good and great", "the film was great",
         "a bad movie", "awful film", "bad and awful", "the film was awful"]
LABELS = ["pos", "pos", "pos", "pos", "neg", "neg", "neg", "neg"]
CLASSES = ["pos", "neg"]


class StudentContract:
    texts = TEXTS
    labels = LABELS
    classes = CLASSES

    @pytest.fixture
    def student(self, request) -> Student:
        return self.make_student(request)

    @pytest.fixture
    def fitted(self, student) -> Student:
        return student.fit(self.texts, self.labels, classes=self.classes)

    def make_student(self, request) -> Student:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_predict_proba_shape_and_rows_sum_to_one(self, fitted):
        proba = np.asarray(fitted.predict_proba(self.texts[:3]))
        assert proba.shape == (3, len(self.classes))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
        assert (proba >= 0).all()

    def test_columns_follow_classes(self, fitted):
        assert list(fitted.classes_) == list(self.classes)
        proba = np.asarray(fitted.predict_proba(self.texts))
        assert fitted.predict(self.texts) == [self.classes[i] for i in proba.argmax(axis=1)]
        # reversed class order gives the same probabilities, columns reversed
        other = fitted.clone().fit(self.texts, self.labels, classes=self.classes[::-1])
        assert list(other.classes_) == list(self.classes[::-1])
        assert np.asarray(other.predict_proba(self.texts)).shape == proba.shape

    def test_predict_returns_known_labels(self, fitted):
        assert set(fitted.predict(self.texts)) <= set(self.classes)

    def test_save_load_round_trip(self, fitted, tmp_path):
        before = np.asarray(fitted.predict_proba(self.texts))
        loaded = Student.load(fitted.save(tmp_path / "s"))
        assert type(loaded) is type(fitted)
        assert loaded.version_ == fitted.version_ and list(loaded.classes_) == list(fitted.classes_)
        np.testing.assert_allclose(np.asarray(loaded.predict_proba(self.texts)), before, atol=1e-5)

    def test_clone_is_unfitted_with_same_params(self, fitted):
        c = fitted.clone()
        assert not c.is_fitted() and type(c) is type(fitted)
        assert c.get_params() == fitted.get_params()

    def test_version_changes_with_data(self, student):
        a = student.clone().fit(self.texts, self.labels, classes=self.classes)
        b = student.clone().fit(self.texts[:-1], self.labels[:-1], classes=self.classes)
        c = student.clone().fit(self.texts, self.labels, classes=self.classes)
        assert a.version_ != b.version_
        assert a.version_ == c.version_
        soft = [{y: 0.8, next(k for k in self.classes if k != y): 0.2} for y in self.labels]
        d = student.clone().fit(self.texts, self.labels, classes=self.classes, soft_labels=soft)
        assert d.version_ != a.version_  # the same hard labels from other distributions: another student

    @pytest.mark.parametrize("bad", ["length", "empty", "unknown_label", "rationales_length"])
    def test_bad_inputs_raise(self, student, bad):
        kwargs = {"classes": self.classes}
        texts, labels = list(self.texts), list(self.labels)
        if bad == "length":
            labels = labels[:-1]
        elif bad == "empty":
            texts, labels = [], []
        elif bad == "unknown_label":
            labels[0] = "nope"
        else:
            kwargs["rationales"] = ["r"]
        with pytest.raises(StudentError):
            student.fit(texts, labels, **kwargs)
        assert not student.is_fitted()

    def test_load_rejects_non_student_dir(self, tmp_path):
        with pytest.raises(StudentError):
            Student.load(tmp_path)
