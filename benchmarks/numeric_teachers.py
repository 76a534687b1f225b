"""Teachers on math word problems (GSM8K, SVAMP), from the recorded answers (run on demand, not in CI).

Replays ``data/recorded/{gsm8k,svamp}.teachers.jsonl.gz`` through the ``replay`` teacher (the code path a
campaign uses: the numeric prompt, ``parse_answer(..., "number")``) and, on the items every teacher answered,
compares side by side:

- each teacher alone: valid answers, accuracy against the gold number, tokens per item;
- both teachers asked, majority vote over their answers (:func:`answer_support` gives the item's label set):
  how often they agree, the accuracy of the agreed answers, and with the routing rule of a campaign (review
  where they disagree, the reviewer giving the gold answer) the accuracy of the labels and the share of items a
  human would see, against asking the strong teacher alone.

    python benchmarks/numeric_teachers.py [--data gsm8k --data svamp] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distilloop.annotators.aggregation import MajorityVote  # noqa: E402
from distilloop.annotators.prompts import NUMERIC_TASK  # noqa: E402
from distilloop.annotators.replay import ReplayTeacher, load_recording  # noqa: E402
from distilloop.core.answers import answer_support  # noqa: E402
from distilloop.core.types import LabelingItem, Vote  # noqa: E402
from distilloop.data import DataSpec, load_examples  # noqa: E402

TEACHERS = ("qwen-1.5b", "qwen-0.5b")  # the strong teacher first: it wins a tie


def run(name: str) -> dict[str, Any]:
    recording = ROOT / "data" / "recorded" / f"{name}.teachers.jsonl.gz"
    examples = {e.id: e for e in load_examples(ROOT / "data" / f"{name}.jsonl.gz", DataSpec(input_fields=("question",)))}
    from distilloop.core.answers import normalize_number

    teachers = [t for t in TEACHERS if _has(recording, t)]
    replay = {t: ReplayTeacher(name=t, model="replay", path=str(recording), source=t) for t in teachers}
    ids = sorted(set.intersection(*(set(load_recording(recording, t)) for t in teachers)))
    votes: dict[str, list[Vote]] = {i: [] for i in ids}
    tokens: dict[str, list[int]] = {t: [] for t in teachers}
    for ex_id in ids:
        e = examples[ex_id]
        item = LabelingItem(ex_id, e.fields, (), NUMERIC_TASK, answer="number")
        for t in teachers:
            ans = asyncio.run(replay[t].answer(replay[t].render(item), item))
            votes[ex_id].append(Vote(t, ans.label, ans.rationale, ans.confidence, ans.valid))
            tokens[t].append(ans.usage.tokens_in + ans.usage.tokens_out)
    gold = {i: normalize_number(examples[i].gold) for i in ids}
    out: dict[str, Any] = {"data": name, "items": len(ids), "teachers": {}}
    for k, t in enumerate(teachers):
        answers = [votes[i][k] for i in ids]
        out["teachers"][t] = {
            "valid": sum(v.valid for v in answers) / len(ids),
            "accuracy": sum(v.label == gold[i] for v, i in zip(answers, ids)) / len(ids),
            "tokens_per_item": statistics.mean(tokens[t]),
        }
    if len(teachers) >= 2:
        verdicts = {i: MajorityVote().aggregate(votes[i], answer_support(votes[i])) for i in ids}
        agreed = [i for i in ids if verdicts[i].n_votes == len(teachers) and verdicts[i].vote_share == 1.0]
        routed = {i: verdicts[i].label if i in agreed else gold[i] for i in ids}  # disagreements: human review
        out["ensemble"] = {
            "agree": len(agreed) / len(ids),
            "accuracy_when_agreeing": sum(verdicts[i].label == gold[i] for i in agreed) / max(1, len(agreed)),
            "accuracy_when_disagreeing_strong_teacher": (
                sum(votes[i][0].label == gold[i] for i in ids if i not in agreed) / max(1, len(ids) - len(agreed))),
            "routed_accuracy": sum(routed[i] == gold[i] for i in ids) / len(ids),
            "review_share": 1 - len(agreed) / len(ids),
            "tokens_per_item": sum(statistics.mean(tokens[t]) for t in teachers),
        }
    return out


def _has(recording: Path, teacher: str) -> bool:
    try:
        load_recording(recording, teacher)
    except Exception:  # noqa: BLE001 - a teacher absent from the file
        return False
    return True


def fmt(r: dict[str, Any]) -> str:
    lines = [f"## {r['data']}: {r['items']} items answered by every recorded teacher", "",
             "| labels from | valid | accuracy | tokens / item | items to review |", "|---|---|---|---|---|"]
    for t, s in r["teachers"].items():
        lines.append(f"| {t} alone | {s['valid']:.1%} | {s['accuracy']:.1%} | {s['tokens_per_item']:.0f} | 0% |")
    if "ensemble" in r:
        e = r["ensemble"]
        lines.append(f"| both, agreed answers accepted, disagreements reviewed | - | {e['routed_accuracy']:.1%} | "
                     f"{e['tokens_per_item']:.0f} | {e['review_share']:.1%} |")
        lines += ["", f"The teachers agree on {e['agree']:.1%} of the items; the agreed answers are "
                  f"{e['accuracy_when_agreeing']:.1%} right; where they disagree the strong teacher alone is "
                  f"{e['accuracy_when_disagreeing_strong_teacher']:.1%} right."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", choices=["gsm8k", "svamp"], help="data set (default: both)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    results = [run(name) for name in args.data or ["gsm8k", "svamp"]]
    print("\n\n".join(fmt(r) for r in results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
