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
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from kstub.control import ControlPlane
from kstub.protocol import ErrorCode

from .acls import Authorizer
from .cleaner import LogCleaner
from .config import BrokerConfig, InvalidConfig, TopicSettings, topic_config_value, validate_topic_configs
from .controller import ClusterHooks, Controller
from .coordinator import GroupCoordinator
from .fetch_sessions import FetchSessionCache
from .partition import Partition, ReplicaState
from .producers import ProducerIds
from .quotas import ClientQuotas
from .replication import BrokerReplication
from .stats import BrokerStats
from .storage import StateStore
from .transactions import TransactionCoordinator

if TYPE_CHECKING:
    from kstub.kafka_versions import KafkaVersion

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
    #: traffic counters (requests, bytes, connections) for metrics
    stats: BrokerStats = field(default_factory=BrokerStats, repr=False)
    #: incremental fetch sessions (KIP-227), per broker as in Kafka
    fetch_sessions: FetchSessionCache = field(default_factory=FetchSessionCache, repr=False)


@dataclass(eq=False)
class Topic:
    cluster: ClusterState
    name: str
    topic_id: uuid.UUID
    #: the topic's own overrides (DYNAMIC_TOPIC_CONFIG), read-only: a change assigns a new mapping
    configs: Mapping[str, str]
    partitions: list[Partition] = field(default_factory=list)
    #: effective values by (name, broker id), valid while the overrides and the broker settings are unchanged
    _resolved: dict[tuple[str, int | None], str] = field(default_factory=dict, init=False, repr=False)
    _resolved_generation: int = field(default=-1, init=False, repr=False)
    #: typed values (TopicSettings' memo) by broker id, valid as long as `_resolved`
    _typed: dict[int | None, dict[tuple[str, str], Any]] = field(default_factory=dict, init=False, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "configs":
            value = MappingProxyType(dict(value))
            self._resolved_generation = -1
        super().__setattr__(name, value)

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0

    def config(self, name: str, broker_id: int | None = None) -> str:
        """A topic setting: explicit, else its broker synonyms (log.retention.ms...), else Kafka's default.

        Broker synonyms are looked up as `broker_id` sees them (its dynamic
        settings first), or cluster-wide if None. Read several times by every
        produce and follower append, so resolved values are kept until a
        setting changes (the broker settings count their changes).
        """
        self._drop_stale_values()
        try:
            return self._resolved[name, broker_id]
        except KeyError:
            value = self._resolved[name, broker_id] = topic_config_value(
                name, self.configs, self.cluster.config, broker_id
            )
            return value

    def _drop_stale_values(self) -> None:
        """Forget the resolved and typed values if a setting changed since they were kept."""
        generation = self.cluster.config.generation
        if self._resolved_generation != generation:
            self._resolved.clear()
            self._typed.clear()
            self._resolved_generation = generation

    def _typed_memo(self, broker_id: int | None) -> dict[tuple[str, str], Any]:
        self._drop_stale_values()
        try:
            return self._typed[broker_id]
        except KeyError:
            memo = self._typed[broker_id] = {}
            return memo

    def settings(self, broker_id: int | None = None) -> TopicSettings:
        """The topic's settings as `broker_id` sees them (cluster-wide if None), read typed (`get_int`...)."""
        return TopicSettings(lambda name: self.config(name, broker_id), lambda: self._typed_memo(broker_id))


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


class ClusterState:
    """A whole Kafka cluster in one process: its brokers and its data."""

    def __init__(self, config: BrokerConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or BrokerConfig()
        self.cluster_id: str = self.config["cluster.id"]
        self.brokers: dict[int, Broker] = {}
        self.topics: dict[str, Topic] = {}
        self._topics_by_id: dict[uuid.UUID, Topic] = {}  # see topic_by_id
        self.producer_ids = ProducerIds()
        self.controller_id = -1
        self.control = ControlPlane(self)
        #: callbacks fired on broker stop/start, leadership and controller changes
        self.hooks = ClusterHooks()
        self.controller = Controller(self)
        self.groups = GroupCoordinator(self)
        #: the transaction coordinator (kstub/cluster/transactions)
        self.transactions = TransactionCoordinator(self)
        #: SCRAM credentials: mechanism → user → (salt, stored key, server key, iterations) (kstub/security.py)
        self.scram_credentials: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]] = {}
        #: client quotas (DescribeClientQuotas / AlterClientQuotas) and the byte rates measured against them
        self.client_quotas = ClientQuotas()
        #: ACL bindings and the authorizer (kstub/cluster/acls.py); disabled without authorizer.class.name
        self.acls = Authorizer.from_config(self.config)
        self._clock = clock
        self._assignment_counter = itertools.count()
        #: the Kafka release posed as (`kstub serve --kafka-version`): checked now, its tables made on first use
        self._kafka_version_setting: str = self.config["kstub.kafka.version"]
        #: where logs and metadata live: memory unless `kstub serve --data-dir` (kstub/cluster/storage.py)
        self.store: StateStore = StateStore()
        #: log compaction (kstub/cluster/cleaner.py): its task runs on the served cluster's nursery
        self.cleaner = LogCleaner(self)

    @property
    def kafka_version(self) -> KafkaVersion | None:
        """The Apache Kafka release kstub poses as (kstub/kafka_versions.py), or None: kstub's newest surface."""
        if not self._kafka_version_setting:  # the usual case: no need to load the releases' tables
            return None
        from kstub.kafka_versions import resolve

        return resolve(self._kafka_version_setting)

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
        collides = name.replace(".", "_")
        for existing in self.topics:
            if existing.replace(".", "_") == collides:
                raise ClusterError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION,
                    f"Topic '{name}' collides with existing topic: {existing}",
                )
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
        for key, value in (configs or {}).items():
            if value is None:  # CreateTopics: Kafka refuses a null config value
                raise ClusterError(ErrorCode.INVALID_CONFIG, f"Null value not supported for topic configs: {key}")
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
        """The topic with this id. Fetch v13+ names every partition by id, so the index is kept: an entry is
        good while its topic is still the one registered under its name; a miss rebuilds it from `topics`."""
        topic = self._topics_by_id.get(topic_id)
        if topic is None or self.topics.get(topic.name) is not topic:
            self._topics_by_id = {t.topic_id: t for t in self.topics.values()}
            topic = self._topics_by_id.get(topic_id)
        return topic

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
        self.transactions.reset()
        self.control.clear()
