"""The broker settings kstub knows, named and defaulted as in Kafka's server.properties."""

from __future__ import annotations

from .configdef import INT_MAX, LONG_MAX, ConfigType, Setting, _bool, _int, _ip_overrides
from .topic_configs import TOPIC_CONFIGS


def _kafka_version(value: object) -> str:
    """A release kstub can pose as (kstub/kafka_versions.py), or "" for kstub's own newest surface."""
    from kstub.kafka_versions import release_name

    text = str(value).strip()
    if text and text.lower() not in ("latest", "newest"):
        release_name(text)  # raises UnknownKafkaVersion (a ValueError) naming the releases known
    return text


_L = ConfigType.LONG

#: Broker settings kstub knows, with Kafka's defaults.
BROKER_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("auto.create.topics.enable", _bool, True, "create unknown topics on Metadata/Produce"),
        Setting("num.partitions", _int, 1, "partitions of an auto-created topic"),
        Setting("default.replication.factor", _int, 1, "replication factor of an auto-created topic"),
        Setting("message.max.bytes", _int, 1048588, "largest record batch accepted"),
        Setting("max.decompressed.message.bytes", _int, 2147483639, "largest decompressed record accepted"),
        Setting("socket.request.max.bytes", _int, 104857600, "largest request frame accepted"),
        Setting("fetch.max.bytes", _int, 57671680, "most record bytes in one Fetch response (one batch at least)"),
        Setting(
            "max.incremental.fetch.session.cache.slots",
            _int,
            1000,
            "incremental fetch sessions a broker keeps (KIP-227; spread over 8 shards as in Kafka)",
        ),
        Setting("connections.max.idle.ms", _int, 600000, "close a connection idle (or mid-request) this long", _L),
        Setting("max.connections", _int, INT_MAX, "most client connections a broker holds at once"),
        Setting("max.connections.per.ip", _int, INT_MAX, "most connections from one address"),
        Setting(
            "max.connections.per.ip.overrides",
            _ip_overrides,
            "",
            "per-address limits, host:count,host:count (overrides max.connections.per.ip)",
            ConfigType.STRING,
        ),
        Setting(
            "kstub.request.receive.timeout.ms",
            _int,
            30000,
            "close a connection whose request has begun but not fully arrived this long after (not Kafka's)",
            _L,
        ),
        Setting("min.insync.replicas", _int, 1),
        Setting("log.message.timestamp.type", str, "CreateTime"),
        Setting("delete.topic.enable", _bool, True),
        Setting("group.initial.rebalance.delay.ms", _int, 3000, "how long a new group waits for more members"),
        Setting("group.min.session.timeout.ms", _int, 6000, "smallest session timeout a member may ask for"),
        Setting("group.max.session.timeout.ms", _int, 1800000, "largest session timeout a member may ask for"),
        Setting("group.max.size", _int, 2147483647, "most members a group may have"),
        Setting("group.consumer.heartbeat.interval.ms", _int, 5000, "consumer protocol: heartbeat interval"),
        Setting("group.consumer.session.timeout.ms", _int, 45000, "consumer protocol: member session timeout"),
        Setting("group.consumer.min.session.timeout.ms", _int, 45000),
        Setting("group.consumer.max.session.timeout.ms", _int, 60000),
        Setting("group.consumer.min.heartbeat.interval.ms", _int, 5000),
        Setting("group.consumer.max.heartbeat.interval.ms", _int, 15000),
        Setting(
            "group.consumer.assignment.interval.ms", _int, 1000, "consumer protocol: least time between assignments"
        ),
        Setting("group.consumer.max.size", _int, 2147483647, "consumer protocol: most members a group may have"),
        Setting(
            "group.consumer.assignors", str, "uniform,range", "consumer protocol: server assignors", ConfigType.LIST
        ),
        Setting("group.consumer.migration.policy", str, "bidirectional"),
        Setting("offsets.retention.minutes", _int, 10080, "how long offsets outlive an empty group"),
        Setting("offsets.retention.check.interval.ms", _int, 600000, "how often expired offsets are removed"),
        Setting("offsets.topic.num.partitions", _int, 50, "spreads groups over coordinators (by group id hash)"),
        Setting("offset.metadata.max.bytes", _int, 4096, "largest metadata string of a committed offset"),
        Setting("offsets.topic.replication.factor", _int, 3, type=ConfigType.SHORT),
        Setting("transaction.state.log.num.partitions", _int, 50, "spreads transactional ids over coordinators"),
        Setting("transaction.state.log.replication.factor", _int, 3, type=ConfigType.SHORT),
        Setting("transaction.state.log.min.isr", _int, 2),
        Setting("transaction.max.timeout.ms", _int, 900000, "largest transaction.timeout.ms a producer may ask for"),
        Setting("transactional.id.expiration.ms", _int, 604800000, "forget a transactional id idle this long"),
        Setting("transaction.partition.verification.enable", _bool, True, "check transactional produces (KIP-890)"),
        Setting("log.retention.ms", _int, None, "retention.ms of topics without their own", _L),
        Setting("log.retention.minutes", _int, None, "used when log.retention.ms is not set"),
        Setting("log.retention.hours", _int, 168, "used when neither log.retention.ms nor .minutes is set"),
        Setting("log.retention.bytes", _int, -1, "retention.bytes of topics without their own", _L),
        Setting("log.retention.check.interval.ms", _int, 300000, "how often the retention pass runs", _L),
        Setting("log.segment.bytes", _int, 1073741824, "segment.bytes of topics without their own"),
        Setting("log.roll.ms", _int, None, "segment.ms of topics without their own", _L),
        Setting("log.roll.hours", _int, 168, "used when log.roll.ms is not set"),
        Setting("log.cleanup.policy", str, "delete", type=ConfigType.LIST),
        Setting("log.flush.interval.messages", _int, LONG_MAX, "flush.messages of topics without their own", _L),
        Setting("log.flush.interval.ms", _int, None, "flush.ms of topics without their own", _L),
        Setting("log.flush.scheduler.interval.ms", _int, LONG_MAX, "how often the flusher checks flush.ms", _L),
        Setting("log.index.interval.bytes", _int, 4096),
        Setting("log.index.size.max.bytes", _int, 10485760),
        Setting("log.roll.jitter.ms", _int, None, type=_L),
        Setting("log.roll.jitter.hours", _int, 0),
        Setting("log.cleaner.delete.retention.ms", _int, 86400000, type=_L),
        Setting("log.cleaner.min.compaction.lag.ms", _int, 0, type=_L),
        Setting("log.cleaner.max.compaction.lag.ms", _int, LONG_MAX, type=_L),
        Setting("log.cleaner.min.cleanable.ratio", float, 0.5, type=ConfigType.DOUBLE),
        Setting("log.segment.delete.delay.ms", _int, 60000, type=_L),
        Setting("log.preallocate", _bool, False),
        Setting("log.message.timestamp.before.max.ms", _int, LONG_MAX, type=_L),
        Setting("log.message.timestamp.after.max.ms", _int, 3_600_000, type=_L),
        Setting("log.local.retention.ms", _int, -2, type=_L),
        Setting("log.remote.copy.lag.ms", _int, 0, type=_L),
        Setting("log.remote.copy.lag.bytes", _int, -1, type=_L),
        Setting("log.local.retention.bytes", _int, -2, type=_L),
        Setting("unclean.leader.election.enable", _bool, False),
        Setting("compression.type", str, "producer"),
        Setting("compression.gzip.level", _int, -1),
        Setting("compression.lz4.level", _int, 9),
        Setting("compression.zstd.level", _int, 3),
        Setting("producer.id.expiration.ms", _int, 86400000),
        Setting("cluster.id", str, "kstub-cluster-0000000000"),
        Setting(
            "kstub.fsync.on.ack",
            _bool,
            False,
            "with --data-dir: fsync a partition's new data before acknowledging a produce (crash-safe acks)",
        ),
        Setting(
            "kstub.memory.budget.bytes",
            _int,
            134217728,
            "without --data-dir: bytes of batches kept in memory per process; older ones spill to temporary files"
            " (-1: no limit)",
            _L,
        ),
        Setting("kstub.memory.spill.dir", str, "", "where the spill directory is made (empty: the system temp dir)"),
        Setting(
            "kstub.kafka.version",
            _kafka_version,
            "",
            "pose as this Apache Kafka release (2.8, 3.0-3.9, 4.0-4.4): its API versions and features "
            "(empty: kstub's newest surface; docs/kafka-versions.md)",
        ),
        # replication and the controller
        Setting("replica.lag.time.max.ms", _int, 30000, "a follower this far behind leaves the ISR"),
        Setting("replica.fetch.max.bytes", _int, 1048576, "bytes a follower copies per partition per round"),
        Setting("broker.session.timeout.ms", _int, 9000, "how long after a kill the controller notices"),
        Setting("auto.leader.rebalance.enable", _bool, True, "move leadership back to preferred replicas"),
        Setting("leader.imbalance.check.interval.seconds", _int, 300),
        Setting("leader.imbalance.per.broker.percentage", _int, 10),
    )
}

#: Broker settings Kafka lets AlterConfigs change at runtime: the first broker synonym of each topic config.
DYNAMIC_BROKER_SETTINGS: frozenset[str] = frozenset(s.synonyms[0].name for s in TOPIC_CONFIGS.values() if s.synonyms)


def broker_synonyms(name: str) -> list[str]:
    """Kafka's DynamicBrokerConfig.brokerConfigSynonyms: the chain a broker setting belongs to."""
    for setting in TOPIC_CONFIGS.values():
        names = [s.name for s in setting.synonyms]
        if len(names) > 1 and name in names:
            return names
    return [name]


#: listener, TLS and SASL settings (prefixes), read by kstub/security.py from their string values
SECURITY_SETTINGS = (
    "listeners",
    "advertised.listeners",
    "listener.",
    "ssl.",
    "sasl.",
    "kstub.sasl.",
    "inter.broker.listener.name",
    "connection.failed.authentication.delay.ms",
    "connections.max.reauth.ms",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
)
