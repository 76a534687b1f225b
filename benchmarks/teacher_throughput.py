"""Throughput of an HTTP teacher against the fake API with 300 ms latency, through the real SDK and real HTTP.

The physical limit of a teacher is min(rate limit, max_concurrency / latency): with requests_per_minute R
and max_concurrency C against a server that takes L seconds an answer, no client can sustain more than
min(R / 60, C / L) calls a second. This benchmark runs the whole path (TeacherEnsemble: cache lookup, budget
reservation, store writes, the teacher's limiter, the openai SDK, HTTP to the fake on 127.0.0.1 in another
process) and prints the sustained throughput as a fraction of that limit; the goal is >= 90%. A sequential
client (one call at a time, as autolabel-style serial labeling does) is measured beside it.

Sustained = the least-squares slope of completions over time on the middle 80% of the completions (so the
start-up burst of the token bucket, connection set-up and the tail do not count); overall = calls / wall time.

    python benchmarks/teacher_throughput.py [--latency 0.3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distilloop.annotators.anthropic_teacher import AnthropicTeacher  # noqa: E402
from distilloop.annotators.ensemble import TeacherEnsemble  # noqa: E402
from distilloop.annotators.openai_teacher import OpenAITeacher  # noqa: E402
from distilloop.core.ledger import Budget, Caps  # noqa: E402
from distilloop.core.types import LabelingItem  # noqa: E402
from distilloop.storage.store import Store  # noqa: E402

KEY = "sk-bench-key-0123456789"


def start_fake(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "distilloop.testing.fake_api", "--latency", str(latency),
                             "--api-key", KEY], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"the fake API did not start: {url!r}")
    return proc, url


def _items(prefix: str, n: int) -> list[LabelingItem]:
    return [LabelingItem(f"{prefix}{i}", {"text": f"review {prefix}{i}: a {'good' if i % 2 else 'bad'} film"},
                         ("negative", "positive"), "Classify the sentiment.") for i in range(n)]


def run(teacher, n: int, concurrency: int) -> tuple[float, float, int]:
    """(overall calls/s, sustained calls/s, ok calls) for n distinct questions through the ensemble."""
    store = Store.memory()
    ens = TeacherEnsemble([teacher], store, Budget(Caps(usd=100.0)), concurrency=concurrency)
    done: list[float] = []

    async def main():
        try:
            # warm-up (the SDK's lazy imports and model classes, the connections), then a full token bucket
            await ens.annotate(_items("warm", min(8, n)), 0)
            await asyncio.sleep(1.5)
            done.clear()
            t0 = time.perf_counter()
            await ens.annotate(_items("e", n), 1, on_progress=lambda: done.append(time.perf_counter()))
            return t0
        finally:
            await teacher.aclose()

    t0 = asyncio.run(main())
    wall = max(done) - t0
    done.sort()
    # sustained rate: least-squares slope of completions over time, on the middle 80% of completions
    mid = done[int(0.1 * n): int(0.9 * n)]
    ts = [t - mid[0] for t in mid]
    mean_t, mean_k = sum(ts) / len(ts), (len(ts) - 1) / 2
    cov = sum((t - mean_t) * (k - mean_k) for k, t in enumerate(ts))
    var = sum((t - mean_t) ** 2 for t in ts)
    sustained = cov / var if var > 0 else float("nan")
    return n / wall, sustained, store.count("teacher_calls", "status = 'ok' and round = 1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.3, help="seconds the fake takes per answer (default 0.3)")
    ap.add_argument("--quick", action="store_true", help="fewer calls per scenario")
    args = ap.parse_args()
    os.environ["OPENAI_API_KEY"] = os.environ["ANTHROPIC_API_KEY"] = KEY
    proc, url = start_fake(args.latency)
    scale = 0.5 if args.quick else 1.0
    lat = args.latency
    scenarios = [
        # name, teacher factory, calls, ensemble concurrency, (rate limit /s or None, max_concurrency)
        ("openai, rate-limited 1200 rpm, 32 in flight", lambda: OpenAITeacher(
            name="gpt", model="gpt-4o-mini", base_url=url + "/v1", max_concurrency=32, requests_per_minute=1200),
         int(300 * scale), 64, (20.0, 32)),
        ("openai, 8 in flight, no rate limit", lambda: OpenAITeacher(
            name="gpt", model="gpt-4o-mini", base_url=url + "/v1", max_concurrency=8),
         int(240 * scale), 64, (None, 8)),
        ("anthropic, rate-limited 600 rpm, 16 in flight", lambda: AnthropicTeacher(
            name="claude", model="claude-haiku-4-5", base_url=url, max_concurrency=16, requests_per_minute=600),
         int(150 * scale), 64, (10.0, 16)),
        ("sequential client (one call at a time)", lambda: OpenAITeacher(
            name="gpt", model="gpt-4o-mini", base_url=url + "/v1", max_concurrency=1),
         int(30 * scale), 1, (None, 1)),
    ]
    print(f"fake API at {url}, {lat * 1000:.0f} ms injected latency per answer")
    print(f"{'scenario':48} {'limit/s':>8} {'overall/s':>10} {'sustained/s':>12} {'ratio':>7} {'ok':>5}")
    rates = []
    try:
        for name, make, n, conc, (rate, c) in scenarios:
            limit = min(rate if rate else float("inf"), c / lat)
            overall, sustained, ok = run(make(), n, conc)
            rates.append(sustained)
            ratio = sustained / limit
            flag = "" if ratio >= 0.9 else "  < 90%"
            print(f"{name:48} {limit:8.2f} {overall:10.2f} {sustained:12.2f} {ratio:7.1%} {ok:5d}{flag}")
        print(f"side by side: the concurrent teacher sustains {rates[0]:.2f} and {rates[1]:.2f} calls/s, "
              f"{rates[0] / rates[-1]:.1f}x and {rates[1] / rates[-1]:.1f}x the sequential client's {rates[-1]:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
