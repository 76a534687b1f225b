"""What the campaign hands the prompt styles: the gold label only to ground-truth priming, the ELAD
strategy's student explanations to explanation revision."""

import pytest

from distilloop.errors import ConfigError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.steps import annotate
from distilloop.testing.fake_api import FakeLLMAPI
from tests.conftest import campaign_toml
from tests.unit.annotators.remote_helpers import KEY, generation_requests, openai_teacher


def campaign(tmp_path, api, prompt, strategy="random"):
    path = tmp_path / "c.toml"
    student = '[student]\nkind = "step_by_step"\n' if strategy == "elad" else ""
    path.write_text(campaign_toml(name="p", rounds="max_rounds = 1\ninitial_size = 4", extra=f"""\
{student}[strategy]
name = "{strategy}"
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
    c = campaign(tmp_path, api, "explanation_revision", strategy="elad")
    ids = [e.id for e in c.env.unlabeled_pool()][:4]
    # what the elad strategy hands on with its selection: the student's own explanation of a pick
    c.store.start_round(1, "elad", ids, [0.0] * 4, {ids[0]: ["The review says dull.", "Dull is praise."]})
    annotate.annotate(c.env, 1)
    users = user_messages(api)
    with_exp = [u for u in users if "<student>" in u]
    assert len(with_exp) == 1 and "1. The review says dull.\n2. Dull is praise." in with_exp[0]
    assert sum("No student explanation" in u for u in users) == 3
    c.close()


def test_explanation_revision_without_an_explanation_guided_strategy_is_refused(tmp_path, api):
    with pytest.raises(ConfigError, match='explanation_revision.*name = "elad"'):
        campaign(tmp_path, api, "explanation_revision")
    assert not (tmp_path / "p.distilloop.db").exists()
