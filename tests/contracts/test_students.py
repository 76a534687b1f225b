"""Every registered student passes the Student contract (small settings, tiny local models), and gives what it
declares it provides."""

from __future__ import annotations

import numpy as np
import pytest

from distilloop.core.answers import LabelSet, OpenNumber
from distilloop.errors import StudentError
from distilloop.registry import STUDENTS, build
from distilloop.students.base import Student
from tests.contracts.student import StudentContract

#: how each registered student is built for the contract: fast settings, tiny models (a registered student
#: missing here fails test_every_registered_student_has_a_contract_entry)
FACTORIES = {
    "tfidf_logreg": lambda request: build("student", "tfidf_logreg", {}, where="test"),
    "embedding_linear": lambda request: build("student", "embedding_linear", {
        "model": request.getfixturevalue("tiny_bert_dir"), "C": 10.0}, where="test"),
    "encoder": lambda request: build("student", "encoder", {
        "model": request.getfixturevalue("tiny_bert_dir"), "epochs": 2, "batch_size": 4, "lr": 3e-3,
        "max_length": 24, "device": "cpu", "min_steps": 0}, where="test"),
    "step_by_step": lambda request: build("student", "step_by_step", {
        "model": request.getfixturevalue("tiny_lm_dir"), "epochs": 1, "batch_size": 8, "lr": 3e-3,
        "device": "cpu"}, where="test"),
}


def test_every_registered_student_has_a_contract_entry():
    assert set(FACTORIES) == set(STUDENTS)


class TestEveryRegisteredStudent(StudentContract):
    @pytest.fixture(params=sorted(STUDENTS))
    def student(self, request) -> Student:
        return FACTORIES[request.param](request)

    def test_gives_what_it_declares(self, fitted):
        assert fitted.provides <= {"probabilities", "embeddings", "explanations", "samples", "numbers"}
        if "embeddings" in fitted.provides:
            vecs = fitted.embed(self.texts[:3])
            vecs = vecs.toarray() if hasattr(vecs, "toarray") else np.asarray(vecs)
            assert vecs.shape[0] == 3 and vecs.ndim == 2
        if "explanations" in fitted.provides:
            steps = fitted.explain(self.texts[0])
            assert isinstance(steps, list)
            answer = fitted.answer_from(self.texts[0], steps[:1])
            assert isinstance(answer, dict | str)
        if "samples" in fitted.provides:
            assert np.asarray(fitted.sample_proba(self.texts[:2], 3)).shape[:2] == (3, 2)
        assert fitted.provides_for(LabelSet(self.classes)) == fitted.provides
        assert "probabilities" not in fitted.provides_for(OpenNumber())

    def test_a_parameter_of_the_wrong_type_is_found_before_fitting(self, student):
        name, default = next((n, v) for n, v in student.get_params().items()
                             if isinstance(v, int | float) and not isinstance(v, bool))
        setattr(student, name, "not a number")
        with pytest.raises(StudentError, match=name):
            student.check_params()
