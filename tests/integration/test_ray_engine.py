"""The Ray engine on a real two-node Ray cluster on loopback (``ray start --head`` and ``ray start --address``):
a campaign run on it selects, labels and pays exactly what the local engine does for the same seed.

Marked ``slow`` and ``ray``: starting the cluster takes about 30 s, each campaign a minute on 2 cores."""

from __future__ import annotations

import shutil

import pytest

from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import ROOT, replay_config

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    from distilloop.testing.ray_cluster import LocalRayCluster

    with LocalRayCluster(pythonpath=str(ROOT)) as c:
        yield c


def _run(folder, extra: str, compute: str, progress=None) -> tuple[dict, Campaign]:
    folder.mkdir()
    path = replay_config(folder, rounds="max_rounds = 3\ninitial_size = 20\nbatch_size = 15",
                         extra=f"{extra}\n[compute]\n{compute}\n")
    campaign = Campaign.open(load_config(path), progress=progress)
    try:
        campaign.run()
        store = campaign.store
        out = {
            "selections": {r["round"]: store.selection(r["round"]) for r in store.rounds()},
            "labels": sorted((r["example_id"], r["label"], r["rationale"], r["source"]) for r in store.labeled()),
            "ledger": sorted((c.round, c.example_id, c.teacher, c.status, c.tokens_in, c.tokens_out, c.cost_usd)
                             for c in store.calls()),
            "spent": store.spent(),
            "shards": sum(s["rows"] for s in store.vector_shards()),
        }
    finally:
        campaign.close()
    return out, campaign


def _same(local: dict, ray: dict) -> None:
    assert len(local["selections"]) == 3
    assert ray["selections"] == local["selections"]  # every round's picks, in rank order
    assert ray["labels"] == local["labels"] and len(local["labels"]) == 50
    assert ray["ledger"] == local["ledger"] and ray["spent"] == local["spent"]


def test_a_frozen_encoder_campaign_on_the_cluster_equals_the_local_one(cluster, tmp_path, tiny_bert_dir):
    """Embedding (the pool into shards, on the workers) and entropy scoring merged from per-block candidates."""
    import ray

    student = f'[student]\nkind = "embedding_linear"\nmodel = "{tiny_bert_dir}"\n[strategy]\nname = "entropy"'
    from tests.unit.loop.test_budget_sizing import described_progress

    local, _ = _run(tmp_path / "local", student, "min_shard_vectors = 50")
    progress, embedding_passes = described_progress()
    on_ray, campaign = _run(tmp_path / "ray", student,
                            f'engine = "ray"\naddress = "{cluster.address}"\nbatch_rows = 40\nmin_shard_vectors = 50',
                            progress)
    _same(local, on_ray)
    # the pool's one embedding pass (round 2's 100 items, three blocks) has a bar that ends at its total
    assert embedding_passes() == [("embedding 100 pool texts with " + str(tiny_bert_dir)
                                   + " on the Ray cluster (3 block(s); once: they are kept)", 100, 100)]
    engine = campaign.env.engine
    assert engine.name == "ray" and engine.last["scored"] == 120 - 35 and engine.last["embedded"] == 0
    assert on_ray["shards"] >= 120 - 20  # the pool of round 2 embedded on the workers, written here as shards
    assert not ray.is_initialized()  # the campaign's engine disconnected when it closed


def test_a_probability_strategy_gets_the_whole_matrix_from_the_cluster(cluster, tmp_path):
    """TF-IDF (scored from the texts on the workers) and a strategy that reads every probability."""
    extra = '[strategy]\nname = "cost_aware"'
    local, _ = _run(tmp_path / "local", extra, "")
    on_ray, campaign = _run(tmp_path / "ray", extra, f'engine = "ray"\naddress = "{cluster.address}"\nbatch_rows = 25')
    _same(local, on_ray)
    assert campaign.env.engine.last["scored"] == 120 - 35


def test_an_unreachable_cluster_is_one_line_with_the_fix(tmp_path):
    pytest.importorskip("ray")
    from distilloop.engine.ray_engine import RayEngine
    from distilloop.errors import EngineError

    engine = RayEngine(None, address="127.0.0.2:1")  # type: ignore[arg-type]
    with pytest.raises(EngineError, match=r"cannot reach the Ray cluster at '127.0.0.2:1'.*ray start --head"):
        engine.connect()
    shutil.rmtree(tmp_path, ignore_errors=True)


def _close_after(path) -> None:
    """Open the campaign at ``path``, run it, close it."""
    campaign = Campaign.open(load_config(path))
    try:
        campaign.run()
    finally:
        campaign.close()


def test_rows_added_later_are_embedded_on_the_cluster_by_the_next_pass(cluster, tmp_path, tiny_bert_dir):
    """The pool's embedding was done once per encoder: rows added afterwards (`distilloop add`) were never put
    in the shards, so every later round embedded them again under the selection's spinner. A pass runs again
    for the new data version, the workers skipping every text the shards hold."""
    from distilloop.loop.additions import add_data
    from tests.unit.loop.living_helpers import split_data
    from tests.unit.loop.test_budget_sizing import described_progress

    part, rest, _ = split_data(tmp_path, n_first=80, overlap=0)
    student = f'[student]\nkind = "embedding_linear"\nmodel = "{tiny_bert_dir}"\n[strategy]\nname = "entropy"'
    path = replay_config(tmp_path, data=part, rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 15",
                         extra=f'{student}\n[compute]\nengine = "ray"\naddress = "{cluster.address}"\n'
                               "batch_rows = 40\nmin_shard_vectors = 10\n")
    _close_after(path)
    config = load_config(path)
    assert add_data(config, rest).version == 2
    path.write_text(path.read_text().replace("max_rounds = 2", "max_rounds = 3"))
    progress, embedding_passes = described_progress()
    campaign = Campaign.open(load_config(path), progress=progress)
    try:
        before = sum(s["rows"] for s in campaign.store.vector_shards())
        campaign.run()
        after = sum(s["rows"] for s in campaign.store.vector_shards())
    finally:
        campaign.close()
    passes = embedding_passes()
    assert len(passes) == 1 and passes[0][0].startswith("embedding the rows added to the pool"), passes
    assert after - before == 40  # the 40 added rows, and only them: the rest were in the shards
