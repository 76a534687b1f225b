"""Progress on long work (rich), silenced with ``quiet``. Library code never configures logging."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    """Bars, spinners and notes on stderr; all no-ops when ``quiet``. Warnings are said even when quiet, unless
    ``warnings`` is false (a benchmark's campaigns, whose weak teachers are the point, not the user's problem)."""

    def __init__(self, quiet: bool = False, console: Any = None, warnings: bool = True) -> None:
        self.quiet = quiet
        self.warnings = warnings
        if console is None and not quiet:
            from rich.console import Console

            # piped stderr (a log file, CI) gets long lines whole instead of rich's 80-column wrapping
            console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
        self.console = console

    def note(self, message: str) -> None:
        if not self.quiet:
            from rich.markup import escape

            self.console.print(f"[dim]{escape(message)}[/dim]")  # "[aggregation]" is not markup

    def warn(self, message: str) -> None:
        if not self.warnings:
            return
        if self.console is not None:
            from rich.markup import escape

            self.console.print(f"[yellow]warning:[/yellow] {escape(message)}")  # "[aggregation]" is not markup
        else:
            print(f"warning: {message}", file=sys.stderr)

    @contextmanager
    def status(self, message: str) -> Iterator[Callable[[str], None]]:
        """A spinner with ``message``, then one line "message: done"; what it yields shows another text on the
        spinner meanwhile (the step of the work it is at)."""
        if self.quiet:
            yield lambda text: None
            return
        from rich.markup import escape

        with self.console.status(escape(message)) as spinner:
            yield lambda text: spinner.update(escape(text))
        self.console.print(f"[dim]{escape(message)}: done[/dim]")

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        """A bar to ``total``; what it yields advances it by one, or by the number it is given."""
        if self.quiet:
            yield lambda k=1: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False) as p:
            task = p.add_task(description, total=total)
            yield lambda k=1: p.advance(task, k)
