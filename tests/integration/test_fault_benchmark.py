"""The fault benchmark's short variant (benchmarks/faults.py --quick): one round under 30% injected faults of
every kind at 16 calls in flight and a cap below the round's cost, through the real SDKs and HTTP."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import faults  # noqa: E402


@pytest.mark.parametrize("cache", [False, True])
def test_faults_at_30_percent_keep_the_ledger_on_the_bill_and_under_the_cap(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("OPENAI_API_KEY", faults.KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", faults.KEY)
    cap = 0.9 * faults.fault_free_cost(tmp_path, 24, 16)
    r = faults.one_round(tmp_path, items=24, rate=0.3, concurrency=16, cap=cap, seed=11, prompt_cache=cache)
    print(faults.fmt(r, f"prompt caching {'on' if cache else 'off'}"))
    assert r["round_done"] and sum(r["faults"].values()) >= 5
    assert r["peak"].usd <= cap + 1e-12 and r["bill"].usd <= cap + 1e-12  # never crossed, on either side
    q = r["questions"]
    assert q["differ_answered_tokens"] == 0 and q["differ_answered_below_bill"] == 0
    if not cache:  # every answered question: the ledger is the bill, to the token and the cent
        assert q["differ"] == q["differ_unanswered"]
    assert os.environ["OPENAI_API_KEY"] == faults.KEY
