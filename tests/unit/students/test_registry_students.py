import pytest

from distilloop.errors import ConfigError
from distilloop.registry import STUDENTS, build, resolve
from distilloop.students.base import Student


@pytest.mark.parametrize("kind", sorted(STUDENTS))
def test_every_registered_student_resolves_and_builds(kind):
    cls = resolve("student", kind, where="student")
    assert issubclass(cls, Student) and cls.kind == kind
    assert not build("student", kind, {}, where="student").is_fitted()


def test_unknown_student_param_is_named():
    with pytest.raises(ConfigError, match="alpha"):
        build("student", "step_by_step", {"alpah": 0.3}, where="student")
