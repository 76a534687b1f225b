"""Every lever of the pipeline on the recorded teachers, alone and combined: selection x cascade x rationale policy
x calibration (``distilloop bench --levers``).

Each configuration is a real campaign through the round runner with the replay teachers, the same pool, student,
schedule and seeds as the label-efficiency grid; what it pays is what its ledger records (the cascade asks the
second teacher only where the first is unsure; the label-only policy replays the teachers' recorded label-only
answers, a few tokens each). The full-pool cost is always "every teacher, with a rationale, on every pool item",
and the full-pool student is the baseline configuration's (random, both teachers, rationales, calibrated votes)
trained on the whole pool. Dollars are at the data set's stated list prices; the batch column is the same calls
at the providers' batch discount (half price); prompt caching is not modelled (the recorded local teachers report
no cached tokens, and a label prompt's shared prefix is short).
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilloop.loop.progress import Progress

from . import (
    DATASETS,
    STUDENTS,
    Curve,
    auc,
    cost_to_reach,
    full_cost,
    make_pool_file,
    recorded_ids,
    run_one,
    tempfile_dir,
)

SELECTION = ("random", "mixture")
CASCADE = ("off", "strong-first")
RATIONALES = ("all", "label-only")
CALIBRATION = ("none", "batch")
BASELINE = ("random", "off", "all", "batch")


@dataclass
class LeverResult:
    dataset: str
    pool_size: int
    full_tokens: int
    full_usd: float
    full_acc: float
    rows: list[dict[str, Any]]
    curves: list[Curve]


def _name(cfg: tuple[str, str, str, str]) -> str:
    return "/".join(cfg)


def run_levers(*, dataset: str = "rt_polarity", student: str = "embedding_mpnet", seeds: tuple[int, ...] = (0, 1, 2),
               schedule: tuple[int, float, int] = (10, 1.3, 40), min_agreement: float = 0.75,
               progress: Progress | None = None, workdir: Path | None = None) -> LeverResult:
    progress = progress or Progress(quiet=True)
    spec = DATASETS[dataset]
    ids = recorded_ids(spec)
    full_tokens, full_usd = full_cost(spec, ids)
    tmp = Path(tempfile_dir()) if workdir is None else workdir
    data = make_pool_file(spec, ids, tmp)
    strong_first = list(reversed(spec.teachers))  # the stronger teacher is listed last in the spec
    configs = list(itertools.product(SELECTION, CASCADE, RATIONALES, CALIBRATION))
    curves: list[Curve] = []
    with progress.bar(f"{dataset}: {len(configs)} lever settings x {len(seeds)} seeds", len(configs) * len(seeds) + 1) \
            as advance:
        whole = run_one(spec, data, tmp, strategy="random", student=STUDENTS[student], seed=0, review="auto",
                        pool_size=len(ids), schedule=(len(ids), 1.0, 1), min_agreement=min_agreement, name="full-pool")
        advance()
        for cfg in configs:
            selection, cascade, rationales, calibration = cfg
            routing = {"cascade": strong_first, "cascade_min_confidence": 0.8} if cascade != "off" else None
            for seed in seeds:
                curves.append(run_one(spec, data, tmp, strategy=selection, student=STUDENTS[student], seed=seed,
                                      review="auto", pool_size=len(ids), schedule=schedule,
                                      min_agreement=min_agreement, student_name=student, calibrate=calibration,
                                      rationales="all" if rationales == "all" else "review", routing=routing,
                                      name=_name(cfg)))
                advance()
    full_acc = whole.points[-1][2]
    return LeverResult(dataset, len(ids), full_tokens, full_usd, full_acc,
                       summarize_levers(curves, full_tokens, full_usd, full_acc), curves)


def _usd_at(curve: Curve, tokens: float | None) -> float | None:
    if tokens is None:
        return None
    return next((usd for t, usd, _, _ in curve.points if t >= tokens - 1e-9), None)


def _mean(xs: list[float | None]) -> float | None:
    """The mean, or None when any seed never got there."""
    return statistics.mean(x for x in xs if x is not None) if xs and all(x is not None for x in xs) else None


def summarize_levers(curves: list[Curve], full_tokens: float, full_usd: float, full_acc: float) -> list[dict[str, Any]]:
    groups: dict[str, list[Curve]] = {}
    for c in curves:
        groups.setdefault(c.strategy, []).append(c)
    base = groups.get(_name(BASELINE), [])
    random_final = statistics.mean(c.points[-1][2] for c in base) if base else None
    base_tokens = _mean([cost_to_reach(c, random_final) for c in base]) if random_final is not None else None
    rows = []
    for name, cs in groups.items():
        row: dict[str, Any] = dict(zip(("selection", "cascade", "rationales", "calibration"), name.split("/")))
        row.update(config=name, seeds=len(cs), auc=statistics.mean(auc(c, full_tokens) for c in cs),
                   final_acc=statistics.mean(c.points[-1][2] for c in cs),
                   label_acc=_mean([c.label_acc for c in cs]),
                   tokens_per_label=statistics.mean(c.points[-1][0] / max(1, c.points[-1][3]) for c in cs))
        for q in (0.95, 0.98):
            costs = [cost_to_reach(c, q * full_acc) for c in cs]
            tokens = _mean(costs)
            row[f"cost@{int(q * 100)}%"] = None if tokens is None else tokens / full_tokens
            usd = _mean([_usd_at(c, t) for c, t in zip(cs, costs)])
            row[f"usd@{int(q * 100)}%"] = usd
            row[f"usd_batch@{int(q * 100)}%"] = None if usd is None else usd / 2
        reach = _mean([cost_to_reach(c, random_final) for c in cs]) if random_final is not None else None
        row["tokens_to_random_final_vs_random"] = (None if reach is None or not base_tokens else reach / base_tokens)
        rows.append(row)
    rows.sort(key=lambda r: (r["cost@98%"] is None, r["cost@98%"] or 0, -r["auc"]))
    return rows


def format_levers(result: LeverResult) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    def usd(v: float | None) -> str:
        return "-" if v is None else f"${v:.4f}"

    lines = [f"levers on {result.dataset}: pool {result.pool_size} recorded items; full-pool cost (every teacher, with "
             f"a rationale, on every item) {result.full_tokens:,} tokens, ${result.full_usd:.4f} at list prices; "
             f"full-pool student {result.full_acc:.4f}",
             "", f"{'selection/cascade/rationales/calibration':42} {'AUC':>6} {'final':>6} {'labels':>6} {'tok/lbl':>7} "
                 f"{'cost@95%':>8} {'cost@98%':>8} {'$@98%':>8} {'batch $':>8} {'vs rand':>7}"]
    lines.append("-" * len(lines[-1]))
    for r in result.rows:
        lines.append(f"{r['config']:42} {r['auc']:6.3f} {pct(r['final_acc']):>6} {pct(r['label_acc']):>6} "
                     f"{r['tokens_per_label']:7.0f} {pct(r['cost@95%']):>8} {pct(r['cost@98%']):>8} "
                     f"{usd(r['usd@98%']):>8} {usd(r['usd_batch@98%']):>8} "
                     f"{pct(r['tokens_to_random_final_vs_random']):>7}")
    lines += ["", "final: the last student's test accuracy; labels: accuracy of the accepted labels against gold; "
              "tok/lbl: teacher tokens paid per accepted label; cost@X%: share of the full-pool cost paid when the "
              "student first reaches X% of the full-pool student ('-': not in every seed); $@98%: the same in "
              "dollars at list prices, batch $ at half price; vs rand: tokens this configuration pays to reach the "
              f"baseline's ({_name(BASELINE)}) final accuracy, as a share of what the baseline pays. Mean over seeds."]
    return "\n".join(lines)
