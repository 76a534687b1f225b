"""Building a campaign's parts (teachers, strategy, student, reviewer, aggregation) from its config."""

from __future__ import annotations

from typing import Any

from distilloop.annotators.base import Teacher
from distilloop.errors import ConfigError
from distilloop.loop.config import CampaignConfig
from distilloop.registry import build, resolve


def build_teachers(config: CampaignConfig) -> list[Teacher]:
    teachers = []
    for comp in config.teachers:
        params = dict(comp.params)
        cls = resolve("teacher", comp.kind, where=comp.where)
        if "base_dir" in getattr(cls, "__dataclass_fields__", {}) and "base_dir" not in params:
            params["base_dir"] = str(config.base_dir)
        teachers.append(build("teacher", comp.kind, params, where=comp.where))
    return teachers


def build_strategy(config: CampaignConfig, name: str | None = None) -> Any:
    comp = config.strategy
    if name is not None and name != comp.kind:
        return build("strategy", name, {}, where="rounds.initial_strategy")
    return build("strategy", comp.kind, comp.params, where="strategy")


def build_student(config: CampaignConfig) -> Any:
    params = dict(config.student.params)
    return build("student", config.student.kind, params, where="student")


def build_reviewer(config: CampaignConfig, **context: Any) -> Any:
    return build("reviewer", config.review.kind, dict(config.review.params), where="review", **context)


CALIBRATION_KEYS = ("calibrate", "calibrate_min_items")


def build_aggregator(config: CampaignConfig) -> Any:
    params = {k: v for k, v in config.aggregation.params.items() if k not in CALIBRATION_KEYS}
    return build("aggregation", config.aggregation.kind, params, where="aggregation")


def build_calibration(config: CampaignConfig) -> Any:
    """``[aggregation] calibrate = "batch"``: per-teacher batch calibration of logprob label distributions."""
    from distilloop.annotators.calibration import build_calibration as build_cal

    params = config.aggregation.params
    kind = params.get("calibrate", "none")
    if not isinstance(kind, str):
        raise ConfigError(f"aggregation.calibrate: must be a string, got {kind!r}")
    return build_cal(kind, params.get("calibrate_min_items", 20))
