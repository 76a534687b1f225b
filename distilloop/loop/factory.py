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


#: aggregation methods that count votes over whatever answers were given (no fixed label set needed)
OPEN_ANSWER_AGGREGATION = ("majority", "confidence_weighted")


def check_answer_kind(config: CampaignConfig) -> None:
    """A campaign whose answers are numbers (``[campaign] answer = "number"``) has no label set: refuse, with
    the reason and the fix, each part that needs one."""
    if not config.campaign.numeric:
        return
    where = 'a campaign with answer = "number" (no label set)'
    student = build_student(config)
    if not getattr(student, "supports_numeric", False):
        raise ConfigError(f"student.kind: {config.student.kind!r} classifies into a label set; {where} needs a "
                          'student that generates its answer: kind = "step_by_step"')
    for key, name in (("strategy.name", config.strategy.kind), ("rounds.initial_strategy", config.rounds.initial_strategy)):
        if build_strategy(config, name).needs_probabilities:
            hint = ('; elad works with a prefilter that does not: prefilter = "typiclust" (or "random")'
                    if name == "elad" else "")
            raise ConfigError(f"{key}: {name!r} ranks items by the student's label probabilities, which a student "
                              f"answering with numbers does not have; {where} selects with \"random\" or by the "
                              f"student's embeddings: \"kmeans\", \"coreset\", \"typiclust\"{hint}")
    if config.aggregation.kind not in OPEN_ANSWER_AGGREGATION:
        raise ConfigError(f"aggregation.method: {config.aggregation.kind!r} models each teacher per class of a label "
                          f"set; {where} takes {' or '.join(repr(m) for m in OPEN_ANSWER_AGGREGATION)}")
    if config.aggregation.params.get("calibrate", "none") != "none":
        raise ConfigError(f"aggregation.calibrate: calibration corrects a teacher's bias between labels; {where} "
                          'has none to correct: remove the key (or set calibrate = "none")')
    if config.evaluation.metric != "accuracy":
        raise ConfigError(f"evaluation.metric: macro-F1 averages over a label set; {where} is scored by "
                          '"accuracy" (exact match of the number)')
