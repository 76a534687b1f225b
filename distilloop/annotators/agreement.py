"""Chance-corrected agreement between raters: Cohen's kappa for two raters, Fleiss' kappa for many.

Cohen, "A Coefficient of Agreement for Nominal Scales", Educational and Psychological Measurement 20(1), 1960.
Fleiss, "Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5), 1971; items may
have different numbers of ratings (each item's agreement is computed over its own pairs of raters).
"""

from __future__ import annotations

from collections.abc import Sequence

from distilloop.errors import UserInputError


def cohen_kappa(a: Sequence[str], b: Sequence[str], labels: Sequence[str]) -> float:
    """Cohen's kappa of two raters over the same items; 1.0 when both use one and the same label throughout."""
    if len(a) != len(b) or not a:
        raise UserInputError(f"cohen_kappa: needs two equally long, non-empty rating lists, got {len(a)} and {len(b)}")
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    pe = sum((a.count(k) / n) * (b.count(k) / n) for k in labels)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1 - pe)


def fleiss_kappa(ratings: Sequence[Sequence[str]], labels: Sequence[str]) -> float:
    """Fleiss' kappa; ``ratings[i]`` are the labels item i got (at least two each)."""
    items = [list(r) for r in ratings if len(r) >= 2]
    if not items:
        raise UserInputError("fleiss_kappa: needs at least one item with two or more ratings")
    total = sum(len(r) for r in items)
    p_j = {k: sum(r.count(k) for r in items) / total for k in labels}
    p_i = []
    for r in items:
        m = len(r)
        p_i.append((sum(r.count(k) ** 2 for k in labels) - m) / (m * (m - 1)))
    p_bar = sum(p_i) / len(p_i)
    pe = sum(v * v for v in p_j.values())
    if pe >= 1.0:
        return 1.0 if p_bar == 1.0 else 0.0
    return (p_bar - pe) / (1 - pe)
