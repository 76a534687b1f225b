"""A campaign's parts (teachers, strategies, student, reviewer, aggregation, calibration, routing), built from
its config in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distilloop.annotators.base import Teacher
from distilloop.annotators.calibration import BatchCalibration, normalize_prior
from distilloop.annotators.calibration import build_calibration as _build_calibration
from distilloop.annotators.review import Reviewer
from distilloop.core.answers import AnswerSpace
from distilloop.engine import Engine, build_engine
from distilloop.errors import ConfigError
from distilloop.loop.config import CampaignConfig
from distilloop.loop.routing import CascadePolicy, ThresholdRouter
from distilloop.registry import build, resolve
from distilloop.storage.shards import VectorShards
from distilloop.storage.store import Store
from distilloop.strategies.base import Strategy
from distilloop.students.base import Student

#: keys of [aggregation] that configure calibration, not the aggregator
CALIBRATION_KEYS = ("calibrate", "calibrate_min_items", "calibrate_prior")


def build_teachers(config: CampaignConfig) -> list[Teacher]:
    teachers = []
    for comp in config.teachers:
        params = dict(comp.params)
        cls = resolve("teacher", comp.kind, where=comp.where)
        if "base_dir" in getattr(cls, "__dataclass_fields__", {}) and "base_dir" not in params:
            params["base_dir"] = str(config.base_dir)
        teachers.append(build("teacher", comp.kind, params, where=comp.where))
    return teachers


def build_strategy(config: CampaignConfig, name: str | None = None) -> Strategy:
    comp = config.strategy
    if name is not None and name != comp.kind:
        return build("strategy", name, {}, where="rounds.initial_strategy")
    return build("strategy", comp.kind, comp.params, where="strategy")


def build_student(config: CampaignConfig) -> Student:
    return build("student", config.student.kind, dict(config.student.params), where="student")


def build_reviewer(config: CampaignConfig, **context: Any) -> Reviewer:
    return build("reviewer", config.review.kind, dict(config.review.params), where="review", **context)


def build_aggregator(config: CampaignConfig) -> Any:
    params = {k: v for k, v in config.aggregation.params.items() if k not in CALIBRATION_KEYS}
    return build("aggregation", config.aggregation.kind, params, where="aggregation")


def build_calibration(config: CampaignConfig) -> BatchCalibration | None:
    """``[aggregation] calibrate = "batch"``: per-teacher batch calibration of logprob label distributions, fitted
    to the class shares ``calibrate_prior`` says (``auto``: a gold sample's, when it shows they are unequal)."""
    params = config.aggregation.params
    kind = params.get("calibrate", "none")
    if not isinstance(kind, str):
        raise ConfigError(f"aggregation.calibrate: must be a string, got {kind!r}")
    prior = params.get("calibrate_prior", "auto")
    if isinstance(prior, dict) and config.space.labels:
        prior = normalize_prior(prior, config.space.labels, where="aggregation.calibrate_prior")
    return _build_calibration(kind, params.get("calibrate_min_items", 20), prior)


def engine_for(config: CampaignConfig, store: Store) -> Engine:
    """The campaign's compute engine (``[compute]``) over its vector shards (nothing connects yet)."""
    c = config.compute
    vectors = VectorShards(store, config.vectors_dir, min_shard_vectors=c.min_shard_vectors)
    if c.engine == "ray":
        return build_engine("ray", vectors, address=c.address, batch_rows=c.batch_rows, workers=c.workers,
                            gpus_per_worker=float(c.gpus_per_worker))
    return build_engine("local", vectors)


@dataclass
class Parts:
    """Everything a campaign runs with, built once per run."""

    space: AnswerSpace
    teachers: list[Teacher]
    strategy: Strategy
    initial_strategy: Strategy
    student: Student  # the unfitted template each round clones
    reviewer: Reviewer
    aggregator: Any
    calibration: BatchCalibration | None
    router: ThresholdRouter
    cascade: CascadePolicy | None

    def strategy_for(self, has_student: bool) -> Strategy:
        """The configured strategy, or before any student exists ``initial_strategy`` when it needs one."""
        return self.strategy if has_student or not self.strategy.requires_student else self.initial_strategy


def build_parts(config: CampaignConfig, *, teachers: list[Teacher] | None = None,
                reviewer: Reviewer | None = None) -> Parts:
    """Build (and check, see :mod:`distilloop.loop.checks`) every part of a campaign."""
    from distilloop.loop.checks import check_parts

    tiers = config.routing.tiers()
    parts = Parts(
        space=config.space,
        teachers=teachers if teachers is not None else build_teachers(config),
        strategy=build_strategy(config),
        initial_strategy=build_strategy(config, config.rounds.initial_strategy),
        student=build_student(config),
        reviewer=reviewer if reviewer is not None else build_reviewer(config),
        aggregator=build_aggregator(config),
        calibration=build_calibration(config),
        router=ThresholdRouter(config.routing.min_agreement, config.routing.max_review_per_round),
        cascade=CascadePolicy(tiers, config.routing.cascade_min_confidence) if tiers else None)
    check_parts(config, parts)
    return parts
