"""The whole of a data directory (``kstub serve --data-dir DIR``): `DiskStore`.

It writes the cluster's metadata, producer ids, committed group offsets and every replica's log
(kstub/cluster/log_files.py) under DIR, and recovers them on the next start; see
kstub/cluster/storage.py for the layout and the durability rules.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .log import Log

if TYPE_CHECKING:
    from .model import ClusterState, Partition, Topic

from .log_files import LONG_MAX, DiskLogStorage, FileSegment, _segment_name, _write_all, recover_log, write_atomically
from .storage import GroupOffsets, StateStore, replica_config

log = logging.getLogger("kstub.storage")


# --- the whole store -----------------------------------------------------------------------


class RecoveryError(Exception):
    """The data directory cannot be used as it is (the message says why)."""


class DiskStore(StateStore):
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
        data = json.dumps({"offset": offset, "producers": partition.producers.snapshot()}).encode()
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
            "dynamic_default": config.dynamic_default,
            "dynamic_broker": {str(k): v for k, v in config.dynamic_broker.items()},
            "topics": [
                {
                    "name": t.name,
                    "id": str(t.topic_id),
                    "configs": t.configs,
                    "partitions": [
                        {"replicas": p.replicas, "leader": p.leader, "leader_epoch": p.leader_epoch, "isr": p.isr}
                        for p in t.partitions
                    ],
                }
                for t in cluster.topics.values()
            ],
            "acls": cluster.acls.snapshot(),
            "scram": _scram_snapshot(cluster.scram_credentials),
        }
        write_atomically(self.meta_dir / "cluster.json", json.dumps(doc, indent=1).encode())

    def save_producer_ids(self, cluster: ClusterState) -> None:
        self._open()
        data = json.dumps(cluster.producer_ids.snapshot()).encode()
        write_atomically(self.meta_dir / "producer-ids.json", data, fsync=self.fsync_on_ack)

    def delete_topic(self, cluster: ClusterState, topic: Topic) -> None:
        self.save_metadata(cluster)
        for partition in topic.partitions:
            for lg in partition.logs.values():
                lg.delete()

    # --- durability ---------------------------------------------------------------------

    async def after_produce(self, partitions: list[Partition], acks: int) -> None:
        for p in partitions:
            lg = p.leader_log
            if (self.fsync_on_ack and acks != 0) or lg.unflushed_messages >= int(p.config("flush.messages")):
                await lg.sync()

    async def background(self, cluster: ClusterState) -> None:
        """The flush scheduler: every log.flush.scheduler.interval.ms, fsync logs unflushed for flush.ms."""
        while True:
            interval = int(cluster.config["log.flush.scheduler.interval.ms"])
            if interval >= LONG_MAX:
                return  # Kafka's default: no scheduler, flush.ms is not checked
            await trio.sleep(max(interval, 1) / 1000)
            now = cluster.now_ms()
            for partition in list(cluster.iter_partitions()):
                flush_ms = int(partition.config("flush.ms"))
                for lg in list(partition.logs.values()):
                    if lg.unflushed_messages > 0 and now - lg.last_flush_ms >= flush_ms:
                        await lg.sync()

    # --- group offsets --------------------------------------------------------------------

    def _offsets_file(self) -> int:
        if self._offsets_fd is None:
            self._open()
            self._offsets_fd = os.open(
                self.meta_dir / "group-offsets.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        return self._offsets_fd

    def save_offsets(self, group: str, offsets: Mapping[tuple[str, int], tuple[int, int, str | None] | None]) -> None:
        entries = [
            [topic, partition, None, None, None] if value is None else [topic, partition, *value]
            for (topic, partition), value in offsets.items()
        ]
        line = json.dumps({"group": group, "offsets": entries}, separators=(",", ":")) + "\n"
        _write_all(self._offsets_file(), line.encode())
        self._offsets_dirty = True

    def delete_group(self, group: str) -> None:
        line = json.dumps({"group": group, "deleted": True}, separators=(",", ":")) + "\n"
        _write_all(self._offsets_file(), line.encode())
        self._offsets_dirty = True

    def load_offsets(self) -> dict[str, GroupOffsets]:
        self._open()
        path = self.meta_dir / "group-offsets.log"
        groups: dict[str, GroupOffsets] = {}
        lines = 0
        try:
            text = path.read_text()
        except FileNotFoundError:
            return groups
        for raw in text.split("\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                log.warning("%s: skipping a torn line", path)
                continue
            lines += 1
            group = record["group"]
            if record.get("deleted"):
                groups.pop(group, None)
                continue
            offsets = groups.setdefault(group, {})
            for topic, partition, offset, epoch, metadata in record["offsets"]:
                if offset is None:
                    offsets.pop((topic, partition), None)
                else:
                    offsets[(topic, partition)] = (offset, epoch, metadata)
        live = sum(len(o) for o in groups.values())
        if lines > 2 * len(groups) + 100 and lines > 2 * live:
            self._compact_offsets(groups)
        return groups

    def _compact_offsets(self, groups: dict[str, GroupOffsets]) -> None:
        if self._offsets_fd is not None:
            os.close(self._offsets_fd)
            self._offsets_fd = None
        text = "".join(
            json.dumps({"group": g, "offsets": [[t, p, *v] for (t, p), v in offsets.items()]}, separators=(",", ":"))
            + "\n"
            for g, offsets in groups.items()
        )
        write_atomically(self.meta_dir / "group-offsets.log", text.encode())

    async def sync_offsets(self) -> None:
        if self.fsync_on_ack and self._offsets_dirty and self._offsets_fd is not None:
            self._offsets_dirty = False
            fd = os.dup(self._offsets_fd)
            await trio.to_thread.run_sync(_fsync_close, fd)

    # --- start and stop -------------------------------------------------------------------

    def recover(self, cluster: ClusterState) -> None:
        from .model import Partition, Topic

        self._open()
        path = self.meta_dir / "cluster.json"
        doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"topics": []}
        if "cluster_id" in doc and doc["cluster_id"] != cluster.cluster_id:
            if "cluster.id" in cluster.config.explicit:
                raise RecoveryError(
                    f"{self.data_dir} belongs to cluster {doc['cluster_id']}, not {cluster.cluster_id} (-c cluster.id)"
                )
            cluster.cluster_id = doc["cluster_id"]
        cluster.config.dynamic_default = dict(doc.get("dynamic_default", {}))
        cluster.config.dynamic_broker = {int(k): dict(v) for k, v in doc.get("dynamic_broker", {}).items()}
        cluster.acls.restore(doc.get("acls", []))
        _scram_restore(cluster.scram_credentials, doc.get("scram", {}))
        ids_path = self.meta_dir / "producer-ids.json"
        if ids_path.exists():
            cluster.producer_ids.restore(json.loads(ids_path.read_text()))
        needed = max((r for t in doc["topics"] for p in t["partitions"] for r in p["replicas"]), default=-1)
        missing = sorted(
            {r for t in doc["topics"] for p in t["partitions"] for r in p["replicas"]} - set(cluster.brokers)
        )
        if missing:
            raise RecoveryError(
                f"{self.data_dir} holds replicas on brokers {missing}, which this server does not run "
                f"(start it with --brokers {needed + 1})"
            )
        known: set[Path] = set()
        for t in doc["topics"]:
            topic = Topic(cluster, t["name"], uuid.UUID(t["id"]), dict(t["configs"]))
            for index, p in enumerate(t["partitions"]):
                partition = Partition(
                    topic, index, list(p["replicas"]), p["leader"], p["leader_epoch"], isr=list(p["isr"])
                )
                for broker_id in p["replicas"]:
                    directory = self._log_dir(topic, index, broker_id)
                    known.add(directory)
                    if self._usable_dir(directory, topic):
                        lg = recover_log(
                            directory,
                            config=replica_config(topic, broker_id),
                            clock=cluster.now_ms,
                            fsync_checkpoints=True,
                            name=f"{t['name']}-{index} (broker {broker_id})",
                        )
                        self._watch_rolls(partition, lg, broker_id)
                        partition.logs[broker_id] = lg
                for broker_id in p["replicas"]:
                    if broker_id not in partition.logs:
                        partition.logs[broker_id] = self.new_log(cluster, partition, broker_id)
                partition.restore_replica_states(cluster.now_ms())
                topic.partitions.append(partition)
                for broker_id, lg in partition.logs.items():
                    self._recover_producers(f"{t['name']}-{index} (broker {broker_id})", lg)
                if partition.leader >= 0:
                    partition.advance_high_watermark()
            cluster.topics[topic.name] = topic
        self._remove_stale(known)
        if doc["topics"]:
            log.info("recovered %d topic(s) from %s", len(doc["topics"]), self.data_dir)

    def _usable_dir(self, directory: Path, topic: Topic) -> bool:
        meta = directory / "partition.metadata"
        if not meta.exists():
            return False
        if f"topic_id: {topic.topic_id}" not in meta.read_text():
            log.warning("%s belongs to an older topic of that name; removing it", directory)
            shutil.rmtree(directory)
            return False
        return True

    def _remove_stale(self, known: set[Path]) -> None:
        for broker in self.data_dir.glob("broker-*"):
            for directory in broker.iterdir():
                if directory.is_dir() and directory not in known:
                    log.info("removing %s: no such partition in the metadata", directory)
                    shutil.rmtree(directory, ignore_errors=True)

    def _recover_producers(self, name: str, lg: Log) -> None:
        """A replica's producer state: its newest snapshot at or below the log end, then the batches after it.

        Snapshots are taken of the leader's log (when it rolls, and on close);
        a replica without one replays every batch header it holds.
        """
        storage = lg.storage
        if not isinstance(storage, DiskLogStorage):
            return
        start = lg.log_start_offset
        for snap in sorted(storage.directory.glob("*.snapshot"), reverse=True):
            try:
                offset = int(snap.stem)
                if offset > lg.log_end_offset:
                    snap.unlink()
                    continue
                lg.producers.restore(json.loads(snap.read_text())["producers"])
                start = offset
                break
            except (ValueError, KeyError, OSError):
                log.warning("%s: unreadable producer snapshot; ignoring it", snap)
        replayed = 0
        for seg in lg.segments:
            if not isinstance(seg, FileSegment) or seg.end_offset <= start:
                continue
            for i in range(seg.index_of(start), len(seg)):
                header = seg.header(i)
                if header is None or header.producer_id < 0:
                    continue
                lg.producers.record(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                    header.last_offset_delta + 1,
                    seg.bases[i],
                )
                replayed += 1
        if replayed:
            log.info("%s: producer state rebuilt from %d batch(es)", name, replayed)

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


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scram_snapshot(store: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]]) -> dict[str, Any]:
    """SCRAM credentials as JSON: mechanism → user → [salt, stored key, server key (base64), iterations]."""
    b64 = base64.b64encode
    return {
        mechanism: {
            user: [b64(salt).decode(), b64(stored).decode(), b64(server).decode(), n]
            for user, (salt, stored, server, n) in users.items()
        }
        for mechanism, users in store.items()
    }


def _scram_restore(store: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]], doc: dict[str, Any]) -> None:
    """Credentials kept from the last run, for the users the settings (``kstub.sasl.users``) do not name:
    those got their configured password at start, which wins."""
    unb64 = base64.b64decode
    for mechanism, users in doc.items():
        known = store.setdefault(mechanism, {})
        for user, (salt, stored, server, n) in users.items():
            known.setdefault(user, (unb64(salt), unb64(stored), unb64(server), int(n)))
