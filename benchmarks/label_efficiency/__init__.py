"""The label-efficiency benchmark: does active distillation save money over random sampling and small-text?

For each data set, student, strategy, seed and reviewer setting, a full campaign runs through the real round
runner (store, budget, ensemble, aggregation, routing, training) with *replay* teachers answering from real
recorded LLM outputs (``data/recorded/``), under a budget of 100% of the cost of labeling the whole pool.
Because the strategies do not depend on the budget, a campaign capped at X% of that cost is exactly the
prefix of this run up to X%: the learning curve of one run gives the student's accuracy at every budget
(the accuracy at X% is that of the last student trained within X% of the full cost).

Baselines in the same run: random sampling, and small-text's ``BreakingTies`` and ``PredictionEntropy``
query strategies driving the same student in the same loop on the same budget (an adapter hands them the
student as a small-text classifier).
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.core.types import Selection
from distilloop.errors import ConfigError, EngineError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import parse_config
from distilloop.loop.progress import Progress
from distilloop.loop.steps.train import load_active
from distilloop.strategies.base import SelectionContext, Strategy

ROOT = Path(__file__).resolve().parents[2]
#: the most pool rows no teacher answered that become the dev split of a data set without one
DEV_LIMIT = 500


class SmallTextStrategy(Strategy):
    """Adapter running a small-text query strategy (Schröder et al., "Small-Text: Active Learning for Text
    Classification in Python", EACL 2023 demo) on distilloop's student, for side-by-side baselines."""

    def __init__(self, strategy: str = "BreakingTies") -> None:
        self.strategy = strategy
        self.name = f"small-text:{strategy}"

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        from distilloop._extras import require

        qs_mod = require("small_text.query_strategies", "dev", purpose="small-text baselines")
        qs = getattr(qs_mod, self.strategy)()
        texts = ctx.unlabeled_texts + ctx.labeled_texts
        student: Any = ctx.student  # requires_student: the runner never calls this before a student exists

        class _Clf:  # the small-text classifier protocol, as far as its query strategies use it
            def predict_proba(self, dataset: Any) -> np.ndarray:
                return np.asarray(student.predict_proba(dataset))

        class _Data(list):
            pass

        unl = np.arange(len(ctx.unlabeled_texts))
        lab = np.arange(len(ctx.unlabeled_texts), len(texts))
        y = np.array([ctx.classes.index(v) for v in ctx.labeled_y])
        picked = qs.query(_Clf(), _Data(texts), unl, lab, y, n=n)
        return Selection([ctx.unlabeled_ids[i] for i in picked], [0.0] * len(picked))


@dataclass
class DatasetSpec:
    name: str
    data: str
    recording: str
    teachers: tuple[str, ...]
    labels: tuple[str, ...]
    task: str
    input_fields: tuple[str, ...] = ("text",)
    test_limit: int = 2000
    #: pool rows no teacher answered that join the test split of the benchmark runs (never labeled, only scored
    #: on): a larger test set puts a smaller error on every accuracy the tables compare
    test_extra: int = 0
    #: priced as if the recorded answers had been bought at these list prices (USD per 1M tokens)
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the same teachers asked for the label alone (``label_only``), replayed when a campaign's rationale policy
    #: asks an item without a rationale
    label_only: str = ""


RT = DatasetSpec(
    "rt_polarity", "data/rt_polarity.jsonl.gz", "data/recorded/rt_polarity.teachers.jsonl.gz",
    ("qwen-0.5b", "qwen-1.5b"), ("negative", "positive"),
    "Classify the sentiment of the movie review snippet as negative or positive.",
    test_extra=3000, prices={"qwen-0.5b": {"input": 0.10, "output": 0.40}, "qwen-1.5b": {"input": 0.15, "output": 0.60}},
    label_only="data/recorded/rt_polarity.label_only.jsonl.gz")

CQA = DatasetSpec(
    "commonsenseqa", "data/commonsenseqa.jsonl.gz", "data/recorded/commonsenseqa.teachers.jsonl.gz",
    ("qwen-0.5b", "qwen-1.5b"), ("A", "B", "C", "D", "E"),
    "Answer the commonsense question: pick the letter of the best choice.", input_fields=("question", "choices"),
    test_limit=300, prices=RT.prices, label_only="data/recorded/commonsenseqa.label_only.jsonl.gz")

DATASETS = {"rt_polarity": RT, "commonsenseqa": CQA}


def dataset_ids(dataset: str, pool_limit: int | None = None) -> tuple[DatasetSpec, list[str]]:
    """The spec of ``dataset`` and its pool ids that every teacher answered (the first ``pool_limit``)."""
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset: no label-efficiency benchmark for {dataset!r}; choose "
                          f"{', '.join(sorted(DATASETS))}. The GSM8K and SVAMP recordings (numeric answers) are "
                          "compared by benchmarks/numeric_teachers.py: their student generates numbers, which needs "
                          "a GPU to learn")
    spec = DATASETS[dataset]
    ids = recorded_ids(spec) if (ROOT / spec.recording).exists() else []
    if pool_limit:
        ids = ids[:pool_limit]
    if not ids:
        raise ConfigError(f"--dataset {dataset}: no recorded teacher answers in {spec.recording}; record them with "
                          "benchmarks/record_teachers.py (data/recorded/README.md has the command)")
    return spec, ids


def _recorded_rows(spec: DatasetSpec, root: Path) -> Iterator[dict[str, Any]]:
    """The recorded answers of ``spec``; a line cut short by an interrupted recording is skipped."""
    with gzip.open(root / spec.recording, "rt") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def recorded_ids(spec: DatasetSpec, root: Path = ROOT) -> list[str]:
    """Pool ids for which every teacher of ``spec`` has a recorded answer, in recording order."""
    have: dict[str, set[str]] = {}
    for r in _recorded_rows(spec, root):
        have.setdefault(r["example_id"], set()).add(r["teacher"])
    return [i for i, t in have.items() if set(spec.teachers) <= t]


def full_cost(spec: DatasetSpec, ids: list[str], root: Path = ROOT) -> tuple[int, float]:
    """Tokens and USD of asking every teacher about every pool item."""
    wanted = set(ids)
    tokens, usd = 0, 0.0
    for r in _recorded_rows(spec, root):
        if r["example_id"] in wanted and r["teacher"] in spec.teachers:
            tokens += r["tokens_in"] + r["tokens_out"]
            p = spec.prices.get(r["teacher"], {})
            usd += (r["tokens_in"] * p.get("input", 0) + r["tokens_out"] * p.get("output", 0)) / 1e6
    return tokens, usd


def make_pool_file(spec: DatasetSpec, ids: list[str], workdir: Path, root: Path = ROOT, *, dev: bool = False,
                   test_extra: int = 0) -> Path:
    """The benchmark's data: the recorded pool items and the test split, and with ``dev`` a dev split (then the
    campaigns decide, and choose among a student's variants, on its gold labels, not on the test split they
    report): the data set's own, or, where it has none, up to ``DEV_LIMIT`` of the pool rows no teacher answered
    (in file order; they are never labeled, only scored on). ``test_extra`` more of those rows (after the dev
    ones) join the test split."""
    wanted = set(ids)
    out = workdir / f"{spec.name}.bench{'-dev' if dev else ''}{f'-test{test_extra}' if test_extra else ''}.jsonl"
    with gzip.open(root / spec.data, "rt") as f:
        rows = [json.loads(line) for line in f]
    own_dev = any(r["split"] == "dev" for r in rows)
    n_test = n_dev = n_extra = 0
    with open(out, "w") as g:
        for r in rows:
            extra = False
            if r["split"] == "pool" and r["id"] not in wanted:
                if dev and not own_dev and n_dev < DEV_LIMIT:
                    r = {**r, "split": "dev"}
                elif n_extra < test_extra:
                    r, extra = {**r, "split": "test"}, True
                    n_extra += 1
            if ((r["split"] == "pool" and r["id"] in wanted) or extra
                    or (r["split"] == "test" and n_test < spec.test_limit) or (dev and r["split"] == "dev")):
                n_test += r["split"] == "test" and not extra
                n_dev += r["split"] == "dev"
                g.write(json.dumps(r) + "\n")
    return out


def campaign_config(spec: DatasetSpec, data: Path, store: Path, *, strategy: str, student: dict[str, Any],
                    seed: int, review: str, pool_size: int, initial: int, growth: float, rounds: int,
                    min_agreement: float, calibrate: str = "batch", rationales: str = "all",
                    routing: dict[str, Any] | None = None, sections: dict[str, dict[str, Any]] | None = None,
                    root: Path = ROOT) -> dict[str, Any]:
    paths = [str(root / spec.recording)] + ([str(root / spec.label_only)] if spec.label_only else [])
    teachers = [{"name": t, "kind": "replay", "model": t, "path": paths, "source": t,
                 "price": spec.prices.get(t, {"input": 0.0, "output": 0.0})} for t in spec.teachers]
    raw: dict[str, Any] = {
        # named after its store: its saved students (``<name>.students``) are its own, even when campaigns of
        # the same folder run at once (``--workers``); the embeddings, the same whoever computes them, are shared
        "campaign": {"name": store.stem[-100:], "labels": list(spec.labels), "task": spec.task, "seed": seed,
                     "store": str(store)},
        "compute": {"vectors_dir": str(store.parent / "bench.vectors")},
        "data": {"path": str(data), "input_fields": list(spec.input_fields)},
        "budget": {"max_tokens_in": 10**12},
        "rounds": {"max_rounds": rounds, "initial_size": initial, "batch_size": initial, "growth": growth,
                   "concurrency": 64},
        "strategy": strategy_table(strategy) if not strategy.startswith("small-text:") else {"name": "random"},
        "teachers": teachers,
        "routing": {"min_agreement": min_agreement, **(routing or {})},
        # the local teachers lean hard toward one label each: batch calibration of their logprob
        # distributions (see distilloop.annotators.calibration), votes weighted by the calibrated confidence
        "aggregation": {"method": "confidence_weighted", "calibrate": calibrate},
        "review": {"kind": review},
        # "all": every answer with a rationale, as the full-pool cost counts it
        "rationales": {"policy": rationales},
        "student": dict(student),
        "evaluation": {"split": "test", "metric": "accuracy"},
    }
    for section, keys in (sections or {}).items():  # more keys of a section (e.g. [aggregation] calibrate_prior)
        raw[section] = {**raw.get(section, {}), **keys}
    return raw


def strategy_table(spec: str) -> dict[str, Any]:
    """``name`` or ``name[key=value;key=value]`` (e.g. ``typiclust[cost_power=1]``) as a ``[strategy]`` table."""
    m = re.fullmatch(r"([\w-]+)(?:\[(.*)\])?", spec.strip())
    if not m:
        raise ConfigError(f"strategy '{spec}': expected NAME or NAME[key=value;...], e.g. typiclust[cost_power=1]")
    table: dict[str, Any] = {"name": m.group(1)}
    for item in filter(None, (m.group(2) or "").split(";")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"strategy '{spec}': '{item}' is not key=value")
        try:
            table[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            table[key.strip()] = value.strip()
    return table


@dataclass
class Curve:
    strategy: str
    student: str
    seed: int
    review: str
    points: list[tuple[float, float, float, int]]  # (tokens, usd, accuracy, labeled)
    seconds: float
    label_acc: float | None = None  # of every accepted label at the end, against gold
    reviews: int = 0  # labels a reviewer (the simulated one, or a human) decided
    review_trust: dict[str, Any] | None = None  # how the last student read the reviews ([routing] review_trust)
    correct: list[bool] | None = None  # the active student's right answers on the reported split, by item id
    label_shares: dict[str, float] | None = None  # each label's share of the accepted labels at the end
    macro_f1: float | None = None  # the last student's macro-F1 on the reported split
    f1_points: list[float | None] | None = None  # each round's student's macro-F1 on it, as ``points``


def run_one(spec: DatasetSpec, data: Path, workdir: Path, *, strategy: str, student: dict[str, Any], seed: int,
            review: str, pool_size: int, schedule: tuple[int, float, int], min_agreement: float,
            student_name: str | None = None, calibrate: str = "batch", rationales: str = "all",
            routing: dict[str, Any] | None = None, name: str | None = None, keep_correct: bool = False,
            sections: dict[str, dict[str, Any]] | None = None) -> Curve:
    initial, growth, rounds = schedule
    store = workdir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name or strategy)}-{student['kind']}-{seed}-{review}.db"
    store.unlink(missing_ok=True)
    raw = campaign_config(spec, data, store, strategy=strategy, student=student, seed=seed, review=review,
                          pool_size=pool_size, initial=initial, growth=growth, rounds=rounds,
                          min_agreement=min_agreement, calibrate=calibrate, rationales=rationales, routing=routing,
                          sections=sections)
    config = parse_config(raw, workdir / "bench.toml")
    started = time.perf_counter()
    campaign = Campaign.open(config, progress=Progress(quiet=True, warnings=False))
    if strategy.startswith("small-text:"):
        campaign.parts.strategy = SmallTextStrategy(strategy.split(":", 1)[1])
    campaign.run()
    rows = campaign.store.round_rows()
    points = [(r.tokens_in + r.tokens_out, r.usd, r.accuracy, r.labeled) for r in rows if r.accuracy is not None]
    gold = campaign.env.examples
    labeled = campaign.store.labeled()
    right = [r["label"] == gold[r["example_id"]].gold for r in labeled if gold[r["example_id"]].gold is not None]
    reviews = sum(r["source"] in ("simulated", "human") for r in labeled)
    students = campaign.store.students()
    trust = students[-1]["metrics"].get("review_trust") if students else None
    correct = None
    if keep_correct:  # for a paired comparison of two campaigns' students on the same items
        active = load_active(campaign.store)
        ids = sorted(i for i, e in gold.items() if e.split == config.evaluation.split and e.gold is not None)
        if active is not None and ids:
            correct = [p == gold[i].gold for p, i in zip(active.predict([gold[i].text for i in ids]), ids)]
    campaign.close()
    shares = {lab: sum(r["label"] == lab for r in labeled) / len(labeled) for lab in spec.labels} if labeled else None
    return Curve(name or strategy, student_name or student["kind"], seed, review, points,
                 time.perf_counter() - started, float(np.mean(right)) if right else None, reviews, trust, correct,
                 shares, students[-1]["metrics"].get("macro_f1") if students else None,
                 [r.macro_f1 for r in rows if r.accuracy is not None])


def default_workers() -> int:
    """Processes a benchmark runs its campaigns in: one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


#: a worker's thread limits (a threadpoolctl handle), held for the life of the process
_LIMITS: Any = None


def _worker_init(vectors: dict[str, dict[str, np.ndarray]], threads: int) -> None:
    """A worker process: the parent's embeddings in memory, and its share of the cores for numerical libraries."""
    from threadpoolctl import threadpool_limits

    from distilloop.students.embedding import preload

    preload(vectors)
    global _LIMITS
    _LIMITS = threadpool_limits(threads)


def run_many(calls: list[tuple[Callable[..., Any], dict[str, Any]]], *, workers: int,
             advance: Callable[[], None] = lambda: None) -> list[Any]:
    """``fn(**kwargs)`` for each call, results in the order given. With ``workers`` > 1 the calls run in that many
    fresh (spawned) processes, each given this process's embeddings (embed the texts here first, e.g. with a
    full-pool campaign), so a text is embedded once; the first error stops the rest and is raised here."""
    if workers <= 1 or len(calls) <= 1:
        out = []
        for fn, kwargs in calls:
            out.append(fn(**kwargs))
            advance()
        return out
    from distilloop.students.embedding import memory_snapshot

    threads = max(1, (os.cpu_count() or 1) // workers)
    results: list[Any] = [None] * len(calls)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(memory_snapshot(), threads)) as pool:
        futures = {pool.submit(fn, **kwargs): i for i, (fn, kwargs) in enumerate(calls)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    results[futures[f]] = f.result()
                    advance()
        except BrokenProcessPool:
            raise EngineError(f"a benchmark worker process died (killed, perhaps for memory) with {workers} workers; "
                              "run it again with fewer, e.g. --workers 1") from None
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results


def paired_difference(a: list[bool], b: list[bool], *, resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """``b``'s accuracy minus ``a``'s on the same items, with a 95% paired bootstrap interval (items resampled)."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    means = d[np.random.default_rng(seed).integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def accuracy_at(curve: Curve, tokens: float) -> float | None:
    """Accuracy of the last student trained within ``tokens``; ``None`` when none was trained that cheaply."""
    acc = None
    for t, _, a, _ in curve.points:
        if t <= tokens + 1e-9:
            acc = a
    return acc


def cost_to_reach(curve: Curve, target: float) -> float | None:
    for t, _, a, _ in curve.points:
        if a >= target:
            return t
    return None


def auc(curve: Curve, full_tokens: float) -> float:
    """Area under the step learning curve (accuracy against the fraction of the full cost), in [0, 1]."""
    xs = [t / full_tokens for t, *_ in curve.points] + [1.0]
    area = 0.0
    for i, (_, _, a, _) in enumerate(curve.points):
        area += a * max(0.0, min(1.0, xs[i + 1]) - min(1.0, xs[i]))
    return area


def summarize(curves: list[Curve], full_tokens: float, full_acc: float) -> list[dict[str, Any]]:
    rows = []
    groups: dict[tuple[str, str, str], list[Curve]] = {}
    for c in curves:
        groups.setdefault((c.student, c.review, c.strategy), []).append(c)
    for (student, review, strategy), cs in groups.items():
        row: dict[str, Any] = {"student": student, "review": review, "strategy": strategy, "seeds": len(cs)}
        for frac in (0.05, 0.10, 0.25):
            accs = [accuracy_at(c, frac * full_tokens) for c in cs]
            row[f"acc@{int(frac * 100)}%"] = (statistics.mean(a for a in accs if a is not None)
                                              if all(a is not None for a in accs) else None)
        row["auc"] = statistics.mean(auc(c, full_tokens) for c in cs)
        for q in (0.95, 0.98):
            costs = [cost_to_reach(c, q * full_acc) for c in cs]
            reached = [x for x in costs if x is not None]
            row[f"cost@{int(q * 100)}%"] = (statistics.mean(reached) / full_tokens
                                            if len(reached) == len(costs) else None)
        row["seconds"] = statistics.mean(c.seconds for c in cs)
        rows.append(row)
    return rows


# with two classes entropy, margin and least confidence rank items identically: one stands for all three
# mixture: half random, half k-means each round (the default Mixture); typiclust: typical items of uncovered clusters
STRATEGIES_DEFAULT = ("random", "entropy", "kmeans", "typiclust", "mixture", "uncertainty_kmeans", "cost_aware",
                      "small-text:BreakingTies", "small-text:PredictionEntropy")
STRATEGIES_QUICK = ("random", "entropy", "small-text:BreakingTies")
STUDENTS_DEFAULT = ("embedding_mpnet",)
STUDENTS_QUICK = ("tfidf_logreg",)  # no encoder to load: the CI grid stays under a few minutes
STUDENTS: dict[str, dict[str, Any]] = {
    "tfidf_logreg": {"kind": "tfidf_logreg"},
    # little regularisation: with tens of labels, C=1 on unit-norm MiniLM embeddings predicts the prior
    "embedding_linear": {"kind": "embedding_linear", "C": 10.0},
    # the packaged all-mpnet-base-v2 (the `mpnet` extra): a stronger frozen encoder, so fewer labels go further
    "embedding_mpnet": {"kind": "embedding_linear", "model": "mpnet", "C": 1.0},
}


@dataclass
class BenchResult:
    dataset: str
    pool_size: int
    full_tokens: int
    full_usd: float
    full_acc: dict[tuple[str, str], float]
    rows: list[dict[str, Any]]
    curves: list[Curve]


def run_benchmark(*, dataset: str = "rt_polarity", students: tuple[str, ...] = ("tfidf_logreg",),
                  strategies: tuple[str, ...] = STRATEGIES_DEFAULT, seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
                  reviews: tuple[str, ...] = ("auto", "simulated"), pool_limit: int | None = None,
                  schedule: tuple[int, float, int] = (10, 1.3, 40), min_agreement: float = 0.75,
                  calibrate: str = "batch", progress: Progress | None = None, workdir: Path | None = None,
                  workers: int | None = None) -> BenchResult:
    progress = progress or Progress(quiet=True)
    spec, ids = dataset_ids(dataset, pool_limit)
    for strategy in strategies:  # a malformed spec stops the run before any campaign
        if not strategy.startswith("small-text:"):
            strategy_table(strategy)
    full_tokens, full_usd = full_cost(spec, ids)
    tmp = Path(tempfile_dir()) if workdir is None else workdir
    # decisions on dev gold, never on the test split reported
    data = make_pool_file(spec, ids, tmp, dev=True, test_extra=spec.test_extra)
    full_acc: dict[tuple[str, str], float] = {}
    jobs = [(st, s, seed, rv) for st in students for rv in reviews for s in strategies for seed in seeds]
    with progress.bar(f"{dataset}: {len(jobs)} campaigns on {len(ids)} recorded pool items", len(jobs) + 1) as adv:
        for student in students:  # here first: every text embedded once, before the campaigns share the work
            for review in reviews:
                whole = run_one(spec, data, tmp, strategy="random", student=STUDENTS[student], seed=0, review=review,
                                pool_size=len(ids), schedule=(len(ids), 1.0, 1), min_agreement=min_agreement,
                                calibrate=calibrate)
                full_acc[(student, review)] = whole.points[-1][2]
        adv()
        curves: list[Curve] = run_many(
            [(run_one, {"spec": spec, "data": data, "workdir": tmp, "strategy": strategy, "student": STUDENTS[student],
                        "seed": seed, "review": review, "pool_size": len(ids), "schedule": schedule,
                        "min_agreement": min_agreement, "calibrate": calibrate, "student_name": student})
             for student, strategy, seed, review in jobs], workers=workers or default_workers(), advance=adv)
    rows = []
    for student in students:
        for review in reviews:
            part = [c for c in curves if c.student == student and c.review == review]
            rows += summarize(part, full_tokens, full_acc[(student, review)])
    return BenchResult(dataset, len(ids), full_tokens, full_usd, full_acc, rows, curves)


def tempfile_dir() -> str:
    """A scratch folder for the campaigns of one run, removed when the process ends (each run left its stores
    behind: 601 MB for the lever grid)."""
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="distilloop-bench-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.{digits}f}"


def format_table(result: BenchResult) -> str:
    """A plain-text table: accuracy at 5/10/25% of the full cost, AUC, cost to 95%/98% of the full-pool
    student's accuracy, and each strategy's AUC and cost-to-95% as ratios to random and to small-text."""
    lines = [f"dataset {result.dataset}: pool {result.pool_size} recorded items; full cost "
             f"{result.full_tokens:,} tokens (${result.full_usd:.4f} at the assumed list prices)"]
    for (student, review), acc in result.full_acc.items():
        lines.append(f"full-pool {student} student ({review} review): accuracy {acc:.4f}")
    head = (f"{'student':13} {'review':9} {'strategy':28} {'acc@5%':>7} {'acc@10%':>7} {'acc@25%':>7} {'AUC':>6} "
            f"{'cost@95%':>8} {'cost@98%':>8} {'AUC/rand':>8} {'AUC/st-BT':>9} {'c95/rand':>8} {'c95/st-BT':>9}")
    lines += ["", head, "-" * len(head)]
    for row in result.rows:
        peers = [r for r in result.rows if r["student"] == row["student"] and r["review"] == row["review"]]
        rand = next((r for r in peers if r["strategy"] == "random"), None)
        bt = next((r for r in peers if r["strategy"] == "small-text:BreakingTies"), None)

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.1f}%"

        lines.append(
            f"{row['student']:13} {row['review']:9} {row['strategy']:28} {pct(row['acc@5%']):>7} "
            f"{pct(row['acc@10%']):>7} {pct(row['acc@25%']):>7} {row['auc']:6.3f} {pct(row['cost@95%']):>8} "
            f"{pct(row['cost@98%']):>8} {_ratio(row['auc'], rand['auc'] if rand else None, 3):>8} "
            f"{_ratio(row['auc'], bt['auc'] if bt else None, 3):>9} {_ratio(row['cost@95%'], rand['cost@95%'] if rand else None):>8} "
            f"{_ratio(row['cost@95%'], bt['cost@95%'] if bt else None):>9}")
    lines.append("")
    lines.append("acc@X%: test accuracy of the student trained within X% of the full-pool teacher cost (mean over "
                 "seeds; '-': no student was trained that cheaply); AUC: area under accuracy vs cost fraction; cost@95%: fraction of the full cost to reach "
                 "95% of the full-pool student's accuracy ('-': not reached in every seed); ratios < 1 for cost "
                 "and > 1 for AUC favour the row's strategy.")
    return "\n".join(lines)
