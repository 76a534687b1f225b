"""The HTML report's plots, drawn by matplotlib's object API on an Agg canvas (never pyplot: the process-wide
backend is left alone) and inlined as base64 PNGs. Needs the ``report`` extra."""

from __future__ import annotations

import base64
import functools
import html
import io
import warnings
from collections.abc import Sequence
from typing import Any

from distilloop.core.types import Spend
from distilloop.reports.table import metric_name
from distilloop.storage.queries import RoundRow

BLUE = "#2456a6"


def plain(text: object) -> str:
    """A name drawn as it is: matplotlib reads ``$...$`` as math (and fails on what is not), so ``$`` is escaped."""
    return str(text).replace("$", r"\$")


def png(fig: Any) -> str:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # a glyph the font lacks is drawn as a box (names are numbered, see `drawn`)
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


@functools.cache
def _glyphs() -> frozenset[int]:
    """The code points the plots' font draws (matplotlib's default, DejaVu Sans: no CJK, no emoji)."""
    from matplotlib import font_manager, ft2font

    return frozenset(ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap())


def drawn(names: Sequence[str], what: str) -> tuple[list[str], str]:
    """``names`` as a plot can draw them, and an HTML note: the names themselves (no note) where the font has
    every glyph, else their numbers, "1", "2"..., with a note saying which is which (labels in Chinese or with an
    emoji were drawn as boxes)."""
    glyphs = _glyphs()
    if all(ord(c) in glyphs or c.isspace() for n in names for c in str(n)):
        return [plain(n) for n in names], ""
    key = ", ".join(f"{i} = {html.escape(str(n))}" for i, n in enumerate(names, 1))
    return ([str(i) for i in range(1, len(names) + 1)],
            f'<p class="muted">The plot numbers the {what} (its font cannot draw their names): {key}.</p>')


def compact(value: float) -> str:
    """A count as a tick says it: 950, 4k, 12.5k, 1.2M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    from distilloop._extras import require

    mpl = require("matplotlib.figure", "report", purpose="the HTML report's plots")
    fig = mpl.Figure(figsize=(width, height))
    return fig, fig.subplots(1, ncols)


def learning_curve(pts: Sequence[RoundRow], metric: str = "accuracy") -> str:
    """The student's score on ``metric`` (the one its promotions are decided on) against cumulative tokens and
    dollars; filled markers are promoted students."""
    name = metric_name(metric)
    fig, (ax1, ax2) = figure(11, 3.6, 2)
    for ax, xs, xlabel in ((ax1, [r.tokens_in + r.tokens_out for r in pts], "cumulative tokens (in + out)"),
                           (ax2, [r.usd for r in pts], "cumulative spend (USD)")):
        ys = [r.score(metric) for r in pts]
        ax.plot(xs, ys, "-", color=BLUE)
        for x, y, r in zip(xs, ys, pts, strict=True):
            ax.plot([x], [y], "o", color=BLUE, mfc=BLUE if r.promoted else "white")
            ax.annotate(f"r{r.round}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"student {name}")
        ax.grid(alpha=0.3)
    # at most 6 ticks, tokens as 4k, 1.2M: "10000 12000 14000..." ran together under a 5-inch axis
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    ax1.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax1.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact(v)))
    for ax in (ax1, ax2):  # scores as the tables say them: 82%, not 0.82
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax1.set_title(f"{name} against tokens (filled: promoted)", fontsize=10)
    ax2.set_title(f"{name} against dollars (filled: promoted)", fontsize=10)
    if not any(r.usd for r in pts):
        ax2.text(0.5, 0.12, "no dollars spent (free or local teachers)", transform=ax2.transAxes, ha="center",
                 fontsize=9, color="#b42318")
    return png(fig)


def spend(table: dict[int, dict[str, Spend]], teachers: Sequence[str], *, use_usd: bool,
          rounds: Sequence[int] | None = None) -> str:
    """Spend per round, stacked by teacher (dollars, or tokens when nothing cost a dollar); ``rounds``: every
    round to show, one that paid nothing too (default: the rounds that paid). Round 0 is "before 1"."""
    rounds = sorted(rounds if rounds is not None else table)
    fig, ax = figure(8, 3.2)
    bottom = [0.0] * len(rounds)
    names, key = drawn(teachers, "teachers")
    for t, name in zip(teachers, names, strict=True):
        vals = [(s.usd if use_usd else float(s.tokens)) if (s := table.get(r, {}).get(t)) is not None else 0.0
                for r in rounds]
        ax.bar(["before 1" if r == 0 else str(r) for r in rounds], vals, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xlabel("round")
    ax.set_ylabel("USD" if use_usd else "tokens (in + out)")
    ax.set_title("spend per round, stacked by teacher", fontsize=10)
    ax.legend(fontsize=8)
    return png(fig) + key


def confusion(m: list[list[int]], labels: Sequence[str]) -> str:
    k = len(labels)
    fig, ax = figure(1.2 + 0.9 * k, 0.9 + 0.8 * k)
    ax.imshow(m, cmap="Blues")
    names, key = drawn(labels, "labels")
    ax.set_xticks(range(k), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    peak = max(max(row) for row in m) or 1
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(m[i][j]), ha="center", va="center", color="white" if m[i][j] > peak / 2 else "black")
    return png(fig) + key
