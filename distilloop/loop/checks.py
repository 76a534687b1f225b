"""Every need of every part covered, checked once when a campaign opens (and by ``estimate``), before
anything is written or paid: the strategies against what the student and the answer space provide, the
aggregation and calibration against the answer space, the prompt styles against the strategy, and the
student's own parameters. Each refusal names the key and the fix."""

from __future__ import annotations

from distilloop.core.types import LabelingItem
from distilloop.errors import ConfigError, DistilloopError
from distilloop.loop.config import CampaignConfig
from distilloop.loop.parts import Parts
from distilloop.strategies.base import Strategy

#: what every campaign gives its strategy, whatever the student: a trained student (after round 1) and the
#: expected teacher cost of each item
ALWAYS = frozenset({"student", "costs"})

STUDENT_HINTS = {
    "embeddings": 'a student with embeddings: kind = "embedding_linear", "tfidf_logreg", "encoder" or "step_by_step"',
    "explanations": 'a student that explains itself step by step: kind = "step_by_step"',
    "samples": "a student that samples several predictions per item (none of the packaged ones does yet); "
               'use "qbc" for disagreement',
    "probabilities": "a student with label probabilities (every classifying student)",
}


def _numeric_strategy_hint(name: str) -> str:
    hint = ('; elad works with a prefilter that does not: prefilter = "typiclust" (or "random")'
            if name == "elad" else "")
    return (f"{name!r} ranks items by the student's label probabilities, which a student answering with numbers "
            'does not have; a campaign with answer = "number" selects with "random" or by the student\'s '
            f'embeddings: "kmeans", "coreset", "typiclust"{hint}')


def check_strategy(key: str, strategy: Strategy, available: frozenset[str], *, numeric: bool) -> None:
    missing = sorted(strategy.needs - available)
    if not missing:
        return
    if "probabilities" in missing and numeric:
        raise ConfigError(f"{key}: {_numeric_strategy_hint(strategy.name)}")
    need = missing[0]
    raise ConfigError(f"{key}: {strategy.name!r} needs {need} of the student, which this campaign's student does not "
                      f"give; use {STUDENT_HINTS.get(need, need)}, or another strategy")


def check_parts(config: CampaignConfig, parts: Parts) -> None:
    space = parts.space
    numeric = not space.has_label_set
    where = 'a campaign with answer = "number" (no label set)'
    try:
        parts.student.check_params()
    except (DistilloopError, ValueError, TypeError) as exc:
        raise ConfigError(f"student: {exc}") from None
    if numeric and "numbers" not in parts.student.provides:
        raise ConfigError(f"student.kind: {config.student.kind!r} classifies into a label set; {where} needs a "
                          'student that generates its answer: kind = "step_by_step"')
    available = parts.student.provides_for(space) | ALWAYS
    check_strategy("strategy.name", parts.strategy, available, numeric=numeric)
    if parts.strategy.requires_student:
        initial = parts.initial_strategy
        if initial.requires_student:
            raise ConfigError(f"rounds.initial_strategy: {initial.name!r} needs a trained student, which the first "
                              "round does not have yet; use \"random\"")
        check_strategy("rounds.initial_strategy", initial, available, numeric=numeric)
    needs_label_set = [("aggregation.method", parts.aggregator, "models each teacher per class of a label set",
                        "'majority' or 'confidence_weighted'")]
    if parts.calibration is not None:
        needs_label_set.append(("aggregation.calibrate", parts.calibration, "corrects a teacher's bias between labels",
                                'no calibration: remove the key (or set calibrate = "none")'))
    for key, part, what, fix in needs_label_set:
        if "label_set" in getattr(part, "needs", frozenset()) and numeric:
            raise ConfigError(f"{key}: {getattr(part, 'name', key)!r} {what}; {where} takes {fix}")
    if numeric and config.evaluation.metric != "accuracy":
        raise ConfigError(f"evaluation.metric: macro-F1 averages over a label set; {where} is scored by "
                          '"accuracy" (exact match of the number)')
    # every teacher's prompt renders (its prompt_options, e.g. a few-shot example's label) before anything is written
    probe = LabelingItem("distilloop-check", {f: "An example." for f in config.data.input_fields}, tuple(space.labels),
                         config.campaign.task, answer=space.kind)
    for t in parts.teachers:
        try:
            t.render(probe)
        except ConfigError as exc:
            raise ConfigError(f"teachers ({t.name}).{exc}") from None
        if "explanations" in t.style.needs and "explanations" not in parts.strategy.needs:
            raise ConfigError(f"teachers ({t.name}).prompt: {t.style.name!r} revises the student's own explanation, "
                              'which only an explanation-guided strategy hands on: set [strategy] name = "elad" '
                              "(with a step_by_step student), or another prompt style")
    if config.evaluation.audit_size and parts.reviewer.name == "auto":
        raise ConfigError("evaluation.audit_size: an audit set is answered by people, and [review] kind = \"auto\" has "
                          "none; use kind = \"label_studio\" (or \"simulated\" for a benchmark), or remove audit_size")
    check_compute(config)


def check_compute(config: CampaignConfig) -> None:
    """``engine = "ray"`` needs the ``ray`` extra: said at open, not after the first round was paid (looked up,
    not imported)."""
    import importlib.util

    if config.compute.engine == "ray" and (importlib.util.find_spec("ray") is None
                                           or importlib.util.find_spec("pyarrow") is None):
        from distilloop._extras import install_hint
        from distilloop.errors import MissingExtraError

        raise MissingExtraError(f"compute.engine: \"ray\" needs Ray Data, which is not installed: install it with "
                                f"`{install_hint('ray')}`, or use engine = \"local\"")
