"""distilloop: active-learning annotation and distillation campaigns.

An ensemble of teacher LLMs labels the examples a sampler picks, with rationales; items where the
teachers disagree go to human review; a small student is retrained each round and promoted only if it
is better; every token and dollar is charged to a hard budget.

The Python API is the product; ``distilloop.cli`` is a thin layer over it.
"""

from distilloop.errors import DistilloopError

__version__ = "0.1.0"
__all__ = ["DistilloopError", "__version__"]
