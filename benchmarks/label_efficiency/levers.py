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
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distilloop.loop.progress import Progress

from . import (
    STUDENTS,
    Curve,
    accuracy_at,
    auc,
    cost_to_reach,
    dataset_ids,
    default_workers,
    full_cost,
    make_pool_file,
    paired_difference,
    run_many,
    run_one,
    tempfile_dir,
)

SELECTION = ("random", "mixture")
CASCADE = ("off", "strong-first", "weak-first")
RATIONALES = ("all", "label-only")
CALIBRATION = ("none", "batch")
BASELINE = ("random", "off", "all", "batch")
#: what `distilloop init` writes: mixture selection, the strong teacher first (threshold 0.8), rationales only where
#: they are used (none for the linear student without a reviewer), batch calibration
INIT = ("mixture", "strong-first", "label-only", "batch")
LEVERS = ("selection", "cascade", "rationales", "calibration")
#: the cascade's confidence thresholds tried on the held-out items, and how many items those are
THRESHOLDS = (0.6, 0.7, 0.8, 0.9)
HELD_OUT = 120
#: a threshold may cost this much label accuracy on the held-out items against asking every teacher: none (one
#: item of 120 is 0.8 points, and a point of label accuracy costs the student about half a point on RT; the
#: threshold `init` writes, 0.8, is the one this rule picks for the strong teacher first with label-only answers)
TOLERANCE = 0.0
#: the suffix of a configuration's name with the simulated gold reviewer on the items below min_agreement; the
#: configurations run that way: the baseline, and init's levers (what the gold answers buy on top of the cheap ones)
REVIEWED = "+review"
WITH_REVIEW = (BASELINE, INIT)
#: the budgets (shares of the full-pool cost) at which random sampling's accuracy is the bar "random's final": a
#: campaign on a fixed budget stops there; 1.0 is the whole pool, where random's final is the full-pool student
BUDGETS = (0.1, 0.25, 0.5, 1.0)


@dataclass
class LeverResult:
    dataset: str
    pool_size: int
    full_tokens: int
    full_usd: float
    full_acc: float
    rows: list[dict[str, Any]]
    curves: list[Curve]
    thresholds: dict[str, dict[str, Any]]
    review: dict[str, Any]
    #: random sampling's final accuracy on each budget and the tokens it pays for it (:func:`random_at_budgets`)
    random_at_budget: dict[str, dict[str, float]] = field(default_factory=dict)


def held_out_pool(spec: Any, ids: list[str], tmp: Path) -> tuple[list[str], Path]:
    """The ``HELD_OUT`` seeded pool items the cascade's thresholds are chosen on, and their data file."""
    held = random.Random(7).sample(ids, min(HELD_OUT, len(ids)))
    sub = tmp / "held-out"
    sub.mkdir(exist_ok=True)
    return held, make_pool_file(spec, held, sub)


def choose_threshold(spec: Any, held: list[str], data: Path, order: list[str], *, calibration: str, rationales: str,
                     min_agreement: float, schedule: tuple[int, float, int]) -> dict[str, Any]:
    """The cascade's confidence threshold for one order, calibration and rationale policy, chosen on held-out
    items (:func:`held_out_pool`) as a user would with a gold-labeled pilot: campaigns on the replay teachers
    (TF-IDF student, the campaigns' schedule) with every teacher asked and with each threshold; the cheapest
    threshold whose label accuracy is within ``TOLERANCE`` of asking every teacher wins (else the most accurate).
    Only the held-out items' gold is read, and only here."""

    def campaign(routing: dict[str, Any] | None, name: str) -> tuple[float, float]:
        c = run_one(spec, data, data.parent, strategy="random", student=STUDENTS["tfidf_logreg"], seed=0,
                    review="auto", pool_size=len(held), schedule=schedule, min_agreement=min_agreement,
                    calibrate=calibration, rationales=rationales, routing=routing, name=name)
        return c.label_acc or 0.0, c.points[-1][0] / max(1, c.points[-1][3])

    tag = f"{order[0]}-{calibration}-{rationales}"
    every_acc, every_tokens = campaign(None, f"held-out-off-{tag}")
    tried = [{"threshold": t, **dict(zip(("label_acc", "tokens_per_label"),
                                         campaign({"cascade": order, "cascade_min_confidence": t},
                                                  f"held-out-{t}-{tag}")))} for t in THRESHOLDS]
    ok = [r for r in tried if r["label_acc"] >= every_acc - TOLERANCE - 1e-9] or [max(tried, key=lambda r: r["label_acc"])]
    best = min(ok, key=lambda r: r["tokens_per_label"])
    return {"threshold": best["threshold"], "items": len(held), "every_teacher": {"label_acc": every_acc,
            "tokens_per_label": every_tokens}, "tried": tried}


def _name(cfg: tuple[str, str, str, str]) -> str:
    return "/".join(cfg)


def _policy(rationales: str) -> str:
    """The campaign's rationale policy for a lever setting: every item, or only the items going to review."""
    return "all" if rationales == "all" else "review"


def run_levers(*, dataset: str = "rt_polarity", student: str = "embedding_mpnet", seeds: tuple[int, ...] = (0, 1, 2),
               schedule: tuple[int, float, int] = (10, 1.3, 40), min_agreement: float = 0.75,
               progress: Progress | None = None, workdir: Path | None = None,
               workers: int | None = None) -> LeverResult:
    progress = progress or Progress(quiet=True)
    workers = workers or default_workers()
    spec, ids = dataset_ids(dataset)
    full_tokens, full_usd = full_cost(spec, ids)
    tmp = Path(tempfile_dir()) if workdir is None else workdir
    # decisions on the dev split's gold when there is one
    data = make_pool_file(spec, ids, tmp, dev=True, test_extra=spec.test_extra)
    orders = {"strong-first": list(reversed(spec.teachers)),  # the stronger teacher is listed last in the spec
              "weak-first": list(spec.teachers)}
    configs = list(itertools.product(SELECTION, CASCADE, RATIONALES, CALIBRATION))
    keys = list(dict.fromkeys((c, r, k) for _, c, r, k in configs if c != "off"))
    held, held_data = held_out_pool(spec, ids, tmp)
    common = {"spec": spec, "data": data, "workdir": tmp, "student": STUDENTS[student], "pool_size": len(ids),
              "min_agreement": min_agreement}
    whole_pool = {**common, "strategy": "random", "seed": 0, "schedule": (len(ids), 1.0, 1)}
    with progress.bar(f"{dataset}: {len(configs)} lever settings x {len(seeds)} seeds",
                      (len(configs) + len(WITH_REVIEW)) * len(seeds) + 4 + len(keys)) as advance:
        # here first: every text embedded once, before the campaigns share the work out
        whole = run_one(**whole_pool, review="auto", name="full-pool", keep_correct=True)
        advance()
        chosen = run_many([(choose_threshold, {"spec": spec, "held": held, "data": held_data, "order": orders[c],
                                               "calibration": k, "rationales": _policy(r),
                                               "min_agreement": min_agreement, "schedule": schedule})
                           for c, r, k in keys], workers=workers, advance=advance)
        thresholds = {"/".join(key): t for key, t in zip(keys, chosen)}
        calls = [(run_one, {**whole_pool, "review": "simulated", "name": "full-pool-reviewed", "keep_correct": True}),
                 # every review taken as the target ([routing] review_trust = "label"): what review cost before
                 (run_one, {**whole_pool, "review": "simulated", "routing": {"review_trust": "label"},
                            "name": "full-pool-reviewed-as-label"}),
                 # every item below agreement 1 reviewed, every review the label: the student on gold labels
                 (run_one, {**whole_pool, "review": "simulated", "min_agreement": 1.0,
                            "routing": {"review_trust": "label"}, "name": "full-pool-gold"})]
        def campaigns(cfg: tuple[str, str, str, str], review: str, name: str) -> list[tuple[Any, dict[str, Any]]]:
            selection, cascade, rationales, calibration = cfg
            routing = None if cascade == "off" else {
                "cascade": orders[cascade],
                "cascade_min_confidence": thresholds[f"{cascade}/{rationales}/{calibration}"]["threshold"]}
            return [(run_one, {**common, "strategy": selection, "seed": seed, "review": review, "schedule": schedule,
                               "student_name": student, "calibrate": calibration, "rationales": _policy(rationales),
                               "routing": routing, "name": name}) for seed in seeds]

        for cfg in configs:
            calls += campaigns(cfg, "auto", _name(cfg))
        # review as a lever: the simulated gold reviewer on the low-agreement items
        for cfg in WITH_REVIEW:
            calls += campaigns(cfg, "simulated", _name(cfg) + REVIEWED)
        reviewed_whole, as_label, gold, *curves = run_many(calls, workers=workers, advance=advance)
    full_acc = whole.points[-1][2]
    review = {"full_acc_reviewed": reviewed_whole.points[-1][2], "full_reviews": reviewed_whole.reviews,
              "full_label_acc": whole.label_acc, "full_label_acc_reviewed": reviewed_whole.label_acc,
              "full_review_trust": reviewed_whole.review_trust, "full_acc_reviewed_as_label": as_label.points[-1][2],
              "full_acc_gold": gold.points[-1][2], "full_label_acc_gold": gold.label_acc,
              "full_difference": (paired_difference(whole.correct, reviewed_whole.correct)
                                  if whole.correct and reviewed_whole.correct else None),
              "curves_read_as": read_as(curves)}
    return LeverResult(dataset, len(ids), full_tokens, full_usd, full_acc,
                       summarize_levers(curves, full_tokens, full_usd, full_acc), curves, thresholds, review,
                       random_at_budgets(curves, full_tokens))


def read_as(curves: list[Curve]) -> dict[str, list[str]]:
    """How each reviewed configuration's last student read the reviews ([routing] review_trust), seed by seed; a
    student not refitted both ways (review_trust chooses only for a student cheap to refit) reads them as labels."""
    out: dict[str, list[str]] = {}
    for c in curves:
        if c.strategy.endswith(REVIEWED):
            out.setdefault(c.strategy, []).append(c.review_trust["chosen"] if c.review_trust else "label")
    return out


def _usd_at(curve: Curve, tokens: float | None) -> float | None:
    if tokens is None:
        return None
    return next((usd for t, usd, _, _ in curve.points if t >= tokens - 1e-9), None)


def _mean(xs: list[float | None]) -> float | None:
    """The mean, or None when any seed never got there."""
    return statistics.mean(x for x in xs if x is not None) if xs and all(x is not None for x in xs) else None


def _budget(b: float) -> str:
    return "all" if b >= 1.0 else f"{100 * b:g}%"


def random_at_budgets(curves: list[Curve], full_tokens: float) -> dict[str, dict[str, float]]:
    """Random sampling's final accuracy on each budget of ``BUDGETS`` (the baseline's, mean over seeds; on the
    whole pool its last round's), and the tokens it pays to first get there (mean over seeds, as a share of the
    full-pool cost)."""
    base = [c for c in curves if c.strategy == _name(BASELINE)]
    out: dict[str, dict[str, float]] = {}
    for b in BUDGETS:
        accs = [c.points[-1][2] if b >= 1.0 else accuracy_at(c, b * full_tokens) for c in base]
        if not accs or any(a is None for a in accs):
            continue
        final = statistics.mean(a for a in accs if a is not None)
        needs = _mean([cost_to_reach(c, final) for c in base])
        if needs:
            out[_budget(b)] = {"budget": b, "accuracy": final, "tokens": needs / full_tokens}
    return out


def summarize_levers(curves: list[Curve], full_tokens: float, full_usd: float, full_acc: float) -> list[dict[str, Any]]:
    groups: dict[str, list[Curve]] = {}
    for c in curves:
        groups.setdefault(c.strategy, []).append(c)
    base = groups.get(_name(BASELINE), [])
    random_final = statistics.mean(c.points[-1][2] for c in base) if base else None
    base_tokens = _mean([cost_to_reach(c, random_final) for c in base]) if random_final is not None else None
    bars = random_at_budgets(curves, full_tokens)
    rows = []
    for name, cs in groups.items():
        row: dict[str, Any] = dict(zip(LEVERS, name.removesuffix(REVIEWED).split("/")))
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
        # the same bar on each budget: the accuracy random has when that budget is spent
        row["vs_random_at_budget"] = {}
        for key, bar in bars.items():
            need = _mean([cost_to_reach(c, bar["accuracy"]) for c in cs])
            row["vs_random_at_budget"][key] = None if need is None else need / (bar["tokens"] * full_tokens)
        row["reviews"] = statistics.mean(c.reviews for c in cs)
        rows.append(row)
    by = {r["config"]: r for r in rows}
    for row in rows:
        # accuracy points (x100) gained per 100 reviews (x100), against the same configuration without review
        without = by.get(row["config"].removesuffix(REVIEWED))
        row["acc_gain_per_100_reviews"] = (1e4 * (row["final_acc"] - without["final_acc"]) / row["reviews"]
                                           if row["reviews"] and without is not None and without is not row else None)
    rows.sort(key=lambda r: (r["cost@98%"] is None, r["cost@98%"] or 0, -r["auc"]))
    return rows


def format_levers(result: LeverResult) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    def usd(v: float | None) -> str:
        return "-" if v is None else f"${v:.4f}"

    width = max([42, *(len(r["config"]) for r in result.rows)])
    lines = [f"levers on {result.dataset}: pool {result.pool_size} recorded items; full-pool cost (every teacher, with "
             f"a rationale, on every item) {result.full_tokens:,} tokens, ${result.full_usd:.4f} at list prices; "
             f"full-pool student {result.full_acc:.4f}",
             "", f"{'selection/cascade/rationales/calibration':{width}} {'AUC':>6} {'final':>6} {'labels':>6} {'tok/lbl':>7} "
                 f"{'cost@95%':>8} {'cost@98%':>8} {'$@98%':>8} {'batch $':>8} "
                 + " ".join(f"{'rnd@' + b:>7}" for b in result.random_at_budget)]
    lines.append("-" * len(lines[-1]))
    for r in result.rows:
        vs = r.get("vs_random_at_budget", {})
        lines.append(f"{r['config']:{width}} {r['auc']:6.3f} {pct(r['final_acc']):>6} {pct(r['label_acc']):>6} "
                     f"{r['tokens_per_label']:7.0f} {pct(r['cost@95%']):>8} {pct(r['cost@98%']):>8} "
                     f"{usd(r['usd@98%']):>8} {usd(r['usd_batch@98%']):>8} "
                     + " ".join(f"{pct(vs.get(b)):>7}" for b in result.random_at_budget))
    lines += ["", "each lever alone (one setting changed from the baseline) and all combined (the row above with the lowest "
              "cost@98%):", f"{'lever':62} {'tok/lbl':>7} {'saving':>7} {'cost@98%':>8} {'final':>6} {'labels':>6}"]
    lines.append("-" * len(lines[-1]))
    by = {r["config"]: r for r in result.rows}
    base = by.get(_name(BASELINE))
    alone = [(_name(BASELINE), "baseline")]
    for k, (lever, options) in enumerate(zip(LEVERS, (SELECTION, CASCADE, RATIONALES, CALIBRATION))):
        for o in options:
            if o != BASELINE[k]:
                cfg = list(BASELINE)
                cfg[k] = o
                alone.append((_name(tuple(cfg)), f"{lever} {o} alone"))  # type: ignore[arg-type]
    best = next((r for r in result.rows if not r["config"].endswith(REVIEWED)), None)
    if best is not None:
        alone.append((best["config"], "combined"))
    for name, what in alone:
        row = by.get(name)
        if row is None or base is None:
            continue
        lines.append(f"{what + ' (' + name + ')':62} {row['tokens_per_label']:7.0f} "
                     f"{pct(1 - row['tokens_per_label'] / base['tokens_per_label']):>7} {pct(row['cost@98%']):>8} "
                     f"{pct(row['final_acc']):>6} {pct(row['label_acc']):>6}")
    if result.thresholds:
        within = (f"within {100 * TOLERANCE:g} points of" if TOLERANCE else "as accurate as")
        lines += ["", f"cascade thresholds chosen on held-out items (the cheapest {within} asking every teacher, "
                      "else the most accurate):"]
        for key, t in result.thresholds.items():
            tried = ", ".join(f"{r['threshold']}: {pct(r['label_acc'])} at {r['tokens_per_label']:.0f} tok"
                              for r in t["tried"])
            lines.append(f"  {key}: {t['threshold']} on {t['items']} items (every teacher "
                         f"{pct(t['every_teacher']['label_acc'])} at {t['every_teacher']['tokens_per_label']:.0f} tok; "
                         f"{tried})")
    rv = result.review
    if rv:
        lines += ["", f"review (the simulated gold reviewer on the items below min_agreement): full-pool student "
                      f"{pct(rv['full_acc_reviewed'])} with {rv['full_reviews']} reviews against {pct(result.full_acc)} "
                      f"without (labels {pct(rv['full_label_acc_reviewed'])} against {pct(rv['full_label_acc'])} right), "
                      f"{1e4 * (rv['full_acc_reviewed'] - result.full_acc) / max(1, rv['full_reviews']):+.2f} points "
                      "per 100 reviews"]
        diff = rv.get("full_difference")
        if diff:
            lines.append(f"  the difference on the same test items: {100 * diff[0]:+.2f} points, 95% paired bootstrap "
                         f"interval {100 * diff[1]:+.2f} to {100 * diff[2]:+.2f}")
        trust = rv.get("full_review_trust")
        if trust:
            tried = ", ".join(f"{k} {pct(v)}" for k, v in trust["scores"].items())
            lines.append(f"  reviews read as {trust['chosen']} ([routing] review_trust = {trust['setting']}; on "
                         f"{trust['reference']}: {tried}); every review taken as the label: full-pool student "
                         f"{pct(rv.get('full_acc_reviewed_as_label'))}")
        if rv.get("full_acc_gold") is not None:
            lines.append(f"  every item reviewed, the review the label (labels {pct(rv.get('full_label_acc_gold'))} right): "
                         f"full-pool student {pct(rv['full_acc_gold'])}, what perfect labels give this student")
        for cfg in WITH_REVIEW:
            reviewed, without = by.get(_name(cfg) + REVIEWED), by.get(_name(cfg))
            if reviewed is None or without is None:
                continue
            gain = reviewed["acc_gain_per_100_reviews"]
            lines.append(f"  {_name(cfg)} with review: final {pct(reviewed['final_acc'])} against "
                         f"{pct(without['final_acc'])}, {reviewed['reviews']:.0f} reviews, "
                         f"{'-' if gain is None else f'{gain:+.2f}'} points of student accuracy per 100 reviews, "
                         f"baseline's final reached at {pct(reviewed['tokens_to_random_final_vs_random'])} of its "
                         "tokens")
        if rv.get("curves_read_as"):
            lines.append("  the last students read the reviews as (seed by seed): " + "; ".join(
                f"{name} {', '.join(map(str, how))}" for name, how in rv["curves_read_as"].items()))
    lines += ["", "final: the last student's test accuracy; labels: accuracy of the accepted labels against gold; "
              "tok/lbl: teacher tokens paid per accepted label; cost@X%: share of the full-pool cost paid when the "
              "student first reaches X% of the full-pool student ('-': not in every seed); $@98%: the same in "
              "dollars at list prices, batch $ at half price; rnd@B: tokens this configuration pays to reach random "
              f"sampling's final accuracy on a budget of B of the full-pool cost (the baseline, {_name(BASELINE)}, "
              "stopped there; all: on the whole pool), as a share of what the baseline pays to first get there ('-': "
              "not in every seed). Mean over seeds."]
    if result.random_at_budget:
        lines.append("random's final on each budget: " + "; ".join(
            f"{b}: {pct(v['accuracy'])}, first reached at {pct(v['tokens'])} of the full-pool cost"
            for b, v in result.random_at_budget.items()))
    return "\n".join(lines)
