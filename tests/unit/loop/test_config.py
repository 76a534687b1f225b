import pytest

from distilloop.errors import ConfigError
from distilloop.loop.config import load_config, parse_config

BASE = {
    "campaign": {"name": "c", "labels": ["a", "b"]},
    "data": {"path": "d.jsonl"},
    "budget": {"max_usd": 1.0},
    "teachers": [{"name": "t", "kind": "replay", "path": "r.jsonl"}],
}


def with_(**changes):
    raw = {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in BASE.items()}
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        raw.setdefault(section, {})
        if key:
            raw[section][key] = value
        else:
            raw[section] = value
    return raw


def test_a_valid_config_parses_with_defaults():
    cfg = parse_config(with_())
    assert cfg.rounds.max_rounds == 5 and cfg.strategy.kind == "entropy" and cfg.student.kind == "tfidf_logreg"
    assert cfg.teachers[0].kind == "replay" and cfg.teachers[0].params == {"name": "t", "path": "r.jsonl"}


@pytest.mark.parametrize("raw,match", [
    (with_(budget__max_usd=-1), r"budget.max_usd: must be a number >= 0, got -1"),
    (with_(budget__max_ussd=1), r"budget.max_ussd: unknown key \(did you mean 'max_usd'\?\)"),
    (with_(budget={}), r"no campaign cap set"),
    (with_(campaign__labels=["a"]), r"campaign.labels: must be a list of at least two"),
    (with_(rounds__batch_size=0), r"rounds.batch_size: must be a positive integer"),
    (with_(rounds__batch_size="10"), r"rounds.batch_size: expected int, got str"),
    (with_(evaluation__metric="acc"), r"evaluation.metric"),
    (with_(routng={}), r"routng: unknown section \(did you mean 'routing'\?\)"),
    (with_(teachers=[]), r"at least one \[\[teachers\]\]"),
    (with_(teachers=[{"name": "t", "kind": "replay"}, {"name": "t", "kind": "replay"}]), r"used twice"),
    (with_(teachers=[{"name": "t"}]), r"teachers\[0\].kind: missing"),
])
def test_bad_configs_name_the_key_and_the_fix(raw, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(raw)


def test_unknown_component_and_component_option(tmp_path):
    from distilloop.loop import factory

    cfg = parse_config(with_(strategy={"name": "entropyy"}))
    with pytest.raises(ConfigError, match="unknown strategy 'entropyy' \\(did you mean 'entropy'\\?\\)"):
        factory.build_strategy(cfg)
    cfg = parse_config(with_(student={"kind": "tfidf_logreg", "CC": 1.0}))
    with pytest.raises(ConfigError, match="student: unknown key 'CC' \\(did you mean 'C'\\?\\)"):
        factory.build_student(cfg)


def test_load_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="campaign file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[campaign\nname=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    p = tmp_path / "sub" / "c.toml"
    p.parent.mkdir()
    p.write_text('[campaign]\nname="c"\nlabels=["a","b"]\n[data]\npath="d.jsonl"\n[budget]\nmax_usd=1\n'
                 '[[teachers]]\nname="t"\nkind="replay"\n')
    cfg = load_config(p)
    assert cfg.data_path == tmp_path / "sub" / "d.jsonl"
    assert cfg.store_path == tmp_path / "sub" / "c.distilloop.db"
