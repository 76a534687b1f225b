"""What the commands share: loading the campaign file, the console, opening the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "campaign.toml"


def load(args: argparse.Namespace) -> Any:
    from distilloop.loop.config import load_config

    return load_config(args.config)


def console() -> Any:
    from rich.console import Console

    # piped output (a file, CI logs) gets a wide table instead of rich's 80-column default
    return Console(width=None if sys.stdout.isatty() else 200)


def open_store(args: argparse.Namespace, writer: str | None = None) -> tuple[Any, Any]:
    """The campaign file and its store; ``writer`` (the command) holds the store's writer lock until it closes."""
    from distilloop.loop.guidelines import check_owner
    from distilloop.storage.store import Store

    config = load(args)
    store = Store.open(config.store_path, writer=writer)
    try:
        check_owner(store, config)  # not the store of another campaign file that names it too
    except BaseException:
        store.close()
        raise
    return config, store


def refuse_overwriting(out: str | Path, config: Any, **inputs: str | Path) -> None:
    """Stop (exit 2) before an output replaces a file the campaign reads: its campaign file, data file or store,
    or an input of this command (``inputs``: what it is -> its path). Any other existing file is replaced."""
    from distilloop.errors import UserInputError

    target = Path(out).expanduser().resolve()
    files = {"the campaign's data file": config.data_path, "the campaign file": config.path,
             "the campaign's store": config.store_path, "the campaign's students": config.students_dir,
             **{what.replace("_", " "): path for what, path in inputs.items()}}
    for what, path in files.items():
        if path is not None and Path(path).expanduser().resolve() == target:
            raise UserInputError(f"{out} is {what}: writing the output there would replace it; choose another "
                                 "path for the output")


def with_config(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"the campaign file (TOML); default: {DEFAULT_CONFIG}")


def usd_cap(v: float | None) -> str:
    """A dollar cap as users wrote it: "$1.00", "$0.0020" (a cap under a cent keeps its digits), "no cap"."""
    if v is None:
        return "no cap"
    if v == round(v, 2):
        return f"${v:,.2f}"
    return f"${v:,.4f}" if v == round(v, 4) else f"${v:,.8f}".rstrip("0")  # $0.00001, not $0.0000
