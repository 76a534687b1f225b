"""The demo's settings against the phase-1 demo's, on the recorded teachers: do the defaults work?

Both configurations run the full campaign loop (store, budget, cascade, aggregation, routing, training) over the
same recorded Rotten Tomatoes pool items, with *replay* teachers answering from the real recorded outputs of the
two packaged local teachers (``data/recorded/``: answers with a rationale, and the label alone), the same gold
dev rows to decide on and the same 1000 test rows to report on. Only the settings differ:

- **phase-1 demo**: entropy selection, plain majority votes without calibration, every answer with a rationale,
  the MiniLM embedding student (``C = 10``);
- **demo** (``examples/rt_demo/campaign.toml``, read from the file itself, so the benchmark cannot drift from what
  users run; ``distilloop init`` writes the same settings): ``mixture`` selection, the stronger teacher first in a
  cascade, confidence-weighted votes after batch calibration, the label alone (rationale policy ``auto``), the
  mpnet embedding student.

Both keep the demo's budget, round sizes and ``min_agreement = 0.75`` with the auto reviewer. Printed per round
and configuration (mean over seeds): labels, their accuracy against gold, the student's test accuracy with the
majority-class rate beside it, and the teacher tokens spent. Usage::

    PYTHONPATH=. python benchmarks/defaults.py [--seeds 0 1 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.label_efficiency import ROOT, RT, recorded_ids  # noqa: E402
from distilloop.loop.campaign import Campaign  # noqa: E402
from distilloop.loop.config import parse_config  # noqa: E402
from distilloop.loop.progress import Progress  # noqa: E402

DEMO = ROOT / "examples" / "rt_demo" / "campaign.toml"


def phase1(demo: dict[str, Any]) -> dict[str, Any]:
    """The demo as the first phase shipped it: the same task, data, budget and rounds, its old settings."""
    old = copy.deepcopy(demo)
    for key in ("aggregation", "rationales"):
        old.pop(key, None)
    old["strategy"] = {"name": "entropy"}
    old["routing"] = {"min_agreement": 0.75}
    old["rationales"] = {"policy": "all"}
    old["student"] = {"kind": "embedding_linear", "C": 10.0, "tune_C": False,
                      "tune_class_weight": False}  # all-MiniLM-L6-v2, C fixed, classes by count
    old["teachers"] = sorted(old["teachers"], key=lambda t: t["name"])  # qwen-0.5b first, as it was
    return old


def replayed(raw: dict[str, Any], data: Path, store: Path, seed: int) -> dict[str, Any]:
    """``raw`` with its local teachers replaced by replay teachers of the same names (the recorded answers of the
    same models, with a rationale and without), on the benchmark's data file."""
    raw = copy.deepcopy(raw)
    paths = [str(ROOT / RT.recording), str(ROOT / RT.label_only)]
    raw["teachers"] = [{"name": t["name"], "kind": "replay", "model": t["name"], "path": paths, "source": t["name"],
                        "max_tokens": t.get("max_tokens", 80)} for t in raw["teachers"]]
    raw["campaign"] = {**raw["campaign"], "seed": seed, "store": str(store)}
    # the demo's limits: a seeded sample of the dev and test rows (and 600 of the recorded pool items)
    raw["data"] = {"path": str(data), "input_fields": raw["data"].get("input_fields", ["text"]),
                   "limits": raw["data"].get("limits", {})}
    return raw


def data_file(ids: list[str], workdir: Path) -> Path:
    """The recorded pool items, and every dev and test row of the data set (the demo's limits sample them)."""
    wanted, out = set(ids), workdir / "rt.defaults.jsonl"
    with gzip.open(ROOT / RT.data, "rt") as f, open(out, "w") as g:
        for line in f:
            r = json.loads(line)
            if r.get("split") in ("dev", "test") or r["id"] in wanted:
                g.write(line)
    return out


def run(name: str, raw: dict[str, Any], workdir: Path) -> dict[str, Any]:
    config = parse_config(raw, workdir / f"{name}.toml")
    started = time.perf_counter()
    campaign = Campaign.open(config, progress=Progress(quiet=True, warnings=False))
    try:
        campaign.run()
        rows = []
        for r in campaign.store.round_rows():
            test = ((r.metrics.get("refs") or {}).get("gold:test") or {})
            rows.append({"round": r.round, "labeled": r.labeled, "label_acc": r.label_acc,
                         "student_acc": test.get("accuracy"), "baseline": test.get("baseline"),
                         "tokens": r.tokens_in + r.tokens_out})
    finally:
        campaign.close()
    return {"rows": rows, "seconds": time.perf_counter() - started}


def mean(xs: list[Any]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    demo = tomllib.loads(DEMO.read_text())
    configs = {"phase-1 demo": phase1(demo), "demo (init's defaults)": demo}
    ids = recorded_ids(RT)
    limits = demo["data"].get("limits", {})
    with tempfile.TemporaryDirectory(prefix="distilloop-defaults-") as tmp:
        work = Path(tmp)
        data = data_file(ids, work)
        results: dict[str, list[dict[str, Any]]] = {}
        for name, raw in configs.items():
            for seed in args.seeds:
                store = work / f"{name.split()[0]}-{seed}.db"
                results.setdefault(name, []).append(run(name.split()[0], replayed(raw, data, store, seed), work))
                last = results[name][-1]["rows"][-1] if results[name][-1]["rows"] else {}
                print(f"  {name:24} seed {seed}: student {last.get('student_acc')}, labels {last.get('label_acc')}, "
                      f"{results[name][-1]['seconds']:.0f} s", file=sys.stderr)
    print(f"Rotten Tomatoes: {limits.get('pool', len(ids))} of the {len(ids)} recorded pool items, "
          f"{limits.get('dev', '-')} dev rows (decisions), {limits.get('test', '-')} test rows (reported), seeded "
          f"samples as the demo draws them; replayed teachers; mean over seeds {args.seeds}")
    head = (f"{'configuration':24} {'round':>5} {'labeled':>7} {'label acc':>9} {'student acc':>11} "
            f"{'majority':>8} {'tokens':>8}")
    print(head + "\n" + "-" * len(head))
    summary = {}
    for name, runs in results.items():
        n_rounds = max(len(r["rows"]) for r in runs)
        for i in range(n_rounds):
            at = [r["rows"][i] for r in runs if len(r["rows"]) > i]
            row = {k: mean([a[k] for a in at]) for k in ("labeled", "label_acc", "student_acc", "baseline", "tokens")}

            def pct(v: float | None) -> str:
                return "-" if v is None else f"{100 * v:.1f}%"

            print(f"{name:24} {i + 1:5} {row['labeled'] or 0:7.1f} {pct(row['label_acc']):>9} "
                  f"{pct(row['student_acc']):>11} {pct(row['baseline']):>8} {row['tokens'] or 0:8.0f}")
            summary.setdefault(name, []).append(row)
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "rounds": summary, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
