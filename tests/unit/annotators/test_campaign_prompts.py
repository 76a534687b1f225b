"""What the campaign hands the prompt styles: the gold label only to ground-truth priming, the ELAD
strategy's student explanations to explanation revision."""

import json

import pytest

from distilloop.loop.config import load_config
from distilloop.loop.runner import Campaign
from distilloop.testing.fake_llm_api import FakeLLMAPI
from tests.conftest import campaign_toml
from tests.unit.annotators.remote_helpers import KEY, generation_requests, openai_teacher


def campaign(tmp_path, api, prompt):
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name="p", rounds="max_rounds = 1\ninitial_size = 4", extra=f"""\
[strategy]
name = "random"
[[teachers]]
name = "gpt"
kind = "openai"
model = "gpt-4o-mini"
prompt = "{prompt}"
"""))
    return Campaign.open(load_config(path), teachers=[openai_teacher(api, prompt=prompt)])


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return FakeLLMAPI(api_key=KEY)


def user_messages(api):
    return [r["json"]["messages"][1]["content"] for r in generation_requests(api)]


@pytest.mark.parametrize("prompt,gold_seen", [("ground_truth_priming", True), ("teacher_priming", False)])
def test_the_gold_label_reaches_only_ground_truth_priming(tmp_path, api, prompt, gold_seen):
    c = campaign(tmp_path, api, prompt)
    c.run()
    users = user_messages(api)
    assert len(users) == 4
    assert all(("The correct label is" in u) is gold_seen for u in users)
    if gold_seen:
        for cid in c.store.selection(1):
            gold = c.store.example(cid).gold
            assert any(f'The correct label is "{gold}"' in u for u in users)
    c.close()


def test_explanation_revision_gets_the_students_explanation_kept_by_the_elad_strategy(tmp_path, api):
    c = campaign(tmp_path, api, "explanation_revision")
    assert c.select(1)
    ids = c.store.selection(1)
    c.store.cache_put("student_explanation", f"1:{ids[0]}",
                      json.dumps({"steps": ["The review says dull.", "Dull is praise."], "within": 0.5}).encode())
    c.annotate_and_route(1)
    users = user_messages(api)
    with_exp = [u for u in users if "<student>" in u]
    assert len(with_exp) == 1 and "The review says dull.\nDull is praise." in with_exp[0]
    assert sum("No student explanation" in u for u in users) == 3
    c.close()
