"""The lever table of `distilloop bench --levers` on known curves: costs to 95/98% of the full-pool student, the
tokens to the baseline's final accuracy, each lever alone and combined, the review row's gain per review."""

import pytest

from benchmarks.label_efficiency import Curve, paired_difference
from benchmarks.label_efficiency.levers import (
    BASELINE,
    INIT,
    REVIEWED,
    LeverResult,
    _name,
    format_levers,
    random_at_budgets,
    read_as,
    summarize_levers,
)

FULL_TOKENS, FULL_ACC = 1000, 0.80


def curve(name, seed, points, reviews=0, label_acc=0.9):
    return Curve(name, "tfidf", seed, "auto", [(t, t / 1e6, a, n) for t, a, n in points], 0.0, label_acc, reviews)


def curves():
    base = _name(BASELINE)
    cheap = "random/strong-first/label-only/batch"
    return [
        # the baseline: 100 tokens a label, 0.784 (98%) at 400 tokens, final 0.80
        curve(base, 0, [(100, 0.70, 1), (400, 0.784, 4), (1000, 0.80, 10)]),
        curve(base, 1, [(100, 0.72, 1), (400, 0.79, 4), (1000, 0.80, 10)]),
        # 40 tokens a label: 98% at 40 and 80 tokens, the baseline's final at 400
        curve(cheap, 0, [(40, 0.79, 1), (160, 0.79, 4), (400, 0.80, 10)]),
        curve(cheap, 1, [(80, 0.785, 2), (160, 0.79, 4), (400, 0.80, 10)]),
        # never at 98% in seed 1
        curve("random/off/all/none", 0, [(100, 0.70, 1), (1000, 0.79, 10)]),
        curve("random/off/all/none", 1, [(100, 0.70, 1), (1000, 0.75, 10)]),
        curve(base + REVIEWED, 0, [(100, 0.70, 1), (1000, 0.78, 10)], reviews=4),
        curve(base + REVIEWED, 1, [(100, 0.70, 1), (1000, 0.78, 10)], reviews=4),
        # init's levers end at 0.79; with 5 reviews at 0.81, past the baseline's final at 300 tokens
        curve(_name(INIT), 0, [(50, 0.70, 1), (500, 0.79, 10)]),
        curve(_name(INIT) + REVIEWED, 0, [(50, 0.70, 1), (300, 0.80, 6), (500, 0.81, 10)], reviews=5),
    ]


def test_costs_savings_and_the_review_gain():
    rows = {r["config"]: r for r in summarize_levers(curves(), FULL_TOKENS, 1e-3, FULL_ACC)}
    base, cheap = rows[_name(BASELINE)], rows["random/strong-first/label-only/batch"]
    assert base["cost@98%"] == pytest.approx(0.4) and base["tokens_to_random_final_vs_random"] == pytest.approx(1.0)
    assert cheap["cost@98%"] == pytest.approx(0.06)  # mean of 40 and 80 tokens, over 1000
    assert cheap["tokens_to_random_final_vs_random"] == pytest.approx(0.4)
    assert cheap["tokens_per_label"] == pytest.approx(40)
    assert rows["random/off/all/none"]["cost@98%"] is None  # not reached in every seed
    reviewed = rows[_name(BASELINE) + REVIEWED]
    assert reviewed["calibration"] == "batch" and reviewed["reviews"] == 4
    assert reviewed["acc_gain_per_100_reviews"] == pytest.approx(-50.0)  # 2 points over 4 reviews
    assert base["acc_gain_per_100_reviews"] is None
    # the gain per review is against the same configuration without review, not against the baseline
    init_reviewed = rows[_name(INIT) + REVIEWED]
    assert init_reviewed["acc_gain_per_100_reviews"] == pytest.approx(40.0)  # 2 points over 5 reviews
    assert init_reviewed["tokens_to_random_final_vs_random"] == pytest.approx(0.3)
    assert rows[_name(INIT)]["tokens_to_random_final_vs_random"] is None


def test_random_final_on_each_budget_and_the_tokens_to_reach_it():
    bars = random_at_budgets(curves(), FULL_TOKENS)
    # on 10% and 25% of the full cost the baseline's seeds stop at 0.70 and 0.72 (mean 0.71), which they first
    # reach at 400 and 100 tokens; on 50% at 0.784 and 0.79, reached at 1000 and 400; on the whole pool 0.80
    assert bars["10%"] == pytest.approx({"budget": 0.1, "accuracy": 0.71, "tokens": 0.25})
    assert bars["25%"]["accuracy"] == pytest.approx(0.71)
    assert bars["50%"] == pytest.approx({"budget": 0.5, "accuracy": 0.787, "tokens": 0.7})
    assert bars["all"] == pytest.approx({"budget": 1.0, "accuracy": 0.80, "tokens": 1.0})
    rows = {r["config"]: r for r in summarize_levers(curves(), FULL_TOKENS, 1e-3, FULL_ACC)}
    cheap = rows["random/strong-first/label-only/batch"]["vs_random_at_budget"]
    assert cheap["10%"] == pytest.approx(60 / 250)  # 40 and 80 tokens to 0.71
    assert cheap["50%"] == pytest.approx(100 / 700)  # 40 and 160 tokens to 0.787
    assert cheap["all"] == pytest.approx(0.4)
    assert rows[_name(BASELINE)]["vs_random_at_budget"] == pytest.approx({"10%": 1, "25%": 1, "50%": 1, "all": 1})
    never = rows["random/off/all/none"]["vs_random_at_budget"]  # seed 1 ends at 0.75, below 0.787
    assert never["10%"] == pytest.approx(1000 / 250) and never["50%"] is None and never["all"] is None


def test_the_table_shows_each_lever_alone_and_combined():
    cs = curves()
    result = LeverResult("toy", 10, FULL_TOKENS, 1e-3, FULL_ACC, summarize_levers(cs, FULL_TOKENS, 1e-3, FULL_ACC),
                         cs, {}, {"full_acc_reviewed": 0.78, "full_reviews": 4, "full_label_acc": 0.9,
                                  "full_label_acc_reviewed": 1.0, "full_difference": (-0.02, -0.05, 0.01),
                                  "full_acc_gold": 0.83, "full_label_acc_gold": 1.0})
    table = format_levers(result)
    assert table.splitlines()[4].startswith("random/strong-first/label-only/batch")  # cheapest to 98% first
    assert "calibration none alone (random/off/all/none)" in table
    assert "combined (random/strong-first/label-only/batch)" in table and "60.0%" in table  # 40 against 100 tokens
    assert "full-pool student 78.0% with 4 reviews against 80.0% without" in table
    assert "right), -50.00 points per 100 reviews" in table
    assert "-50.00 points of student accuracy per 100 reviews" in table
    assert "every item reviewed, the review the label (labels 100.0% right): full-pool student 83.0%" in table
    assert (f"{_name(INIT)} with review: final 81.0% against 79.0%, 5 reviews, +40.00 points of student accuracy per "
            "100 reviews, baseline's final reached at 30.0% of its tokens") in table
    assert "the same test items: -2.00 points, 95% paired bootstrap interval -5.00 to +1.00" in table


def test_every_row_lines_up_and_each_reviewed_configuration_says_how_it_read_the_reviews():
    cs = curves()
    cs[-1].review_trust = {"chosen": "vote"}
    how = read_as(cs)
    assert how == {_name(BASELINE) + REVIEWED: ["label", "label"], _name(INIT) + REVIEWED: ["vote"]}
    result = LeverResult("toy", 10, FULL_TOKENS, 1e-3, FULL_ACC, summarize_levers(cs, FULL_TOKENS, 1e-3, FULL_ACC),
                         cs, {}, {"full_acc_reviewed": 0.78, "full_reviews": 4, "full_label_acc": 0.9,
                                  "full_label_acc_reviewed": 1.0, "curves_read_as": how},
                         random_at_budgets(cs, FULL_TOKENS))
    lines = format_levers(result).splitlines()
    header = lines[2]
    assert header.endswith("rnd@10% rnd@25% rnd@50% rnd@all")
    cheap = next(line for line in lines if line.startswith("random/strong-first/label-only/batch "))
    assert cheap.endswith("  24.0%   24.0%   14.3%   40.0%")
    assert "random's final on each budget: 10%: 71.0%, first reached at 25.0% of the full-pool cost;" in lines[-1]
    rows = [line for line in lines[4:] if line.split(" ")[0] in {r["config"] for r in result.rows}]
    assert len(rows) == len(result.rows)
    # the longest name (the reviewed init row) does not push its figures out of their columns
    assert {len(line) for line in rows} == {len(header)}
    assert (f"read the reviews as (seed by seed): {_name(BASELINE)}{REVIEWED} label, label; "
            f"{_name(INIT)}{REVIEWED} vote") in "\n".join(lines)


def test_the_paired_interval_is_on_the_items_both_students_answered():
    same = [True, False] * 500
    assert paired_difference(same, same) == (0.0, 0.0, 0.0)  # the same answers: no difference, no spread
    a = [True] * 800 + [False] * 200
    better = [True] * 900 + [False] * 100  # 100 more items right of 1,000
    mean, lo, hi = paired_difference(a, better)
    assert mean == pytest.approx(0.1) and 0.07 < lo < 0.1 < hi < 0.13  # sd of the mean ~0.0095
    # the same two accuracies, disagreeing on 500 items each way: a zero difference, a wide interval
    swapped = [False] * 500 + [True] * 500
    mean, lo, hi = paired_difference([True] * 500 + [False] * 500, swapped)
    assert mean == 0.0 and lo < -0.05 and hi > 0.05


@pytest.mark.parametrize("name, own_dev", [("rt_polarity", True), ("commonsenseqa", False)])
def test_the_bench_decides_on_a_dev_split_never_on_the_test_split(tmp_path, name, own_dev):
    import json

    from benchmarks.label_efficiency import DATASETS, DEV_LIMIT, dataset_ids, make_pool_file

    spec, ids = dataset_ids(name)
    rows = [json.loads(line) for line in make_pool_file(spec, ids, tmp_path, dev=True).read_text().splitlines()]
    split = {r["id"]: r["split"] for r in rows}
    assert [i for i in ids if split.get(i) != "pool"] == []  # every recorded item is in the pool
    dev = [r for r in rows if r["split"] == "dev"]
    assert 0 < len(dev) <= (10**9 if own_dev else DEV_LIMIT)
    assert not {r["id"] for r in dev} & set(ids)  # a dev row is never one a teacher answered
    assert sum(r["split"] == "test" for r in rows) == DATASETS[name].test_limit or own_dev
    without = make_pool_file(spec, ids, tmp_path).read_text().splitlines()
    assert not any(json.loads(line)["split"] == "dev" for line in without)


def test_extra_test_rows_are_unrecorded_pool_rows_never_dev_ones(tmp_path):
    import json

    from benchmarks.label_efficiency import RT, dataset_ids, make_pool_file

    spec, ids = dataset_ids("rt_polarity")
    plain = [json.loads(line) for line in make_pool_file(spec, ids, tmp_path, dev=True).read_text().splitlines()]
    rows = [json.loads(line) for line in
            make_pool_file(spec, ids, tmp_path, dev=True, test_extra=300).read_text().splitlines()]
    test = {r["id"] for r in rows if r["split"] == "test"}
    plain_test = {r["id"] for r in plain if r["split"] == "test"}
    assert len(plain_test) == RT.test_limit and plain_test < test and len(test) == RT.test_limit + 300
    assert not (test - plain_test) & set(ids)  # never an item a teacher answered (it could be labeled)
    assert not test & {r["id"] for r in rows if r["split"] == "dev"}
    assert {r["id"] for r in rows if r["split"] == "pool"} == set(ids)
    assert RT.test_extra > 0  # the lever and label-efficiency benchmarks score on the larger test set
