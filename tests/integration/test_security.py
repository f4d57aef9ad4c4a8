"""Listeners, TLS and SASL on the Kafka port, with real clients over TCP (docs/security.md).

confluent-kafka (librdkafka) and kafka-python produce and consume over SSL
(mutual TLS), SASL_PLAINTEXT and SASL_SSL with PLAIN and SCRAM; wrong
passwords, unknown mechanisms, requests before authentication, plaintext
clients on TLS ports and clients that do not trust the CA each fail on their
own connection while others carry on; Metadata names each listener's own
endpoints.
"""

from __future__ import annotations

import logging
import socket
import ssl
import uuid
from pathlib import Path

import confluent_kafka as ck
import kafka
import kafka.errors
import pytest

from kstub import Cluster
from kstub.protocol import ApiKey, ErrorCode
from kstub.security import SecurityConfigError, ensure_tls_dir

from support.raw import RawClient
from support.roundtrips import aiokafka_roundtrip, confluent_roundtrip, kafka_python_roundtrip
from support.served import free_ports

USERS = {"alice": "alice-secret", "bob": "bob:with:colons"}
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _topic() -> str:
    return f"sec-{uuid.uuid4().hex[:8]}"


def _kafka_python_settings(cluster: Cluster, username: str | None, password: str | None, mechanism: str) -> dict:
    config = cluster.client_config(username, password, mechanism=mechanism)
    settings: dict = {
        "bootstrap_servers": config["bootstrap.servers"],
        "security_protocol": config["security.protocol"],
    }
    if "ssl.ca.location" in config:
        settings["ssl_cafile"] = config["ssl.ca.location"]
    if "sasl.mechanism" in config:
        settings.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    return settings


EXPECTED = [f"v{i}".encode() for i in range(5)]


@pytest.fixture(scope="module")
def sasl_ssl_cluster() -> Cluster:
    with Cluster(brokers=3, security_protocol="SASL_SSL", users=USERS) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def sasl_plaintext_cluster() -> Cluster:
    with Cluster(brokers=1, security_protocol="SASL_PLAINTEXT", users=USERS) as cluster:
        yield cluster


# --- confluent-kafka (librdkafka) ----------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_sasl_ssl_three_brokers(sasl_ssl_cluster: Cluster, mechanism: str) -> None:
    config = sasl_ssl_cluster.client_config("alice", USERS["alice"], mechanism=mechanism)
    assert config["security.protocol"] == "SASL_SSL"
    assert Path(config["ssl.ca.location"]).is_file()
    assert confluent_roundtrip(config, _topic(), EXPECTED) == EXPECTED


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_sasl_plaintext(sasl_plaintext_cluster: Cluster, mechanism: str) -> None:
    config = sasl_plaintext_cluster.client_config("bob", USERS["bob"], mechanism=mechanism)
    assert confluent_roundtrip(config, _topic(), EXPECTED) == EXPECTED


def _confluent_failure(config: dict[str, str]) -> ck.KafkaError:
    """The first error librdkafka reports while trying to reach the cluster."""
    errors: list[ck.KafkaError] = []
    producer = ck.Producer({**config, "error_cb": errors.append})
    for _ in range(50):
        producer.poll(0.2)
        if errors:
            break
    assert errors, "the client reported no error"
    return errors[0]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_wrong_password(sasl_ssl_cluster: Cluster, mechanism: str) -> None:
    error = _confluent_failure(sasl_ssl_cluster.client_config("alice", "wrong", mechanism=mechanism))
    assert error.code() == ck.KafkaError._AUTHENTICATION
    assert "Authentication failed" in error.str()


def test_confluent_unknown_user_scram(sasl_plaintext_cluster: Cluster) -> None:
    error = _confluent_failure(sasl_plaintext_cluster.client_config("mallory", "x", mechanism="SCRAM-SHA-256"))
    assert error.code() == ck.KafkaError._AUTHENTICATION


def test_confluent_untrusted_ca(sasl_ssl_cluster: Cluster, tmp_path: Path) -> None:
    """A client that trusts another CA fails its handshake; the cluster serves others as before."""
    other = ensure_tls_dir(tmp_path / "other")
    config = sasl_ssl_cluster.client_config("alice", USERS["alice"], mechanism="PLAIN")
    error = _confluent_failure({**config, "ssl.ca.location": str(other.ca)})
    assert error.code() in (ck.KafkaError._SSL, ck.KafkaError._TRANSPORT, ck.KafkaError._ALL_BROKERS_DOWN)
    assert confluent_roundtrip(config, _topic(), EXPECTED) == EXPECTED


# --- kafka-python ---------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_sasl_plaintext(sasl_plaintext_cluster: Cluster, mechanism: str) -> None:
    settings = _kafka_python_settings(sasl_plaintext_cluster, "alice", USERS["alice"], mechanism)
    assert kafka_python_roundtrip(settings, _topic(), EXPECTED) == EXPECTED


def test_kafka_python_sasl_ssl_scram_512(sasl_ssl_cluster: Cluster) -> None:
    settings = _kafka_python_settings(sasl_ssl_cluster, "bob", USERS["bob"], "SCRAM-SHA-512")
    assert settings["security_protocol"] == "SASL_SSL"
    assert kafka_python_roundtrip(settings, _topic(), EXPECTED) == EXPECTED


def test_kafka_python_wrong_password(sasl_plaintext_cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python reads SASL_AUTHENTICATION_FAILED (58) and gives up bootstrapping."""
    caplog.set_level(logging.ERROR, logger="kafka")
    settings = _kafka_python_settings(sasl_plaintext_cluster, "alice", "wrong", "SCRAM-SHA-256")
    with pytest.raises(kafka.errors.KafkaError):
        kafka.KafkaProducer(**settings)
    assert any("SaslAuthenticationFailedError" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("mechanism", "wrong"), [("SCRAM-SHA-512", False), ("PLAIN", False), ("SCRAM-SHA-256", True)])
def test_aiokafka_sasl_ssl(
    sasl_ssl_cluster: Cluster, mechanism: str, wrong: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    from aiokafka.errors import KafkaError as AioKafkaError
    from aiokafka.helpers import create_ssl_context

    config = sasl_ssl_cluster.client_config("alice", USERS["alice"], mechanism=mechanism)
    settings = {
        "bootstrap_servers": config["bootstrap.servers"],
        "security_protocol": "SASL_SSL",
        "ssl_context": create_ssl_context(cafile=config["ssl.ca.location"]),
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "alice",
        "sasl_plain_password": "wrong" if wrong else USERS["alice"],
    }
    topic = _topic()

    if wrong:
        with pytest.raises(AioKafkaError):  # "Unable to bootstrap", having logged why
            aiokafka_roundtrip(settings, topic, EXPECTED)
        assert any(r.name.startswith("aiokafka") and "Authentication failed" in r.getMessage() for r in caplog.records)
    else:
        assert aiokafka_roundtrip(settings, topic, EXPECTED) == EXPECTED


def test_confluent_oauthbearer_unsecured_jwt() -> None:
    """OAUTHBEARER, opted in with sasl.enabled.mechanisms: librdkafka's unsecured JWT names the principal."""
    config = {"sasl.enabled.mechanisms": "OAUTHBEARER,SCRAM-SHA-256"}
    with Cluster(security_protocol="SASL_SSL", config=config) as cluster:
        client = {
            **cluster.client_config(mechanism="OAUTHBEARER"),
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=alice",
        }
        assert confluent_roundtrip(client, _topic(), EXPECTED) == EXPECTED


def test_oauthbearer_is_not_enabled_by_default(sasl_plaintext_cluster: Cluster) -> None:
    with RawClient(sasl_plaintext_cluster.bootstrap_servers) as client:
        answer = client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "OAUTHBEARER"})
        assert answer.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM


# --- mutual TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls_cluster() -> Cluster:
    config = {
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),OU=([^,]*)(,.*)?$/$1@$2/U,DEFAULT",
    }
    with Cluster(brokers=3, security_protocol="SSL", config=config) as cluster:
        yield cluster


def _client_cert_config(cluster: Cluster) -> dict[str, str]:
    assert cluster.tls_dir is not None
    directory = Path(cluster.tls_dir)
    return {
        **cluster.client_config(),
        "ssl.certificate.location": str(directory / "client-cert.pem"),
        "ssl.key.location": str(directory / "client-key.pem"),
    }


def test_confluent_mutual_tls(mtls_cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kstub.server")
    assert confluent_roundtrip(_client_cert_config(mtls_cluster), _topic(), EXPECTED) == EXPECTED
    # ssl.principal.mapping.rules made the subject (CN=client,OU=kstub,O=...) into CLIENT@KSTUB
    assert any(r.getMessage().endswith("is User:CLIENT@KSTUB") for r in caplog.records)


def test_confluent_mutual_tls_without_certificate(mtls_cluster: Cluster) -> None:
    error = _confluent_failure(mtls_cluster.client_config())
    assert error.code() in (ck.KafkaError._SSL, ck.KafkaError._TRANSPORT, ck.KafkaError._ALL_BROKERS_DOWN)


def test_kafka_python_mutual_tls(mtls_cluster: Cluster) -> None:
    config = _client_cert_config(mtls_cluster)
    settings = {
        "bootstrap_servers": config["bootstrap.servers"],
        "security_protocol": "SSL",
        "ssl_cafile": config["ssl.ca.location"],
        "ssl_certfile": config["ssl.certificate.location"],
        "ssl_keyfile": config["ssl.key.location"],
    }
    assert kafka_python_roundtrip(settings, _topic(), EXPECTED) == EXPECTED


@pytest.mark.parametrize("case", ["sasl_ssl", "mtls", "wrong_password"])
def test_kcat(kcat: str, sasl_ssl_cluster: Cluster, mtls_cluster: Cluster, case: str) -> None:
    import subprocess

    if case == "mtls":
        config = _client_cert_config(mtls_cluster)
    else:
        password = "wrong" if case == "wrong_password" else USERS["alice"]
        # PLAIN: the kcat of Debian 13 (librdkafka 2.0.2) repeats the client nonce in its SCRAM final
        # message, which Kafka refuses too ("Invalid client nonce in the final client message").
        config = sasl_ssl_cluster.client_config("alice", password, mechanism="PLAIN")
    options = [arg for key, value in config.items() if key != "bootstrap.servers" for arg in ("-X", f"{key}={value}")]
    bootstrap = ["-b", config["bootstrap.servers"]]
    topic = _topic()
    produced = subprocess.run(
        [kcat, *bootstrap, *options, "-P", "-t", topic, "-m", "15"],
        input="one\ntwo\nthree\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    if case == "wrong_password":
        assert produced.returncode != 0
        assert "Authentication failed" in produced.stderr
        return
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(
        [kcat, *bootstrap, *options, "-C", "-t", topic, "-o", "beginning", "-e", "-m", "30"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert consumed.stdout.splitlines() == ["one", "two", "three"], consumed.stderr


def test_restarted_broker_listens_on_both_listeners_again() -> None:
    """Stop and start a broker of a two-listener cluster: it reopens its TLS and plaintext ports."""
    base = free_ports(4)
    config = {
        "listeners": f"PLAINTEXT://127.0.0.1:{base},SSL://127.0.0.1:{base + 2}",
        "auto.create.topics.enable": "true",
    }
    with Cluster(brokers=2, config=config) as cluster:
        cluster.control.stop_broker(1)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", base + 3), timeout=5).close()
        cluster.control.start_broker(1)
        with _tls_client(cluster, f"127.0.0.1:{base + 3}") as client:
            assert client.request(ApiKey.API_VERSIONS, 2, {}).error_code == ErrorCode.NONE
        with RawClient(f"127.0.0.1:{base + 1}") as client:
            assert client.request(ApiKey.API_VERSIONS, 2, {}).error_code == ErrorCode.NONE
        ssl_config = cluster.client_config(listener="SSL")
        assert ssl_config["security.protocol"] == "SSL"
        assert confluent_roundtrip(ssl_config, _topic(), EXPECTED) == EXPECTED


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_kstub_groups_with_command_config(sasl_ssl_cluster: Cluster, tmp_path: Path, mechanism: str) -> None:
    """`kstub groups --command-config FILE` reaches a SASL_SSL listener, as Kafka's tools do."""
    import subprocess
    import sys

    def groups(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kstub", "groups", *args], capture_output=True, text=True, timeout=60
        )

    topic = _topic()
    config = sasl_ssl_cluster.client_config("alice", USERS["alice"], mechanism=mechanism)
    assert confluent_roundtrip(config, topic, EXPECTED) == EXPECTED  # leaves group g-<topic> with committed offsets
    properties = tmp_path / "client.properties"
    module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
    properties.write_text(
        "security.protocol=SASL_SSL\n"
        f"ssl.truststore.location={config['ssl.ca.location']}\n"
        f"sasl.mechanism={mechanism}\n"
        f"sasl.jaas.config=org.apache.kafka.common.security.{module} required "
        f'username="alice" password="{USERS["alice"]}";\n'
    )
    bootstrap = ["--bootstrap-server", config["bootstrap.servers"], "--command-config", str(properties)]
    listed = groups("list", *bootstrap)
    assert listed.returncode == 0, listed.stderr
    assert f"g-{topic}" in listed.stdout.split()
    properties.write_text(properties.read_text().replace(USERS["alice"], "wrong"))
    refused = groups("list", *bootstrap)
    assert refused.returncode == 1
    assert "Authentication failed" in refused.stderr


# --- the protocol, byte by byte -------------------------------------------------------------


def _tls_client(cluster: Cluster, bootstrap: str | None = None) -> RawClient:
    client = RawClient(bootstrap or cluster.bootstrap_servers)
    assert cluster.tls_dir is not None
    context = ssl.create_default_context(cafile=str(Path(cluster.tls_dir) / "ca.pem"))
    client.sock = context.wrap_socket(client.sock, server_hostname=client.address.rpartition(":")[0])
    return client


def test_unsupported_mechanism_answered_then_closed(sasl_plaintext_cluster: Cluster) -> None:
    with RawClient(sasl_plaintext_cluster.bootstrap_servers) as client:
        answer = client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "GSSAPI"})
        assert answer.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
        assert sorted(answer.mechanisms) == sorted(MECHANISMS)
        assert client.is_closed_by_peer()


@pytest.mark.parametrize("version", [0, 1, 2])
def test_plain_wrong_password_answered_then_closed(sasl_plaintext_cluster: Cluster, version: int) -> None:
    with RawClient(sasl_plaintext_cluster.bootstrap_servers) as client:
        assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.NONE
        answer = client.request(ApiKey.SASL_AUTHENTICATE, version, {"auth_bytes": b"\0alice\0wrong"})
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert answer.error_message == "Authentication failed: Invalid username or password"
        assert client.is_closed_by_peer()


def test_plain_authenticates_then_serves(sasl_plaintext_cluster: Cluster) -> None:
    with RawClient(sasl_plaintext_cluster.bootstrap_servers) as client:
        assert client.request(ApiKey.API_VERSIONS, 2, {}).error_code == ErrorCode.NONE
        assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.NONE
        token = b"\0alice\0" + USERS["alice"].encode()
        answer = client.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": token})
        assert answer.error_code == ErrorCode.NONE
        metadata = client.request(ApiKey.METADATA, 1, {"topics": []})
        assert [b.node_id for b in metadata.brokers] == [0]
        # Re-authentication is not enabled (connections.max.reauth.ms=0): Kafka answers ILLEGAL_SASL_STATE.
        again = client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert again.error_code == ErrorCode.ILLEGAL_SASL_STATE


def test_plain_v0_handshake_raw_tokens(sasl_plaintext_cluster: Cluster) -> None:
    """SaslHandshake v0: the tokens follow as bare size-prefixed frames (clients before KIP-152)."""
    with RawClient(sasl_plaintext_cluster.bootstrap_servers) as client:
        assert client.request(ApiKey.SASL_HANDSHAKE, 0, {"mechanism": "PLAIN"}).error_code == ErrorCode.NONE
        token = b"\0alice\0" + USERS["alice"].encode()
        client.send_raw(len(token).to_bytes(4, "big") + token)
        assert client.sock.recv(4) == b"\0\0\0\0"  # an empty token: authenticated
        assert client.request(ApiKey.METADATA, 1, {"topics": []}).brokers


@pytest.mark.parametrize(
    ("first", "final"),
    [
        (b"", None),
        (b"n,,", None),
        (b"n,,n=alice", None),
        (b"p=tls,,n=alice,r=x", None),
        (b"\xff\xfe", None),
        (b"n,a=bob,n=alice,r=abc", None),
        (b"n,,n=alice,r=abc", b""),
        (b"n,,n=alice,r=abc", b"c=biws,r=zzz,p=!!!"),
        (b"n,,n=alice,r=abc", b"\xff"),
    ],
)
def test_scram_garbage_is_an_authentication_failure(
    sasl_plaintext_cluster: Cluster, first: bytes, final: bytes | None
) -> None:
    """Malformed SCRAM messages get SASL_AUTHENTICATION_FAILED and a close, nothing worse; others carry on."""
    with (
        RawClient(sasl_plaintext_cluster.bootstrap_servers) as other,
        RawClient(sasl_plaintext_cluster.bootstrap_servers) as client,
    ):
        assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-256"}).error_code == 0
        answer = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": first})
        if final is not None:
            assert answer.error_code == ErrorCode.NONE
            answer = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": final})
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert client.is_closed_by_peer()
        assert other.request(ApiKey.API_VERSIONS, 2, {}).error_code == ErrorCode.NONE


def test_describe_configs_hides_secrets(sasl_plaintext_cluster: Cluster) -> None:
    """DescribeConfigs on a broker names the SASL users setting but, as Kafka does for passwords, not its value."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    config = sasl_plaintext_cluster.client_config("alice", USERS["alice"], mechanism="PLAIN")
    admin = AdminClient(config)
    [future] = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "0")]).values()
    entries = future.result(30)
    users = entries["kstub.sasl.users"]
    assert users.is_sensitive and users.value is None
    assert entries["num.partitions"].value == "1"
    assert not any(USERS["alice"] in (entry.value or "") for entry in entries.values())


@pytest.mark.kafka_cluster(security_protocol="SASL_PLAINTEXT", users={"carol": "c-pw"})
def test_pytest_marker_asks_for_sasl(kafka_cluster: Cluster) -> None:
    config = kafka_cluster.client_config("carol", "c-pw", mechanism="SCRAM-SHA-256")
    assert config["security.protocol"] == "SASL_PLAINTEXT"
    assert confluent_roundtrip(config, _topic(), EXPECTED) == EXPECTED


def test_request_before_authentication_closes(sasl_plaintext_cluster: Cluster) -> None:
    with RawClient(sasl_plaintext_cluster.bootstrap_servers) as client:
        client.send(ApiKey.METADATA, 1, {"topics": []})
        assert client.is_closed_by_peer()
    with RawClient(sasl_plaintext_cluster.bootstrap_servers) as client:
        client.send(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": b"\0alice\0x"})  # no handshake first
        assert client.is_closed_by_peer()


def test_sasl_on_a_plaintext_listener_is_illegal_state() -> None:
    with Cluster() as cluster, RawClient(cluster.bootstrap_servers) as client:
        answer = client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE
        answer = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": b""})
        assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE
        assert client.request(ApiKey.METADATA, 1, {"topics": []}).brokers


def test_plaintext_client_on_tls_port_closes_only_itself(sasl_ssl_cluster: Cluster) -> None:
    host, _, port = sasl_ssl_cluster.bootstrap_servers.split(",")[0].rpartition(":")
    with _tls_client(sasl_ssl_cluster) as other:
        assert other.request(ApiKey.API_VERSIONS, 2, {}).error_code == ErrorCode.NONE
        with socket.create_connection((host, int(port)), timeout=10) as plain:
            plain.sendall(b"\0\0\0\x0a" + b"\0\x12\0\0\0\0\0\x01\xff\xff")  # ApiVersions in the clear
            reply = b""
            while chunk := plain.recv(4096):
                reply += chunk
            assert not reply.startswith(b"\0\0\0")  # no Kafka response; at most a TLS alert, then closed
        assert other.request(ApiKey.API_VERSIONS, 2, {}).error_code == ErrorCode.NONE
        assert other.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-512"}).error_code == 0


# --- listeners -------------------------------------------------------------------------------


def test_metadata_names_the_listener_it_came_through() -> None:
    """Two listeners on each of two brokers: broker N listens on each port + N and advertises it."""
    base = free_ports(4)
    plain, sasl = base, base + 2
    config = {
        "listeners": f"CLIENT://127.0.0.1:{plain},SECURE://127.0.0.1:{sasl}",
        "listener.security.protocol.map": "CLIENT:PLAINTEXT,SECURE:SASL_PLAINTEXT",
        "advertised.listeners": f"CLIENT://localhost:{plain}",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.secure.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="admin" password="admin-secret" user_admin="admin-secret" user_carol="carol-pw";'
        ),
    }
    with Cluster(brokers=2, config=config) as cluster:
        assert cluster.bootstrap_servers == f"localhost:{plain},localhost:{plain + 1}"
        assert cluster.bootstrap("secure") == f"127.0.0.1:{sasl},127.0.0.1:{sasl + 1}"
        with RawClient(f"127.0.0.1:{plain + 1}") as client:
            brokers = client.request(ApiKey.METADATA, 1, {"topics": []}).brokers
            assert sorted((b.node_id, b.host, b.port) for b in brokers) == [
                (0, "localhost", plain),
                (1, "localhost", plain + 1),
            ]
        with RawClient(f"127.0.0.1:{sasl}") as client:
            answer = client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-256"})
            assert answer.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
            assert list(answer.mechanisms) == ["PLAIN"]
        with RawClient(f"127.0.0.1:{sasl + 1}") as client:
            assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}).error_code == 0
            answer = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": b"\0carol\0carol-pw"})
            assert answer.error_code == ErrorCode.NONE
            brokers = client.request(ApiKey.METADATA, 1, {"topics": []}).brokers
            assert sorted((b.node_id, b.host, b.port) for b in brokers) == [
                (0, "127.0.0.1", sasl),
                (1, "127.0.0.1", sasl + 1),
            ]
        config_carol = cluster.client_config("carol", "carol-pw", listener="secure")
        assert config_carol["security.protocol"] == "SASL_PLAINTEXT"
        assert confluent_roundtrip(config_carol, _topic(), EXPECTED) == EXPECTED


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"listeners": "CLIENT://127.0.0.1:0"}, "no security protocol for listener CLIENT"),
        ({"listeners": "PLAINTEXT://127.0.0.1"}, "is not NAME://host:port"),
        ({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "JKS"}, "ssl.keystore.type=JKS is not supported"),
        ({"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "GSSAPI"}, "GSSAPI"),
        ({"listeners": "SSL://127.0.0.1:0", "ssl.principal.mapping.rules": "RULE:x"}, "cannot read"),
        ({"listeners": "SSL://127.0.0.1:0", "ssl.client.auth": "always"}, "expected required, requested or none"),
        (
            {"listeners": "PLAINTEXT://127.0.0.1:0", "advertised.listeners": "OTHER://h:1"},
            "not in listeners: OTHER",
        ),
    ],
)
def test_bad_settings_are_refused(config: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError, match=message), Cluster(config=config):
        pass


# --- kstub serve ---------------------------------------------------------------------------


def test_serve_tls_dir_sasl_ssl(tmp_path: Path) -> None:
    """`kstub serve --tls-dir DIR --security-protocol SASL_SSL --sasl-users ...`: clients trust DIR/ca.pem."""
    from support.served import Served

    port = free_ports(2)
    tls = tmp_path / "tls"
    served = Served(
        "--port",
        str(port),
        "--brokers",
        "2",
        "--security-protocol",
        "SASL_SSL",
        "--tls-dir",
        str(tls),
        "--sasl-users",
        "bob:pw",
        "--user",
        "alice:s3cret",
    )
    try:
        assert (tls / "ca.pem").is_file()
        assert served.find(f"clients trust {tls / 'ca.pem'}")
        config = {
            "bootstrap.servers": f"127.0.0.1:{port + 1}",
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(tls / "ca.pem"),
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "alice",
            "sasl.password": "s3cret",
        }
        assert confluent_roundtrip(config, _topic(), EXPECTED) == EXPECTED
    finally:
        served.close()


def test_serve_refuses_bad_listener_settings() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "kstub", "serve", "--port", "0", "-c", "listeners=INTERNAL://127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no security protocol for listener INTERNAL" in result.stderr


# --- the Java client (Kafka's console tools from the pinned jars) ---------------------------


def _java_tools() -> None:
    from kstub.compat.realkafka import RealKafkaUnavailable, ensure_jars

    from support.external import unavailable

    try:
        ensure_jars()
    except RealKafkaUnavailable as exc:
        unavailable(f"the Java client is unavailable: {exc}")


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_PLAINTEXT", "PLAIN"), ("SSL", None), ("SASL_SSL", "OAUTHBEARER")],
)
def test_java_console_producer_and_consumer(tmp_path: Path, protocol: str, mechanism: str | None) -> None:
    """kafka-console-producer/-consumer with --producer.config/--consumer.config, as docs/security.md shows."""
    import subprocess

    from kstub.compat.realkafka import run_tool, tool_command

    _java_tools()
    config = {"ssl.client.auth": "required"} if protocol == "SSL" else {}
    if mechanism == "OAUTHBEARER":
        config["sasl.enabled.mechanisms"] = "OAUTHBEARER"
    with Cluster(brokers=3, security_protocol=protocol, users=USERS, config=config) as cluster:
        assert cluster.tls_dir is not None or protocol == "SASL_PLAINTEXT"
        lines = [f"security.protocol={protocol}"]
        if "SSL" in protocol:
            tls = Path(cluster.tls_dir or "")
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={tls / 'ca.pem'}"]
            if protocol == "SSL":
                # PEM key store inline for the client: certificate chain and key, as Kafka's clients accept them
                chain = (tls / "client-cert.pem").read_text().strip().replace("\n", "\\n")
                key = (tls / "client-key.pem").read_text().strip().replace("\n", "\\n")
                lines += ["ssl.keystore.type=PEM", f"ssl.keystore.certificate.chain={chain}", f"ssl.keystore.key={key}"]
        if mechanism == "OAUTHBEARER":  # the Java client's unsecured token, as Kafka's docs show for tests
            lines += [
                "sasl.mechanism=OAUTHBEARER",
                "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                'unsecuredLoginStringClaim_sub="alice";',
            ]
        elif mechanism is not None:
            module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
            lines += [
                f"sasl.mechanism={mechanism}",
                f"sasl.jaas.config=org.apache.kafka.common.security.{module} required "
                f'username="alice" password="{USERS["alice"]}";',
            ]
        properties = tmp_path / "client.properties"
        properties.write_text("\n".join(lines) + "\n")
        topic = _topic()
        bootstrap = cluster.bootstrap_servers
        produced = run_tool(
            "kafka-console-producer",
            ["--bootstrap-server", bootstrap, "--topic", topic, "--producer.config", str(properties)],
            input="one\ntwo\nthree\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert produced.returncode == 0, produced.stderr
        consumed = subprocess.run(
            tool_command(
                "kafka-console-consumer",
                [
                    "--bootstrap-server",
                    bootstrap,
                    "--topic",
                    topic,
                    "--from-beginning",
                    "--max-messages",
                    "3",
                    "--timeout-ms",
                    "60000",
                    "--consumer.config",
                    str(properties),
                ],
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert consumed.stdout.splitlines()[-3:] == ["one", "two", "three"], consumed.stdout + consumed.stderr


def test_kafka_configs_manages_scram_users(tmp_path: Path) -> None:
    """kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=...]' makes a user who can then log in."""
    from kstub.compat.realkafka import run_tool

    _java_tools()
    base = free_ports(2)
    config = {
        "listeners": f"PLAINTEXT://127.0.0.1:{base},SASL_PLAINTEXT://127.0.0.1:{base + 1}",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
    }
    with Cluster(config=config, users={"alice": "alice-pw"}) as cluster:
        admin = ["--bootstrap-server", cluster.bootstrap("PLAINTEXT"), "--entity-type", "users"]

        def configs(*args: str) -> str:
            done = run_tool("kafka-configs", [*admin, *args], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        dave = cluster.client_config("dave", "dave-pw", mechanism="SCRAM-SHA-512", listener="SASL_PLAINTEXT")
        assert _confluent_failure(dave).code() == ck.KafkaError._AUTHENTICATION
        configs("--entity-name", "dave", "--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=dave-pw]")
        # (kafka-configs --describe of users also asks for client quotas, which kstub does not serve)
        from confluent_kafka.admin import AdminClient, ScramMechanism

        admin_client = AdminClient({"bootstrap.servers": cluster.bootstrap("PLAINTEXT")})
        described = admin_client.describe_user_scram_credentials(["dave"])["dave"].result(30)
        infos = [(i.mechanism, i.iterations) for i in described.scram_credential_infos]
        assert infos == [(ScramMechanism.SCRAM_SHA_512, 8192)]
        assert confluent_roundtrip(dave, _topic(), EXPECTED) == EXPECTED
        everyone = admin_client.describe_user_scram_credentials().result(30)
        assert sorted(everyone) == ["alice", "dave"]
        assert [i.mechanism for i in everyone["alice"].scram_credential_infos] == [
            ScramMechanism.SCRAM_SHA_256,
            ScramMechanism.SCRAM_SHA_512,
        ]
        configs("--entity-name", "dave", "--alter", "--delete-config", "SCRAM-SHA-512")
        assert _confluent_failure(dave).code() == ck.KafkaError._AUTHENTICATION
        # a credential that does not exist: Kafka's RESOURCE_NOT_FOUND, reported by the tool
        missing = run_tool(
            "kafka-configs",
            [*admin, "--entity-name", "dave", "--alter", "--delete-config", "SCRAM-SHA-512"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "does not exist" in missing.stdout + missing.stderr
