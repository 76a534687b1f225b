"""Strategies as a campaign config names them: nested strategies in TOML tables."""

import tomllib

import pytest

from distilloop.errors import ConfigError
from distilloop.loop import parts as factory
from distilloop.loop.config import parse_config
from distilloop.strategies.elad import ELADSampling
from distilloop.strategies.subsample import LabeledNeighbours, TopCandidates

HEAD = """
[campaign]
name = "c"
labels = ["a", "b"]
[data]
path = "d.jsonl"
[budget]
max_usd = 1.0
[[teachers]]
name = "t"
kind = "replay"
path = "r.jsonl"
"""


def build(strategy_toml):
    return factory.build_strategy(parse_config(tomllib.loads(HEAD + strategy_toml)))


def test_nested_strategies_from_toml():
    elad = build('[strategy]\nname = "elad"\ncandidates = 50\nprefilter = { name = "random_subpool", '
                 'base = "margin", size = 5000 }\nn_explanations = 4\n')
    assert isinstance(elad, ELADSampling) and isinstance(elad.inner_, TopCandidates)
    assert elad.inner_.size == 50 and elad.inner_.prefilter_.size == 5000
    seals = build('[strategy]\nname = "seals"\nk = 20\n[strategy.base]\nname = "qbc"\nn_members = 3\n')
    assert isinstance(seals, LabeledNeighbours) and seals.base_.n_members == 3
    combo = build('[strategy]\nname = "linear_combination"\nstrategies = ["entropy", "bald"]\n'
                  'weights = [0.5, 0.5]\n')
    assert [s.name for s in combo.strategies_] == ["entropy", "bald"]


def test_a_typo_inside_a_nested_strategy_is_named():
    with pytest.raises(ConfigError, match=r"strategy.base: unknown strategy 'entrpy' \(did you mean 'entropy'\?\)"):
        build('[strategy]\nname = "random_subpool"\nbase = "entrpy"\n')
    with pytest.raises(ConfigError, match="unknown key 'n_member'"):
        build('[strategy]\nname = "top_candidates"\nbase = { name = "qbc", n_member = 3 }\n')


@pytest.mark.parametrize("table, message", [
    ('name = "typiclust"\ncost_power = -1', "strategy: cost_power must be >= 0, got -1"),
    ('name = "uncertainty_kmeans"\nbeta = 0', "strategy: beta must be at least 1, got 0"),
    ('name = "mixture"\nstrategies = ["random", "kmeans"]\nfractions = [1.0]', "strategy.fractions must be 2"),
])
def test_a_parameter_its_strategy_rejects_is_a_config_error(table, message):
    # a config error (a clear message and a non-zero exit at the CLI), not a raw ValueError
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        build(f"[strategy]\n{table}\n")
