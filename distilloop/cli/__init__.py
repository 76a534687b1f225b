"""The ``distilloop`` command: a thin layer over the Python API.

Every error distilloop raises on purpose is printed on one line (``error: ...``) with exit code 2 for bad
input and 1 for failures at run time; a raw traceback is never shown (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence

from distilloop import __version__
from distilloop.cli import inspect, living, review, run, setup
from distilloop.cli.common import DEFAULT_CONFIG
from distilloop.errors import DistilloopError, Terminated

__all__ = ["DEFAULT_CONFIG", "build_parser", "main"]

#: the command modules, in the order their commands are listed
COMMANDS = (setup, run, living, inspect, review)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="distilloop",
        description="Active-learning annotation and distillation campaigns: teacher LLMs label with rationales, "
                    "humans review disagreements, a small student is distilled on a hard budget.")
    p.add_argument("--version", action="version", version=f"distilloop {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return p


def system_error(exc: OSError | sqlite3.OperationalError) -> tuple[str, int]:
    """One line and an exit code for what the system refused: 1 for a full disk (free space and run again; a
    campaign resumes), 2 for a path the user gave that cannot be written or read."""
    text = str(exc).lower()
    where = getattr(exc, "filename", None)
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text
    if full:
        return (f"the disk is full{f' (writing {where})' if where else ''}: free some space, then run the command "
                "again; a campaign resumes where it stopped and nothing half-written is kept", 1)
    if isinstance(exc, IsADirectoryError):
        return f"{where} is a folder; give a file name", 2
    if isinstance(exc, PermissionError) or "readonly" in text or "read-only" in text:
        return (f"permission denied{f': {where}' if where else f' ({exc})'}; choose a file or folder you can "
                "write to", 2)
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return f"{where}: no such file or folder; check the path", 2
    return f"{type(exc).__name__}: {exc}; check the files and folders the command uses", 1


def one_line(message: str) -> str:
    """An error on one line: a line break that came with a value of the user's (a cell, a label) is shown, not
    obeyed."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Prefixed(logging.Formatter):
    """A log record as the commands print their own lines: ``warning: <message>`` (``error: ...``)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        for handler in logging.getLogger().handlers:  # "warning: ...", as the commands' own warnings print
            handler.setFormatter(_Prefixed())
    try:
        return int(args.func(args) or 0)
    except DistilloopError as exc:
        if args.debug:
            raise
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{how}: the campaign is checkpointed; `distilloop run` resumes it", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:  # the reader of stdout stopped early (`export -o - | head`): as any Unix tool, quietly
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush of stdout at exit would fail again
        return 141
    except (OSError, sqlite3.OperationalError) as exc:  # the machine's limits, not a bug: a full disk, no access
        if args.debug:
            raise
        message, code = system_error(exc)
        print(f"error: {one_line(message)}", file=sys.stderr)
        return code
    except Exception as exc:  # a bug, not bad input: one line, the way to the traceback, and nothing lost
        if args.debug:
            raise
        from distilloop.registry import plugin_frame

        if where := plugin_frame(exc):  # a part of the user's own (module:Class) failed in its own code
            print(f"error: {type(exc).__name__}: {one_line(str(exc))}, raised in your own code ({where}); fix it there "
                  "(--debug shows the traceback). A campaign is checkpointed after every step: `distilloop run` "
                  "resumes it.", file=sys.stderr)
            return 1
        print(f"internal error: {type(exc).__name__}: {one_line(str(exc))}. This is a bug in distilloop: run the command again with "
              "--debug for the traceback and report it. A campaign is checkpointed after every step: "
              "`distilloop run` resumes it.", file=sys.stderr)
        return 1
