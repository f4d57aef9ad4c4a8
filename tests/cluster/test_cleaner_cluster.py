"""The log cleaner on a cluster model: replicas cleaned alike, retention running meanwhile, --data-dir restarts."""

from __future__ import annotations

from pathlib import Path

import trio
from logtools import crash, kv, open_cluster

from kstub.cluster.cleaner import CHECKPOINT_FILE
from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import ClusterState
from kstub.protocol import ErrorCode
from kstub.protocol.records import iter_records

T0 = 1_700_000_000_000


def fill(cluster: ClusterState, topic: str, n: int, keys: int = 3) -> None:
    p = cluster.partition(topic, 0)
    for i in range(n):
        assert p.append([kv([(f"k{i % keys}", f"v{i}")], ts=T0 + i)], T0 + i).error == ErrorCode.NONE


def records(cluster: ClusterState, topic: str, broker: int | None = None) -> list[tuple[int, bytes, bytes | None]]:
    p = cluster.partition(topic, 0)
    lg = p.leader_log if broker is None else p.logs[broker]
    return [(r.offset, r.key, r.value) for c in lg.read(0) for r in iter_records(c.data)]


def latest(rows: list[tuple[int, bytes, bytes | None]]) -> dict[bytes, bytes | None]:
    return {k: v for _, k, v in rows}


async def test_every_replica_is_cleaned_alike():
    cluster = ClusterState(BrokerConfig())
    for i in range(3):
        cluster.add_broker(i, "127.0.0.1", 9092 + i)
    cluster.create_topic("t", 1, 3, {"cleanup.policy": "compact", "segment.bytes": "300"})
    p = cluster.partition("t", 0)
    before = None
    for i in range(60):
        assert p.append([kv([(f"k{i % 4}", f"v{i}")], ts=T0 + i)], T0).error == ErrorCode.NONE
        for r in p.replicas:  # the followers copy the leader's batches (what the replica fetcher does)
            if r != p.leader:
                lg = p.logs[r]
                for chunk in p.leader_log.read(lg.log_end_offset):
                    lg.append_chunk(chunk)
                p.follower_fetched(r, lg.log_end_offset, lg.log_end_offset, T0)
        before = latest(records(cluster, "t"))
    cleaned = await cluster.cleaner.clean_now("t")
    assert sorted(c["broker"] for c in cleaned) == [0, 1, 2]
    rows = {b: [(c.base_offset, bytes(c.data)) for c in p.logs[b].read(0)] for b in p.replicas}
    assert rows[0] == rows[1] == rows[2]
    assert latest(records(cluster, "t")) == before
    assert len(records(cluster, "t")) < 60


async def test_retention_deleting_segments_during_a_cleaning_is_not_a_failure():
    cluster = ClusterState(BrokerConfig())
    cluster.add_broker(0, "127.0.0.1", 9092)
    configs = {"cleanup.policy": "compact,delete", "segment.bytes": "300", "retention.ms": "1000"}
    cluster.create_topic("t", 1, 1, configs)
    fill(cluster, "t", 200)

    async def retention_soon() -> None:
        for _ in range(3):
            await trio.lowlevel.checkpoint()
        cluster.run_retention(T0 + 10_000_000)  # every closed segment is past retention.ms

    async with trio.open_nursery() as nursery:
        nursery.start_soon(retention_soon)
        await cluster.cleaner.clean_now("t")
    assert not cluster.cleaner._uncleanable
    # the log is whole: what is left reads back, and the next cleaning works
    fill(cluster, "t", 100)
    await cluster.cleaner.clean_now("t", force=True)
    rows = records(cluster, "t")
    active = cluster.partition("t", 0).leader_log.active_segment.base_offset
    closed = [k for o, k, _ in rows if o < active]
    assert len(closed) == len(set(closed))


async def test_a_cleaned_log_and_its_checkpoint_survive_a_crash_with_data_dir(tmp_path: Path):
    cluster = open_cluster(tmp_path)
    cluster.create_topic("t", 1, 1, {"cleanup.policy": "compact", "segment.bytes": "300"})
    fill(cluster, "t", 100)
    expected = latest(records(cluster, "t"))
    cleaned = await cluster.cleaner.clean_now("t")
    assert len(cleaned) == 1
    rows = records(cluster, "t")
    folder = next(tmp_path.glob("broker-0/t-0"))
    assert (folder / CHECKPOINT_FILE).read_text().strip() == str(cleaned[0]["end_offset"])
    crash(cluster)

    again = open_cluster(tmp_path)
    try:
        assert records(again, "t") == rows
        assert latest(records(again, "t")) == expected
        # where the cleaning got to was kept: nothing dirty, nothing cleaned
        assert await again.cleaner.clean_now("t", force=True) == []
        fill(again, "t", 30)
        assert latest(records(again, "t")) == {**expected, **latest(records(again, "t"))}
        assert [c["first_dirty_offset"] for c in await again.cleaner.clean_now("t", force=True)] == [
            cleaned[0]["end_offset"]
        ]
    finally:
        again.store.close(again)


async def test_a_follower_behind_copies_the_cleaned_leader_across_its_gaps():
    from kstub.cluster.replication import replicate

    cluster = ClusterState(BrokerConfig())
    for i in range(2):
        cluster.add_broker(i, "127.0.0.1", 9092 + i)
    cluster.create_topic("t", 1, 2, {"cleanup.policy": "compact", "segment.bytes": "300"})
    p = cluster.partition("t", 0)
    follower = next(r for r in p.replicas if r != p.leader)
    p.isr = [p.leader]  # the follower is out of sync: the leader cleans alone, up to its own high watermark
    for i in range(60):
        assert p.append([kv([(f"k{i % 4}", f"v{i}")], ts=T0 + i)], T0).error == ErrorCode.NONE
    cleaned = await cluster.cleaner.clean_now("t")
    assert [c["broker"] for c in cleaned] == [p.leader]
    leader_rows = records(cluster, "t")
    assert len(leader_rows) < 60 and leader_rows[0][0] > 0  # gaps, from offset 0 on
    while replicate(cluster, follower, p):
        pass
    assert records(cluster, "t", follower) == leader_rows
    assert p.logs[follower].log_end_offset == p.leader_log.log_end_offset == 60
    assert p.logs[follower].log_start_offset == p.leader_log.log_start_offset == 0  # no restart past a gap
