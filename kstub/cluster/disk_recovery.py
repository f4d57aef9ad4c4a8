"""Starting from a data directory: the metadata, each replica's log, its producer state.

A part of `DiskStore` (kstub/cluster/disk_store.py); see kstub/cluster/storage.py
for the layout and the durability rules.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .log import Log
from .log_files import DiskLogStorage, recover_log
from .storage import replica_config

if TYPE_CHECKING:
    from .model import ClusterState, Topic

log = logging.getLogger("kstub.storage")


class RecoveryError(Exception):
    """The data directory cannot be used as it is (the message says why)."""


class DiskRecovery:
    """`DiskStore.recover`: the cluster as the data directory holds it."""

    # kept by `DiskStore`, as are its _open(), _log_dir(), _watch_rolls(), new_log()
    data_dir: Path
    meta_dir: Path

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
        scram_restore(cluster.scram_credentials, doc.get("scram", {}))
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
                partition.adding_replicas = list(p.get("adding", []))
                partition.removing_replicas = list(p.get("removing", []))
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
                doc = json.loads(snap.read_text())
                lg.producers.restore(doc["producers"], doc.get("transactions"))
                start = offset
                break
            except (ValueError, KeyError, OSError):
                log.warning("%s: unreadable producer snapshot; ignoring it", snap)
        lg.producers.forget_aborted_before(lg.segments[0].base_offset)
        replayed = lg.replay_producers(start)
        if replayed:
            log.info("%s: producer state rebuilt from %d batch(es)", name, replayed)


def scram_snapshot(store: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]]) -> dict[str, Any]:
    """SCRAM credentials as JSON: mechanism → user → [salt, stored key, server key (base64), iterations]."""
    b64 = base64.b64encode
    return {
        mechanism: {
            user: [b64(salt).decode(), b64(stored).decode(), b64(server).decode(), n]
            for user, (salt, stored, server, n) in users.items()
        }
        for mechanism, users in store.items()
    }


def scram_restore(store: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]], doc: dict[str, Any]) -> None:
    """Credentials kept from the last run, for the users the settings (``kstub.sasl.users``) do not name:
    those got their configured password at start, which wins."""
    unb64 = base64.b64decode
    for mechanism, users in doc.items():
        known = store.setdefault(mechanism, {})
        for user, (salt, stored, server, n) in users.items():
            known.setdefault(user, (unb64(salt), unb64(stored), unb64(server), int(n)))
