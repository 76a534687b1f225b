import os
import sqlite3
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

try:  # property tests: new random cases on a developer's machine, the same cases on CI (a submission never fails
    # there on a case nobody has seen; each case found by hand stays as an explicit test)
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True)
    if os.environ.get("CI"):
        _hypothesis_settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass

from tests.labelstudio import label_studio  # noqa: E402,F401 - the session-wide Label Studio server

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


# -- tiny transformers models for the students' tests (built once per session) ----------------------------
SENTIMENT = [
    ("a good movie", "pos"), ("great film", "pos"), ("good and great", "pos"), ("the film was great", "pos"),
    ("a bad movie", "neg"), ("awful film", "neg"), ("bad and awful", "neg"), ("the film was awful", "neg"),
]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.unit.students.tiny_models import tiny_bert

    return str(tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="session")
def sentiment():
    return [t for t, _ in SENTIMENT], [y for _, y in SENTIMENT]


RATIONALES = ["good is a positive word", "great is praise", "good and great are praise",
              "great is praise", "bad is a negative word", "awful is a complaint", "bad and awful are complaints",
              "awful is a complaint"]


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.contracts.student import TEXTS
    from tests.unit.students.tiny_models import tiny_causal_lm

    corpus = [f"predict: {t}\nlabel: pos neg\nexplain: {t}\nrationale: {r}" for t, r in zip(TEXTS, RATIONALES)]
    return str(tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), corpus * 3))


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def campaign_toml(*, name: str = "t", data: Path | str = FIXTURES / "rt_tiny.jsonl",
                  task: str = "Classify the sentiment.", budget: str = "max_usd = 1.0",
                  rounds: str = "max_rounds = 1", extra: str = "") -> str:
    """The `[campaign]`/`[data]`/`[budget]`/`[rounds]` header of a test campaign on the RT labels, then `extra`
    (teachers, strategy, routing...) verbatim."""
    return f"""
[campaign]
name = "{name}"
labels = ["negative", "positive"]
task = "{task}"
[data]
path = "{data}"
[budget]
{budget}
[rounds]
{rounds}
{extra}"""


def sqlite_count(db, sql):
    """The first column of `sql`'s first row, read-only on a database another process may be writing; 0 while
    the database or its tables do not exist yet."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


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
    text = campaign_toml(name="t", data=data, budget=budget, rounds=rounds,
                         extra=f"{teachers}\n[routing]\nmin_agreement = 0.7\n{extra}\n")
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    return path
