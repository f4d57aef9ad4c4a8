"""A reassignment in progress is kept with --data-dir: after a restart it is still listed, and completes once
the new replica catches up (its fetch rounds run by hand here: no server, no replica fetcher tasks)."""

from __future__ import annotations

from pathlib import Path

from logtools import build_batch

from kstub.cluster.config import BrokerConfig
from kstub.cluster.disk_store import DiskStore
from kstub.cluster.model import ClusterState
from kstub.cluster.reassignment import in_progress, reassign
from kstub.cluster.replication import replicate
from kstub.protocol import ErrorCode


def open_cluster(data_dir: Path) -> ClusterState:
    cluster = ClusterState(BrokerConfig({}))
    cluster.store = DiskStore(data_dir)
    for i in range(2):
        cluster.add_broker(i, "127.0.0.1", 9092 + i)
    cluster.store.recover(cluster)
    return cluster


def test_a_move_in_progress_survives_a_restart(tmp_path: Path) -> None:
    c = open_cluster(tmp_path)
    c.create_topic("moving", assignments={0: [0]})
    p = c.partition("moving", 0)
    for i in range(5):
        assert p.append([build_batch(2, timestamp=1_700_000_000_000 + i)], 0).error == ErrorCode.NONE
    reassign(c, p, [1])
    assert (p.replicas, p.adding_replicas, p.removing_replicas) == ([1, 0], [1], [0])
    c.store.close(c)

    c2 = open_cluster(tmp_path)
    p2 = c2.partition("moving", 0)
    assert (p2.replicas, p2.adding_replicas, p2.removing_replicas) == ([1, 0], [1], [0])
    assert p2.leader == 0 and p2.log_end_offset == 10
    assert (tmp_path / "broker-0" / "moving-0").is_dir()
    while replicate(c2, 1, p2):  # broker 1 catches up, joins the ISR: the move completes
        pass
    assert not in_progress(p2)
    assert p2.replicas == [1] and p2.leader == 1 and set(p2.logs) == {1} and p2.log_end_offset == 10
    c2.store.close(c2)

    c3 = open_cluster(tmp_path)
    p3 = c3.partition("moving", 0)
    assert p3.replicas == [1] and not in_progress(p3) and p3.log_end_offset == 10
    assert not (tmp_path / "broker-0" / "moving-0").exists()  # the removed replica's log was deleted
    assert (tmp_path / "broker-1" / "moving-0").is_dir()
    c3.store.close(c3)
