"""The [stopping] rules inside real campaigns (SQLite store, TF-IDF student, replay teachers)."""

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from distilloop.errors import ConfigError
from distilloop.loop import stopping
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.students.base import Student
from tests.conftest import FIXTURES, replay_config

# 60 labels first, then 2 a round: the student's predictions on the stop set stop changing
SETTLING = "max_rounds = 8\ninitial_size = 60\nbatch_size = 2"
# 20 labels, then 10 a round: the predictions keep changing
CHANGING = "max_rounds = 4\ninitial_size = 20\nbatch_size = 10"


def stabilizing(**keys):
    opts = {"stabilizing": "true", "stop_set_size": 40, "kappa": 0.99, "window": 2, **keys}
    return "[stopping]\n" + "\n".join(f"{k} = {v}" for k, v in opts.items()) + "\n"


def open_campaign(tmp_path, rounds, extra, **kw):
    return Campaign.open(load_config(replay_config(tmp_path, rounds=rounds, extra=extra, **kw)))


def done_rounds(campaign):
    return [r["round"] for r in campaign.store.rounds() if r["status"] == "done"]


def stored_kappas(campaign):
    """Kappas recomputed here (scikit-learn) from the predictions the store holds."""
    preds = [p["predictions"] for p in stopping.prediction_history(campaign.store)]
    return [cohen_kappa_score(a, b) if a != b else 1.0 for a, b in zip(preds, preds[1:], strict=False)]


def test_stabilizing_predictions_stop_the_campaign_before_max_rounds(tmp_path):
    campaign = open_campaign(tmp_path, SETTLING, stabilizing())
    reason = campaign.run()
    rounds = done_rounds(campaign)
    assert len(rounds) < 8
    assert reason.startswith("predictions stabilized: kappa 1.0000 (mean of the last 2 round-to-round")
    assert reason.endswith("on 40 stop-set items) >= 0.99")
    assert campaign.store.get_meta("stop_reason") == reason
    # the stop set: 40 pool ids chosen before round 1, predicted by every round's student
    ids = stopping.stop_set(campaign.store)
    pool = {e.id for e in campaign.store.examples("pool")}
    assert len(ids) == len(set(ids)) == 40 and set(ids) <= pool
    history = stopping.prediction_history(campaign.store)
    assert [p["round"] for p in history] == rounds
    for p, s in zip(history, campaign.store.students(), strict=True):
        texts = [campaign.store.example(i).text for i in ids]
        assert p["student"] == s["version"] and Student.load(s["path"]).predict(texts) == p["predictions"]
    # it stopped at the first round where the mean of the last 2 kappas reached 0.99
    kappas = stored_kappas(campaign)
    assert [k["kappa"] for k in stopping.kappa_history(campaign.store)] == pytest.approx(kappas)
    means = [np.mean(kappas[i - 2:i]) for i in range(2, len(kappas) + 1)]
    assert means[-1] >= 0.99 and all(m < 0.99 for m in means[:-1])
    campaign.close()


def test_changing_predictions_do_not_stop_the_campaign(tmp_path):
    campaign = open_campaign(tmp_path, CHANGING, stabilizing(window=3))
    assert campaign.run() == "max rounds reached (4)"
    kappas = stored_kappas(campaign)
    assert len(kappas) == 3 and np.mean(kappas) < 0.99
    campaign.close()


def test_a_resumed_campaign_keeps_its_stop_set_and_kappa_history(tmp_path):
    (tmp_path / "once").mkdir()
    (tmp_path / "resumed").mkdir()
    once = open_campaign(tmp_path / "once", CHANGING, stabilizing(window=3))
    once.run()
    expected_set, expected = stopping.stop_set(once.store), stopping.kappa_history(once.store)
    once.close()

    first = open_campaign(tmp_path / "resumed", CHANGING, stabilizing(window=3))
    assert first.run(max_rounds=2) == "--rounds limit of this run reached"
    stop_set = stopping.stop_set(first.store)
    assert stop_set == expected_set
    first.close()
    # a new process: a larger stop_set_size does not change the campaign's stop set
    again = open_campaign(tmp_path / "resumed", CHANGING, stabilizing(window=3, stop_set_size=80))
    assert again.run() == "max rounds reached (4)"
    assert stopping.stop_set(again.store) == stop_set
    assert stopping.kappa_history(again.store) == expected
    again.close()


def test_a_campaign_reopened_after_a_stabilized_stop_stops_again_with_the_same_history(tmp_path):
    campaign = open_campaign(tmp_path, SETTLING, stabilizing())
    reason = campaign.run()
    rounds, history = done_rounds(campaign), stopping.kappa_history(campaign.store)
    stop_set = stopping.stop_set(campaign.store)
    campaign.close()
    again = open_campaign(tmp_path, SETTLING, stabilizing())
    assert again.stop_reason() == reason
    assert again.run() == reason and done_rounds(again) == rounds
    assert stopping.stop_set(again.store) == stop_set and stopping.kappa_history(again.store) == history
    again.close()


def dev_data(tmp_path):
    """The tiny fixture with every other test row moved to a dev split (the pool is unchanged)."""
    rows = [json.loads(line) for line in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()]
    test_rows = [r for r in rows if r["split"] == "test"]
    for r in test_rows[::2]:
        r["split"] = "dev"
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dev_target_stops_the_campaign_after_patience_rounds(tmp_path):
    data = dev_data(tmp_path)
    campaign = open_campaign(tmp_path, "max_rounds = 8\ninitial_size = 20\nbatch_size = 10",
                             "[stopping]\ndev_target = 0.6\ndev_patience = 2\n", data=data)
    reason = campaign.run()
    students = campaign.store.students()
    dev_rows = campaign.store.examples("dev")
    for s in students:  # the recorded dev metric is the student's accuracy on the dev split
        pred = Student.load(s["path"]).predict([e.text for e in dev_rows])
        assert s["metrics"]["dev_accuracy"] == pytest.approx(np.mean([p == e.gold for p, e in zip(pred, dev_rows)]))
    dev = [s["metrics"]["dev_accuracy"] for s in students]
    hits = [i for i in range(1, len(dev)) if dev[i - 1] >= 0.6 and dev[i] >= 0.6]
    assert hits and len(done_rounds(campaign)) == hits[0] + 1 < 8  # the first two successive rounds at 0.6
    assert reason == f"dev target reached: accuracy {min(dev[-2:]):.4f} >= 0.6 for 2 round(s)"
    assert dev != [s["metrics"]["accuracy"] for s in students]  # not the test split's figure
    campaign.close()


def test_dev_target_without_a_dev_split_fails_at_open_and_writes_nothing(tmp_path):
    cfg = load_config(replay_config(tmp_path, extra="[stopping]\ndev_target = 0.8\n"))
    with pytest.raises(ConfigError, match=r"stopping.dev_target: needs a dev split with gold labels, got 0 "
                                          r"labeled dev rows .*set data.dev_fraction"):
        Campaign.open(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["campaign.toml"]


def test_dev_target_added_to_an_existing_campaign_without_a_dev_split_fails(tmp_path):
    Campaign.open(load_config(replay_config(tmp_path))).close()
    before = (tmp_path / "t.distilloop.db").read_bytes()
    cfg = load_config(replay_config(tmp_path, extra="[stopping]\ndev_target = 0.8\n"))
    with pytest.raises(ConfigError, match=r"data.dev_fraction"):
        Campaign.open(cfg)
    assert (tmp_path / "t.distilloop.db").read_bytes() == before
