"""What the machine refuses (a folder where a file goes, a full disk, no permission) and odd names are one line
at the CLI with the right exit code, never an "internal error"."""

import errno

import pytest

from distilloop.cli import main
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import replay_config


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("c")
    cfg = replay_config(folder, teachers=("a", "b"), rounds="max_rounds = 1\ninitial_size = 10")
    text = cfg.read_text().replace('name = "a"', 'name = "$\\\\frac{a$"').replace('name = "b"', 'name = "b$x$"')
    cfg.write_text(text)
    c = Campaign.open(load_config(cfg))
    c.run()
    c.close()
    return cfg


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "internal error" not in err, err
    return lines[0]


def test_export_to_a_folder_is_refused(campaign, tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path), str(campaign)]) == 2
    assert "is a folder" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_export_into_a_folder_not_made_yet_makes_it_as_the_report_does(campaign, tmp_path, capsys):
    """`export -o out/labels.jsonl` without `out/` said "out/.labels.jsonl.tmp: no such file or folder" (the
    temporary file's name); the Parquet and HF exports and the report make the folder, and so does JSONL."""
    target = tmp_path / "out" / "labels.jsonl"
    assert main(["export", "-o", str(target), str(campaign)]) == 0
    assert main(["export", "-o", str(tmp_path / "here.jsonl"), str(campaign)]) == 0
    assert target.read_text() == (tmp_path / "here.jsonl").read_text() != ""
    assert [p.name for p in target.parent.iterdir()] == ["labels.jsonl"]  # no temporary file left


def test_report_to_a_folder_is_refused(campaign, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["report", "--html", str(tmp_path), str(campaign)]) == 2
    assert "is a folder" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_names_with_dollar_signs_do_not_break_the_html_report(campaign, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.html"
    assert main(["report", "--html", str(out), str(campaign)]) == 0, capsys.readouterr().err
    assert "b$x$" in out.read_text()


@pytest.mark.parametrize("exc,code,says", [
    (OSError(errno.ENOSPC, "No space left on device", "x.jsonl"), 1, "the disk is full"),
    (PermissionError(errno.EACCES, "Permission denied", "/ro/x.jsonl"), 2, "permission denied: /ro/x.jsonl"),
])
def test_what_the_system_refuses_is_one_line(campaign, tmp_path, capsys, monkeypatch, exc, code, says):
    import distilloop.storage.export as export

    def refuse(*args, **kwargs):
        raise exc

    monkeypatch.setattr(export, "export_records", refuse)
    assert main(["export", "-o", str(tmp_path / "x.jsonl"), str(campaign)]) == code
    assert says in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
