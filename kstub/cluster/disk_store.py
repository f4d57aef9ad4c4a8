"""The whole of a data directory (``kstub serve --data-dir DIR``): `DiskStore`.

It writes the cluster's metadata, producer ids, committed group offsets and every replica's log
(kstub/cluster/log_files.py) under DIR, and recovers them on the next start; see
kstub/cluster/storage.py for the layout and the durability rules. Recovery is in
kstub/cluster/disk_recovery.py, the group-offsets file in kstub/cluster/disk_offsets.py.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from .log import Log

if TYPE_CHECKING:
    from .model import ClusterState, Partition, Topic

from .disk_offsets import DiskGroupOffsets
from .disk_recovery import DiskRecovery, RecoveryError, scram_snapshot
from .log_files import LONG_MAX, DiskLogStorage, _segment_name, write_atomically
from .reassignment import in_progress
from .storage import StateStore, replica_config

log = logging.getLogger("kstub.storage")


# --- the whole store -----------------------------------------------------------------------


class DiskStore(DiskRecovery, DiskGroupOffsets, StateStore):
    """Everything under one data directory (``kstub serve --data-dir DIR``)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, fsync_on_ack: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.fsync_on_ack = fsync_on_ack
        self.meta_dir = self.data_dir / "meta"
        self._lock_fd: int | None = None
        self._offsets_fd: int | None = None
        self._offsets_dirty = False

    # --- paths and files ------------------------------------------------------------------

    def broker_dir(self, broker_id: int) -> Path | None:
        return self.data_dir / f"broker-{broker_id}"

    def _log_dir(self, topic: Topic, partition: int, broker_id: int) -> Path:
        return self.data_dir / f"broker-{broker_id}" / f"{topic.name}-{partition}"

    def _open(self) -> None:
        if self._lock_fd is not None:
            return
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RecoveryError(f"{self.data_dir} is in use by another kstub process") from None
        self._lock_fd = fd

    # --- logs ---------------------------------------------------------------------------

    def new_log(self, cluster: ClusterState, partition: Partition, broker_id: int) -> Log:
        self._open()
        topic = partition.topic
        directory = self._log_dir(topic, partition.index, broker_id)
        if directory.exists():
            shutil.rmtree(directory)  # a stale folder of a topic deleted before a crash
        directory.mkdir(parents=True)
        (directory / "partition.metadata").write_text(f"version: 0\ntopic_id: {topic.topic_id}\n")
        lg = Log(
            config=replica_config(topic, broker_id),
            clock=cluster.now_ms,
            storage=DiskLogStorage(directory, fsync_checkpoints=True),
        )
        self._watch_rolls(partition, lg, broker_id)
        return lg

    def _watch_rolls(self, partition: Partition, lg: Log, broker_id: int) -> None:
        """Take a producer-state snapshot when the leader's log rolls (as Kafka does)."""

        def rolled(base_offset: int) -> None:
            if partition.leader == broker_id and partition.logs.get(broker_id) is lg:
                self._save_producer_snapshot(partition, lg)

        lg.on_roll = rolled

    def _save_producer_snapshot(self, partition: Partition, lg: Log) -> None:
        storage = lg.storage
        if not isinstance(storage, DiskLogStorage):
            return
        offset = lg.log_end_offset
        producers = lg.producers
        data = json.dumps(
            {"offset": offset, "producers": producers.snapshot(), "transactions": producers.txn_snapshot()}
        ).encode()
        write_atomically(storage.directory / f"{_segment_name(offset)}.snapshot", data, fsync=False)
        snapshots = sorted(storage.directory.glob("*.snapshot"))
        for old in snapshots[:-2]:
            old.unlink(missing_ok=True)

    # --- metadata -----------------------------------------------------------------------

    def save_metadata(self, cluster: ClusterState) -> None:
        self._open()
        config = cluster.config
        doc = {
            "version": 1,
            "cluster_id": cluster.cluster_id,
            "dynamic_default": dict(config.dynamic_default),
            "dynamic_broker": {str(k): dict(v) for k, v in config.dynamic_broker.items()},
            "topics": [
                {
                    "name": t.name,
                    "id": str(t.topic_id),
                    "configs": dict(t.configs),
                    "partitions": [
                        {
                            "replicas": p.replicas,
                            "leader": p.leader,
                            "leader_epoch": p.leader_epoch,
                            "isr": p.isr,
                            **(
                                {"adding": p.adding_replicas, "removing": p.removing_replicas} if in_progress(p) else {}
                            ),
                        }
                        for p in t.partitions
                    ],
                }
                for t in cluster.topics.values()
            ],
            "acls": cluster.acls.snapshot(),
            "scram": scram_snapshot(cluster.scram_credentials),
        }
        write_atomically(self.meta_dir / "cluster.json", json.dumps(doc, indent=1).encode())

    def save_producer_ids(self, cluster: ClusterState) -> None:
        self._open()
        data = json.dumps(cluster.producer_ids.snapshot()).encode()
        write_atomically(self.meta_dir / "producer-ids.json", data, fsync=self.fsync_on_ack)

    def save_transactions(self, transactions: list[dict]) -> None:
        self._open()
        data = json.dumps({"version": 1, "transactions": transactions}, separators=(",", ":")).encode()
        write_atomically(self.meta_dir / "transactions.json", data, fsync=self.fsync_on_ack)

    keeps_consumer_groups = True

    def save_consumer_groups(self, groups: list[dict]) -> None:
        self._open()
        data = json.dumps({"version": 1, "groups": groups}, separators=(",", ":")).encode()
        write_atomically(self.meta_dir / "consumer-groups.json", data, fsync=self.fsync_on_ack)

    def load_consumer_groups(self) -> list[dict]:
        path = self.meta_dir / "consumer-groups.json"
        return list(json.loads(path.read_text())["groups"]) if path.exists() else []

    def load_transactions(self) -> list[dict]:
        path = self.meta_dir / "transactions.json"
        return list(json.loads(path.read_text())["transactions"]) if path.exists() else []

    # --- durability ---------------------------------------------------------------------

    async def after_produce(self, partitions: list[Partition], acks: int) -> None:
        for p in partitions:
            lg = p.leader_log
            if (self.fsync_on_ack and acks != 0) or lg.unflushed_messages >= p.settings.get_int("flush.messages"):
                await lg.sync()

    async def background(self, cluster: ClusterState) -> None:
        """The flush scheduler: every log.flush.scheduler.interval.ms, fsync logs unflushed for flush.ms."""
        while True:
            interval = cluster.config["log.flush.scheduler.interval.ms"]
            if interval >= LONG_MAX:
                return  # Kafka's default: no scheduler, flush.ms is not checked
            await trio.sleep(max(interval, 1) / 1000)
            now = cluster.now_ms()
            for partition in list(cluster.iter_partitions()):
                flush_ms = partition.settings.get_int("flush.ms")
                for lg in list(partition.logs.values()):
                    if lg.unflushed_messages > 0 and now - lg.last_flush_ms >= flush_ms:
                        await lg.sync()

    # --- stop ---------------------------------------------------------------------------

    def close(self, cluster: ClusterState) -> None:
        for partition in cluster.iter_partitions():
            if partition.leader >= 0 and partition.leader in partition.logs:
                try:
                    self._save_producer_snapshot(partition, partition.leader_log)
                except OSError as exc:
                    log.warning("cannot save producer state of %s-%d: %s", partition.topic.name, partition.index, exc)
            for lg in partition.logs.values():
                lg.close()
        if self._offsets_fd is not None:
            os.close(self._offsets_fd)
            self._offsets_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
