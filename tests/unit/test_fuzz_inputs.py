"""Hostile input, generated: every data file and every campaign file ends in a correct load or in one line of
error with exit code 2, never an "internal error", and nothing is left half-written."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from distilloop.cli import main
from distilloop.data import load_examples
from distilloop.errors import UserInputError
from tests.conftest import FIXTURES

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=12), st.sampled_from(["pool", "test", "dev", "negative", "positive", ""]))
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=4), scalar, max_size=2))
row = st.dictionaries(st.sampled_from(["id", "text", "label", "split", "rationale", "extra"]), value, max_size=6)
good_row = st.fixed_dictionaries({"text": st.text(min_size=1, max_size=30),
                                  "label": st.sampled_from(["negative", "positive", ""])},
                                 optional={"id": st.integers(0, 50), "split": st.sampled_from(["pool", "test"])})


def encode(rows: list[dict], fmt: str, bom: bool) -> bytes:
    if fmt.startswith("jsonl"):
        text = "\n".join(json.dumps(r) for r in rows)
    else:
        buf = io.StringIO()
        keys = sorted({k for r in rows for k in r}) or ["text"]
        w = csv.writer(buf, delimiter="\t" if fmt.startswith("tsv") else ",")
        w.writerow(keys)
        for r in rows:
            w.writerow([r.get(k, "") if not isinstance(r.get(k), list | dict) else json.dumps(r[k]) for k in keys])
        text = buf.getvalue()
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    return gzip.compress(data) if fmt.endswith(".gz") else data


@st.composite
def data_files(draw):
    fmt = draw(st.sampled_from(["jsonl", "csv", "tsv", "jsonl.gz", "csv.gz"]))
    rows = draw(st.lists(st.one_of(good_row, row), max_size=8))
    blob = encode(rows, fmt, draw(st.booleans()))
    damage = draw(st.sampled_from(["none", "none", "truncate", "bytes", "ragged"]))
    if damage == "truncate" and blob:
        blob = blob[: draw(st.integers(0, len(blob) - 1))]
    elif damage == "bytes":
        blob = blob + draw(st.binary(min_size=1, max_size=20))
    elif damage == "ragged" and not fmt.endswith(".gz"):
        blob = blob + b"\nx,y,z,w,v,u,t,s\n"
    return fmt, blob


def one_line_error(err: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err


@FUZZ
@given(data_files())
def test_every_data_file_loads_correctly_or_is_refused_on_one_line(tmp_path_factory, capsys, case):
    fmt, blob = case
    folder = tmp_path_factory.mktemp("d")
    path = folder / f"data.{fmt}"
    path.write_bytes(blob)
    out = folder / "campaign.toml"
    code = main(["init", str(path), "--out", str(out), "--labels", "negative,positive"])
    captured = capsys.readouterr()
    event(f"exit {code}")
    assert code in (0, 2), captured.err
    if code == 2:
        one_line_error(captured.err)
        assert sorted(p.name for p in folder.iterdir()) == [path.name]  # nothing written
        return
    from distilloop.loop.config import load_config

    # read as the campaign init wrote reads it (a file without `text` gets its one other column as the input)
    examples = load_examples(path, load_config(out).data_spec(), labels=["negative", "positive"])
    assert out.exists() and len({e.id for e in examples}) == len(examples)
    for e in examples:
        assert all(isinstance(v, str | dict) for v in e.fields.values()) and e.text.strip()
        assert e.split in ("pool", "dev", "test") and e.gold in (None, "negative", "positive")
        assert "\ufeff" not in e.id  # a byte-order mark is not part of the first column's name
        assert not (fmt.startswith("jsonl") and e.id.startswith("["))  # a JSON list is no id (in a CSV, "[]" is text)


def test_known_hostile_data_files(tmp_path):
    cases = {
        "big.csv": "id,text\n1," + "x" * 200_000 + "\n",
        "bom.csv": "\ufeffid,text,label\nr1,good,positive\n",
        "ragged.csv": "id,text\n1,a,b\n",
        "short.csv": "id,text,label\n1\n",
        "nan.jsonl": '{"id": 1, "text": "a", "label": NaN}\n',
        "list.jsonl": '{"id": 1, "text": ["a", "b"]}\n{"id": 2, "text": 7}\n',
    }
    results = {}
    for name, text in cases.items():
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        try:
            results[name] = load_examples(p, labels=["negative", "positive"])
        except UserInputError as exc:
            results[name] = str(exc)
    assert len(results["big.csv"][0].text) == 200_000  # a 200 KB field is read, not "internal error"
    assert results["bom.csv"][0].id == "r1"  # Excel's BOM does not eat the id column
    assert "3 cells where the header has 2" in results["ragged.csv"]
    assert "1 cells where the header has 3" in results["short.csv"]
    assert "NaN is not a JSON value" in results["nan.jsonl"]
    assert "input field 'text' must be text, got int" in results["list.jsonl"]  # not the repr "7"
    corrupt = tmp_path / "bad.jsonl.gz"
    blob = gzip.compress("".join(json.dumps({"id": i, "text": f"row {i}"}) + "\n" for i in range(500)).encode())
    corrupt.write_bytes(blob[:10] + b"\xff" * 16 + blob[26:])  # a deflate stream zlib refuses ("invalid ...")
    with pytest.raises(UserInputError, match="cannot be read"):
        load_examples(corrupt)
    for cut in (5, len(blob) // 3, len(blob) - 4):  # cut short anywhere: one line, never a traceback
        corrupt.write_bytes(blob[:cut])
        with pytest.raises(UserInputError):
            load_examples(corrupt)


# -- campaign files ------------------------------------------------------------------------------------
BASE = {
    "campaign": {"name": "fz", "labels": ["negative", "positive"], "task": "Classify."},
    "data": {"path": str(FIXTURES / "rt_tiny.jsonl")},
    "budget": {"max_usd": 1.0},
    "rounds": {"max_rounds": 2, "initial_size": 10, "batch_size": 10},
    "teachers": [{"name": "a", "kind": "replay", "model": "gpt-4o-mini",
                  "path": str(FIXTURES / "rt_tiny_replay.jsonl.gz"), "source": "a"}],
}
KEYS = {
    "campaign": ["name", "labels", "task", "store", "seed", "answer", "models_dir"],
    "data": ["path", "input_fields", "label_field", "id_field", "test_fraction", "dev_fraction", "limits"],
    "budget": ["max_usd", "max_tokens_in", "max_tokens_out", "round_max_usd"],
    "rounds": ["max_rounds", "batch_size", "initial_size", "initial_strategy", "target", "concurrency", "growth"],
    "routing": ["min_agreement", "max_review_per_round", "cascade", "cascade_min_confidence"],
    "evaluation": ["split", "metric", "promote_margin"],
    "stopping": ["stabilizing", "stop_set_size", "kappa", "window", "dev_target"],
    "strategy": ["name", "batch_size", "prefilter"],
    "student": ["kind", "C", "max_features", "ngram_max"],
    "review": ["kind", "delay_rounds", "delay_seconds", "url", "project_title"],
    "aggregation": ["method", "calibrate"],
    "teachers": ["name", "kind", "model", "max_tokens", "temperature", "price", "prompt", "prompt_options",
                 "latency_s", "source", "api_key_env", "samples", "base_url"],
    "nonsense": ["x"],
}


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(v)


def to_toml(doc: dict) -> str:
    out = []
    for section, table in doc.items():
        if section == "teachers":
            for t in table:
                out.append("[[teachers]]")
                out += [f"{k} = {toml_value(v)}" for k, v in t.items() if v is not None]
            continue
        out.append(f"[{section}]")
        out += [f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(out) + "\n"


edit = st.tuples(st.sampled_from(sorted(KEYS)), st.integers(0, 99), value)


@FUZZ
@given(st.lists(edit, min_size=1, max_size=4))
def test_every_campaign_file_loads_or_is_refused_on_one_line(tmp_path_factory, capsys, edits):
    doc = json.loads(json.dumps(BASE))
    for section, k, v in edits:
        key = KEYS[section][k % len(KEYS[section])]
        if section == "teachers":
            doc["teachers"][0][key] = v
        else:
            doc.setdefault(section, {})[key] = v
    folder = tmp_path_factory.mktemp("c")
    cfg = folder / "campaign.toml"
    cfg.write_text(to_toml(doc))
    code = main(["estimate", "--json", str(cfg)])
    captured = capsys.readouterr()
    event(f"exit {code}")
    assert code in (0, 2), captured.err
    if code == 2:
        one_line_error(captured.err)
    assert sorted(p.name for p in folder.iterdir()) == ["campaign.toml"]  # estimate writes nothing
    if code == 0:  # what estimate accepts, run opens: the store is created whole, or nothing is written
        from distilloop.loop.campaign import Campaign
        from distilloop.loop.config import load_config

        config = load_config(cfg)
        try:
            Campaign.open(config).close()
        except UserInputError:
            assert sorted(p.name for p in folder.iterdir()) == ["campaign.toml"]
        else:  # where [campaign] store says, whatever its name ("0" is a name)
            assert config.store_path.is_file()


def test_known_hostile_campaign_files(tmp_path, capsys):
    bad = {"campaign.seed": -1, "budget.max_usd": math.inf, "teachers.max_tokens": "96", "teachers.latency_s": "fast",
           "review.kind": "human", "teachers.api_key_env": "sk-proj-abcdefghijklmnop123456",
           "data.dev_fraction": 0.5, "teachers.model": "/nowhere/m.gguf"}
    for where, v in bad.items():
        section, key = where.split(".")
        doc = json.loads(json.dumps(BASE))
        if section == "teachers":
            doc["teachers"][0][key] = v
        else:
            doc.setdefault(section, {})[key] = v
        if key == "dev_fraction":
            doc["data"]["test_fraction"] = 0.6
        if key == "model":
            doc["teachers"][0] = {"name": "q", "kind": "llama_cpp", "model": v}
        cfg = tmp_path / f"{section}-{key}.toml"
        cfg.write_text(to_toml(doc))
        assert main(["run", "-q", str(cfg)]) == 2, where
        err = capsys.readouterr().err
        one_line_error(err)
        assert "abcdefghijklmnop" not in err
    assert sorted(p.suffix for p in Path(tmp_path).iterdir()) == [".toml"] * len(bad)  # no store left behind


def test_a_few_shot_label_outside_the_set_is_refused_before_anything_is_written(tmp_path, capsys):
    doc = json.loads(json.dumps(BASE))
    doc["teachers"][0]["prompt"] = "few_shot_cot"
    doc["teachers"][0]["prompt_options"] = {"examples": [{"text": "great", "label": "positiv", "rationale": "r"}]}
    cfg = tmp_path / "campaign.toml"
    cfg.write_text(to_toml(doc))
    assert main(["run", "-q", str(cfg)]) == 2
    err = capsys.readouterr().err
    one_line_error(err)
    assert "'positiv' is not in the label set" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["campaign.toml"]
