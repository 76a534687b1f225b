"""The new strategies inside a real (replay-teacher) campaign: the runner's context is enough for them."""

import pytest

from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import replay_config


@pytest.mark.parametrize("strategy", [
    'name = "qbc"\nn_members = 3',
    'name = "coreset"',  # TF-IDF student: sparse embeddings, projected; retrained each round, so never stored
    'name = "seals"\nk = 5\nbase = { name = "uncertainty_kmeans", beta = 2 }',
    'name = "typiclust"\ncost_power = 1.0',  # per token: the runner fills in the item costs
    'name = "mixture"\nstrategies = ["random", "kmeans"]\nfractions = [0.3, 0.7]',
    'name = "density_weighted"\nbeta = 2.0',
])
def test_a_second_round_is_selected_by_the_strategy(tmp_path, strategy):
    cfg = load_config(replay_config(tmp_path, rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 10",
                                    extra=f"[strategy]\n{strategy}\n"))
    campaign = Campaign.open(cfg)
    campaign.run()
    rounds = list(campaign.store.db.query("select * from rounds order by round"))
    assert len(rounds) == 2 and rounds[1]["strategy"] == cfg.strategy.kind
    second = campaign.store.selection(rounds[1]["round"])
    assert len(second) == 10 and not set(second) & set(campaign.store.selection(rounds[0]["round"]))
    if cfg.strategy.kind == "coreset":
        assert campaign.store.vector_count() == 0  # a student's retrained representation is not stored every round
