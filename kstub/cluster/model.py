"""The cluster model: brokers, topics, partitions, replicas and their logs.

State only, no sockets: the server (kstub/server.py) gives each broker a
listener and the handlers read and change this model. Everything runs on one
Trio thread, and no method here awaits in the middle of a change, so handlers
need no locks. Long-polls and acks=all produces wait on events registered
with `Partition.add_waiter`, set when a partition's high watermark or
leadership changes.

Each partition has a replica list, a leader, a leader epoch and an ISR, and
each replica has its own `Log`. The leader appends; followers copy from it
(kstub/cluster/replication.py) and report how far they got, as Kafka's
replica fetchers do; the leader tracks each follower (`ReplicaState`), moves
followers in and out of the ISR and advances the high watermark to what every
ISR member has. Leadership changes are the controller's
(kstub/cluster/controller.py).
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import trio

from kstub.control import ControlPlane
from kstub.protocol import ErrorCode
from kstub.protocol.records import ProducedBatch

from .config import BrokerConfig, InvalidConfig, topic_config_value, validate_topic_configs
from .controller import ClusterHooks, Controller
from .coordinator import GroupCoordinator
from .log import Log
from .producers import PartitionProducers, ProducerIds
from .replication import BrokerReplication
from .storage import StateStore

log = logging.getLogger("kstub.cluster")

MAX_TOPIC_NAME = 249
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


def unreachable_rf(rf: int, brokers: int) -> str:
    """Kafka's (KRaft controller's) message for a replication factor above the registered brokers."""
    return (
        f"Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be "
        f"reached because only {brokers} broker(s) are registered or some brokers have all their log "
        "directories cordoned."
    )


def topic_name_error(name: str) -> str | None:
    """Why `name` is not a valid topic name (Kafka's Topic.validate), or None."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_TOPIC_NAME:
        return f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME} characters"
    if not _TOPIC_NAME.fullmatch(name):
        return (
            f'Topic name "{name}" is illegal, it contains a character other than '
            "ASCII alphanumerics, '.', '_' and '-'"
        )
    return None


class ClusterError(Exception):
    """A request the cluster refuses, with the Kafka error code to answer."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class AppendResult:
    error: ErrorCode
    base_offset: int
    log_append_time: int = -1
    #: the offset after the appended (or, for a retried batch, the original) data:
    #: acks=all waits for the high watermark to reach it
    end_offset: int = -1


@dataclass(eq=False)
class Broker:
    node_id: int
    host: str
    port: int
    advertised_host: str
    rack: str | None = None
    #: listener name → the (host, port) advertised to clients connected through that listener
    endpoints: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: registered and unfenced in the controller's view: listed in Metadata, eligible for leadership
    alive: bool = True
    #: the broker's process is up: it serves its listener and runs its replica fetcher
    running: bool = True
    replication: BrokerReplication = field(default_factory=BrokerReplication, repr=False)


@dataclass(slots=True)
class ReplicaState:
    """What a partition tracks about one of its replicas, beside the replica's log."""

    #: the high watermark as this replica knows it (a follower learns it when it fetches)
    hw: int = 0
    #: the leader epoch this replica, as a follower, last reconciled its log with (truncation)
    synced_epoch: int = -1
    # The leader's view of this replica as a follower (Kafka's Replica), reset on every leader change:
    #: the log end offset it last reported (-1: not since this leader took over)
    leo: int = -1
    #: when it last had everything the leader had (Kafka's lastCaughtUpTimeMs)
    caught_up_ms: int = 0
    last_fetch_ms: int = 0
    last_fetch_leader_leo: int = -1


@dataclass(eq=False)
class Partition:
    topic: Topic
    index: int
    replicas: list[int]
    leader: int
    leader_epoch: int = 0
    isr: list[int] = field(default_factory=list)
    logs: dict[int, Log] = field(default_factory=dict)
    states: dict[int, ReplicaState] = field(default_factory=dict)
    high_watermark: int = 0
    deleted: bool = False
    _waiters: set[trio.Event] = field(default_factory=set, repr=False)

    def __repr__(self) -> str:
        return f"<Partition {self.name} leader={self.leader} epoch={self.leader_epoch} isr={self.isr}>"

    @property
    def name(self) -> str:
        return f"{self.topic.name}-{self.index}"

    @property
    def cluster(self) -> Cluster:
        return self.topic.cluster

    @property
    def leader_log(self) -> Log:
        return self.logs[self.leader]

    @property
    def producers(self) -> PartitionProducers:
        """The idempotent producers' state as the leader's log has it."""
        return self.leader_log.producers

    @property
    def log_start_offset(self) -> int:
        return self.leader_log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.leader_log.log_end_offset

    @property
    def leader_epoch_start_offset(self) -> int:
        """Where the current leader's epoch began in its log."""
        log = self.leader_log
        for epoch, start in reversed(log.epochs):
            if epoch <= self.leader_epoch:
                return start
        return log.log_start_offset

    def min_insync_replicas(self) -> int:
        return int(self.config("min.insync.replicas"))

    # --- the high watermark and those waiting on it -----------------------------

    def advance_high_watermark(self) -> None:
        """Move the high watermark up to what every ISR member has, and wake waiters.

        As in Kafka, the leader's high watermark never goes back; a follower's
        offset counts from its first fetch under this leader.
        """
        leader_log = self.leader_log
        hw = leader_log.log_end_offset
        for r in self.isr:
            if r != self.leader:
                hw = min(hw, self.states[r].leo)
        hw = max(hw, leader_log.log_start_offset)
        if hw > self.high_watermark:
            self.high_watermark = hw
            self.states[self.leader].hw = hw
            self.notify()
            if len(self.isr) > 1:
                # followers learn the new high watermark on their next fetch: let it happen now
                brokers = self.cluster.brokers
                for r in self.isr:
                    if r != self.leader and self.states[r].hw < hw:
                        brokers[r].replication.wake(self)

    def notify(self) -> None:
        for event in self._waiters:
            event.set()
        self._waiters.clear()

    def add_waiter(self, event: trio.Event) -> None:
        self._waiters.add(event)

    def remove_waiter(self, event: trio.Event) -> None:
        self._waiters.discard(event)

    def commit_status(self, end_offset: int, broker_id: int, leader_epoch: int) -> ErrorCode | None:
        """Kafka's checkEnoughReplicasReachOffset for an acks=all append ending at `end_offset`.

        None while the data is not committed yet; NOT_LEADER_OR_FOLLOWER once
        `broker_id` no longer leads (in the epoch of the append);
        NOT_ENOUGH_REPLICAS_AFTER_APPEND if it got committed by an ISR that
        shrank below min.insync.replicas meanwhile.
        """
        if self.deleted or self.leader != broker_id or self.leader_epoch != leader_epoch:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        if self.high_watermark < end_offset:
            return None
        if len(self.isr) < self.min_insync_replicas():
            return ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return ErrorCode.NONE

    def config(self, name: str) -> str:
        """A topic setting as the leader's broker sees it."""
        return self.topic.config(name, self.leader)

    # --- the leader's side of replication ---------------------------------------

    def append(self, batches: list[ProducedBatch], now_ms: int) -> AppendResult:
        """Append a produce request's batches for this partition (already validated).

        Idempotent batches are checked against the leader's producer state
        first: a retried batch is answered with its original offset and not
        stored again. Under LogAppendTime the broker stamps the batches with
        `now_ms`.
        """
        log_append_time = self.config("message.timestamp.type") == "LogAppendTime"
        append_time = now_ms if log_append_time else -1
        leader_log = self.leader_log
        for batch in batches:
            if batch.producer_id >= 0:
                verdict = leader_log.producers.check(
                    batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.offset_count
                )
                if verdict.error:
                    return AppendResult(verdict.error, -1)
                if verdict.duplicate_of is not None:
                    end = verdict.duplicate_of + batch.offset_count
                    return AppendResult(ErrorCode.NONE, verdict.duplicate_of, append_time, end)
        leo_before = leader_log.log_end_offset
        first = -1
        for batch in batches:
            if log_append_time:
                batch.set_log_append_time(now_ms)
            base = leader_log.append(batch, self.leader_epoch)
            if first < 0:
                first = base
        if len(self.replicas) > 1:
            self._leader_appended(leo_before, now_ms)
        self.advance_high_watermark()
        return AppendResult(ErrorCode.NONE, first, append_time, leader_log.log_end_offset)

    def _leader_appended(self, leo_before: int, now_ms: int) -> None:
        """Followers that had everything were caught up until now; wake their fetchers."""
        brokers = self.cluster.brokers
        leader_replication = brokers[self.leader].replication
        for r in self.replicas:
            if r == self.leader:
                continue
            if r in self.isr and self.states[r].leo >= leo_before:
                self.states[r].caught_up_ms = now_ms
                leader_replication.wake_isr_check()
            brokers[r].replication.wake(self)

    def follower_fetched(self, replica: int, fetch_offset: int, log_end_offset: int, now_ms: int) -> None:
        """A follower fetched from `fetch_offset` and now ends at `log_end_offset` (Kafka's updateFollowerFetchState).

        Updates when it was last caught up, lets it back into the ISR once it
        has the high watermark and the current epoch's start, and advances the
        high watermark.
        """
        st = self.states[replica]
        leader_leo = self.leader_log.log_end_offset
        if fetch_offset >= leader_leo or log_end_offset >= leader_leo:
            st.caught_up_ms = now_ms
        elif st.last_fetch_leader_leo >= 0 and fetch_offset >= st.last_fetch_leader_leo:
            st.caught_up_ms = max(st.caught_up_ms, st.last_fetch_ms)
        st.last_fetch_leader_leo = leader_leo
        st.last_fetch_ms = now_ms
        st.leo = log_end_offset
        if (
            replica not in self.isr
            and self.cluster.brokers[replica].alive
            and log_end_offset >= self.high_watermark
            and log_end_offset >= self.leader_epoch_start_offset
        ):
            self.isr = [r for r in self.replicas if r in self.isr or r == replica]
            self._save_state()
            log.info("%s: broker %d caught up, ISR expanded to %s", self.name, replica, self.isr)
            self.notify()
        self.advance_high_watermark()

    def lagging_followers(self) -> list[int]:
        """ISR followers that do not have everything the leader has."""
        leader_leo = self.leader_log.log_end_offset
        return [r for r in self.isr if r != self.leader and self.states[r].leo < leader_leo]

    def shrink_isr(self, replica: int) -> None:
        """Drop a follower from the ISR (never the last member) and advance the high watermark."""
        if replica not in self.isr or len(self.isr) == 1:
            return
        self.isr = [r for r in self.isr if r != replica]
        self._save_state()
        if self.leader >= 0:
            self.advance_high_watermark()
        self.notify()

    def _save_state(self) -> None:
        """Leader, epoch and ISR are cluster metadata: the store keeps them (with --data-dir)."""
        self.topic.cluster.store.save_metadata(self.topic.cluster)

    def restore_replica_states(self, now_ms: int) -> None:
        """Replica states for a partition recovered from disk (a restart of the whole cluster).

        Every replica kept its log; the leader counts what each in-sync
        follower has as replicated, so the high watermark comes back where the
        logs agree. Followers reconcile their logs with the leader's epochs
        again before fetching (synced_epoch -1), as after any restart.
        """
        for r in self.replicas:
            in_sync = r in self.isr
            self.states[r] = ReplicaState(
                synced_epoch=self.leader_epoch if r == self.leader else -1,
                leo=self.logs[r].log_end_offset if in_sync else -1,
                caught_up_ms=now_ms if in_sync else 0,
            )

    def become_leader(self, leader: int, isr: list[int], now_ms: int) -> None:
        """A new leader (or none: -1) and ISR, in a new leader epoch.

        The new leader starts from the high watermark it knew as a follower
        and records the epoch's start in its log, as Kafka does; it knows
        nothing of its followers until they fetch.
        """
        self.leader = leader
        self.leader_epoch += 1
        self.isr = list(isr)
        self._save_state()
        if leader >= 0:
            leader_log = self.logs[leader]
            leader_log.start_epoch(self.leader_epoch)
            self.states[leader].synced_epoch = self.leader_epoch
            self.high_watermark = min(self.states[leader].hw, leader_log.log_end_offset)
            for r, st in self.states.items():
                if r != leader:
                    st.leo = -1
                    st.caught_up_ms = now_ms if r in self.isr else 0
                    st.last_fetch_leader_leo = -1
            self.advance_high_watermark()
        self.notify()


@dataclass(eq=False)
class Topic:
    cluster: Cluster
    name: str
    topic_id: uuid.UUID
    configs: dict[str, str]
    partitions: list[Partition] = field(default_factory=list)

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0

    def config(self, name: str, broker_id: int | None = None) -> str:
        """A topic setting: explicit, else its broker synonyms (log.retention.ms...), else Kafka's default.

        Broker synonyms are looked up as `broker_id` sees them (its dynamic
        settings first), or cluster-wide if None.
        """
        return topic_config_value(name, self.configs, self.cluster.config, broker_id)


def assign_replicas(
    brokers: list[int], partitions: int, replication_factor: int, start: int, shift: int, first_partition: int = 0
) -> list[list[int]]:
    """Kafka's rack-unaware assignment: leaders round-robin from `start`, followers shifted.

    As in Kafka's AdminUtils.assignReplicasToBrokers, the shift grows by one
    each time the leaders have gone once around the brokers, so followers
    spread too.
    """
    n = len(brokers)
    result: list[list[int]] = []
    current = first_partition
    next_shift = shift
    for p in range(partitions):
        if current > 0 and current % n == 0:
            next_shift += 1
        first = (current + start) % n
        replicas = [brokers[first]]
        for j in range(replication_factor - 1):
            s = 1 + (next_shift + j) % (n - 1)
            replicas.append(brokers[(first + s) % n])
        result.append(replicas)
        current += 1
        del p
    return result


class Cluster:
    """A whole Kafka cluster in one process: its brokers and its data."""

    def __init__(self, config: BrokerConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or BrokerConfig()
        self.cluster_id: str = self.config["cluster.id"]
        self.brokers: dict[int, Broker] = {}
        self.topics: dict[str, Topic] = {}
        self.producer_ids = ProducerIds()
        self.controller_id = -1
        self.control = ControlPlane(self)
        #: callbacks fired on broker stop/start, leadership and controller changes
        self.hooks = ClusterHooks()
        self.controller = Controller(self)
        self.groups = GroupCoordinator(self)
        #: SCRAM credentials: mechanism → user → (salt, stored key, server key, iterations) (kstub/security.py)
        self.scram_credentials: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]] = {}
        self._clock = clock
        self._assignment_counter = itertools.count()
        #: where logs and metadata live: memory unless `kstub serve --data-dir` (kstub/cluster/storage.py)
        self.store: StateStore = StateStore()

    # --- time ---------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- brokers ------------------------------------------------------------

    def add_broker(self, node_id: int, host: str, port: int, advertised_host: str | None = None) -> Broker:
        broker = Broker(node_id, host, port, advertised_host or host)
        self.brokers[node_id] = broker
        if self.controller_id < 0:
            self.controller_id = node_id
        return broker

    def live_brokers(self) -> list[Broker]:
        return [b for b in sorted(self.brokers.values(), key=lambda b: b.node_id) if b.alive]

    # --- topics -------------------------------------------------------------

    def check_new_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None] | None = None,
        assignments: Mapping[int, list[int]] | None = None,
    ) -> dict[str, str]:
        """Validate a topic creation as Kafka does; return its explicit configs."""
        reason = topic_name_error(name)
        if reason:
            raise ClusterError(ErrorCode.INVALID_TOPIC_EXCEPTION, reason)
        if name in self.topics:
            raise ClusterError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        live = [b.node_id for b in self.live_brokers()]
        if assignments:
            if partitions != -1 or replication_factor != -1:
                raise ClusterError(
                    ErrorCode.INVALID_REQUEST,
                    "Both numPartitions or replicationFactor and replicasAssignments were set.",
                )
            if sorted(assignments) != list(range(len(assignments))):
                raise ClusterError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT, "Partitions should be a consecutive 0-based integer sequence"
                )
            sizes = {len(r) for r in assignments.values()}
            for replicas in assignments.values():
                if not replicas or len(set(replicas)) != len(replicas) or not set(replicas) <= set(live):
                    raise ClusterError(
                        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                        f"Invalid replica assignment {replicas}: unknown, dead or duplicate brokers",
                    )
            if len(sizes) != 1:
                raise ClusterError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT, "All partitions should have the same number of replicas"
                )
        else:
            if partitions <= 0:
                raise ClusterError(
                    ErrorCode.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value."
                )
            if replication_factor <= 0:
                raise ClusterError(
                    ErrorCode.INVALID_REPLICATION_FACTOR,
                    "Replication factor must be larger than 0, or -1 to use the default value.",
                )
            if replication_factor > len(live):
                raise ClusterError(ErrorCode.INVALID_REPLICATION_FACTOR, unreachable_rf(replication_factor, len(live)))
        try:
            return validate_topic_configs(configs or {})
        except InvalidConfig as exc:
            raise ClusterError(ErrorCode.INVALID_CONFIG, str(exc)) from None

    def create_topic(
        self,
        name: str,
        partitions: int = -1,
        replication_factor: int = -1,
        configs: Mapping[str, str | None] | None = None,
        assignments: Mapping[int, list[int]] | None = None,
    ) -> Topic:
        if not assignments:
            if partitions == -1:
                partitions = self.config["num.partitions"]
            if replication_factor == -1:
                replication_factor = self.config["default.replication.factor"]
        explicit = self.check_new_topic(name, partitions, replication_factor, configs, assignments)
        topic = Topic(self, name, uuid.uuid4(), explicit)
        if assignments:
            replica_lists = [list(assignments[p]) for p in range(len(assignments))]
        else:
            replica_lists = self._assign(partitions, replication_factor)
        for replicas in replica_lists:
            self._add_partition(topic, replicas)
        self.topics[name] = topic
        self.store.save_metadata(self)
        log.info(
            "created topic %s: %d partitions, replication factor %d",
            name,
            len(topic.partitions),
            topic.replication_factor,
        )
        return topic

    def _assign(self, partitions: int, replication_factor: int, first_partition: int = 0) -> list[list[int]]:
        live = [b.node_id for b in self.live_brokers()]
        n = next(self._assignment_counter)
        return assign_replicas(
            live,
            partitions,
            replication_factor,
            start=n % len(live),
            shift=(n // len(live)) % max(1, len(live) - 1),
            first_partition=first_partition,
        )

    def _add_partition(self, topic: Topic, replicas: list[int]) -> Partition:
        partition = Partition(topic, len(topic.partitions), replicas, leader=replicas[0], isr=list(replicas))
        for r in replicas:
            partition.logs[r] = self.store.new_log(self, partition, r)
            partition.states[r] = ReplicaState(synced_epoch=0)
        partition.leader_log.start_epoch(0)
        now = self.now_ms()
        for r in replicas[1:]:
            partition.states[r].caught_up_ms = now
            partition.states[r].leo = 0
        topic.partitions.append(partition)
        return partition

    def add_partitions(
        self, name: str, new_total: int, *, assignments: list[list[int]] | None = None
    ) -> list[Partition]:
        """Grow a topic to `new_total` partitions (CreatePartitions); never shrink it.

        New partitions are placed as Kafka places added partitions: the
        round-robin starts at partition 0's leader and numbers on from the
        current count; or `assignments` gives one replica list per new
        partition (validated by the caller). Shrinking or keeping the count is
        INVALID_PARTITIONS.
        """
        topic = self.topics.get(name)
        if topic is None:
            raise ClusterError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")
        current = len(topic.partitions)
        if new_total < current:
            raise ClusterError(
                ErrorCode.INVALID_PARTITIONS,
                f"Topic currently has {current} partitions, which is higher than the requested {new_total}.",
            )
        if new_total == current:
            raise ClusterError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partitions.")
        if assignments is None:
            live = [b.node_id for b in self.live_brokers()]
            rf = topic.replication_factor
            if rf > len(live):
                raise ClusterError(ErrorCode.INVALID_REPLICATION_FACTOR, unreachable_rf(rf, len(live)))
            leader0 = topic.partitions[0].leader if topic.partitions else -1
            start = live.index(leader0) if leader0 in live else 0
            assignments = assign_replicas(live, new_total - current, rf, start, start, first_partition=current)
        added = [self._add_partition(topic, replicas) for replicas in assignments]
        self.store.save_metadata(self)
        log.info("topic %s: %d -> %d partitions", name, current, new_total)
        return added

    def delete_topic(self, name: str) -> Topic:
        topic = self.topics.pop(name, None)
        if topic is None:
            raise ClusterError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
        for partition in topic.partitions:
            partition.deleted = True
            partition.notify()
        self.store.delete_topic(self, topic)
        self.groups.on_topic_deleted(name)
        log.info("deleted topic %s", name)
        return topic

    def run_retention(self, now_ms: int | None = None) -> int:
        """Run a retention pass now (kstub/cluster/retention.py); returns the number of segments deleted."""
        from .retention import retention_pass

        return retention_pass(self, self.now_ms() if now_ms is None else now_ms)

    def topic_by_id(self, topic_id: uuid.UUID) -> Topic | None:
        for topic in self.topics.values():
            if topic.topic_id == topic_id:
                return topic
        return None

    def partition(self, topic: str, index: int) -> Partition | None:
        t = self.topics.get(topic)
        if t is None or not 0 <= index < len(t.partitions):
            return None
        return t.partitions[index]

    def leader_partition(self, topic: str, index: int, broker_id: int) -> Partition:
        """The partition, if `broker_id` leads it; else the error Kafka answers."""
        partition = self.partition(topic, index)
        if partition is None:
            raise ClusterError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
        if partition.leader != broker_id:
            # Kafka answers this whether another broker leads or none does (leader -1): clients refresh metadata.
            raise ClusterError(ErrorCode.NOT_LEADER_OR_FOLLOWER, "This server is not the leader for that partition.")
        return partition

    def iter_partitions(self) -> Iterable[Partition]:
        for topic in self.topics.values():
            yield from topic.partitions

    def reset(self) -> None:
        """Drop every topic and group: a clean cluster for the next test."""
        for name in list(self.topics):
            self.delete_topic(name)
        self.groups.reset()
        self.control.clear()
