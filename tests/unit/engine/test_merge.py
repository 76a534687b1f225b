"""Per-shard candidates merged give exactly ``top_n``'s picks over the whole pool, ties and all: the property the
Ray engine's selection rests on."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distilloop.engine.base import merge_top, shard_top
from distilloop.strategies.base import top_n


def _merged(ids, scores, n, rng, cuts):
    jitter = rng.permutation(len(scores))  # the draw top_n makes
    bounds = [0, *sorted(set(cuts)), len(scores)]
    pos, sc, jit = [], [], []
    for a, b in zip(bounds, bounds[1:]):
        if a >= b:
            continue
        idx = shard_top(scores[a:b], jitter[a:b], n)
        pos.append(idx + a)
        sc.append(scores[a:b][idx])
        jit.append(jitter[a:b][idx])
    p, s = merge_top(np.concatenate(pos), np.concatenate(sc), np.concatenate(jit), n)
    return [ids[i] for i in p], [float(x) for x in s]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.69, 0.7, 1.0]), min_size=1, max_size=300),
       st.integers(1, 40), st.integers(0, 2**32 - 1), st.lists(st.integers(0, 300), max_size=12))
def test_merged_shard_candidates_are_top_n(values, n, seed, cuts):
    scores = np.asarray(values)  # few distinct values: ties everywhere, so the tie-break decides
    ids = [f"x{i}" for i in range(len(scores))]
    n = min(n, len(scores))
    want = top_n(ids, scores, n, np.random.default_rng(seed))
    got_ids, got_scores = _merged(ids, scores, n, np.random.default_rng(seed), [c for c in cuts if c < len(scores)])
    assert got_ids == want.ids and got_scores == want.scores


def test_continuous_scores_on_a_large_pool():
    rng = np.random.default_rng(0)
    scores = rng.random(100_000)
    ids = [str(i) for i in range(len(scores))]
    want = top_n(ids, scores, 500, np.random.default_rng(7))
    got_ids, _ = _merged(ids, scores, 500, np.random.default_rng(7), list(range(0, 100_000, 7_000)))
    assert got_ids == want.ids
