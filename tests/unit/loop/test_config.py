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
    from distilloop.loop import parts as factory

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
    # Notepad saves UTF-8 with a byte-order mark: "not valid TOML (Invalid statement (at line 1, column 1))"
    good = tmp_path / "bom.toml"
    good.write_bytes(b"\xef\xbb\xbf" + (b'[campaign]\nname="c"\nlabels=["a","b"]\n[data]\npath="d.jsonl"\n'
                                          b'[budget]\nmax_usd=1\n[[teachers]]\nname="t"\nkind="replay"\n'))
    assert load_config(good).campaign.name == "c"
    good.write_bytes(good.read_bytes()[3:].decode().encode("utf-16"))
    with pytest.raises(ConfigError, match=r"bom.toml: not UTF-8 text; save the campaign file as UTF-8"):
        load_config(good)


def test_a_data_file_given_as_the_campaign_file_is_said_so(tmp_path):
    # `distilloop predict data.csv campaign.toml` (the order swapped) or `distilloop run data.parquet`
    csv_file = tmp_path / "news.csv"
    csv_file.write_text("id,text,label\n1,good,pos\n")
    with pytest.raises(ConfigError, match=r"news.csv is a data file, not a campaign file: pass the campaign file "
                                          r"\(a data file comes after it: `distilloop predict campaign.toml .*news.csv`\), "
                                          r"or write one with `distilloop init .*news.csv`"):
        load_config(csv_file)
    binary = tmp_path / "rows.parquet"
    binary.write_bytes(b"PAR1\xff\xfe\x00\x81")  # not UTF-8: said as a data file, not as "save it as UTF-8"
    with pytest.raises(ConfigError, match="rows.parquet is a data file"):
        load_config(binary)
    other = tmp_path / "notes.txt"  # a name that is no data format keeps the TOML error
    other.write_text("hello world")
    with pytest.raises(ConfigError, match="notes.txt: not valid TOML"):
        load_config(other)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    p = tmp_path / "sub" / "c.toml"
    p.parent.mkdir()
    p.write_text('[campaign]\nname="c"\nlabels=["a","b"]\n[data]\npath="d.jsonl"\n[budget]\nmax_usd=1\n'
                 '[[teachers]]\nname="t"\nkind="replay"\n')
    cfg = load_config(p)
    assert cfg.data_path == tmp_path / "sub" / "d.jsonl"
    assert cfg.store_path == tmp_path / "sub" / "c.distilloop.db"


def test_stopping_defaults_are_off():
    s = parse_config(with_()).stopping
    assert (s.stabilizing, s.dev_target) == (False, None)
    assert (s.stop_set_size, s.kappa, s.window, s.window_rule, s.dev_patience) == (2000, 0.99, 3, "mean", 1)
    s = parse_config(with_(stopping={"stabilizing": True, "kappa": 1, "window_rule": "all", "dev_target": 0.85,
                                     "dev_patience": 2})).stopping
    assert (s.stabilizing, s.kappa, s.window_rule, s.dev_target, s.dev_patience) == (True, 1, "all", 0.85, 2)


@pytest.mark.parametrize("stopping,match", [
    ({"stabilising": True}, r"stopping.stabilising: unknown key \(did you mean 'stabilizing'\?\); \[stopping\] takes"),
    ({"stabilizing": "yes"}, r"stopping.stabilizing: must be true or false, got 'yes'"),
    ({"stop_set_size": 0}, r"stopping.stop_set_size: must be a positive integer, got 0"),
    ({"stop_set_size": 2.5}, r"stopping.stop_set_size: expected int, got float 2.5"),
    ({"kappa": 1.5}, r"stopping.kappa: must be a kappa in \[-1, 1\] \(the paper uses 0.99\), got 1.5"),
    ({"kappa": "high"}, r"stopping.kappa: expected float, got str 'high'"),
    ({"window": 0}, r"stopping.window: must be a positive integer, got 0"),
    ({"window_rule": "men"}, r"stopping.window_rule: must be 'mean' \(the paper's\) or 'all', got 'men' "
                             r"\(did you mean 'mean'\?\)"),
    ({"dev_target": 85}, r"stopping.dev_target: must be a metric value in \(0, 1\], got 85; remove the key"),
    ({"dev_target": True}, r"stopping.dev_target: must be a metric value in \(0, 1\], got True"),
    ({"dev_patience": -1}, r"stopping.dev_patience: must be a positive integer, got -1"),
    ("on", r"stopping: must be a table \(\[stopping\]\), got str"),
])
def test_bad_stopping_values_name_the_key_and_the_fix(stopping, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(with_(stopping=stopping))


def test_a_teacher_the_cascade_does_not_name_is_an_error_not_a_teacher_never_asked():
    """`init` writes a cascade; a teacher added to the file later was never asked (the pilot showed it with 0
    answers, nothing said why). It is refused with the cascade that would ask it."""
    teachers = [{"name": n, "kind": "replay", "path": "r.jsonl"} for n in ("gpt", "claude", "rules")]
    with pytest.raises(ConfigError, match=r'teachers\[2\] \(rules\): in no tier of \[routing\] cascade = '
                                          r'\["gpt", "claude"\], so never asked; add it \(e.g. cascade = '
                                          r'\["gpt", "claude", "rules"\]\) or remove the teacher'):
        parse_config(with_(teachers=teachers, routing__cascade=["gpt", "claude"]))
    cfg = parse_config(with_(teachers=teachers, routing__cascade=["gpt", ["claude", "rules"]]))
    assert cfg.routing.tiers() == [["gpt"], ["claude", "rules"]]
    assert len(parse_config(with_(teachers=teachers)).teachers) == 3  # no cascade: every teacher is asked
