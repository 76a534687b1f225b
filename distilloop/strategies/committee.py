"""Query by committee (Seung, Opper & Sompolinsky, "Query by committee", COLT 1992).

A committee of students votes on every unlabeled item; the items they disagree on most are picked. The
committee is ``ctx.extra["committee"]`` (fitted students given by the runner) or, by default, ``n_members``
clones of the campaign's student, each fitted on a bootstrap resample of the labeled set, seeded from
``ctx.rng`` (query by bagging: Abe & Mamitsuka, "Query Learning Strategies Using Boosting and Bagging",
ICML 1998). Disagreement is measured as

* ``vote_entropy``: entropy of the members' hard votes (Dagan & Engelson, "Committee-Based Sampling for
  Training Probabilistic Classifiers", ICML 1995), or
* ``kl_mean``: mean KL divergence of each member's distribution to the committee's mean (McCallum & Nigam,
  "Employing EM and Pool-Based Active Learning for Text Classification", ICML 1998).
"""

from __future__ import annotations

import numpy as np

from distilloop.core.types import Selection
from distilloop.errors import DistilloopError
from distilloop.strategies.base import SelectionContext, Strategy, top_n


def vote_entropy(member_proba: np.ndarray) -> np.ndarray:
    """Entropy of the hard votes; ``member_proba`` has shape ``(members, n, c)``."""
    member_proba = np.asarray(member_proba)
    k, n, c = member_proba.shape
    votes = member_proba.argmax(axis=2)
    counts = np.zeros((n, c))
    for v in votes:
        counts[np.arange(n), v] += 1
    p = counts / k
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)


def kl_to_mean(member_proba: np.ndarray) -> np.ndarray:
    """Mean over members of ``KL(p_member || p_mean)``."""
    p = np.clip(np.asarray(member_proba, dtype=np.float64), 1e-12, 1.0)
    mean = p.mean(axis=0)
    return (p * (np.log(p) - np.log(mean)[None])).sum(axis=2).mean(axis=0)


DISAGREEMENT = {"vote_entropy": vote_entropy, "kl_mean": kl_to_mean}


class QueryByCommittee(Strategy):
    """Picks the items a committee of bootstrap-trained students disagrees on most."""

    name = "qbc"

    def __init__(self, n_members: int = 5, disagreement: str = "vote_entropy") -> None:
        if disagreement not in DISAGREEMENT:
            raise ValueError(f"disagreement must be one of {sorted(DISAGREEMENT)}, got {disagreement!r}")
        if n_members < 2:
            raise ValueError(f"n_members must be at least 2, got {n_members!r}")
        self.n_members = n_members
        self.disagreement = disagreement

    def committee(self, ctx: SelectionContext) -> list:
        given = ctx.extra.get("committee")
        if given is not None:
            return list(given)
        if ctx.student is None or not hasattr(ctx.student, "clone"):
            raise DistilloopError("qbc needs a student to clone (or ctx.extra['committee']), got none; "
                                  "train a student first ([rounds] initial_size) or pick 'random'")
        if not ctx.labeled_ids:
            raise DistilloopError("qbc trains its committee on the labeled set, which is empty; "
                                  "start with a random round ([rounds] initial_size)")
        members = []
        m = len(ctx.labeled_ids)
        for _ in range(self.n_members):
            idx = ctx.rng.integers(0, m, size=m)
            members.append(ctx.student.clone().fit([ctx.labeled_texts[i] for i in idx],
                                                   [ctx.labeled_y[i] for i in idx], classes=ctx.classes))
        return members

    def scores(self, ctx: SelectionContext) -> np.ndarray:
        proba = np.stack([np.asarray(s.predict_proba(ctx.unlabeled_texts), dtype=np.float64)
                          for s in self.committee(ctx)])
        return DISAGREEMENT[self.disagreement](proba)

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        return top_n(ctx.unlabeled_ids, self.scores(ctx), n, ctx.rng)
