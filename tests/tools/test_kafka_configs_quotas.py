"""kafka-configs --entity-type clients/users: client quotas set, described and deleted, as on real Kafka."""

from __future__ import annotations

from kstub.compat.realkafka import RealKafka

from support.kafka_tools import normalise, tool, unique


def _session(servers: str, client: str, user: str) -> list[str]:
    """What the tool prints over a session of quota changes on one broker (names made the same)."""
    b = ["--bootstrap-server", servers]
    clients = ["--entity-type", "clients", "--entity-name", client]
    both = ["--entity-type", "users", "--entity-name", user, *clients]
    out = [
        tool("kafka-configs", *b, *clients, "--alter", "--add-config", "producer_byte_rate=1048576").stdout,
        tool("kafka-configs", *b, *clients, "--alter", "--add-config", "consumer_byte_rate=2048").stdout,
        tool("kafka-configs", *b, *clients, "--describe").stdout,
        tool("kafka-configs", *b, *both, "--alter", "--add-config", "request_percentage=150").stdout,
        tool("kafka-configs", *b, *both, "--describe").stdout,
        tool("kafka-configs", *b, *clients, "--alter", "--delete-config", "consumer_byte_rate").stdout,
        tool("kafka-configs", *b, *clients, "--describe").stdout,
    ]
    refused = tool("kafka-configs", *b, *clients, "--alter", "--add-config", "producer_byte_rate=-1", check=False)
    assert refused.returncode != 0
    out.append(refused.stdout + "\n".join(refused.stderr.splitlines()[:2]))
    return [normalise(text, [(client, "<client>"), (user, "<user>"), (servers, "<servers>")]) for text in out]


def test_client_quotas_through_kafka_configs(bootstrap: str, real_kafka: RealKafka) -> None:
    ours = _session(bootstrap, unique("quota-client"), unique("quota-user"))
    theirs = _session(real_kafka.bootstrap_servers, unique("quota-client"), unique("quota-user"))
    assert "producer_byte_rate=1048576.0" in ours[2] and "consumer_byte_rate=2048.0" in ours[2], ours[2]
    assert "consumer_byte_rate" not in ours[6] and "producer_byte_rate=1048576.0" in ours[6], ours[6]
    assert ours == theirs
