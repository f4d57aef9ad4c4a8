"""SASL answers compared with real Kafka configured the same way (a SASL_PLAINTEXT listener).

Real Kafka runs here with its own settings (the shared `real_kafka` is
PLAINTEXT only): a PLAINTEXT listener for set-up and a SASL_PLAINTEXT one with
PLAIN users from the JAAS setting and a SCRAM-SHA-256 user added with
kafka-configs. kstub gets the same listener settings. Each test sends the same
bytes to both and compares the answers and whether the connection is closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from scramp import ScramClient

from kstub import Cluster
from kstub.compat.realkafka import run_tool
from kstub.protocol import ApiKey, ErrorCode

from support.raw import RawClient
from support.real_kafka import start_sasl_kafka
from support.served import free_ports

JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" user_bob="bob-secret";'
)


def _settings(plain_port: int | str, sasl_port: int) -> dict[str, str]:
    return {
        "listeners": f"PLAINTEXT://127.0.0.1:{plain_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{plain_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
        ),
    }


@dataclass
class Brokers:
    kstub: str
    kafka: str
    #: the PLAINTEXT listeners (no authentication)
    kstub_plain: str = ""
    kafka_plain: str = ""


@pytest.fixture(scope="module")
def brokers() -> Iterator[Brokers]:
    kafka, kafka_sasl = start_sasl_kafka(_settings)
    try:
        added = run_tool(
            "kafka-configs",
            [
                "--bootstrap-server",
                kafka.bootstrap_servers,
                "--alter",
                "--add-config",
                "SCRAM-SHA-256=[iterations=4096,password=alice-secret]",
                "--entity-type",
                "users",
                "--entity-name",
                "alice",
            ],
            capture_output=True,
            text=True,
        )
        assert added.returncode == 0, added.stdout + added.stderr
        base = free_ports(2)
        ours = _settings(base, base + 1)
        ours["kstub.sasl.users"] = "alice:alice-secret"
        with Cluster(config=ours) as cluster:
            yield Brokers(
                cluster.bootstrap("SASL_PLAINTEXT"),
                kafka_sasl,
                cluster.bootstrap("PLAINTEXT"),
                kafka.bootstrap_servers,
            )
    finally:
        kafka.stop()


def _both(brokers: Brokers) -> list[RawClient]:
    return [RawClient(brokers.kstub), RawClient(brokers.kafka)]


def _closed(client: RawClient) -> bool:
    closed = client.is_closed_by_peer()
    client.close()
    return closed


def test_unsupported_mechanism(brokers: Brokers) -> None:
    answers, closed = [], []
    for client in _both(brokers):
        answer = client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "GSSAPI"})
        answers.append((answer.error_code, sorted(answer.mechanisms)))
        closed.append(_closed(client))
    assert (
        answers[0]
        == answers[1]
        == (
            ErrorCode.UNSUPPORTED_SASL_MECHANISM,
            ["OAUTHBEARER", "PLAIN", "SCRAM-SHA-256"],
        )
    )
    assert closed == [True, True]


@pytest.mark.parametrize(
    "token",
    [b"\0alice\0wrong", b"\0nobody\0x", b"\0alice\0", b"alice", b"\0alice", b"a\0b\0c\0d", b"bob\0alice\0alice-secret"],
)
def test_plain_bad_credentials(brokers: Brokers, token: bytes) -> None:
    answers, closed = [], []
    for client in _both(brokers):
        assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}).error_code == 0
        answer = client.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": token})
        answers.append((answer.error_code, answer.error_message, bytes(answer.auth_bytes)))
        closed.append(_closed(client))
    assert answers[0] == answers[1]
    assert answers[0][0] == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert closed == [True, True]


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", "x")])
def test_scram_bad_credentials(brokers: Brokers, user: str, password: str) -> None:
    answers, closed = [], []
    for client in _both(brokers):
        assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-256"}).error_code == 0
        scram = ScramClient(["SCRAM-SHA-256"], user, password)
        first = client.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": scram.get_client_first().encode()})
        answer = first
        if first.error_code == 0:
            scram.set_server_first(bytes(first.auth_bytes).decode())
            answer = client.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": scram.get_client_final().encode()})
        answers.append((first.error_code, answer.error_code, answer.error_message))
        closed.append(_closed(client))
    assert answers[0] == answers[1]
    assert answers[0][1] == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert closed == [True, True]


def test_scram_authenticates(brokers: Brokers) -> None:
    for client in _both(brokers):
        with client:
            assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-256"}).error_code == 0
            scram = ScramClient(["SCRAM-SHA-256"], "alice", "alice-secret")
            first = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": scram.get_client_first().encode()})
            scram.set_server_first(bytes(first.auth_bytes).decode())
            final = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": scram.get_client_final().encode()})
            assert final.error_code == 0
            scram.set_server_final(bytes(final.auth_bytes).decode())  # raises if the server's signature is wrong
            assert client.request(ApiKey.METADATA, 1, {"topics": []}).brokers


def test_requests_out_of_order(brokers: Brokers) -> None:
    """Metadata before authenticating, SaslAuthenticate before SaslHandshake: closed unanswered by both."""
    for client in _both(brokers):
        client.send(ApiKey.METADATA, 1, {"topics": []})
        assert _closed(client)
    for client in _both(brokers):
        client.send(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": b"\0alice\0alice-secret"})
        assert _closed(client)


def test_handshake_after_authentication(brokers: Brokers) -> None:
    answers = []
    for client in _both(brokers):
        with client:
            assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}).error_code == 0
            auth = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": b"\0alice\0alice-secret"})
            assert auth.error_code == 0
            answer = client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
            answers.append((answer.error_code, list(answer.mechanisms)))
            assert client.request(ApiKey.METADATA, 1, {"topics": []}).brokers
    assert answers[0] == answers[1] == (ErrorCode.ILLEGAL_SASL_STATE, [])


def _jws(header: dict, claims: dict, signature: str = "") -> str:
    import base64
    import json

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{signature}"


def _oauth_message(token: str) -> bytes:
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


def test_oauthbearer_unsecured_token_authenticates(brokers: Brokers) -> None:
    import time

    token = _jws({"alg": "none"}, {"sub": "alice", "iat": int(time.time()), "exp": int(time.time()) + 600})
    for client in _both(brokers):
        with client:
            assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "OAUTHBEARER"}).error_code == 0
            answer = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": _oauth_message(token)})
            assert (answer.error_code, bytes(answer.auth_bytes)) == (0, b"")
            assert client.request(ApiKey.METADATA, 1, {"topics": []}).brokers


@pytest.mark.parametrize(
    "token",
    [
        _jws({"alg": "HS256"}, {"sub": "alice", "exp": 4_000_000_000}, "c2ln"),
        _jws({"alg": "none"}, {"sub": "alice", "exp": 1_000_000}),
        _jws({"alg": "none"}, {"exp": 4_000_000_000}),
        "not-a-token",
    ],
    ids=["signed", "expired", "no-sub", "garbage"],
)
def test_oauthbearer_bad_tokens(brokers: Brokers, token: str) -> None:
    answers, closed = [], []
    for client in _both(brokers):
        assert client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "OAUTHBEARER"}).error_code == 0
        first = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": _oauth_message(token)})
        entry = [first.error_code, bytes(first.auth_bytes)]
        if first.error_code == 0:
            second = client.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": b"\x01"})
            entry += [second.error_code, second.error_message]
        else:
            entry += [first.error_message]
        answers.append(entry)
        closed.append(_closed(client))
    assert answers[0] == answers[1]
    assert closed == [True, True]


def _plain_both(brokers: Brokers) -> list[RawClient]:
    return [RawClient(brokers.kstub_plain), RawClient(brokers.kafka_plain)]


def _upsert(name: str, mechanism: int = 2, iterations: int = 4096) -> dict:
    return {
        "name": name,
        "mechanism": mechanism,
        "iterations": iterations,
        "salt": b"s" * 16,
        "salted_password": b"p" * 64,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"deletions": [], "upsertions": [_upsert("u1", iterations=100)]},
        {"deletions": [], "upsertions": [_upsert("u2", iterations=20000)]},
        {"deletions": [{"name": "nobody", "mechanism": 1}], "upsertions": []},
        {"deletions": [], "upsertions": [_upsert("u3", mechanism=7)]},
        {"deletions": [], "upsertions": [_upsert("")]},
        {"deletions": [], "upsertions": [_upsert("u4"), _upsert("u4")]},
        {"deletions": [{"name": "u5", "mechanism": 2}], "upsertions": [_upsert("u5")]},
    ],
    ids=["few-iterations", "many-iterations", "delete-missing", "bad-mechanism", "no-name", "twice", "both"],
)
def test_alter_user_scram_credentials_errors(brokers: Brokers, body: dict) -> None:
    answers = []
    for client in _plain_both(brokers):
        with client:
            answer = client.request(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, body)
            answers.append([(r.user, r.error_code, r.error_message) for r in answer.results])
    assert answers[0] == answers[1]
    assert answers[0][0][1] != 0


def test_describe_user_scram_credentials(brokers: Brokers) -> None:
    answers = []
    for client in _plain_both(brokers):
        with client:
            upserts = [_upsert("erin", 1, 5000), _upsert("bert", 2, 4096), _upsert("bert", 1, 4096)]
            changed = client.request(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, {"deletions": [], "upsertions": upserts})
            results = [(r.user, r.error_code, r.error_message) for r in changed.results]
            users = [{"name": "erin"}, {"name": "zed"}, {"name": "bert"}, {"name": "amy"}]
            answer = client.request(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": users})
            described = [
                (r.user, r.error_code, r.error_message, sorted((i.mechanism, i.iterations) for i in r.credential_infos))
                for r in answer.results
            ]
            answers.append((results, answer.error_code, described))
    assert answers[0] == answers[1]
