"""`distilloop export --format hf|parquet`: the distilled data set for the ecosystem, each row with its provenance
and the guideline version it was labeled under; a Hugging Face dataset loads back with `load_from_disk`."""

import json

import pytest

from tests.conftest import replay_config
from tests.unit.loop.living_helpers import cli, edit, one_line_error

pytest.importorskip("datasets")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    cfg = replay_config(tmp, rounds="max_rounds = 1\ninitial_size = 20\nconcurrency = 4")
    assert cli("run", "-q", cfg).returncode == 0
    edit(cfg, 'task = "Classify the sentiment."', 'task = "Is the critic recommending it?"')
    edit(cfg, "max_rounds = 1", "max_rounds = 2\nbatch_size = 10")
    assert cli("run", "-q", cfg).returncode == 0  # round 2 under guideline 2
    out = tmp / "rows.jsonl"
    assert cli("export", cfg, "-o", out, "--include-gold").returncode == 0
    return cfg, [json.loads(x) for x in out.read_text().splitlines()]


def test_export_hf_loads_back_with_load_from_disk(campaign, tmp_path):
    import datasets

    cfg, rows = campaign
    dest = tmp_path / "distilled"
    proc = cli("export", cfg, "--format", "hf", "-o", dest, "--include-gold")
    assert proc.returncode == 0 and f"wrote 30 labeled examples to {dest}" in proc.stdout, proc.stderr
    ds = datasets.load_from_disk(str(dest))
    assert len(ds) == len(rows) == 30
    assert ds.column_names == ["id", "text", "label", "rationale", "soft_label", "provenance", "gold"]
    # label and gold as a sequence-classification Trainer reads them: ClassLabel codes of the campaign's label set
    for column in ("label", "gold"):
        assert ds.features[column] == datasets.ClassLabel(names=["negative", "positive"])
        assert [ds.features[column].int2str(k) for k in ds[column]] == [r[column] for r in rows]
    assert ds["id"] == [r["id"] for r in rows]
    prov = ds["provenance"]
    assert sorted({p["guideline"] for p in prov}) == [1, 2]
    assert [p["guideline"] for p in prov] == [r["provenance"]["guideline"] for r in rows]
    assert all(p["data_version"] == 1 and p["campaign"] == "t" for p in prov)
    assert [len(p["teachers"]) for p in prov] == [len(r["provenance"]["teachers"]) for r in rows]
    first = ds[0]["soft_label"]
    assert {d["label"]: d["p"] for d in first} == pytest.approx(rows[0]["soft_label"])
    # exported again: the earlier export is replaced whole
    assert cli("export", cfg, "--format", "hf", "-o", dest).returncode == 0
    assert "gold" not in datasets.load_from_disk(str(dest)).column_names


def test_export_parquet_reads_back(campaign, tmp_path):
    import pyarrow.parquet as pq

    cfg, rows = campaign
    dest = tmp_path / "distilled.parquet"
    assert cli("export", cfg, "--format", "parquet", "-o", dest).returncode == 0
    table = pq.read_table(dest).to_pylist()
    assert [t["id"] for t in table] == [r["id"] for r in rows]
    assert [t["provenance"]["guideline"] for t in table] == [r["provenance"]["guideline"] for r in rows]
    assert table[0]["provenance"]["round"] == rows[0]["provenance"]["round"]
    assert not list(tmp_path.glob(".*tmp"))


def test_export_refuses_to_replace_a_folder_that_is_not_an_export(campaign, tmp_path):
    cfg, _ = campaign
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    one_line_error(cli("export", cfg, "--format", "hf", "-o", keep), "holds something else than a dataset")
    assert (keep / "notes.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    # parquet into a folder (an earlier hf export): its name, not the temporary file's ("x.tmp/data.parquet")
    one_line_error(cli("export", cfg, "--format", "parquet", "-o", keep),
                   rf"{keep} is a folder; give the export a file name, e.g. -o {keep}/export.parquet")
    assert (keep / "notes.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
