"""Topic config validation and DescribeConfigs' sources and synonyms, as Kafka's ConfigHelper reports them."""

from __future__ import annotations

import pytest

from kstub.cluster.config import (
    BrokerConfig,
    ConfigError,
    ConfigSource,
    InvalidConfig,
    TopicSettings,
    describe_broker_config,
    describe_topic_config,
    topic_config_value,
    validate_broker_config,
    validate_topic_configs,
)


def synonyms(d) -> list[tuple[str, str | None, ConfigSource]]:
    return [(s.name, s.value, s.source) for s in d.synonyms]


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ({"no.such": "1"}, "Unknown topic config name: no.such"),
        ({"retention.ms": "soon"}, "Invalid value soon for configuration retention.ms: Not a number of type LONG"),
        ({"retention.ms": "-2"}, "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
        ({"segment.bytes": "13"}, "Invalid value 13 for configuration segment.bytes: Value must be at least 14"),
        ({"segment.bytes": "3000000000"}, "Not a number of type INT"),
        (
            {"cleanup.policy": "delete,shred"},
            "Invalid value shred for configuration cleanup.policy: String must be one",
        ),
        ({"message.timestamp.type": "Now"}, "String must be one of: CreateTime, LogAppendTime"),
        ({"preallocate": "yes"}, "Expected value to be either true or false"),
        ({"min.cleanable.dirty.ratio": "2"}, "Value must be no more than 1"),
        ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, "conflict topic config setting"),
    ],
)
def test_bad_topic_configs_get_kafkas_messages(configs, message):
    with pytest.raises(InvalidConfig, match=message.replace("(", r"\(")):
        validate_topic_configs(configs)


def test_values_are_normalized_as_kafka_reports_them():
    got = validate_topic_configs(
        {"retention.ms": " 100 ", "cleanup.policy": "compact , delete", "preallocate": "TRUE", "flush.ms": None}
    )
    assert got == {"retention.ms": "100", "cleanup.policy": "compact,delete", "preallocate": "true"}


def test_retention_ms_reports_no_synonyms_unless_log_retention_ms_is_set():
    # Kafka drops the synonyms before the first one named log.retention.ms, so hours alone shows nothing
    d = describe_topic_config("retention.ms", {}, BrokerConfig({"log.retention.hours": "1"}))
    assert (d.value, d.source, synonyms(d)) == ("3600000", ConfigSource.DEFAULT_CONFIG, [])
    d = describe_topic_config("retention.ms", {}, BrokerConfig({"log.retention.ms": "5000"}))
    assert (d.value, d.source) == ("5000", ConfigSource.STATIC_BROKER_CONFIG)
    assert synonyms(d) == [
        ("log.retention.ms", "5000", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]


def test_a_topic_override_comes_first_then_the_broker_chain():
    broker = BrokerConfig({"log.segment.bytes": "2000"})
    d = describe_topic_config("segment.bytes", {"segment.bytes": "1000"}, broker)
    assert (d.value, d.source) == ("1000", ConfigSource.TOPIC_CONFIG)
    assert synonyms(d) == [
        ("segment.bytes", "1000", ConfigSource.TOPIC_CONFIG),
        ("log.segment.bytes", "2000", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.segment.bytes", "1073741824", ConfigSource.DEFAULT_CONFIG),
    ]


def test_dynamic_defaults_outrank_static_settings():
    broker = BrokerConfig({"log.segment.bytes": "2000"})
    broker.dynamic_default = {**broker.dynamic_default, "log.segment.bytes": "3000"}
    d = describe_topic_config("segment.bytes", {}, broker)
    assert (d.value, d.source) == ("3000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    assert [s[2] for s in synonyms(d)] == [
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        ConfigSource.STATIC_BROKER_CONFIG,
        ConfigSource.DEFAULT_CONFIG,
    ]


def test_configs_without_a_broker_synonym_are_plain_defaults():
    d = describe_topic_config("remote.storage.enable", {}, BrokerConfig())
    assert (d.value, d.source, d.synonyms) == ("false", ConfigSource.DEFAULT_CONFIG, [])


def test_broker_configs_describe_with_their_chain_and_read_only_flag():
    broker = BrokerConfig({"log.retention.hours": "2"})
    d = describe_broker_config("log.retention.hours", broker, 0)
    assert (d.value, d.source, d.read_only) == ("2", ConfigSource.STATIC_BROKER_CONFIG, True)
    assert synonyms(d) == [
        ("log.retention.hours", "2", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]
    d = describe_broker_config("log.retention.ms", broker, 0)
    assert (d.value, d.source, d.read_only) == (None, ConfigSource.DEFAULT_CONFIG, False)


def test_dynamic_broker_settings_are_checked_like_kafka():
    validate_broker_config("log.retention.ms", "1000")
    validate_broker_config("some.plugin.setting", "x")  # Kafka keeps names it does not know
    with pytest.raises(ConfigError, match=r"Cannot update these configs dynamically: Set\(log.retention.hours\)"):
        validate_broker_config("log.retention.hours", "1")
    with pytest.raises(ConfigError, match="Value must be at least -1"):
        validate_broker_config("log.retention.ms", "-7")


def test_topic_settings_read_values_typed_by_their_configdef_type():
    broker = BrokerConfig({"log.retention.hours": "2", "log.cleanup.policy": "compact, delete"})
    explicit = validate_topic_configs({"unclean.leader.election.enable": "TRUE", "segment.bytes": " 4096 "})
    settings = TopicSettings(lambda name: topic_config_value(name, explicit, broker))
    assert settings.get_int("retention.ms") == 2 * 3_600_000  # from a broker synonym, scaled
    assert settings.get_int("segment.bytes") == 4096
    assert settings.get_bool("unclean.leader.election.enable") is True
    assert settings.get_list("cleanup.policy") == ["compact", "delete"]
    assert settings.get_str("message.timestamp.type") == "CreateTime"
    assert settings.get("min.insync.replicas") == 1
    assert settings("segment.bytes") == "4096"  # the string DescribeConfigs reports


def test_topic_settings_refuse_a_read_of_the_wrong_type():
    settings = TopicSettings()  # Kafka's defaults
    assert settings.get_list("cleanup.policy") == ["delete"]
    with pytest.raises(TypeError, match=r"cleanup\.policy is a LIST, not INT"):
        settings.get_int("cleanup.policy")
    with pytest.raises(TypeError, match=r"retention\.ms is a LONG, not BOOLEAN"):
        settings.get_bool("retention.ms")


def test_a_topics_resolved_settings_follow_every_change():
    """Topic.config keeps resolved values; each kind of change is seen at the next read."""
    from kstub.cluster.model import ClusterState

    cluster = ClusterState(BrokerConfig())
    for node in (1, 2, 3):
        cluster.add_broker(node, "127.0.0.1", 9090 + node)
    topic = cluster.create_topic("t", 1, 1)
    assert topic.config("segment.bytes") == "1073741824"
    cluster.config.set("log.segment.bytes", "2000")  # static
    assert topic.config("segment.bytes") == "2000"
    cluster.config.dynamic_default = {**cluster.config.dynamic_default, "log.segment.bytes": "3000"}
    assert topic.config("segment.bytes") == topic.config("segment.bytes", 1) == "3000"
    cluster.config.set_dynamic_broker(1, {"log.segment.bytes": "4000"})
    assert (topic.config("segment.bytes"), topic.config("segment.bytes", 1)) == ("3000", "4000")
    topic.configs = {"segment.bytes": "5000"}
    assert topic.config("segment.bytes", 1) == "5000"
    topic.configs = {}
    assert topic.config("segment.bytes", 1) == "4000"


def test_settings_change_only_by_assignment():
    """The layers are read-only views, so a change in place (which no cache would see) is refused."""
    from kstub.cluster.model import ClusterState

    cluster = ClusterState(BrokerConfig())
    cluster.add_broker(1, "127.0.0.1", 9091)
    topic = cluster.create_topic("t", 1, 1, {"retention.ms": "1000"})
    with pytest.raises(TypeError):
        topic.configs["retention.ms"] = "2000"  # type: ignore[index]
    with pytest.raises(TypeError):
        cluster.config.dynamic_default["log.segment.bytes"] = "3000"  # type: ignore[index]
    with pytest.raises(TypeError):
        cluster.config.static_raw["log.segment.bytes"] = "3000"  # type: ignore[index]
    assert topic.config("retention.ms") == "1000"
