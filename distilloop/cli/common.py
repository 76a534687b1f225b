"""What the commands share: loading the campaign file, the console, opening the store."""

from __future__ import annotations

import argparse
import sys
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
    from distilloop.storage.store import Store

    config = load(args)
    return config, Store.open(config.store_path, writer=writer)


def with_config(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"the campaign file (TOML); default: {DEFAULT_CONFIG}")


def usd_cap(v: float | None) -> str:
    """A dollar cap as users wrote it: "$1.00", "$0.0020" (a cap under a cent keeps its digits), "no cap"."""
    if v is None:
        return "no cap"
    return f"${v:,.2f}" if v == round(v, 2) else f"${v:,.4f}"
