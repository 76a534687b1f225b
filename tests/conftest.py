import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def replay_config(tmp_path: Path, **overrides) -> Path:
    """A small campaign on the tiny RT fixture with three replay teachers (synthetic answers)."""
    budget = overrides.pop("budget", 'max_tokens_in = 200000\nmax_tokens_out = 50000\nmax_usd = 1.0')
    rounds = overrides.pop("rounds", "max_rounds = 3\ninitial_size = 20\nbatch_size = 20\nconcurrency = 4")
    latency = overrides.pop("latency", 0.0)
    extra = overrides.pop("extra", "")
    data = overrides.pop("data", FIXTURES / "rt_tiny.jsonl")
    teachers = "\n".join(
        f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "gpt-4o-mini"\n'
        f'path = "{FIXTURES / "rt_tiny_replay.jsonl.gz"}"\nsource = "{t}"\nlatency_s = {latency}\n'
        for t in overrides.pop("teachers", ("a", "b", "c")))
    text = f"""
[campaign]
name = "t"
labels = ["negative", "positive"]
task = "Classify the sentiment."
[data]
path = "{data}"
[budget]
{budget}
[rounds]
{rounds}
{teachers}
[routing]
min_agreement = 0.7
{extra}
"""
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    return path
