"""The control plane: make the cluster misbehave the way real clusters do.

`cluster.control` is a `ControlPlane`. Its actions are the Python API; the
admin HTTP API (kstub/control_http.py) and ``kstub ctl`` call the same methods.
Every action is logged (logger ``kstub.control``) and kept in `actions`.

Brokers (need a served cluster; async):
- `stop_broker(id)`: controlled shutdown: leaderships move away first, then
  the broker closes its listener, and its connections once their current
  request is answered.
- `kill_broker(id)`: crash: connections close mid-request; the controller
  notices after broker.session.timeout.ms.
- `start_broker(id)`: back on the same port; it catches up and rejoins the ISRs.
- `drop_connections(id)`: close every client connection of a broker now.

Replication, per broker: `pause_replication` / `resume_replication` (its
replica fetcher copies nothing), `isolate` / `heal` (it neither fetches nor
is fetched from), `set_replication_delay(id, ms)` (each replication round
takes that long).

Leadership: `move_leader(topic, partition, broker)`, `elect_preferred_leaders()`.

Log compaction: `clean_logs(topic=None, force=False)` runs a cleaning pass now (async).

Faults on requests, each firing for the next `count` matching requests (None:
until removed) and then retiring:
- `inject_error(api, code, topic=, partition=, broker_id=)`: answer the
  request with that error code, as a broker would, without performing it.
  Topic-scoped APIs (Produce, Fetch, ListOffsets, Metadata, CreateTopics,
  DeleteTopics, OffsetForLeaderEpoch) get it on the matching topics or
  partitions (and the others are served); other APIs in their top-level
  error_code.
- `delay_response(api, ms)`: answer late.
- `drop_response(api)`: perform the request but close the connection instead
  of answering (a lost reply: idempotent producers retry).
- `drop_request(api)`: close the connection without performing the request.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kstub.cluster.model import Broker, ClusterState
    from kstub.server import ClusterServer

from kstub.control_faults import (  # noqa: F401  (re-exported: the control plane's names)
    FAULT_KINDS,
    PARTITION_SCOPED_APIS,
    TOPIC_SCOPED_APIS,
    ControlError,
    Fault,
    RequestFaults,
    api_key_of,
    error_code_of,
)

log = logging.getLogger("kstub.control")


class ControlPlane(RequestFaults):
    def __init__(self, cluster: ClusterState | None = None) -> None:
        self._cluster = cluster
        self._runtime: ClusterServer | None = None
        #: active request faults; empty on the fast path
        self.faults: list[Fault] = []
        #: every action taken, oldest first (the last 1000)
        self.actions: deque[dict[str, Any]] = deque(maxlen=1000)
        self._ids = itertools.count(1)
        #: called with each action as it is recorded (the console's live feed listens here)
        self.listeners: list[Callable[[dict[str, Any]], Any]] = []

    def attach(self, runtime: ClusterServer) -> None:
        """Called by the server: lets broker actions reach the brokers' tasks."""
        self._runtime = runtime

    @property
    def admin_port(self) -> int | None:
        """The admin HTTP API's port, if the served cluster has one."""
        return None if self._runtime is None else self._runtime.admin_port

    @property
    def admin_token(self) -> str | None:
        """The admin HTTP API's bearer token, if it requires one."""
        access = None if self._runtime is None else self._runtime.admin_access
        return None if access is None else access.token

    @property
    def cluster(self) -> ClusterState:
        assert self._cluster is not None, "this control plane belongs to no cluster"
        return self._cluster

    def _record(self, action: str, **params: Any) -> None:
        shown = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
        log.info("control: %s%s", action, f" ({shown})" if shown else "")
        entry = {"time": round(time.time(), 3), "action": action, **params}
        self.actions.append(entry)
        for listener in list(self.listeners):
            try:
                listener(entry)
            except Exception:
                log.exception("control: action listener %r failed", listener)

    def clear(self) -> None:
        """Remove every fault and replication knob: a well-behaved cluster again."""
        self.faults.clear()
        if self._cluster is not None:
            for broker in self.cluster.brokers.values():
                rep = broker.replication
                rep.paused = rep.isolated = False
                rep.set_delay(0)
                rep.wake(None)
        self._record("clear")

    # --- brokers -----------------------------------------------------------------

    def _broker(self, broker_id: int) -> Broker:
        broker = self.cluster.brokers.get(broker_id)
        if broker is None:
            raise ControlError(f"no broker {broker_id}", 404)
        return broker

    def _server(self) -> ClusterServer:
        if self._runtime is None:
            raise ControlError("the cluster is not being served", 409)
        return self._runtime

    async def _lifecycle(self, action: str, broker_id: int) -> None:
        self._broker(broker_id)
        server = self._server()
        self._record(f"{action}-broker", broker=broker_id)
        try:
            await getattr(server, f"{action}_broker")(broker_id)
        except ValueError as exc:
            raise ControlError(str(exc), 409) from None
        except OSError as exc:  # its port was taken meanwhile
            raise ControlError(f"broker {broker_id} cannot listen again: {exc}", 409) from None

    async def stop_broker(self, broker_id: int) -> None:
        await self._lifecycle("stop", broker_id)

    async def kill_broker(self, broker_id: int) -> None:
        await self._lifecycle("kill", broker_id)

    async def start_broker(self, broker_id: int) -> None:
        await self._lifecycle("start", broker_id)

    def drop_connections(self, broker_id: int) -> int:
        self._broker(broker_id)
        count = self._server().drop_connections(broker_id)
        self._record("drop-connections", broker=broker_id, connections=count)
        return count

    def pause_replication(self, broker_id: int) -> None:
        self._broker(broker_id).replication.paused = True
        self._record("pause-replication", broker=broker_id)

    def resume_replication(self, broker_id: int) -> None:
        rep = self._broker(broker_id).replication
        rep.paused = False
        rep.wake(None)
        self._record("resume-replication", broker=broker_id)

    def isolate(self, broker_id: int) -> None:
        self._broker(broker_id).replication.isolated = True
        self._record("isolate", broker=broker_id)

    def heal(self, broker_id: int) -> None:
        self._broker(broker_id).replication.isolated = False
        for broker in self.cluster.brokers.values():
            broker.replication.wake(None)
        self._record("heal", broker=broker_id)

    def set_replication_delay(self, broker_id: int, delay_ms: int) -> None:
        if delay_ms < 0:
            raise ControlError("delay must be >= 0 ms")
        rep = self._broker(broker_id).replication
        rep.set_delay(delay_ms)
        rep.wake(None)
        self._record("replication-delay", broker=broker_id, ms=delay_ms)

    # --- leadership --------------------------------------------------------------

    def move_leader(self, topic: str, partition: int, broker_id: int) -> None:
        from kstub.cluster.controller import ElectionError

        p = self.cluster.partition(topic, partition)
        if p is None:
            raise ControlError(f"no partition {topic}-{partition}", 404)
        self._record("move-leader", topic=topic, partition=partition, broker=broker_id)
        try:
            self.cluster.controller.move_leader(p, broker_id)
        except ElectionError as exc:
            raise ControlError(f"{exc.code.name}: {exc}", 409) from None

    def reassign(self, topic: str, partition: int, replicas: list[int] | None) -> dict[str, Any]:
        """Reassign a partition to `replicas` (None: cancel the reassignment in progress), as
        AlterPartitionReassignments does (kstub/cluster/reassignment.py); returns its state after."""
        from kstub.cluster.reassignment import ReassignmentError, reassign

        p = self.cluster.partition(topic, partition)
        if p is None:
            raise ControlError(f"no partition {topic}-{partition}", 404)
        self._record("reassign", topic=topic, partition=partition, replicas=replicas)
        try:
            reassign(self.cluster, p, replicas)
        except ReassignmentError as exc:
            raise ControlError(f"{exc.code.name}: {exc}", 409) from None
        return self._reassignment_state(p)

    def describe_reassignments(self) -> list[dict[str, Any]]:
        """The reassignments in progress (ListPartitionReassignments)."""
        from kstub.cluster.reassignment import ongoing

        return [self._reassignment_state(p) for p in ongoing(self.cluster)]

    @staticmethod
    def _reassignment_state(p: Any) -> dict[str, Any]:
        return {
            "topic": p.topic.name,
            "partition": p.index,
            "replicas": list(p.replicas),
            "adding": list(p.adding_replicas),
            "removing": list(p.removing_replicas),
            "leader": p.leader,
            "isr": list(p.isr),
        }

    def elect_preferred_leaders(self) -> list[str]:
        moved = [p.name for p in self.cluster.controller.elect_preferred()]
        self._record("elect-preferred-leaders", moved=moved)
        return moved

    async def clean_logs(self, topic: str | None = None, *, force: bool = False) -> list[dict[str, Any]]:
        """Run a log-cleaning pass now (compacted topics, or `topic`); `force` ignores min.cleanable.dirty.ratio.

        Returns one entry per replica log cleaned (kstub/cluster/cleaner.py).
        """
        if topic is not None and topic not in self.cluster.topics:
            raise ControlError(f"no topic {topic!r}", 404)
        cleaned = await self.cluster.cleaner.clean_now(topic, force=force)
        self._record("clean-logs", topic=topic, force=force, cleaned=len(cleaned))
        return cleaned

    # --- views ----------------------------------------------------------------

    def describe_cluster(self) -> dict[str, Any]:
        cluster = self.cluster
        brokers = []
        for b in sorted(cluster.brokers.values(), key=lambda b: b.node_id):
            if self._runtime is not None and b.node_id in self._runtime.brokers:
                state = self._runtime.state(b.node_id)
            else:
                state = "running" if b.running else "stopped"
            brokers.append(
                {
                    "id": b.node_id,
                    "host": b.advertised_host,
                    "port": b.port,
                    "state": state,
                    "alive": b.alive,
                    "controller": b.node_id == cluster.controller_id,
                    "replication": b.replication.snapshot(),
                }
            )
        return {"cluster_id": cluster.cluster_id, "controller_id": cluster.controller_id, "brokers": brokers}

    def describe_partitions(self, topic: str | None = None) -> list[dict[str, Any]]:
        cluster = self.cluster
        if topic is not None and topic not in cluster.topics:
            raise ControlError(f"no topic {topic}", 404)
        out = []
        for p in cluster.iter_partitions():
            if topic is not None and p.topic.name != topic:
                continue
            out.append(
                {
                    "topic": p.topic.name,
                    "partition": p.index,
                    "leader": p.leader,
                    "leader_epoch": p.leader_epoch,
                    "replicas": list(p.replicas),
                    "isr": list(p.isr),
                    "high_watermark": p.high_watermark,
                    "replica_logs": [
                        {
                            "broker": r,
                            "log_start_offset": p.logs[r].log_start_offset,
                            "log_end_offset": p.logs[r].log_end_offset,
                            "high_watermark": p.high_watermark if r == p.leader else p.states[r].hw,
                        }
                        for r in p.replicas
                    ],
                }
            )
        return out

    def describe_faults(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.faults]
