"""Progress on long work (rich), silenced with ``quiet``. Library code never configures logging."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: seconds between the plain lines that stand for a spinner or a bar where stderr is not a terminal
HEARTBEAT_S = 30.0
#: the window a bar's time left is paced on, where its lines go to a log (not a terminal)
RECENT_S = 120.0


class Progress:
    """Bars, spinners and notes on stderr; all no-ops when ``quiet``. Warnings are said even when quiet, unless
    ``warnings`` is false (a benchmark's campaigns, whose weak teachers are the point, not the user's problem).

    Where stderr is not a terminal (a log file, nohup, CI), a spinner or a bar would show nothing until it ends
    (an hour's embedding of a large pool, silent): there a plain line says how far it is every ``HEARTBEAT_S``
    seconds."""

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

        if not self.console.is_terminal:
            current, started = [message], time.monotonic()

            def line(text: str | None) -> str:  # an update's text; the watch's: the last one, and for how long
                return text if text is not None else f"{current[0]}: {time.monotonic() - started:.0f} s so far"
            with self._heartbeat(line) as beat:
                def update(text: str) -> None:
                    current[0] = text
                    beat(text)
                yield update
            self.console.print(f"{escape(message)}: done", markup=False)
            return
        with self.console.status(escape(message)) as spinner:
            yield lambda text: spinner.update(escape(text))
        self.console.print(f"[dim]{escape(message)}: done[/dim]")

    @contextmanager
    def _heartbeat(self, line: Callable[[Any], str]) -> Iterator[Callable[..., None]]:
        """What stands for a spinner's or a bar's update off a terminal: ``line(arg)`` printed when
        ``HEARTBEAT_S`` seconds have passed since the last line; and where no update comes for that long (a
        student training, a teacher that is slow to answer), ``line(None)`` from a watching thread."""
        last = [time.monotonic()]

        def say(arg: Any) -> None:
            last[0] = time.monotonic()
            self.console.print(line(arg), markup=False, highlight=False)

        def update(arg: Any = None) -> None:
            if time.monotonic() - last[0] >= HEARTBEAT_S:
                say(arg)

        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(HEARTBEAT_S / 6):
                if time.monotonic() - last[0] >= HEARTBEAT_S:
                    say(None)
        watcher = threading.Thread(target=watch, name="distilloop-heartbeat", daemon=True)
        watcher.start()
        try:
            yield update
        finally:
            stop.set()
            watcher.join()

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
            if self.console.is_terminal:
                yield lambda k=1: p.advance(task, k)
                return
            done, started = [0], time.monotonic()
            seen: list[tuple[float, int]] = [(started, 0)]  # (when, done) at each advance, for the recent pace

            def line(_: Any) -> str:
                now = time.monotonic()
                elapsed = now - started
                # the pace since the first advance of the last RECENT_S seconds: items of unequal length (the
                # bench's long campaigns come first) made the pace since the start say "about 356 min left" at 1 of
                # 90 where the run took 11 min; nothing is said before the second advance
                old = next((k for k, (t, _) in enumerate(seen) if now - t <= RECENT_S), len(seen))
                del seen[:max(0, min(old, len(seen) - 2))]  # the advances before the window go, the last two stay
                (t0, d0) = seen[0] if done[0] > seen[0][1] else seen[-1]
                left = (total - done[0]) * (now - t0) / (done[0] - d0) if done[0] >= 2 and done[0] > d0 else None
                return (f"{description}: {done[0]:,}/{total:,}, {elapsed:.0f} s"
                        + (f", about {left / 60:.0f} min left" if left and left >= 90 else
                           f", about {left:.0f} s left" if left is not None else ""))
            with self._heartbeat(line) as beat:
                def advance(k: int = 1) -> None:
                    done[0] += k
                    seen.append((time.monotonic(), done[0]))
                    p.advance(task, k)
                    beat()
                yield advance


def embedding_status(message: str, student: Any, update: Callable[[str], None]) -> Callable[[int, int], None]:
    """What a spinner (``message``, shown by ``update``) says while the student embeds many texts (the first
    selection of a large pool with a frozen encoder, a large test split at the first evaluation: minutes to hours
    on a CPU): how many, how far, and the time left at the pace so far. Pass it to
    :func:`distilloop.students.base.reporting`."""
    started: list[float] = []
    name = Path(str(getattr(student, "model", None) or "the encoder")).name  # a model's folder: its name

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if not started or done == 0:
            started[:] = [now]
        left = ""
        if done and now > started[0]:
            seconds = (total - done) * (now - started[0]) / done
            left = f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"
        update(f"{message}: embedding {done:,}/{total:,} texts{left} ({name}, kept for later rounds)")
    return report
