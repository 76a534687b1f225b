"""Batch calibration of teachers' logprob distributions: the bias is removed, the ranking kept, and a campaign
with ``[aggregation] calibrate = "batch"`` trains on the calibrated labels."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from distilloop.annotators.aggregation import ConfidenceWeightedVote, vote_table, votes_from_rows
from distilloop.annotators.calibration import BatchCalibration, build_calibration
from distilloop.core.types import Vote
from distilloop.errors import ConfigError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import FIXTURES, replay_config

LABELS = ("negative", "positive")


def biased_vote(teacher: str, positive: bool, rng: np.random.Generator, shift: float = 2.5) -> Vote:
    """A teacher that ranks items well but leans to "positive" by ``shift`` nats: it says positive to nearly all."""
    logit = shift + (1.0 if positive else -1.0) * 1.5 + rng.normal(0, 0.3)
    p = 1 / (1 + math.exp(-logit))
    dist = {"negative": 1 - p, "positive": p}
    label = "positive" if p >= 0.5 else "negative"
    return Vote(teacher, label, f"{teacher} says {label}", max(p, 1 - p), True, dist)


def test_batch_calibration_removes_a_teachers_label_bias():
    rng = np.random.default_rng(0)
    gold = [bool(i % 2) for i in range(100)]
    votes = {f"x{i}": [biased_vote("t", g, rng)] for i, g in enumerate(gold)}
    raw_acc = np.mean([votes[f"x{i}"][0].label == ("positive" if g else "negative") for i, g in enumerate(gold)])
    cal = BatchCalibration().fit(votes.values(), LABELS)
    out = cal.apply(votes, LABELS)
    acc = np.mean([out[f"x{i}"][0].label == ("positive" if g else "negative") for i, g in enumerate(gold)])
    assert raw_acc == 0.5  # the raw teacher says "positive" to everything
    assert acc == 1.0
    v = out["x0"][0]  # a negative item the teacher called positive
    assert v.label == "negative" and v.answered == "positive"
    assert v.raw_distribution == votes["x0"][0].distribution
    assert math.isclose(sum(v.distribution.values()), 1.0)
    assert v.confidence == pytest.approx(v.distribution["negative"])
    kept = out["x1"][0]
    assert kept.label == "positive" and kept.answered is None


def test_labels_the_api_left_out_of_an_answer_do_not_take_it_over():
    """OpenAI's top_logprobs hold a few of a dozen labels; the rest were zero, floored at 1e-6 in the fit, and
    wherever a mostly left-out label was given at all (2%) the calibration made it the label: a 12-label intent
    campaign's teacher, right on all 20 answers, was flipped on some and its items sent to review as split votes.
    A left-out label counts as half the smallest probability given: the right answers stay."""
    rng = np.random.default_rng(3)
    labels = tuple(f"intent{i}" for i in range(12))
    votes, gold = {}, {}
    for i in range(20):
        g = labels[i % 12]
        dist = dict.fromkeys(labels, 0.0)
        dist[g] = float(rng.uniform(0.6, 0.99))
        for x in rng.choice([x for x in labels if x != g], size=4, replace=False):  # 4 more given, the rest left out
            dist[str(x)] = (1 - dist[g]) / 4
        votes[f"x{i}"], gold[f"x{i}"] = [Vote("gpt", g, None, dist[g], True, dist)], g
    out = BatchCalibration().fit(votes.values(), labels).apply(votes, labels)
    assert all(out[k][0].label == gold[k] for k in votes)
    assert out["x0"][0].raw_distribution == votes["x0"][0].distribution  # the teacher's own, kept as it said it


def test_calibration_waits_for_enough_answers_and_skips_teachers_without_distributions():
    rng = np.random.default_rng(1)
    few = {f"x{i}": [biased_vote("t", bool(i % 2), rng)] for i in range(5)}
    cal = BatchCalibration(min_items=20).fit(few.values(), LABELS)
    assert cal.apply(few, LABELS) == {k: list(v) for k, v in few.items()}
    plain = {"y": [Vote("u", "positive", "r", 0.9)]}
    cal = BatchCalibration(min_items=1).fit(plain.values(), LABELS)
    assert cal.apply(plain, LABELS)["y"][0] == plain["y"][0]


def test_a_flipped_vote_keeps_its_rationale_for_display_but_not_for_training():
    rng = np.random.default_rng(2)
    votes = {f"x{i}": [biased_vote("t", bool(i % 2), rng)] for i in range(40)}
    out = BatchCalibration().fit(votes.values(), LABELS).apply(votes, LABELS)
    flipped = out["x0"]
    verdict = ConfidenceWeightedVote().aggregate(flipped, LABELS)
    assert verdict.label == "negative"
    assert verdict.rationale is None  # "t says positive" argues for the other label
    assert verdict.votes[0]["rationale"] == "t says positive" and verdict.votes[0]["answered"] == "positive"


def test_stored_vote_tables_refit_to_the_same_bias():
    rng = np.random.default_rng(3)
    votes = {f"x{i}": [biased_vote("t", bool(i % 2), rng)] for i in range(30)}
    cal = BatchCalibration().fit(votes.values(), LABELS)
    stored = {ex: votes_from_rows(json.loads(json.dumps(vote_table(vs)))) for ex, vs in cal.apply(votes, LABELS).items()}
    again = BatchCalibration().fit(stored.values(), LABELS)
    assert again.bias_["t"] == pytest.approx(cal.bias_["t"])
    assert again.apply(stored, LABELS)["x0"][0].label == "negative"


def test_unknown_calibration_is_a_config_error():
    with pytest.raises(ConfigError, match="aggregation.calibrate: must be one of none, batch"):
        build_calibration("platt")
    with pytest.raises(ConfigError, match="calibrate_min_items"):
        BatchCalibration(min_items=0)


def _biased_recording(path: Path) -> dict[str, str]:
    """A replay file for the tiny RT fixture: one teacher that says "positive" to nearly everything."""
    rng = np.random.default_rng(0)
    gold = {}
    with open(FIXTURES / "rt_tiny.jsonl") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with gzip.open(path, "wt") as g:
        for r in rows:
            gold[r["id"]] = r["label"]
            v = biased_vote("lean", r["label"] == "positive", rng)
            g.write(json.dumps({"teacher": "lean", "example_id": r["id"], "label": v.label, "rationale": v.rationale,
                                "confidence": v.confidence, "distribution": v.distribution,
                                "raw": json.dumps({"label": v.label, "rationale": v.rationale}),
                                "tokens_in": 90, "tokens_out": 20}) + "\n")
    return gold


@pytest.mark.parametrize("calibrate", ["none", "batch"])
def test_a_campaign_trains_on_calibrated_labels(tmp_path, calibrate):
    rec = tmp_path / "lean.jsonl.gz"
    gold = _biased_recording(rec)
    path = replay_config(tmp_path, teachers=(), rounds="max_rounds = 2\ninitial_size = 30\nbatch_size = 30",
                         extra=f'[aggregation]\nmethod = "confidence_weighted"\ncalibrate = "{calibrate}"\n'
                               f'[[teachers]]\nname = "lean"\nkind = "replay"\nmodel = "lean"\npath = "{rec}"\nsource = "lean"\n')
    text = path.read_text().replace("min_agreement = 0.7", "min_agreement = 0.0")
    path.write_text(text)
    campaign = Campaign.open(load_config(path))
    try:
        campaign.run()
        labeled = campaign.store.labeled()
        assert len(labeled) == 60
        acc = np.mean([r["label"] == gold[r["example_id"]] for r in labeled])
        positive = np.mean([r["label"] == "positive" for r in labeled])
        if calibrate == "none":
            assert positive > 0.95
        else:
            assert acc > 0.9
            flipped = [r for r in labeled if r["label"] != "positive"]
            assert flipped and all(r["rationale"] is None for r in flipped)
            votes = campaign.store.consensus(flipped[0]["example_id"])["votes"]
            assert votes[0]["answered"] == "positive" and votes[0]["calibrated_distribution"]
    finally:
        campaign.close()


def test_the_cascade_decides_on_calibrated_confidences(tmp_path):
    """With calibration on, the second tier is asked exactly where the first teacher's *calibrated*
    confidence is below the threshold (the raw one would escalate other items)."""
    rec = tmp_path / "two.jsonl.gz"
    gold = _biased_recording(rec)
    rows = [json.loads(line) for line in gzip.open(rec, "rt")]
    with gzip.open(rec, "at") as g:  # a second teacher that always agrees with gold, unsure
        for r in rows:
            lab = gold[r["example_id"]]
            g.write(json.dumps({"teacher": "other", "example_id": r["example_id"], "label": lab, "rationale": "o",
                                "confidence": 0.6, "distribution": {lab: 0.6, ("negative" if lab == "positive"
                                                                               else "positive"): 0.4},
                                "raw": json.dumps({"label": lab, "rationale": "o"}),
                                "tokens_in": 90, "tokens_out": 20}) + "\n")
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "{t}"\npath = "{rec}"\nsource = "{t}"\n'
                       for t in ("lean", "other"))
    path = replay_config(tmp_path, teachers=(), rounds="max_rounds = 1\ninitial_size = 40",
                         extra='[aggregation]\nmethod = "confidence_weighted"\ncalibrate = "batch"\n' + teachers)
    path.write_text(path.read_text().replace("[routing]\n", '[routing]\ncascade = ["lean", "other"]\n'
                                                            "cascade_min_confidence = 0.85\n"))
    campaign = Campaign.open(load_config(path))
    try:
        campaign.run()
        ids = campaign.store.selection(1)
        lean = {}
        for ex in ids:
            r = next(x for x in rows if x["example_id"] == ex)
            lean[ex] = [Vote("lean", r["label"], r["rationale"], r["confidence"], True, r["distribution"])]
        cal = BatchCalibration().fit(lean.values(), LABELS).apply(lean, LABELS)
        unsure = {ex for ex in ids if cal[ex][0].confidence < 0.85}
        raw_unsure = {ex for ex in ids if lean[ex][0].confidence < 0.85}
        asked = {r["example_id"] for r in campaign.store.db.query(
            "select example_id from teacher_calls where teacher = 'other' and status = 'ok'")}
        assert unsure and asked == unsure and unsure != raw_unsure
    finally:
        campaign.close()


def noisy_vote(teacher: str, positive: bool, rng: np.random.Generator, *, shift: float = 0.0, sep: float = 1.0,
               noise: float = 1.0) -> Vote:
    """A teacher whose log-odds of "positive" are ``shift`` plus ``sep`` toward the right label, plus noise."""
    logit = shift + (sep if positive else -sep) + rng.normal(0, noise)
    p = 1 / (1 + math.exp(-logit))
    return Vote(teacher, "positive" if p >= 0.5 else "negative", "r", max(p, 1 - p), True,
                {"negative": 1 - p, "positive": p})


def _accuracy(out: dict[str, list[Vote]], gold: list[bool], teacher: int = 0) -> float:
    return float(np.mean([out[f"x{i}"][teacher].label == ("positive" if g else "negative") for i, g in enumerate(gold)]))


def test_on_a_skewed_pool_fitting_to_the_class_shares_beats_equal_shares():
    rng = np.random.default_rng(4)
    gold = [bool(rng.random() < 0.85) for _ in range(400)]
    votes = {f"x{i}": [noisy_vote("t", g, rng, shift=-1.0)] for i, g in enumerate(gold)}
    equal = BatchCalibration().fit(votes.values(), LABELS).apply(votes, LABELS)
    fitted_cal = BatchCalibration().fit(votes.values(), LABELS, prior={"positive": 0.85, "negative": 0.15})
    fitted = fitted_cal.apply(votes, LABELS)
    # equal shares pull many positives over to the minority label; the fitted shares do not
    assert np.mean([v[0].label == "positive" for v in equal.values()]) < 0.65
    assert _accuracy(fitted, gold) > _accuracy(equal, gold) + 0.1
    # the calibrated distributions average to the shares fitted to
    mean_pos = np.mean([v[0].distribution["positive"] for v in fitted.values()])
    assert mean_pos == pytest.approx(0.85, abs=1e-4)
    assert fitted_cal.prior_ == pytest.approx({"negative": 0.15, "positive": 0.85})


def test_a_teacher_asked_about_part_of_the_items_is_fitted_to_the_shares_of_those_items():
    """A cascade's second tier answers only the items the first was unsure of (here, mostly negatives): fitting it
    to the pool's shares would push those items to "positive"; it is fitted to what the first teacher says of them."""
    rng = np.random.default_rng(5)
    gold = [bool(rng.random() < 0.85) for _ in range(600)]
    votes: dict[str, list[Vote]] = {}
    for i, g in enumerate(gold):
        votes[f"x{i}"] = [noisy_vote("first", g, rng, sep=2.0)]
        if not g or i % 10 == 0:  # the second tier sees the negatives and a few positives
            votes[f"x{i}"].append(noisy_vote("second", g, rng, shift=1.5, sep=2.0, noise=0.5))
    prior = {"positive": 0.85, "negative": 0.15}
    cal = BatchCalibration().fit(votes.values(), LABELS, prior=prior)
    out = cal.apply(votes, LABELS)
    second = [(out[k][1], g) for k, g in zip(votes, gold) if len(votes[k]) > 1]
    acc = np.mean([v.label == ("positive" if g else "negative") for v, g in second])
    naive = BatchCalibration()
    naive.fit([vs[1:] for vs in votes.values()], LABELS, prior=prior)  # the second teacher alone, pool shares
    naive_acc = np.mean([naive.calibrated(votes[k][1], LABELS).label == ("positive" if g else "negative")
                         for k, g in zip(votes, gold) if len(votes[k]) > 1])
    assert acc > 0.85 and acc > naive_acc + 0.2


def test_estimate_prior_keeps_equal_shares_unless_the_sample_shows_otherwise():
    from distilloop.annotators.calibration import estimate_prior

    assert estimate_prior(["positive"] * 20 + ["negative"] * 5, LABELS) is None  # too few to tell
    assert estimate_prior(["positive"] * 110 + ["negative"] * 90, LABELS) is None  # 55/45: not shown unequal
    shares = estimate_prior(["positive"] * 160 + ["negative"] * 40 + ["other"] * 7, LABELS)
    assert shares == pytest.approx({"negative": 0.2, "positive": 0.8})
    only = estimate_prior(["positive"] * 50, LABELS)  # a label never seen keeps a little mass
    assert only is not None and 0 < only["negative"] < 0.01


@pytest.mark.parametrize(("value", "message"), [
    ('"skewed"', 'must be "auto", "uniform" or a table'),
    ("{ positive = 0.9, neutral = 0.1 }", "'neutral' not among the labels"),
    ("{ positive = -1, negative = 2 }", "shares must be numbers >= 0"),
    ("{ positive = 0, negative = 0 }", "the shares add up to 0"),
    ("3", 'must be "auto", "uniform" or a table'),
])
def test_a_bad_calibrate_prior_is_a_config_error(tmp_path, value, message):
    from distilloop.loop.parts import build_parts

    path = replay_config(tmp_path, extra=f'[aggregation]\nmethod = "confidence_weighted"\ncalibrate = "batch"\n'
                                         f"calibrate_prior = {value}\n")
    with pytest.raises(ConfigError, match=message):
        build_parts(load_config(path))


def _skewed_data(path: Path, rng: np.random.Generator) -> tuple[Path, dict[str, str]]:
    """A pool (and a dev split) 85% positive, and one replay teacher that leans negative and is noisy."""
    data, rec, gold = path / "skewed.jsonl", path / "skewed.jsonl.gz", {}
    with open(data, "w") as f, gzip.open(rec, "wt") as g:
        for i in range(260):
            split = "pool" if i < 200 else "dev"
            lab = "positive" if rng.random() < 0.85 else "negative"
            gold[f"s{i}"] = lab
            f.write(json.dumps({"id": f"s{i}", "split": split, "text": f"snippet number {i} {lab[:3]}",
                                "label": lab}) + "\n")
            v = noisy_vote("lean", lab == "positive", rng, shift=-1.0)
            g.write(json.dumps({"teacher": "lean", "example_id": f"s{i}", "label": v.label, "rationale": "r",
                                "confidence": v.confidence, "distribution": v.distribution,
                                "raw": json.dumps({"label": v.label, "rationale": "r"}),
                                "tokens_in": 90, "tokens_out": 20}) + "\n")
    return data, gold


def _lean_campaign(tmp_path: Path, seed: int, initial_size: int, extra: str = "") -> tuple[Path, dict[str, str]]:
    """A one-round campaign of ``initial_size`` items on :func:`_skewed_data`, its one teacher calibrated; and the
    gold labels."""
    data, gold = _skewed_data(tmp_path, np.random.default_rng(seed))
    rec = tmp_path / "skewed.jsonl.gz"
    return replay_config(tmp_path, teachers=(), data=data, rounds=f"max_rounds = 1\ninitial_size = {initial_size}",
                         extra='[aggregation]\nmethod = "confidence_weighted"\ncalibrate = "batch"\n' + extra
                               + f'[[teachers]]\nname = "lean"\nkind = "replay"\nmodel = "lean"\npath = "{rec}"\n'
                               'source = "lean"\n'), gold


@pytest.mark.parametrize("prior", ["uniform", "auto"])
def test_a_campaign_fits_calibration_to_the_dev_splits_class_shares(tmp_path, prior, capsys):
    path, gold = _lean_campaign(tmp_path, 6, 150, extra=f'calibrate_prior = "{prior}"\n')
    path.write_text(path.read_text().replace("min_agreement = 0.7", "min_agreement = 0.0"))
    from distilloop.loop.progress import Progress

    campaign = Campaign.open(load_config(path), progress=Progress())
    try:
        campaign.run()
        labeled = campaign.store.labeled()
        acc = np.mean([r["label"] == gold[r["example_id"]] for r in labeled])
        used = campaign.store.get_meta("calibration_prior")
    finally:
        campaign.close()
    if prior == "uniform":
        assert used == {"source": "uniform", "shares": None}
        assert acc < 0.75
    else:
        assert used["source"].startswith("gold labels of the dev split (n=60)")
        assert used["shares"]["positive"] > 0.75
        assert acc > 0.85
        assert "calibrating the teachers to the class shares of gold labels of the dev split" in capsys.readouterr().err
        from distilloop.cli import main

        assert main(["status", str(path)]) == 0
        assert "calibration: fitted to the class shares of gold labels of the dev split" in capsys.readouterr().out


def test_the_shares_come_from_the_audit_answers_once_there_are_enough_else_from_the_dev_split(tmp_path):
    from distilloop.loop.steps.annotate import class_shares

    path, _ = _lean_campaign(tmp_path, 7, 10)  # dev: 60 rows, about 85% positive
    campaign = Campaign.open(load_config(path))
    try:
        env, store = campaign.env, campaign.store
        assert class_shares(env)["positive"] > 0.75  # the dev split's
        audit = [f"s{i}" for i in range(150, 190)]  # pool items, answered by a person: 20 negative, then 20 positive
        store.reserve_reference("audit", audit)
        for k, i in enumerate(audit[:25]):
            store.set_reference_label("audit", i, "negative" if k < 20 else "positive", source="human", round_no=1)
        assert class_shares(env)["positive"] > 0.75  # 25 audit answers: too few, the dev split still decides
        for i in audit[25:]:
            store.set_reference_label("audit", i, "positive", source="human", round_no=1)
        shares = class_shares(env)  # 40 answers, 20 of each: equal shares are not rejected
        assert shares is None and store.get_meta("calibration_prior") == {"source": "uniform", "shares": None}
    finally:
        campaign.close()
    table = path.read_text().replace('calibrate = "batch"\n', 'calibrate = "batch"\n'
                                     "calibrate_prior = { positive = 3, negative = 1 }\n")
    path.write_text(table)
    campaign = Campaign.open(load_config(path))
    try:
        assert class_shares(campaign.env) == pytest.approx({"negative": 0.25, "positive": 0.75})
        assert campaign.store.get_meta("calibration_prior")["source"] == "[aggregation] calibrate_prior"
    finally:
        campaign.close()


def test_answers_from_before_a_label_was_added_still_fit_the_bias_of_the_labels_they_cover():
    """Right after a label is added, a teacher's answers cover the earlier labels: its bias is fitted on those
    (here a lean toward "a"), and the new label keeps the others' mean shift, neither pushed nor held back. A
    label the prior cannot give (``open_labels``) is fitted to the teacher's own share of it, not to 0%."""
    rng = np.random.default_rng(0)

    def vote(scores):
        p = np.exp(np.asarray(scores, dtype=float))
        p /= p.sum()
        dist = dict(zip("abcd", map(float, p)))
        return Vote("t", max(dist, key=dist.get), confidence=max(dist.values()), distribution=dist)

    old = [[vote([2.0 + (1 if k == 0 else -1) + rng.normal(0, 0.3), 0.0 + (1 if k == 1 else -1),
                  0.0 + (1 if k == 2 else -1)][:3])] for k in rng.integers(0, 3, 60)]
    new = [[vote([2.0, 1.5, -1, 2.5])], [vote([2.2, 2.0, -1, -2])]]  # "d" raw first; "b" under a lean to "a"
    cal = BatchCalibration(min_items=20).fit([*old, *new], list("abcd"))
    assert set(cal.bias_["t"]) == {"a", "b", "c"} and cal.bias_["t"]["a"] > 1.0  # the lean, from the old answers
    assert [cal.calibrated(v[0], list("abcd")).label for v in new] == ["d", "b"]
    # over the whole label set with a prior that cannot give "d": its share is the teacher's own, not the floor
    answers = [[vote([0, 0, 0, 3.0] if k % 4 == 0 else [3.0, 0, 0, 0] if k % 2 else [0, 3.0, 0, 0])]
               for k in range(40)]
    prior = {"a": 0.5, "b": 0.4, "c": 0.1}
    held = BatchCalibration(min_items=20).fit(answers, list("abcd"), prior=prior)
    kept = BatchCalibration(min_items=20).fit(answers, list("abcd"), prior=prior, open_labels=["d"])
    said_d = answers[0][0]
    assert held.calibrated(said_d, list("abcd")).label != "d"
    assert kept.calibrated(said_d, list("abcd")).label == "d"


def test_the_pilots_answers_fit_the_first_rounds_calibration(tmp_path):
    """A first round of 20 items had its calibration fitted on those 20 alone, while `distilloop pilot` had
    just paid for 60 answers on a random sample of the pool (on a 5-label ticket file: the round's labels 60%
    right, the pilot's 95%). The pilot's answers (and the teachers' held-out set's) count until a round decides
    their items."""
    from distilloop.loop.pilot import run_pilot

    path, _ = _lean_campaign(tmp_path, 8, 20)
    campaign = Campaign.open(load_config(path))
    try:
        run_pilot(campaign.env, 60)
        from distilloop.loop.pilot import PILOT_META

        piloted = set(campaign.store.get_meta(PILOT_META))
        campaign.run()
        first = set(campaign.store.selection(1))
        assert len(piloted) == 60 and len(first) == 20
        assert campaign.env.parts.calibration.n_items_["lean"] == len(piloted | first)
    finally:
        campaign.close()
