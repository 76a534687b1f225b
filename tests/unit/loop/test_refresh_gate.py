"""The refresh regression gate: a student trained after a relabel (or new data) is promoted only if it does not
regress on the frozen evaluation reference beyond `promote_margin`; `distilloop students` shows each version's
score on the reference and on the newest labels apart."""

from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.references import decision_score
from distilloop.loop.relabel import Selectors, plan_relabel, relabel
from distilloop.testing.fake_api import FakeLLMAPI
from tests.conftest import campaign_toml
from tests.unit.annotators.remote_helpers import KEY, anthropic_teacher, openai_teacher
from tests.unit.loop.living_helpers import cli, edit, fixture_rows


def test_a_relabel_that_makes_the_student_worse_is_not_promoted(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    pool, _ = fixture_rows()
    gold = {r["text"]: r["label"] for r in pool}
    api = FakeLLMAPI(api_key=KEY, labeler=lambda text, labels: gold.get(text, labels[0]))
    cfg = tmp_path / "campaign.toml"
    cfg.write_text(campaign_toml(name="gate", rounds="max_rounds = 2\ninitial_size = 60\nbatch_size = 60",
                                 extra='[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\n'
                                       '[[teachers]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\n'
                                       "[evaluation]\npromote_margin = 0.02\n"))

    def open_campaign():
        return Campaign.open(load_config(cfg), teachers=[openai_teacher(api), anthropic_teacher(api)])

    campaign = open_campaign()
    try:
        campaign.run()
        good = campaign.store.active_student()
        assert good["round"] == 2 and good["reference"] == {"name": "gold:test", "n": 80}
        assert good["newest"]["n"] == 60 and good["newest"]["since"] is not None  # round 2's labels
    finally:
        campaign.close()
    edit(cfg, 'task = "Classify the sentiment."', 'task = "Classify the sentiment, the other way round."')
    api.labeler = lambda text, labels: next(x for x in labels if x != gold.get(text, labels[0]))
    campaign = open_campaign()
    try:
        result = relabel(campaign, plan_relabel(campaign, Selectors(stale=True)))
        assert len(result.changed) == 120
        bad = result.student
        metric = "accuracy"
        assert bad is not None and not bad["promoted"]
        assert decision_score(bad["metrics"], metric) < decision_score(good["metrics"], metric) - 0.02  # it regressed on the frozen reference
        assert campaign.store.active_student()["version"] == good["version"]
        # on the newest labels (the flipped ones) the new student fits them and the previous one does not
        assert bad["newest"]["n"] == 120 and bad["newest"]["metrics"][metric] > bad["newest"]["previous"][metric]
    finally:
        campaign.close()
    listing = cli("students", cfg).stdout.splitlines()
    row = next(line for line in listing if bad["version"] in line)
    assert "reference (gold:test, 80 rows) accuracy" in row and "newest (120 labels)" in row and "not promoted" in row
    assert f"accuracy {100 * decision_score(bad['metrics'], metric):.1f}%" in row and "guideline 2" in row
    assert next(line for line in listing if good["version"] in line).startswith("*")
