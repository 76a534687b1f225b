"""Lazy imports of optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from distilloop.errors import MissingExtraError

#: module -> the extra of distilloop that installs it
EXTRAS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "label_studio_sdk": "review",
    "torch": "hf",
    "transformers": "hf",
    "sentence_transformers": "hf",
    "peft": "hf",
    "llama_cpp": "local",
    "matplotlib": "report",
    "datasets": "export",
    "pyarrow": "export",
    "ray": "ray",
}


def install_hint(extra: str) -> str:
    return f"pip install -c constraints.txt 'distilloop[{extra}]'"


def require(module: str, extra: str | None = None, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or EXTRAS.get(top, top)
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingExtraError(
            f"the optional dependency '{top}' is not installed{what}: "
            f"install it with `{install_hint(extra)}` (from the project directory). [{exc}]"
        ) from exc


def cache_dir() -> Path:
    """Where model files assembled from packaged wheels are kept (``DISTILLOOP_MODELS_DIR``, default
    ``~/.cache/distilloop/models``)."""
    return Path(os.environ.get("DISTILLOOP_MODELS_DIR", Path.home() / ".cache" / "distilloop" / "models"))
