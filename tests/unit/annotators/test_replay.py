import asyncio
import gzip
import json

import pytest

from distilloop.annotators.replay import ReplayTeacher
from distilloop.core.types import LabelingItem
from distilloop.errors import ConfigError, TeacherError
from tests.conftest import FIXTURES

LABELS = ("negative", "positive")


@pytest.fixture
def items():
    rows = [json.loads(x) for x in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()[:4]]
    return [LabelingItem(r["id"], {"text": r["text"]}, LABELS, "Sentiment?") for r in rows]


@pytest.fixture
def teacher():
    return ReplayTeacher(name="a", model="gpt-4o-mini", path=str(FIXTURES / "rt_tiny_replay.jsonl.gz"), source="a")


class TestReplayTeacher:
    def test_answers_what_was_recorded(self, teacher, items):
        with gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt") as f:
            rec = {r["example_id"]: r for r in map(json.loads, f) if r["teacher"] == "a"}
        for item in items:
            ans = asyncio.run(teacher.answer(teacher.render(item), item))
            assert ans.label == json.loads(rec[item.example_id]["raw"])["label"]
            assert ans.usage.tokens_in == rec[item.example_id]["tokens_in"]

    def test_unknown_example_is_a_teacher_error(self, teacher):
        item = LabelingItem("nope", {"text": "x"}, LABELS, "t")
        with pytest.raises(TeacherError, match="no recorded answer"):
            asyncio.run(teacher.answer(teacher.render(item), item))

    def test_bad_recordings(self, tmp_path):
        with pytest.raises(ConfigError, match="not found"):
            ReplayTeacher(name="x", model="m", path=str(tmp_path / "none.jsonl"))
        p = tmp_path / "r.jsonl"
        p.write_text('{"example_id": "1", "raw": "{}"}\n{broken\n')
        with pytest.raises(ConfigError, match="r.jsonl:2: not valid JSON"):
            ReplayTeacher(name="x", model="m", path=str(p))

    def test_a_label_outside_the_set_is_an_invalid_answer(self, tmp_path):
        p = tmp_path / "r.jsonl"
        p.write_text(json.dumps({"example_id": "1", "raw": '{"label": "meh"}', "tokens_in": 5, "tokens_out": 2}))
        t = ReplayTeacher(name="x", model="m", path=str(p), price={"input": 1, "output": 1})
        item = LabelingItem("1", {"text": "x"}, LABELS, "t")
        ans = asyncio.run(t.answer(t.render(item), item))
        assert not ans.valid and ans.label is None and "not in the label set" in ans.error

    def test_a_recorded_revision_is_spliced_with_the_explanation_it_revised(self, tmp_path):
        p = tmp_path / "r.jsonl"
        p.write_text(json.dumps({"example_id": "1", "prompt_style": "explanation_revision", "tokens_in": 9,
                                 "tokens_out": 3, "student_explanation": "It says dull.\nDull is praise.",
                                 "raw": '{"first_wrong_step": 2, "label": "negative", "rationale": "Dull is a complaint."}'}))
        t = ReplayTeacher(name="x", model="m", path=str(p), prompt="explanation_revision")
        # the campaign's student now explains differently: the recorded answer still revised the recorded one
        item = LabelingItem("1", {"text": "Dull."}, LABELS, "t", student_explanation="Something else.")
        ans = asyncio.run(t.answer(t.render(item), item))
        assert ans.label == "negative" and ans.rationale == "It says dull. Dull is a complaint."
