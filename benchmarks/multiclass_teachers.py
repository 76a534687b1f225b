"""Does the second local teacher help beyond two labels? ``init``'s teachers, side by side with the 1.5B alone.

``init`` writes both packaged teachers, the 1.5B first and the 0.5B only where the 1.5B's calibrated confidence is
below 0.8 (a cascade), votes confidence-weighted and batch-calibrated. On a 5-label support-ticket file a live
campaign's labels were 82.0% right with both and 93.0% with the 1.5B alone (one run each), and `pilot` found the
0.5B near chance on the items it was passed. This replays the recorded label-only answers (what ``init``'s
campaigns ask for) of a two-label set (Rotten Tomatoes) and a five-label one (CommonsenseQA) through the same
calibration and vote, and prints the labels' accuracy against gold and the teacher tokens per item for: the 1.5B
alone, uncalibrated and calibrated, and the cascade. Seconds; no model runs.

    PYTHONPATH=. python benchmarks/multiclass_teachers.py
"""

from __future__ import annotations

from benchmarks._data import load_jsonl
from distilloop.annotators.aggregation import ConfidenceWeightedVote
from distilloop.annotators.calibration import BatchCalibration
from distilloop.core.types import Vote

SETS = {"rt_polarity": ("rt_polarity.jsonl.gz", "recorded/rt_polarity.label_only.jsonl.gz"),
        "commonsenseqa": ("commonsenseqa.jsonl.gz", "recorded/commonsenseqa.label_only.jsonl.gz")}
STRONG, WEAK, THRESHOLD = "qwen-1.5b", "qwen-0.5b", 0.8


def replay(data: str, recording: str) -> dict[str, tuple[float, float]]:
    """Per configuration: the labels' accuracy against gold and the teacher tokens per item."""
    gold = {r["id"]: r["label"] for r in load_jsonl(data)}
    votes: dict[str, dict[str, Vote]] = {}
    tokens: dict[tuple[str, str], int] = {}
    for r in load_jsonl(recording):
        if r["valid"] and r["distribution"]:
            votes.setdefault(r["example_id"], {})[r["teacher"]] = Vote(r["teacher"], r["label"], None,
                                                                       r["confidence"], distribution=r["distribution"])
            tokens[r["example_id"], r["teacher"]] = r["tokens_in"] + r["tokens_out"]
    ids = sorted(i for i, v in votes.items() if len(v) == 2 and i in gold)
    labels = sorted({x for i in ids for x in votes[i][STRONG].distribution or {}})
    cal = BatchCalibration(min_items=20).fit([list(votes[i].values()) for i in ids], labels)
    vote = ConfidenceWeightedVote()
    right = {"1.5B alone, uncalibrated": 0, "1.5B alone, calibrated": 0, "init's cascade (both, calibrated)": 0}
    spent = dict.fromkeys(right, 0)
    for i in ids:
        strong = cal.calibrated(votes[i][STRONG], labels)
        right["1.5B alone, uncalibrated"] += votes[i][STRONG].label == gold[i]
        right["1.5B alone, calibrated"] += strong.label == gold[i]
        for key in ("1.5B alone, uncalibrated", "1.5B alone, calibrated"):
            spent[key] += tokens[i, STRONG]
        label, cost = strong.label, tokens[i, STRONG]
        if (strong.confidence or 0.0) < THRESHOLD:
            label = vote.aggregate([strong, cal.calibrated(votes[i][WEAK], labels)], labels).label
            cost += tokens[i, WEAK]
        right["init's cascade (both, calibrated)"] += label == gold[i]
        spent["init's cascade (both, calibrated)"] += cost
    return {k: (right[k] / len(ids), spent[k] / len(ids)) for k in right} | {"items": (len(ids), len(labels))}


def main() -> None:
    results = {name: replay(*paths) for name, paths in SETS.items()}
    print(f"{'configuration':36}" + "".join(f"{name + ' (' + str(r['items'][1]) + ' labels, ' + str(r['items'][0]) + ' items)':>44}"
                                           for name, r in results.items()))
    for key in next(iter(results.values())):
        if key == "items":
            continue
        print(f"{key:36}" + "".join(f"{100 * r[key][0]:>26.1f}% right, {r[key][1]:>5.0f} tok/item" for r in results.values()))


if __name__ == "__main__":
    main()
