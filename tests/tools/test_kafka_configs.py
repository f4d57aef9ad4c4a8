"""kafka-configs against kstub: --describe and --alter of topic and broker configs, checked by another client."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from kstub.compat.realkafka import RealKafka

from support.kafka_tools import create_topic, normalise, tool, unique

ALTERED = "retention.ms=7200000,cleanup.policy=[compact,delete],max.message.bytes=2048,segment.bytes=1048576"


def _dynamic(text: str) -> dict[str, str]:
    """kafka-configs --describe: `name=value` of each config line (after the heading)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("  ") and "=" in line:
            name, _, rest = line.strip().partition("=")
            out[name] = rest.split(" sensitive=")[0]
    return out


def _described_by_librdkafka(bootstrap: str, kind: ConfigResource.Type, name: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.describe_configs([ConfigResource(kind, name)]).values()
    return {k: v.value for k, v in future.result(30).items()}


@pytest.mark.kstub(brokers=3)
def test_topic_configs(bootstrap: str) -> None:
    topic = unique("configs")
    create_topic(bootstrap, topic, 1, 3)
    common = ["--bootstrap-server", bootstrap, "--entity-type", "topics", "--entity-name", topic]
    assert _dynamic(tool("kafka-configs", *common, "--describe").stdout) == {}

    altered = tool("kafka-configs", *common, "--alter", "--add-config", "retention.ms=7200000,max.message.bytes=2048")
    assert f"Completed updating config for topic {topic}." in altered.stdout
    assert _dynamic(tool("kafka-configs", *common, "--describe").stdout) == {
        "retention.ms": "7200000",
        "max.message.bytes": "2048",
    }
    tool("kafka-configs", *common, "--alter", "--delete-config", "max.message.bytes")
    seen = _described_by_librdkafka(bootstrap, ConfigResource.Type.TOPIC, topic)
    assert (seen["retention.ms"], seen["max.message.bytes"]) == ("7200000", "1048588")

    refused = tool("kafka-configs", *common, "--alter", "--add-config", "retention.ms=soon", check=False)
    assert refused.returncode == 1
    assert "InvalidConfigurationException" in refused.stdout + refused.stderr
    assert _described_by_librdkafka(bootstrap, ConfigResource.Type.TOPIC, topic)["retention.ms"] == "7200000"


@pytest.mark.kstub(brokers=3)
def test_broker_configs(bootstrap: str) -> None:
    common = ["--bootstrap-server", bootstrap, "--entity-type", "brokers"]
    assert _dynamic(tool("kafka-configs", *common, "--entity-name", "1", "--describe").stdout) == {}
    tool("kafka-configs", *common, "--entity-name", "1", "--alter", "--add-config", "log.segment.bytes=10485760")
    tool("kafka-configs", *common, "--entity-default", "--alter", "--add-config", "log.retention.ms=100000")

    assert _dynamic(tool("kafka-configs", *common, "--entity-name", "1", "--describe").stdout) == {
        "log.segment.bytes": "10485760"
    }
    assert _dynamic(tool("kafka-configs", *common, "--entity-default", "--describe").stdout) == {
        "log.retention.ms": "100000",
        "min.insync.replicas": "1",  # a cluster-wide dynamic default from the start, as in Kafka 4
    }
    every = _dynamic(tool("kafka-configs", *common, "--entity-name", "2", "--describe", "--all").stdout)
    assert every["log.retention.ms"] == "100000"  # the cluster default reaches every broker
    assert every["log.segment.bytes"] == "1073741824"  # broker 1's own setting does not
    assert _described_by_librdkafka(bootstrap, ConfigResource.Type.BROKER, "1")["log.segment.bytes"] == "10485760"


def test_topic_config_description_as_kafka_prints_it(bootstrap: str, real_kafka: RealKafka) -> None:
    """After the same alterations, --describe of a topic prints the same lines (values, sources, synonyms)."""
    topic = unique("configs")
    outputs = []
    for servers in (bootstrap, real_kafka.bootstrap_servers):
        create_topic(servers, topic, 1)
        common = ["--bootstrap-server", servers, "--entity-type", "topics", "--entity-name", topic]
        tool("kafka-configs", *common, "--alter", "--add-config", ALTERED)
        outputs.append(normalise(tool("kafka-configs", *common, "--describe").stdout))
    assert outputs[0] == outputs[1]
    assert "retention.ms=7200000" in outputs[0]
