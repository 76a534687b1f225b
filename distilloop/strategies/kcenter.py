"""Greedy k-center (farthest-first traversal), exact and accelerated by the triangle inequality.

The core-set strategy (Sener & Savarese, ICLR 2018) repeatedly takes the row farthest from everything
labeled or already picked. A plain pass compares every row with every new pick. Here every row belongs to the
group of its nearest centre (a labeled row or a pick), and a row at distance ``r`` from its centre ``z``
cannot come nearer a new centre ``c`` when ``d(c, z) >= 2 r`` (the bound of Elkan, "Using the triangle
inequality to accelerate k-means", ICML 2003): ``d(x, c) >= d(c, z) - r >= r``. A group's rows are kept in
one contiguous block, farthest first, so the rows a new centre must be compared with are a prefix of each
block, one matrix-vector product; groups whose farthest row is out of reach are skipped whole.

The picks, their order, ties (the lowest position wins) and the scores are those of the plain pass: distances
are computed with the same float32 formula, the bound is widened by a bound on its rounding error so that a
row left out is never one the plain pass would have moved, and rows are fed to BLAS so that each is rounded
as in the plain pass (see ``_BLOCK``).
"""

from __future__ import annotations

import numpy as np

from distilloop.strategies.geometry import nearest_centre, single_threaded_blas

#: BLAS matrix-vector kernels take rows in blocks (OpenBLAS: 4 at a time) and round the remainder rows
#: differently: blocks of rows are padded to a multiple of this (a multiple of every usual block size), and
#: the last ``len(X) % _BLOCK`` rows, which a plain pass takes in its remainder, are compared the plain way
_BLOCK = 16
#: blocks with fewer rows than this to compare are compared together, in one product
_GATHER_BELOW = 256
#: a block is rebuilt without its departed rows once fewer than this fraction of them remain
_COMPACT = 0.75
#: below this many rows the plain pass is faster (its cost per pick is one short pass; the pruned one pays
#: some Python per group). Measured on 2 shared cores with 64 dimensions: with labeled rows the two break
#: even between 50,000 and 100,000 rows; without, the first picks' groups are wide and prune little, and
#: they break even near 400,000 rows
PRUNE_FROM_ROWS = 75_000
PRUNE_FROM_ROWS_UNLABELED = 500_000


class _Block:
    """Some rows of ``X`` in one contiguous array (padded to whole ``_BLOCK``s): their positions ``ids`` and
    their squared distances ``dist`` to their nearest centre, ``-inf`` for a row that has left the block.

    ``ordered``: farthest first (ties in ascending position), so the rows that may come nearer a new centre
    are a prefix of the block (``reach``) and the first row still here is the one ``np.argmax`` would pick;
    the block of the labeled rows' groups, compared whole at every pick until few rows are left in it, stays
    in position order.
    """

    def __init__(self, X: np.ndarray, sq: np.ndarray, ids: np.ndarray, dist: np.ndarray, *,
                 ordered: bool = True, view: np.ndarray | None = None, presorted: bool = False) -> None:
        self.ordered = ordered
        if ordered:
            if not presorted:
                order = np.lexsort((ids, -dist))
                ids, dist = ids[order], dist[order]
            self.neg = -dist  # ascending, for the prefix: it keeps the distances of rows that left
        if view is None:
            view = np.take(X, np.concatenate([ids, np.zeros(-len(ids) % _BLOCK, dtype=ids.dtype)]), axis=0)
        self.ids, self.dist, self.sq, self.rows = ids, dist.copy(), sq[ids], view
        self.left = len(ids)

    def reach(self, bound: float) -> int:
        """How many first rows may hold a squared distance above ``bound``."""
        return int(np.searchsorted(self.neg, -bound, side="left")) if self.ordered else len(self.ids)

    def distances(self, c: np.ndarray, sq_c: np.float32, upto: int) -> np.ndarray:
        """Squared distances to ``c`` of the first ``upto`` rows, rounded as the plain pass rounds them."""
        d = (self.rows[: min(upto - upto % -_BLOCK, len(self.rows))] @ c)[:upto]  # whole blocks of rows
        d *= -2.0  # in place from here, as the plain pass
        d += self.sq[:upto]
        d += sq_c
        return d

    def best(self) -> tuple[float, int]:
        """(largest distance here, the lowest position holding it)."""
        if not self.left:
            return -np.inf, -1
        k = int(np.argmax(self.dist))  # the first maximum: the lowest position, in either order
        return float(self.dist[k]), int(self.ids[k])


def k_center_greedy(X: np.ndarray, n: int, rng: np.random.Generator,
                    labeled: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center: positions of ``n`` rows of ``X``, each the farthest from the labeled rows and the
    rows picked before it; also each pick's distance at the time it was picked (its score).

    From ``PRUNE_FROM_ROWS`` rows on, pruned (the module docstring); it then holds about one more copy of
    ``X`` in its groups' blocks.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)  # rows contiguous: each row's dot product is one kernel's
    n = min(n, len(X))
    sq = np.einsum("ij,ij->i", X, X)
    if labeled is not None and len(labeled):
        L = np.asarray(labeled, dtype=np.float32)
        min_d = nearest_centre(X, L)[1]  # squared distance to the nearest labeled item
        first = None
    else:
        L = np.zeros((1, X.shape[1]), dtype=np.float32)  # a placeholder centre, infinitely far from every row
        min_d = np.full(len(X), np.inf, dtype=np.float32)
        first = int(rng.integers(len(X)))  # nothing labeled: start from a seeded random point
    if len(X) < (PRUNE_FROM_ROWS if first is None else PRUNE_FROM_ROWS_UNLABELED):
        return _plain(X, sq, min_d, first, n)
    # twice a bound on |computed - true| squared distance in float32 under any order of summation:
    # (gamma_dim + 2u) (|x| + |c|)^2 <= (dim + 2) u 4 max |x|^2, with u = 2^-24
    norms = max(float(sq.max(initial=0.0)), float(np.einsum("ij,ij->i", L, L).max(initial=0.0)))
    err = 8 * (X.shape[1] + 2) * 2.0**-24 * norms
    if not err < 0.5:  # rounding too coarse to prune safely, or values not finite (NaN fails too)
        return _plain(X, sq, min_d, first, n)
    return _pruned(X, sq, min_d, L, first, n, err)


def _plain(X: np.ndarray, sq: np.ndarray, min_d: np.ndarray, first: int | None,
           n: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center by one pass over every row at every pick."""
    picked = np.empty(n, dtype=np.int64)
    scores = np.empty(n, dtype=np.float64)
    with single_threaded_blas():
        for t in range(len(picked)):
            j = first if t == 0 and first is not None else int(np.argmax(min_d))
            picked[t] = j
            scores[t] = float(np.sqrt(max(min_d[j], 0.0))) if np.isfinite(min_d[j]) else float("inf")
            d = X @ X[j]  # in place from here: this loop is memory-bound, one pass over X per pick
            d *= -2.0
            d += sq
            d += sq[j]
            np.minimum(min_d, d, out=min_d)
            min_d[j] = -1.0  # never picked twice, even when duplicates sit at distance 0
    return picked, scores


def _compare_few(blocks: list[_Block], few: list[tuple[int, int]], c: np.ndarray,
                 sq_c: np.float32) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The first rows of several blocks (``(block, how many)``) compared with ``c`` in one product: for each
    block with rows that come nearer, ``(block, their places in it, their new distances)``."""
    sizes = np.array([upto for _, upto in few])
    parts = [blocks[k].rows[:upto] for k, upto in few]
    parts.append(np.zeros((-int(sizes.sum()) % _BLOCK, len(c)), dtype=np.float32))  # whole blocks of rows
    d = (np.concatenate(parts) @ c)[: sizes.sum()]
    d *= -2.0  # in place from here, as the plain pass
    d += np.concatenate([blocks[k].sq[:upto] for k, upto in few])
    d += sq_c
    hit = np.flatnonzero(d < np.concatenate([blocks[k].dist[:upto] for k, upto in few]))
    if not len(hit):
        return []
    starts = np.cumsum(sizes) - sizes
    which = np.searchsorted(starts, hit, side="right") - 1
    out = []
    for w in np.unique(which):
        at = hit[which == w]
        out.append((few[w][0], at - starts[w], d[at]))
    return out


def _pruned(X: np.ndarray, sq: np.ndarray, min_d: np.ndarray, L: np.ndarray, first: int | None, n: int,
            err: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center comparing each new centre only with the rows it may come nearer.

    Block 0 holds the groups of the labeled rows (or, with none, one infinitely wide group); block ``1 + t``
    the group of pick ``t``.
    """
    m, body = len(L), len(X) - len(X) % _BLOCK  # rows from ``body`` on are compared at every pick
    C = np.zeros((m + n, X.shape[1]))  # the centres: the labeled rows, then pick t as centre m + t
    C[:m] = L
    blocks = [_Block(X, sq, np.arange(body), min_d[:body].copy(), ordered=False, view=X[:body])]
    top = np.full(n + 1, -np.inf)  # per block: the largest distance in it, and the lowest position holding it
    arg = np.full(n + 1, -1, dtype=np.int64)
    top[0], arg[0] = blocks[0].best()
    block_of = np.zeros(len(X), dtype=np.int64)
    picked = np.empty(n, dtype=np.int64)
    scores = np.empty(n, dtype=np.float64)
    with single_threaded_blas():
        for t in range(n):
            nb = len(blocks)
            if t == 0 and first is not None:
                j = first
            else:  # np.argmax(min_d): the lowest position holding the largest distance
                best = top[:nb].max()
                j = int(arg[:nb][top[:nb] == best].min()) if best > -np.inf else -1
                if body < len(X):
                    r = body + int(np.argmax(min_d[body:]))
                    if j < 0 or min_d[r] > best or (min_d[r] == best and r < j):
                        j = r
            picked[t] = j
            scores[t] = float(np.sqrt(max(min_d[j], 0.0))) if np.isfinite(min_d[j]) else float("inf")
            c, sq_c, new = X[j], sq[j], m + t
            C[new] = c
            gap = np.sqrt(((C[:new] - c) ** 2).sum(axis=1))
            # a row at squared distance s from its centre z (true distance <= sqrt(s + err)) cannot come nearer
            # c when d(c, z) >= 2 sqrt(s + err): only rows with s > (d(c, z) / 2)^2 - err are compared
            reach = np.concatenate([[gap[:m].min()], gap[m:new]]) / (2.0 * (1 + 1e-9))
            reach = reach**2 - err
            moved_ids, moved_d, touched, few = [], [], [], []
            for k in np.flatnonzero(top[:nb] > reach):
                b = blocks[k]
                upto = b.reach(reach[k])
                if upto < _GATHER_BELOW:  # a few rows: compared together with the other blocks' few
                    few.append((int(k), upto))
                    continue
                d = b.distances(c, sq_c, upto)
                hit = d < b.dist[:upto]  # never a row that left (-inf)
                if hit.any():
                    moved_ids.append(b.ids[:upto][hit])
                    moved_d.append(d[hit])
                    b.dist[:upto][hit] = -np.inf
                    touched.append(int(k))
            if few:
                for k, at, d in _compare_few(blocks, few, c, sq_c):
                    b = blocks[k]
                    moved_ids.append(b.ids[at])
                    moved_d.append(d)
                    b.dist[at] = -np.inf
                    touched.append(k)
            if body < len(X):  # the remainder rows, compared the plain way
                d = X[body:] @ c
                d *= -2.0
                d += sq[body:]
                d += sq_c
                np.minimum(min_d[body:], d, out=min_d[body:])
            ids = np.concatenate(moved_ids) if moved_ids else np.empty(0, dtype=np.int64)
            dist = np.concatenate(moved_d) if moved_d else np.empty(0, dtype=np.float32)
            min_d[ids] = dist
            min_d[j] = -1.0  # never picked twice, even when duplicates sit at distance 0
            if j < body:  # j leaves for good: a plain pass never lowers a -1 (err < 0.5)
                keep = ids != j
                ids, dist = ids[keep], dist[keep]
                home = blocks[int(block_of[j])]
                pos = int(np.flatnonzero(home.ids == j)[0] if home.ordered else np.searchsorted(home.ids, j))
                if home.dist[pos] > -np.inf:
                    home.dist[pos] = -np.inf
                    touched.append(int(block_of[j]))
            block_of[ids] = nb
            blocks.append(_Block(X, sq, ids, dist))
            top[nb], arg[nb] = blocks[nb].best()
            for k in set(touched):
                b = blocks[k]
                here = b.dist > -np.inf
                b.left = int(np.count_nonzero(here))
                if b.left < _COMPACT * len(b.ids):  # rebuilt without the rows that left
                    blocks[k] = b = _Block(X, sq, b.ids[here], b.dist[here], ordered=b.ordered, presorted=True)
                top[k], arg[k] = b.best()
    return picked, scores
