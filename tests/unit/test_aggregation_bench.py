"""The aggregation benchmark's logic on a tiny synthetic recording (the real figures come from real recordings)."""

import gzip
import json

from benchmarks.aggregation import run


def write_recording(tmp_path, rows, gold):
    """A recording (one row per teacher x example) and its data file with the gold labels."""
    rec, data = tmp_path / "rec.jsonl.gz", tmp_path / "data.jsonl.gz"
    with gzip.open(rec, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    with gzip.open(data, "wt") as f:
        f.write("\n".join(json.dumps({"id": k, "text": "t", "label": v}) for k, v in gold.items()))
    return rec, data


def test_benchmark_counts_tokens_and_escalations(tmp_path):
    gold = {"e1": "positive", "e2": "negative", "e3": "positive"}
    rows = []
    for ex, y in gold.items():
        # cheap: sure and right on e1, unsure elsewhere; strong: always right
        conf = 0.95 if ex == "e1" else 0.55
        cheap_label = y if ex != "e3" else "negative"
        rows.append({"teacher": "qwen-0.5b", "example_id": ex, "label": cheap_label, "confidence": conf,
                     "valid": True, "tokens_in": 100, "tokens_out": 10, "rationale": "r"})
        rows.append({"teacher": "qwen-1.5b", "example_id": ex, "label": y, "confidence": 0.9, "valid": True,
                     "tokens_in": 100, "tokens_out": 20, "rationale": "r"})
    rec, data = write_recording(tmp_path, rows, gold)
    out = run(rec, data, min_agreement=0.75, review_share=0.0, seed=0)
    assert out["n_items"] == 3
    cas = next(r for r in out["cascade"] if r["threshold"] == 0.8 and "majority" in r["method"])
    assert cas["escalated"] == 2 and cas["tokens"] == 3 * 110 + 2 * 120
    allv = next(r for r in out["rows"] if r["method"] == "all teachers, majority vote")
    assert allv["tokens"] == 3 * 230 and allv["accuracy"] == 1.0  # ties go to the more confident strong teacher
    assert cas["accuracy"] == 1.0


def test_held_out_cascade_scores_each_half_with_the_threshold_chosen_on_the_other(tmp_path):
    rows, gold = [], {}
    for i in range(40):
        ex, y = f"e{i}", ("positive" if i % 2 else "negative")
        gold[ex] = y
        p = 0.97 if y == "positive" else 0.03  # the strong teacher: sure and right; the cheap one: unsure
        for teacher, dist in (("qwen-1.5b", {"positive": p, "negative": 1 - p}),
                              ("qwen-0.5b", {"positive": 0.6, "negative": 0.4})):
            label = max(dist, key=dist.get)
            rows.append({"teacher": teacher, "example_id": ex, "label": label, "confidence": dist[label],
                         "distribution": dist, "valid": True, "tokens_in": 100, "tokens_out": 10})
    rec, data = write_recording(tmp_path, rows, gold)
    out = run(rec, data, min_agreement=0.75, review_share=0.0, seed=0)
    strong_first = next(h for h in out["held_out"] if h["order"] == "qwen-1.5b -> qwen-0.5b")
    assert [f["n"] for f in strong_first["folds"]] == [20, 20]
    # the strong teacher is sure everywhere: the cheap one is never asked, half the tokens are saved
    assert strong_first["token_cut"] == 0.5 and strong_first["accuracy"] == 1.0 and strong_first["met"]
    cheap_first = next(h for h in out["held_out"] if h["order"] == "qwen-0.5b -> qwen-1.5b")
    assert cheap_first["token_cut"] == 0.0  # the calibrated cheap teacher is never sure: always escalates
