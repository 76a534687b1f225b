"""Prices per million tokens (USD): input, cached input, cache writes, output; batch at a discount.

The table holds list prices the project knew when written; a campaign overrides any of them per teacher
(``price = {input = 0.15, output = 0.60}``), and a model not in the table must be given a price, or is
free only when it runs locally.
"""

from __future__ import annotations

from dataclasses import dataclass

from distilloop.errors import ConfigError

# model: (input, cached_input, output, cache_write) in USD per 1M tokens
TABLE: dict[str, tuple[float, float, float, float]] = {
    "gpt-4o-mini": (0.15, 0.075, 0.60, 0.15),
    "gpt-4o": (2.50, 1.25, 10.00, 2.50),
    "gpt-4.1-mini": (0.40, 0.10, 1.60, 0.40),
    "gpt-4.1-nano": (0.10, 0.025, 0.40, 0.10),
    "gpt-4.1": (2.00, 0.50, 8.00, 2.00),
    "gpt-5-mini": (0.25, 0.025, 2.00, 0.25),
    "gpt-5-nano": (0.05, 0.005, 0.40, 0.05),
    "claude-3-5-haiku-latest": (0.80, 0.08, 4.00, 1.00),
    "claude-haiku-4-5": (1.00, 0.10, 5.00, 1.25),
    "claude-sonnet-4-5": (3.00, 0.30, 15.00, 3.75),
    "claude-opus-4-1": (15.00, 1.50, 75.00, 18.75),
}
BATCH_DISCOUNT = 0.5
LOCAL_KINDS = {"llama_cpp", "transformers", "replay"}
#: what a provider charges for cache reads and cache writes, as multiples of its input price, where a price
#: gives only ``input``: Anthropic bills a 5-minute cache write at 1.25x and a cache read at 0.1x
CACHE_RATIOS: dict[str, tuple[float, float]] = {"anthropic": (0.1, 1.25)}


@dataclass(frozen=True)
class Price:
    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    cache_write: float | None = None
    batch_discount: float = BATCH_DISCOUNT

    def cost(self, tokens_in: int, tokens_out: int, *, cached: int = 0, cache_write: int = 0,
             batch: bool = False) -> float:
        """USD for a call. ``tokens_in`` counts every input token; ``cached``/``cache_write`` are subsets of it."""
        cached_rate = self.input if self.cached_input is None else self.cached_input
        write_rate = self.input if self.cache_write is None else self.cache_write
        plain = max(0, tokens_in - cached - cache_write)
        usd = (plain * self.input + cached * cached_rate + cache_write * write_rate + tokens_out * self.output) / 1e6
        return usd * (self.batch_discount if batch else 1.0)

    @classmethod
    def resolve(cls, model: str, override: dict[str, float] | None, *, kind: str) -> Price:
        if override is not None:
            if not isinstance(override, dict):
                raise ConfigError(f"price: must be a table such as {{input = 0.15, output = 0.6}} (USD per 1M "
                                  f"tokens), got {override!r}")
            allowed = {"input", "output", "cached_input", "cache_write", "batch_discount"}
            bad = set(override) - allowed
            if bad:
                raise ConfigError(f"price: unknown key(s) {sorted(bad)}; use {sorted(allowed)} (USD per 1M tokens)")
            for k, v in override.items():
                if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                    raise ConfigError(f"price.{k}: must be a number >= 0 (USD per 1M tokens), got {v!r}")
            base = cls.resolve(model, None, kind=kind) if model in TABLE else cls()
            merged = {**base.__dict__, **override}
            if "input" in override:  # the cache rates follow the input price given, unless given themselves
                read, write = CACHE_RATIOS.get(kind, (None, None))
                if "cached_input" not in override:
                    merged["cached_input"] = None if read is None else override["input"] * read
                if "cache_write" not in override:
                    merged["cache_write"] = None if write is None else override["input"] * write
            return cls(**merged)
        if model in TABLE:
            i, c, o, w = TABLE[model]
            return cls(i, o, c, w)
        if kind in LOCAL_KINDS:
            return cls()
        raise ConfigError(f"no price known for model '{model}'; add price = {{input = ..., output = ...}} "
                          "(USD per 1M tokens) to this teacher")
