"""The aggregation benchmark's logic on a tiny synthetic recording (the real figures come from real recordings)."""

import gzip
import json

from benchmarks.aggregation import run


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
    rec, data = tmp_path / "rec.jsonl.gz", tmp_path / "data.jsonl.gz"
    with gzip.open(rec, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    with gzip.open(data, "wt") as f:
        f.write("\n".join(json.dumps({"id": k, "text": "t", "label": v}) for k, v in gold.items()))
    out = run(rec, data, min_agreement=0.75, review_share=0.0, seed=0)
    assert out["n_items"] == 3
    cas = next(r for r in out["cascade"] if r["threshold"] == 0.8 and "majority" in r["method"])
    assert cas["escalated"] == 2 and cas["tokens"] == 3 * 110 + 2 * 120
    allv = next(r for r in out["rows"] if r["method"] == "all teachers, majority vote")
    assert allv["tokens"] == 3 * 230 and allv["accuracy"] == 1.0  # ties go to the more confident strong teacher
    assert cas["accuracy"] == 1.0
