"""Crash and resume: SIGKILL a campaign at random points of every step, resume it, and compare it with the
uninterrupted run of the same seed.

The campaign: 4 rounds on the tiny Rotten Tomatoes fixture, three teachers on the real ``openai`` and
``anthropic`` SDKs against the fake API served on 127.0.0.1 with usage and latency (OpenAI live with
``store = true``, Anthropic live, OpenAI in batch mode), a simulated reviewer, a TF-IDF student. Each kill is
either a failpoint (``DISTILLOOP_FAILPOINT``, :mod:`distilloop.core.failpoints`: after the selection, a call
written in flight, an answer received but not settled, an answer settled, a batch accepted but not recorded,
the aggregation, the commit, the reviews pulled, the student trained, saved, recorded) reached a random number
of times, or a timer at a random moment. ``distilloop run`` is started again after every kill until the
campaign ends; campaigns are run until the number of kills is reached.

Each campaign is then compared with the uninterrupted one: the selections of every round, the consensus and
the accepted labels, the ledger of every answered call (round, teacher, item: tokens and dollars), the students
(version, metrics, which was promoted and is active) must be equal; no answer is bought twice (one answered call
per question); ``PRAGMA integrity_check`` is ok; and every request the fake server billed is in the ledger:
answered calls exactly, calls cut off by a kill after the server billed them charged at their expected cost and
counted (re-sent), or found again at the provider (OpenAI's stored completions, a batch's custom ids). The fake
bills without prompt caching, so that one request costs the same in every run.

    python benchmarks/crash_resume.py [--kills 50] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distilloop.core.failpoints import POINTS  # noqa: E402
from distilloop.testing.fake_api import FakeLLMAPI  # noqa: E402
from distilloop.testing.fake_api.http import FakeServer, serve  # noqa: E402

KEY = "sk-crash-bench-key-0123456789"
DATA = ROOT / "tests" / "fixtures" / "rt_tiny.jsonl"
#: failpoints reached once per call (the others once per round)
PER_CALL = ("call_written", "answer_received", "answer_settled")


@dataclass
class Setup:
    rounds: int = 4
    initial: int = 16
    batch: int = 12
    latency_s: float = 0.02


@dataclass
class Kill:
    how: str  # "failpoint" or "timer"
    point: str = ""
    n: int = 0
    delay_s: float = 0.0
    killed: bool = False

    def __str__(self) -> str:
        return f"{self.point}:{self.n}" if self.how == "failpoint" else f"timer {self.delay_s:.1f}s"


@dataclass
class CampaignResult:
    kills: list[Kill] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    snapshot: dict[str, Any] = field(default_factory=dict)
    accounting: dict[str, Any] = field(default_factory=dict)


def campaign_file(folder: Path, server: FakeServer, setup: Setup) -> Path:
    text = f"""[campaign]
name = "crash"
labels = ["negative", "positive"]
task = "Classify the sentiment of the movie review."
seed = 7
[data]
path = "{DATA}"
[budget]
max_usd = 1.0
[rounds]
max_rounds = {setup.rounds}
initial_size = {setup.initial}
batch_size = {setup.batch}
concurrency = 8
[strategy]
name = "entropy"
[[teachers]]
name = "gpt"
kind = "openai"
model = "gpt-4o-mini"
base_url = "{server.openai_url}"
structured = "json_schema"
store = true
timeout_s = 20
[[teachers]]
name = "claude"
kind = "anthropic"
model = "claude-haiku-4-5"
base_url = "{server.anthropic_url}"
timeout_s = 20
[[teachers]]
name = "gpt-batch"
kind = "openai"
model = "gpt-4.1-nano"
base_url = "{server.openai_url}"
structured = "json_schema"
mode = "batch"
batch_wait_s = 120
batch_poll_s = 0.05
[routing]
min_agreement = 0.9
[review]
kind = "simulated"
[student]
kind = "tfidf_logreg"
"""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


def start(cfg: Path, failpoint: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    env.pop("DISTILLOOP_FAILPOINT", None)
    if failpoint:
        env["DISTILLOOP_FAILPOINT"] = failpoint
    return subprocess.Popen([sys.executable, "-m", "distilloop.cli", "run", "-q", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def run(cfg: Path, kill: Kill | None = None, timeout: float = 600) -> tuple[int, str]:
    proc = start(cfg, f"{kill.point}:{kill.n}" if kill and kill.how == "failpoint" else None)
    try:
        if kill is not None and kill.how == "timer":
            try:
                proc.wait(timeout=kill.delay_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = proc.stderr.read().decode() if proc.stderr else ""
    return proc.returncode, err


def draw(rng: random.Random, setup: Setup) -> Kill:
    """A kill most likely reached in the next run: a timer, or a failpoint at an n within what is left."""
    if rng.random() < 0.2:
        return Kill("timer", delay_s=rng.uniform(2.0, 10.0))
    point = rng.choice(POINTS)
    reach = 2 * setup.batch if point in PER_CALL else 2
    return Kill("failpoint", point, rng.randint(1, reach))


# -- what a campaign did, from its store ---------------------------------------------------------------------
def snapshot(db: Path) -> dict[str, Any]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    q = lambda sql: [dict(r) for r in con.execute(sql)]  # noqa: E731
    snap = {
        "integrity": con.execute("pragma integrity_check").fetchone()[0],
        "rounds": q("select round, status, n_selected from rounds order by round"),
        "selections": q("select round, example_id, rank from selections order by round, rank"),
        "consensus": q("select example_id, round, label, agreement, route, n_votes from consensus order by example_id"),
        "labels": q("select example_id, label, source, round from labels order by example_id"),
        "reviews": q("select example_id, round, label, source from reviews order by example_id, round"),
        "students": q("select version, round, metrics, promoted, active, n_train from students order by round"),
        "reliability": q("select teacher, true_label, given_label, round(prob, 9) p, n_items, n_known "
                         "from reliability_estimates order by teacher, true_label, given_label"),
        "answered": {f"{r['round']}/{r['teacher']}/{r['example_id']}": (r["tokens_in"], r["tokens_out"],
                                                                         round(r["cost_usd"], 10), r["label"])
                     for r in q("select * from teacher_calls where status = 'ok'")},
        "bought_twice": q("select request_hash, count(*) n from teacher_calls where status = 'ok' "
                          "group by request_hash having n > 1"),
        "calls": q("select id, round, teacher, example_id, status, mode, charged, resend_of, tokens_in, tokens_out, "
                   "cost_usd from teacher_calls order by id"),
        "ledger": q("select call_id, kind, tokens_in, tokens_out, usd from ledger order by call_id"),
    }
    con.close()
    return snap


def compare(ref: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = []
    for key in ("rounds", "selections", "consensus", "labels", "reviews", "reliability", "students", "answered"):
        if ref[key] != got[key]:
            if isinstance(ref[key], dict):
                diff = sorted(k for k in set(ref[key]) | set(got[key]) if ref[key].get(k) != got[key].get(k))
            else:
                diff = [x for x in got[key] if x not in ref[key]] + [x for x in ref[key] if x not in got[key]]
            out.append(f"{key}: {len(diff)} difference(s), e.g. {str(diff[:2])[:300]}")
    if got["integrity"] != "ok":
        out.append(f"integrity_check: {got['integrity']}")
    if got["bought_twice"]:
        out.append(f"{len(got['bought_twice'])} question(s) with two answered calls")
    return out


def texts() -> dict[str, str]:
    """Example text as the prompt carries it (inside <example>, its angle brackets defused) -> example id."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return {r["text"].replace("<", "‹").replace(">", "›"): str(r["id"]) for r in rows}


def teacher_of(bill: dict[str, Any]) -> str:
    if bill["path"] == "/v1/messages":
        return "claude"
    return "gpt-batch" if bill["batch"] else "gpt"


def accounting(api: FakeLLMAPI, snap: dict[str, Any]) -> dict[str, Any]:
    """Every request the server billed against the ledger: question by question (teacher, item)."""
    by_text = texts()
    billed = collections.Counter((teacher_of(b), by_text.get(b["example"], "?" + b["example"][:60])) for b in api.bills)
    charged = collections.Counter((c["teacher"], c["example_id"]) for c in snap["calls"]
                                  if c["status"] in ("ok", "interrupted") or c["charged"] == "estimate")
    cut = [c for c in snap["calls"] if c["status"] == "interrupted"]
    resent = [c for c in snap["calls"] if c["resend_of"]]
    recovered = [c for c in snap["calls"] if c["charged"] == "recovered"]
    unaccounted = sum(max(0, n - charged[k]) for k, n in billed.items())
    details = [f"{k[0]}/{k[1]}: billed {n}, in the ledger {[(c['id'], c['status'], c['charged'], c['resend_of']) for c in snap['calls'] if (c['teacher'], c['example_id']) == k]}"
               for k, n in billed.items() if n > charged[k]]
    return {"billed": sum(billed.values()), "answered": sum(1 for c in snap["calls"] if c["status"] == "ok"),
            "unaccounted": unaccounted, "cut": len(cut), "resent": len(resent), "recovered": len(recovered),
            "cut_not_billed": sum(max(0, charged[k] - billed.get(k, 0)) for k in charged),
            "cut_usd": sum(c["cost_usd"] for c in cut),
            "billed_twice_without_a_cut": sum(1 for k, n in billed.items() if n > charged[k]), "details": details}


# -- the benchmark ----------------------------------------------------------------------------------------
def fake(setup: Setup) -> FakeLLMAPI:
    return FakeLLMAPI(api_key=KEY, latency_s=setup.latency_s, prompt_cache=False, batch_ready_after_polls=2)


def reference(work: Path, setup: Setup) -> dict[str, Any]:
    with serve(fake(setup)) as server:
        cfg = campaign_file(work / "reference", server, setup)
        code, err = run(cfg)
        if code != 0:
            raise SystemExit(f"the uninterrupted campaign failed ({code}): {err[-2000:]}")
        return snapshot(work / "reference" / "crash.distilloop.db")


def killed_campaign(work: Path, setup: Setup, rng: random.Random, budget: int, k: int) -> CampaignResult:
    res = CampaignResult()
    with serve(fake(setup)) as server:
        folder = work / f"killed-{k}"
        cfg = campaign_file(folder, server, setup)
        while True:
            kill = draw(rng, setup) if len(res.kills) < budget else None
            code, err = run(cfg, kill)
            if code == -signal.SIGKILL and kill is not None:
                kill.killed = True
                res.kills.append(kill)
                continue
            if code != 0:
                res.differences.append(f"a run ended with {code} after {kill}: {err.strip()[-600:]}")
                break
            if kill is None or len(res.kills) >= budget or code == 0:
                break
        res.snapshot = snapshot(folder / "crash.distilloop.db")
        res.accounting = accounting(server.api, res.snapshot)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="the CI variant: 3 short rounds, 6 kills")
    p.add_argument("--keep", help="keep the campaigns in this folder")
    args = p.parse_args(argv)
    setup = Setup(rounds=3, initial=8, batch=6) if args.quick else Setup()
    kills = 6 if args.quick and args.kills == 50 else args.kills
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="distilloop-crash-"))
    rng = random.Random(args.seed)
    started = time.monotonic()
    ref = reference(work, setup)
    results: list[CampaignResult] = []
    while sum(len(r.kills) for r in results) < kills:
        left = kills - sum(len(r.kills) for r in results)
        results.append(killed_campaign(work, setup, rng, min(left, 25), len(results)))
        if results[-1].differences and not results[-1].kills:
            break
    for r in results:
        r.differences += compare(ref, r.snapshot)
    print(report(ref, results, time.monotonic() - started))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any(r.differences or r.accounting["unaccounted"] or r.accounting["billed_twice_without_a_cut"]
                    for r in results) else 0


def report(ref: dict[str, Any], results: list[CampaignResult], seconds: float) -> str:
    kills = [k for r in results for k in r.kills]
    where = collections.Counter(k.point if k.how == "failpoint" else "timer" for k in kills)
    acc = {key: sum(r.accounting[key] for r in results) for key in results[0].accounting if key != "details"} \
        if results else {}
    lines = [f"crash and resume: {len(kills)} kills (SIGKILL) survived in {len(results)} campaign(s), "
             f"{seconds:.0f} s",
             "  kills at: " + ", ".join(f"{p} {n}" for p, n in sorted(where.items())),
             f"  the uninterrupted campaign: {len(ref['rounds'])} rounds, {len(ref['labels'])} labels, "
             f"{len(ref['answered'])} answered calls, active student "
             f"{next((s['version'] for s in ref['students'] if s['active']), '-')}",
             f"  differences from it (selections, consensus, labels, reviews, ledger of answered calls, students): "
             f"{sum(len(r.differences) for r in results)}"]
    lines += [f"    {d}" for r in results for d in r.differences]
    lines += [f"    billed, not in the ledger: {d}" for r in results for d in r.accounting.get("details", [])[:5]]
    lines += [f"  received answers bought again: {acc.get('billed_twice_without_a_cut', 0)}; questions with two "
              f"answered calls: {sum(len(r.snapshot['bought_twice']) for r in results)}",
              f"  integrity_check: {', '.join(sorted({r.snapshot['integrity'] for r in results}))}",
              f"  server billed {acc.get('billed', 0)} requests; in the ledger: {acc.get('answered', 0)} answered "
              f"exactly (of which {acc.get('recovered', 0)} found again at the provider after a kill), "
              f"{acc.get('cut', 0)} cut off by a kill and charged at their expected cost "
              f"(${acc.get('cut_usd', 0.0):.6f}; {acc.get('cut_not_billed', 0)} of them never reached the server), "
              f"re-sent: {acc.get('resent', 0)}; billed but not in the ledger: {acc.get('unaccounted', 0)}"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
