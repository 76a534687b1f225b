"""Parts of the user's own, named ``module:Class`` in a campaign file: found beside the file (from any working
directory), run as the packaged parts run, and refused with one line when they cannot be (docs/extending.md)."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import pytest

from distilloop.cli import main
from distilloop.errors import ConfigError
from distilloop.loop.config import load_config
from distilloop.loop.parts import build_strategy, build_teachers
from tests.conftest import replay_config

ROOT = Path(__file__).resolve().parents[2]


def docs_parts() -> str:
    """The module docs/extending.md shows: the test runs the docs' own code."""
    text = (ROOT / "docs" / "extending.md").read_text()
    block = text.split("```python\n# my_parts.py, beside campaign.toml\n", 1)[1]
    return block.split("```", 1)[0]


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """A module of the user's own beside the campaign file, under a name no other test uses."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the campaign's folder is added while the test runs only
    name = f"my_parts_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(docs_parts())
    yield name
    sys.modules.pop(name, None)


def test_a_strategy_and_a_teacher_of_ones_own_run_a_campaign(tmp_path, parts, monkeypatch, capsys):
    cfg = replay_config(tmp_path, teachers=("a", "b"), rounds="max_rounds = 2\ninitial_size = 10\nbatch_size = 10",
                        extra=f'[strategy]\nname = "{parts}:LongestFirst"\n')
    cfg.write_text(cfg.read_text() + f'\n[[teachers]]\nname = "rules"\nkind = "{parts}:KeywordTeacher"\n'
                   'model = "rules-v1"\nprice = {input = 0.0, output = 0.0}\nwords = "good,great,fun"\n')
    monkeypatch.chdir("/")  # the module is found beside the campaign file, not in the working directory
    assert main(["run", "-q", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "longest_first" in out
    from distilloop.storage.store import Store

    store = Store.open(tmp_path / "t.distilloop.db")
    pool = {ex.id: len(ex.text) for ex in store.examples("pool")}
    first = store.selection(1)
    rules = [c for c in store.calls() if c.teacher == "rules"]
    store.close()
    # the user's strategy picked round 1: the 10 longest pool texts (no student needed, so no random first round)
    assert sorted(pool[i] for i in first) == sorted(pool.values())[-10:]
    assert len(rules) == 20 and all(c.status == "ok" for c in rules)  # the user's teacher, in the ledger


@pytest.mark.parametrize("ref,message", [
    ("nowhere_{u}:X", "no module named 'nowhere_{u}'; put nowhere_{u}.py beside the campaign file"),
    ("{p}:Longest", "has no class Longest (did you mean 'LongestFirst'?)"),
    ("{p}:KeywordTeacher", "KeywordTeacher is not a subclass of distilloop.strategies.base.Strategy"),
    ("broken_{u}:X", "importing broken_{u} failed: RuntimeError: no config here"),
    ("needs_{u}:X", "importing needs_{u} failed: No module named 'not_installed_anywhere'"),
    ("my parts:X", "unknown strategy 'my parts:X'"),
])
def test_a_part_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, parts, capsys, ref, message):
    u = uuid.uuid4().hex[:8]
    (tmp_path / f"broken_{u}.py").write_text('raise RuntimeError("no config here")\n')
    (tmp_path / f"needs_{u}.py").write_text("import not_installed_anywhere\n")
    ref, message = ref.format(p=parts, u=u), message.format(p=parts, u=u)
    cfg = replay_config(tmp_path, extra=f'[strategy]\nname = "{ref}"\n')
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_strategy(load_config(cfg))
    assert main(["estimate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: strategy")
    sys.modules.pop(f"broken_{u}", None)
    sys.modules.pop(f"needs_{u}", None)


def test_a_teacher_of_ones_own_must_be_a_teacher(tmp_path, parts):
    cfg = replay_config(tmp_path, teachers=("a",))
    cfg.write_text(cfg.read_text().replace('kind = "replay"', f'kind = "{parts}:LongestFirst"'))
    with pytest.raises(ConfigError, match=r"teachers\[0\] \(a\): teacher .*not a subclass of "
                                          r"distilloop\.annotators\.base\.Teacher"):
        build_teachers(load_config(cfg))


def test_an_error_in_ones_own_code_is_said_as_such_not_as_a_bug_in_distilloop(tmp_path, monkeypatch, capsys):
    """A teacher of the user's own whose answer() raised (a KeyError in their code) ended in "internal error ...
    This is a bug in distilloop"; it names their file and line, and the campaign resumes once it is fixed."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"buggy_{uuid.uuid4().hex[:8]}"
    module = tmp_path / f"{name}.py"
    module.write_text("from dataclasses import dataclass\nfrom distilloop.annotators.base import Teacher\n\n\n"
                      "@dataclass\nclass Buggy(Teacher):\n    kind = 'buggy'\n\n"
                      "    async def answer(self, prompt, item):\n        return {}['oops']\n")
    cfg = replay_config(tmp_path, teachers=("a",), rounds="max_rounds = 1\ninitial_size = 10")
    cfg.write_text(cfg.read_text() + f'\n[[teachers]]\nname = "mine"\nkind = "{name}:Buggy"\nmodel = "m"\n'
                   'price = {input = 0.0, output = 0.0}\n')
    try:
        assert main(["run", "-q", str(cfg)]) == 1
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line == (f"error: KeyError: 'oops', raised in your own code ({module}:10, in answer); fix it there "
                        "(--debug shows the traceback). A campaign is checkpointed after every step: `distilloop run` "
                        "resumes it.")
        cfg.write_text(cfg.read_text().replace(f'\n[[teachers]]\nname = "mine"\nkind = "{name}:Buggy"\nmodel = "m"\n'
                                               'price = {input = 0.0, output = 0.0}\n', ""))
        assert main(["run", "-q", str(cfg)]) == 0  # without it, the campaign goes on from where it stopped
    finally:
        sys.modules.pop(name, None)
