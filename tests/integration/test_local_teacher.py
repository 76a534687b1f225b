"""The real local teacher (llama.cpp, packaged Qwen2.5-Coder-0.5B-Instruct) in a real campaign round."""

import asyncio
import json

import pytest

from distilloop.core.answers import normalize_number
from distilloop.core.types import LabelingItem
from tests.conftest import campaign_toml

pytestmark = [pytest.mark.llm, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_path():
    pytest.importorskip("llama_cpp", reason="the `local` extra is not installed (make setup)")
    from distilloop.annotators.models import MODELS, resolve_model_path, status

    if status("qwen2.5-coder-0.5b").startswith("not installed"):
        pytest.skip("the packaged Qwen2.5-Coder-0.5B weights are not installed (make setup)")
    assert "qwen2.5-coder-0.5b" in MODELS
    return resolve_model_path("qwen2.5-coder-0.5b")


def test_answers_with_a_label_from_the_set_a_rationale_and_a_logprob_confidence(model_path):
    from distilloop.annotators.local import LlamaCppTeacher

    t = LlamaCppTeacher(name="q", model=str(model_path), max_tokens=64)
    item = LabelingItem("x", {"text": "A dull, lifeless film with nothing to say; I walked out."},
                        ("negative", "positive"), "Classify the sentiment of the movie review snippet.")
    prompt = t.render(item)
    est = t.estimate(prompt)
    ans = asyncio.run(t.answer(prompt, item))
    assert ans.valid and ans.label in ("negative", "positive") and ans.rationale
    assert ans.confidence_source == "logprobs" and abs(sum(ans.distribution.values()) - 1) < 1e-6
    assert ans.confidence == ans.distribution[ans.label]
    assert json.loads(ans.raw)["label"] == ans.label
    # the reservation is an upper bound of the real usage
    assert ans.usage.tokens_in <= est.tokens_in and ans.usage.tokens_out <= est.tokens_out == 64


def test_labels_that_begin_with_the_same_token_still_give_a_distribution(model_path):
    """banking77's labels (card_arrival, card_linking, top_up_failed...) share first tokens: the teacher had no
    distribution, so no confidence (a cascade asked its next teacher about every item) and no calibration."""
    from distilloop.annotators.local import LlamaCppTeacher

    t = LlamaCppTeacher(name="q", model=str(model_path), max_tokens=64)
    labels = ("card_arrival", "card_linking", "top_up_failed", "top_up_reverted", "balance_not_updated")
    item = LabelingItem("x", {"text": "My top up failed twice today."}, labels, "Classify the bank customer's message.")
    ans = asyncio.run(t.answer(t.render(item), item))
    assert ans.valid and ans.confidence_source == "logprobs" and set(ans.distribution) == set(labels)
    assert abs(sum(ans.distribution.values()) - 1) < 1e-6 and ans.confidence == ans.distribution[ans.label] > 0


def test_a_numeric_answer_comes_after_the_working_and_parses_as_a_number(model_path):
    from distilloop.annotators.local import LlamaCppTeacher

    t = LlamaCppTeacher(name="q", model=str(model_path), max_tokens=120, rationale_max_chars=300)
    item = LabelingItem("m", {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?"}, (),
                        "Solve the math word problem.", answer="number")
    prompt = t.render(item)
    ans = asyncio.run(t.answer(prompt, item))
    assert ans.valid and ans.rationale and ans.error is None
    obj = json.loads(ans.raw, strict=False)
    assert list(obj) == ["rationale", "answer"]  # chain of thought: the grammar puts the working first
    assert isinstance(obj["answer"], int | float) and ans.label == normalize_number(obj["answer"])
    assert ans.distribution is None and ans.usage.tokens_out <= 120


def test_a_campaign_round_with_the_local_teacher(model_path, tmp_path):
    from distilloop.loop.campaign import Campaign
    from distilloop.loop.config import load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text(campaign_toml(
        name="llm", task="Classify the sentiment of the movie review snippet as negative or positive.",
        budget="max_tokens_in = 100000\nmax_tokens_out = 1000", rounds="max_rounds = 1\ninitial_size = 3",
        extra=f"""\
[[teachers]]
name = "qwen-0.5b"
kind = "llama_cpp"
model = "{model_path}"
max_tokens = 64
"""))
    campaign = Campaign.open(load_config(cfg))
    reason = campaign.run()
    assert reason.startswith("max rounds")
    calls = campaign.store.calls()
    assert len(calls) == 3 and all(c.status == "ok" and c.valid for c in calls)
    assert campaign.store.spent().tokens_out == sum(c.tokens_out for c in calls) > 0
    assert len(campaign.store.labeled()) == 3
    assert campaign.store.active_student() is not None
    campaign.close()

