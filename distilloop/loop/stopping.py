"""The ``[stopping]`` rules inside a campaign, kept in the store and recomputed from it.

Nothing lives in memory between rounds: the stop set of stabilizing predictions (Bloodgood & Vijay-Shanker,
CoNLL 2009) is chosen once, seeded by the campaign seed, and kept in the store's meta; each round's student
predictions on it are stored per round; each round's dev-split score is in that round's student metrics.
Every check replays the rules of :mod:`distilloop.strategies.stopping` over what the store holds, so a
campaign resumed after a stop or a crash sees the same stop set and the same kappa history.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from distilloop.core.ledger import CAP_KEYS, Budget, amount
from distilloop.core.types import Example
from distilloop.errors import ConfigError
from distilloop.loop.config import CampaignConfig, StoppingSection
from distilloop.storage.store import Store
from distilloop.strategies.stopping import DevTarget, StabilizingPredictions, choose_stop_set

log = logging.getLogger(__name__)

STOP_SET_META = "stop_set"


def _digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def stop_set(store: Store) -> list[str] | None:
    """The campaign's stop set, or ``None`` before one was chosen."""
    ids = store.get_meta(STOP_SET_META)
    return list(ids) if ids is not None else None


def ensure_stop_set(store: Store, pool_ids: Sequence[str], size: int, rng: np.random.Generator) -> list[str]:
    """The stored stop set; on first use, a seeded sample of ``size`` of ``pool_ids``, stored for good."""
    existing = stop_set(store)
    if existing is not None:
        if len(existing) != size:
            log.info("keeping this campaign's stop set of %d items: it is chosen once, stopping.stop_set_size "
                     "(%d) applies only to a new campaign", len(existing), size)
        return existing
    chosen = choose_stop_set(list(pool_ids), size, rng)
    store.set_meta(STOP_SET_META, chosen)
    return chosen


def record_predictions(store: Store, round_no: int, student_version: str, ids: Sequence[str],
                       predictions: Sequence[str]) -> None:
    """Keep one round's predictions on the stop set (replacing them when a round's training is re-run)."""
    store.record_stop_predictions(round_no, student_version, _digest(ids), predictions)


def prediction_history(store: Store) -> list[dict[str, Any]]:
    """Every round's stored predictions on the current stop set, in round order."""
    ids = stop_set(store)
    if not ids:
        return []
    return store.stop_predictions(_digest(ids))


def kappa_history(store: Store) -> list[dict[str, Any]]:
    """Cohen's kappa between each round's stop-set predictions and the previous round's: ``{round, kappa}``."""
    history = prediction_history(store)
    rule = StabilizingPredictions(threshold=1.0, window=1)
    for p in history:
        rule.update(p["predictions"])
    return [{"round": p["round"], "kappa": k} for p, k in zip(history[1:], rule.kappas, strict=True)]


def dev_history(store: Store, metric: str) -> list[tuple[int, float]]:
    """``(round, dev score)`` of each round's trained student (the last one trained in that round)."""
    by_round: dict[int, float] = {}
    for s in store.students():
        value = s["metrics"].get(f"dev_{metric}")
        if value is not None:
            by_round[s["round"]] = float(value)
    return sorted(by_round.items())


def check_dev_split(config: CampaignConfig, examples: Sequence[Example]) -> None:
    """A dev target needs dev rows with gold labels: raise the fix before anything is written."""
    if config.stopping.dev_target is None:
        return
    n = sum(1 for e in examples if e.split == "dev" and e.gold)
    if n == 0:
        raise ConfigError(
            f"stopping.dev_target: needs a dev split with gold labels, got 0 labeled dev rows in "
            f"{config.data_path}; set data.dev_fraction (e.g. 0.1) to hold out labeled rows that have no split, "
            "give rows split = \"dev\" in the data file, or remove dev_target")


def stopping_reason(store: Store, cfg: StoppingSection, metric: str) -> str | None:
    """Why the ``[stopping]`` rules say to stop now, or ``None``."""
    if cfg.stabilizing:
        history = prediction_history(store)
        rule = StabilizingPredictions(cfg.kappa, cfg.window, cfg.window_rule)
        for p in history:
            rule.update(p["predictions"])
        if history and history[-1]["predictions"] and rule.should_stop:
            recent = rule.kappas[-cfg.window:]
            value = float(np.mean(recent)) if cfg.window_rule == "mean" else min(recent)
            how = "mean" if cfg.window_rule == "mean" else "lowest"
            return (f"predictions stabilized: kappa {value:.4f} ({how} of the last {cfg.window} round-to-round "
                    f"comparison(s) on {len(history[-1]['predictions'])} stop-set items) >= {cfg.kappa}")
    if cfg.dev_target is not None:
        dev = DevTarget(cfg.dev_target, cfg.dev_patience)
        scores = dev_history(store, metric)
        for _, score in scores:
            dev.update(score)
        if dev.should_stop:
            lowest = min(dev.history[-cfg.dev_patience:])
            return (f"dev target reached: {metric} {lowest:.4f} >= {cfg.dev_target} for {cfg.dev_patience} "
                    f"round(s)")
    return None


def campaign_stop_reason(store: Store, config: CampaignConfig, unlabeled: Sequence[Example],
                         budget: Budget) -> str | None:
    """Why the campaign stops before its next round (None: it goes on): max rounds (relabel rounds do not
    count), the target on the decision reference, a stopping rule, an exhausted pool or budget."""
    from distilloop.loop.references import decision_score
    from distilloop.loop.relabel import RELABEL

    rounds = store.rounds()
    done = [r for r in rounds if r["status"] == "done" and r["strategy"] != RELABEL]
    if len(done) >= config.rounds.max_rounds:
        relabels = sum(r["strategy"] == RELABEL for r in rounds)
        return (f"max rounds reached ({config.rounds.max_rounds}"
                + (f", not counting {relabels} relabel round(s)" if relabels else "") + ")")
    target, active, metric = config.rounds.target, store.active_student(), config.evaluation.metric
    value = decision_score(active["metrics"], metric) if active is not None else None
    if target is not None and value is not None and value >= target:
        return f"target reached: {metric} {value:.4f} >= {target} on {(active or {})['metrics'].get('reference')}"
    reason = stopping_reason(store, config.stopping, metric)
    if reason is not None:
        return reason
    if not unlabeled:
        return "pool exhausted: every pool example has been annotated"
    exhausted = budget.exhausted()
    if exhausted:
        return spent_cap(budget, exhausted[1])
    return None


def spent_cap(budget: Budget, res: str) -> str:
    """The stop reason of a campaign cap reached: which key, what was spent, and what to do (it said "budget spent
    (campaign cap on usd)", also for a cap lowered below what an earlier run had spent)."""
    cap, spent = budget.campaign.get(res) or 0.0, float(getattr(budget.spent, res))
    below = " (below what the campaign had spent: it was lowered)" if spent > cap else ""
    spent_s, cap_s = (amount(res, v).removesuffix(" tokens") for v in (spent, cap))  # the key says what they count
    return (f"budget spent: {spent_s} of [budget] {CAP_KEYS[res]} = {cap_s}{below}; raise it for `distilloop run` "
            "to go on")
