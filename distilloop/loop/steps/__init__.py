"""The steps of a round, each a function over the campaign's :class:`~distilloop.loop.env.Env` that takes and
returns typed artifacts: select (a :class:`~distilloop.core.types.Selection`) -> annotate (an
:class:`~distilloop.loop.steps.annotate.Annotation`) -> decide (verdicts and routes, committed in one
transaction) -> review (human answers in) -> train (a student version, promoted by one rule)."""
