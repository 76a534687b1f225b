"""The Python API as docs/extending.md shows it: a campaign opened in a ``with`` block is closed however the block
ends (its store and its writer lock released: the next command may write)."""

import pytest

from distilloop.errors import StoreLocked
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import replay_config


def test_a_campaign_in_a_with_block_is_closed_however_the_block_ends(tmp_path):
    config = load_config(replay_config(tmp_path, rounds="max_rounds = 1\ninitial_size = 10"))
    with Campaign.open(config) as campaign:
        assert campaign.run().startswith("max rounds")
        with pytest.raises(StoreLocked):  # one writer while it is open
            Campaign.open(config)
        labeled = campaign.store.labeled()
    assert len(labeled) == 10
    with pytest.raises(RuntimeError, match="the user's own"), Campaign.open(config):
        raise RuntimeError("the user's own")
    with Campaign.open(config) as again:  # the lock was released both times
        assert again.store.rounds()[-1]["status"] == "done"
