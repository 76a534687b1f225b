"""Names a campaign config can use for each extension point, resolved lazily to classes.

Later parts register here; a config names a component by ``kind`` (teachers, reviewers, students) or
``name`` (strategies), and its other keys are passed to the constructor, checked against its signature. A name
``module:Class`` is a part of the user's own (docs/extending.md): ``Class`` in an importable ``module`` (installed,
on ``PYTHONPATH``, or beside the campaign file), a subclass of the extension point's base class.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Iterable
from typing import Any

from distilloop.errors import ConfigError

TEACHERS: dict[str, str] = {
    "llama_cpp": "distilloop.annotators.local:LlamaCppTeacher",
    "replay": "distilloop.annotators.replay:ReplayTeacher",
    "openai": "distilloop.annotators.openai_teacher:OpenAITeacher",
    "openai_compatible": "distilloop.annotators.openai_compatible:OpenAICompatibleTeacher",
    "anthropic": "distilloop.annotators.anthropic_teacher:AnthropicTeacher",
}
STRATEGIES: dict[str, str] = {
    "random": "distilloop.strategies.random:RandomSampling",
    "entropy": "distilloop.strategies.uncertainty:EntropySampling",
    "least_confidence": "distilloop.strategies.uncertainty:LeastConfidence",
    "margin": "distilloop.strategies.uncertainty:BreakingTies",
    "cost_aware": "distilloop.strategies.cost:CostAwareSampling",
    "bald": "distilloop.strategies.bald:BALD",
    "qbc": "distilloop.strategies.committee:QueryByCommittee",
    "kmeans": "distilloop.strategies.diversity:KMeansSampling",
    "coreset": "distilloop.strategies.diversity:CoreSet",
    "uncertainty_kmeans": "distilloop.strategies.combine:UncertaintyThenDiversity",
    "typiclust": "distilloop.strategies.typical:TypiClust",
    "density_weighted": "distilloop.strategies.typical:DensityWeighted",
    "linear_combination": "distilloop.strategies.combine:LinearCombination",
    "mixture": "distilloop.strategies.combine:Mixture",
    "elad": "distilloop.strategies.elad:ELADSampling",
    "random_subpool": "distilloop.strategies.subsample:RandomSubpool",
    "top_candidates": "distilloop.strategies.subsample:TopCandidates",
    "seals": "distilloop.strategies.subsample:LabeledNeighbours",
}
STUDENTS: dict[str, str] = {
    "tfidf_logreg": "distilloop.students.tfidf:TfidfLogReg",
    "embedding_linear": "distilloop.students.embedding:EmbeddingLinear",
    "encoder": "distilloop.students.encoder:EncoderClassifier",
    "step_by_step": "distilloop.students.step_by_step:StepByStepStudent",
}
REVIEWERS: dict[str, str] = {
    "auto": "distilloop.annotators.review:AutoAcceptReviewer",
    "simulated": "distilloop.annotators.review:SimulatedReviewer",
    "label_studio": "distilloop.annotators.label_studio:LabelStudioReviewer",
}
AGGREGATORS: dict[str, str] = {
    "majority": "distilloop.annotators.aggregation:MajorityVote",
    "confidence_weighted": "distilloop.annotators.aggregation:ConfidenceWeightedVote",
    "dawid_skene": "distilloop.annotators.aggregation:DawidSkene",
}

TABLES = {"teacher": TEACHERS, "strategy": STRATEGIES, "student": STUDENTS, "reviewer": REVIEWERS,
          "aggregation": AGGREGATORS}
#: what a part of the user's own (``module:Class``) must subclass, per extension point (aggregators: a method)
BASES = {"teacher": "distilloop.annotators.base:Teacher", "strategy": "distilloop.strategies.base:Strategy",
         "student": "distilloop.students.base:Student", "reviewer": "distilloop.annotators.review:Reviewer"}
#: a reference to a class of the user's own: ``package.module:Class``
PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: the modules of the user's own parts imported so far: an error raised in their code is said as theirs
PLUGIN_MODULES: set[str] = set()


def did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def resolve(part: str, name: str, *, where: str) -> type:
    table = TABLES[part]
    if name in table:
        return _load(table[name])  # type: ignore[no-any-return]
    if not PLUGIN.match(name):
        raise ConfigError(f"{where}: unknown {part} '{name}'{did_you_mean(name, table)}; "
                          f"choose one of: {', '.join(sorted(table))}, or a class of your own as module:Class")
    return _plugin(part, name, where=where)


def _plugin(part: str, name: str, *, where: str) -> type:
    """``module:Class``, checked: importable, a class, and of the extension point's kind."""
    module, _, attr = name.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and not (module == exc.name or module.startswith(exc.name + ".")):
            # the module was found, and itself imports what is missing
            raise ConfigError(f"{where}: {part} '{name}': importing {module} failed: {exc}") from None
        raise ConfigError(f"{where}: {part} '{name}': no module named '{exc.name or module}'; put {module}.py beside "
                          "the campaign file, install its package, or add its folder to PYTHONPATH") from None
    except Exception as exc:  # the user's module failed while importing: its own error, on one line
        raise ConfigError(f"{where}: {part} '{name}': importing {module} failed: {type(exc).__name__}: {exc}") from None
    PLUGIN_MODULES.add(module)
    cls = getattr(mod, attr, None)
    if not isinstance(cls, type):
        raise ConfigError(f"{where}: {part} '{name}': {module} has no class {attr}"
                          f"{did_you_mean(attr, [n for n, v in vars(mod).items() if isinstance(v, type)])}")
    base = _load(BASES[part]) if part in BASES else None
    if base is not None and not issubclass(cls, base):
        raise ConfigError(f"{where}: {part} '{name}': {attr} is not a subclass of {base.__module__}.{base.__name__}; "
                          "see docs/extending.md")
    if part == "aggregation" and not callable(getattr(cls, "aggregate", None)):
        raise ConfigError(f"{where}: aggregation '{name}': {attr} has no aggregate(votes, labels) method; see "
                          "docs/extending.md")
    return cls


def plugin_frame(exc: BaseException) -> str | None:
    """Where in a part of the user's own ``exc`` (or what it was raised from) was raised: "file:line, in
    function" of the last such frame, or None when no frame is theirs."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb, found = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_globals.get("__name__") in PLUGIN_MODULES:
                code = tb.tb_frame.f_code
                found = f"{code.co_filename}:{tb.tb_lineno}, in {code.co_name}"
            tb = tb.tb_next
        if found:
            return found
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def check_params(cls: type, params: dict[str, Any], *, where: str, reserved: tuple[str, ...] = ()) -> None:
    """Reject keys that ``cls``'s constructor does not take, suggesting the closest one."""
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = [n for n in sig.parameters if n not in ("self", *reserved)]
    for key in params:
        if key not in accepted:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, accepted)}; "
                              f"{cls.__name__} takes: {', '.join(accepted) or 'no options'}")


def build(part: str, name: str, params: dict[str, Any], *, where: str, **context: Any) -> Any:
    cls = resolve(part, name, where=where)
    check_params(cls, params, where=where, reserved=tuple(context))
    try:
        return cls(**params, **context)
    except ConfigError as exc:  # said by the part itself: where it is in the campaign file, unless it says so
        message = str(exc)
        if message.startswith(re.split(r"[\[.]", where)[0]):  # "review.project_title: ...", "teachers[0] ..."
            raise
        raise ConfigError(f"{where}: {re.sub(r'^teacher [^:]+: ', '', message)}") from None
    except (TypeError, ValueError) as exc:  # a constructor's own check of its parameters: a config error
        raise ConfigError(f"{where}: {exc}") from None
