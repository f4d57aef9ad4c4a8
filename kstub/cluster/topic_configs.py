"""Kafka's topic config table (LogConfig): every name Kafka accepts, with its type, default, validator
and broker synonyms, so a config Kafka accepts is accepted here too and a bad one gets Kafka's
INVALID_CONFIG message. `HONOURED_TOPIC_CONFIGS` lists those kstub acts on.
"""

from __future__ import annotations

from .configdef import (
    LONG_MAX,
    ConfigType,
    Synonym,
    TopicSetting,
    _gzip_level,
    _throttled_replicas,
    at_least,
    between,
    one_of,
)

_S = Synonym
_HOUR = 3_600_000
_MINUTE = 60_000

#: Kafka's topic configs (LogConfig.CONFIG), in Kafka's order, with their broker synonyms.
TOPIC_CONFIGS: dict[str, TopicSetting] = {
    s.name: s
    for s in (
        TopicSetting(
            "segment.bytes",
            ConfigType.INT,
            1073741824,
            at_least(14),
            (_S("log.segment.bytes"),),
            "largest size of a segment file before the log rolls a new one",
        ),
        TopicSetting(
            "segment.ms",
            ConfigType.LONG,
            604800000,
            at_least(1),
            (_S("log.roll.ms"), _S("log.roll.hours", _HOUR)),
            "time after which the log rolls a new segment even if the active one is not full",
        ),
        TopicSetting(
            "segment.jitter.ms",
            ConfigType.LONG,
            0,
            at_least(0),
            (_S("log.roll.jitter.ms"), _S("log.roll.jitter.hours", _HOUR)),
        ),
        TopicSetting("segment.index.bytes", ConfigType.INT, 10485760, at_least(4), (_S("log.index.size.max.bytes"),)),
        TopicSetting(
            "flush.messages",
            ConfigType.LONG,
            LONG_MAX,
            at_least(1),
            (_S("log.flush.interval.messages"),),
            "fsync the log after this many messages",
        ),
        TopicSetting(
            "flush.ms",
            ConfigType.LONG,
            LONG_MAX,
            at_least(0),
            (_S("log.flush.interval.ms"), _S("log.flush.scheduler.interval.ms")),
            "fsync the log when its oldest unflushed message is this old (checked by the flush scheduler)",
        ),
        TopicSetting(
            "retention.bytes",
            ConfigType.LONG,
            -1,
            None,
            (_S("log.retention.bytes"),),
            "delete old segments while the partition is larger than this (-1: no limit)",
        ),
        TopicSetting(
            "retention.ms",
            ConfigType.LONG,
            604800000,
            at_least(-1),
            (_S("log.retention.ms"), _S("log.retention.minutes", _MINUTE), _S("log.retention.hours", _HOUR)),
            "delete segments whose newest record is older than this (-1: no limit)",
        ),
        TopicSetting(
            "max.message.bytes",
            ConfigType.INT,
            1048588,
            at_least(0),
            (_S("message.max.bytes"),),
            "largest record batch accepted",
        ),
        TopicSetting(
            "max.decompressed.message.bytes",
            ConfigType.INT,
            2147483639,
            between(1, 2147483639),
            (_S("max.decompressed.message.bytes"),),
            "largest decompressed record accepted in a compressed batch",
        ),
        TopicSetting("index.interval.bytes", ConfigType.INT, 4096, at_least(0), (_S("log.index.interval.bytes"),)),
        TopicSetting(
            "delete.retention.ms", ConfigType.LONG, 86400000, at_least(0), (_S("log.cleaner.delete.retention.ms"),)
        ),
        TopicSetting(
            "min.compaction.lag.ms", ConfigType.LONG, 0, at_least(0), (_S("log.cleaner.min.compaction.lag.ms"),)
        ),
        TopicSetting(
            "max.compaction.lag.ms", ConfigType.LONG, LONG_MAX, at_least(1), (_S("log.cleaner.max.compaction.lag.ms"),)
        ),
        TopicSetting("file.delete.delay.ms", ConfigType.LONG, 60000, at_least(0), (_S("log.segment.delete.delay.ms"),)),
        TopicSetting(
            "min.cleanable.dirty.ratio", ConfigType.DOUBLE, 0.5, between(0, 1), (_S("log.cleaner.min.cleanable.ratio"),)
        ),
        TopicSetting(
            "cleanup.policy",
            ConfigType.LIST,
            ["delete"],
            one_of("compact", "delete"),
            (_S("log.cleanup.policy"),),
            "delete (retention applies) and/or compact (the log cleaner keeps the latest record per key)",
        ),
        TopicSetting(
            "unclean.leader.election.enable", ConfigType.BOOLEAN, False, None, (_S("unclean.leader.election.enable"),)
        ),
        TopicSetting(
            "min.insync.replicas",
            ConfigType.INT,
            1,
            at_least(1),
            (_S("min.insync.replicas"),),
            "acks=all produce needs at least this many in-sync replicas",
        ),
        TopicSetting(
            "compression.type",
            ConfigType.STRING,
            "producer",
            one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
            (_S("compression.type"),),
        ),
        TopicSetting("compression.gzip.level", ConfigType.INT, -1, _gzip_level, (_S("compression.gzip.level"),)),
        TopicSetting("compression.lz4.level", ConfigType.INT, 9, between(1, 17), (_S("compression.lz4.level"),)),
        TopicSetting(
            "compression.zstd.level", ConfigType.INT, 3, between(-131072, 22), (_S("compression.zstd.level"),)
        ),
        TopicSetting("preallocate", ConfigType.BOOLEAN, False, None, (_S("log.preallocate"),)),
        TopicSetting(
            "message.timestamp.type",
            ConfigType.STRING,
            "CreateTime",
            one_of("CreateTime", "LogAppendTime"),
            (_S("log.message.timestamp.type"),),
            "LogAppendTime: the broker stamps batches on append",
        ),
        TopicSetting(
            "message.timestamp.before.max.ms",
            ConfigType.LONG,
            LONG_MAX,
            at_least(0),
            (_S("log.message.timestamp.before.max.ms"),),
        ),
        TopicSetting(
            "message.timestamp.after.max.ms",
            ConfigType.LONG,
            _HOUR,
            at_least(0),
            (_S("log.message.timestamp.after.max.ms"),),
        ),
        TopicSetting("leader.replication.throttled.replicas", ConfigType.LIST, [], _throttled_replicas),
        TopicSetting("follower.replication.throttled.replicas", ConfigType.LIST, [], _throttled_replicas),
        TopicSetting("remote.storage.enable", ConfigType.BOOLEAN, False),
        TopicSetting("local.retention.ms", ConfigType.LONG, -2, at_least(-2), (_S("log.local.retention.ms"),)),
        TopicSetting("local.retention.bytes", ConfigType.LONG, -2, at_least(-2), (_S("log.local.retention.bytes"),)),
        TopicSetting("remote.log.copy.disable", ConfigType.BOOLEAN, False),
        TopicSetting("remote.log.delete.on.disable", ConfigType.BOOLEAN, False),
        # new in Kafka 4.x
        TopicSetting("remote.copy.lag.ms", ConfigType.LONG, 0, at_least(0), (_S("log.remote.copy.lag.ms"),)),
        TopicSetting("remote.copy.lag.bytes", ConfigType.LONG, -1, at_least(-1), (_S("log.remote.copy.lag.bytes"),)),
        TopicSetting("errors.deadletterqueue.group.enable", ConfigType.BOOLEAN, False),
    )
}

#: The topic configs kstub acts on (the others are accepted, stored and described, as Kafka's names).
HONOURED_TOPIC_CONFIGS = (
    "cleanup.policy",
    "flush.messages",
    "flush.ms",
    "max.decompressed.message.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
)
