"""Five clients, three ways in, and the failures compared with real Kafka (docs/security.md).

confluent-kafka, kafka-python, aiokafka, kcat and the Java client produce
and consume against a 3-broker kstub with three listeners: SASL_SSL (SCRAM-
SHA-512), SASL_PLAINTEXT (PLAIN) and SSL with mutual TLS (the Java console
tools over the three: tests/integration/test_security.py). Then each client
meets a wrong password, a mechanism the broker does not enable and a CA it
does not trust, against kstub and against a real Kafka 4.4 broker with the
same listeners, certificate and users: the way each client fails (its error
code or exception, and what its messages say: authentication failed,
unsupported mechanism, TLS handshake) must be the same; after each failure
kstub still serves a good client.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import confluent_kafka as ck
import kafka
import kafka.errors
import pytest

from kstub import Cluster
from kstub.kafka_client import BrokerConnection
from kstub.protocol import ApiKey
from kstub.security import TlsFiles, ensure_tls_dir

from support.external import require_programs, unavailable
from support.roundtrips import aiokafka_roundtrip, confluent_roundtrip, kafka_python_roundtrip
from support.served import free_ports

ALICE, SECRET = "alice", "alice-secret"
EXPECTED = [f"v{i}".encode() for i in range(3)]
#: what a failure says, by any client: the categories compared (case-insensitive search of its messages)
CATEGORIES = {
    "auth": ("authentication failed", "saslauthenticationfailed", "saslauthenticationexception", "invalid credentials"),
    "mechanism": ("unsupported sasl mechanism", "unsupportedsaslmechanism"),
    "tls": (
        "certificate verify failed",
        "ssl handshake",
        "sslhandshake",
        "sslauthenticationexception",
        "sslerror",
        "bad certificate",
        "certificate required",
    ),
}


def categories(*texts: str) -> frozenset[str]:
    text = " ".join(texts).lower()
    return frozenset(name for name, phrases in CATEGORIES.items() if any(p in text for p in phrases))


@dataclass(frozen=True)
class Way:
    """How a client connects: the listener's protocol, SASL mechanism and credentials, what it trusts."""

    protocol: str
    mechanism: str | None = None
    password: str = SECRET
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


# --- the clusters --------------------------------------------------------------------------------

LISTENERS = ("SASL_SSL", "SASL_PLAINTEXT", "SSL")


def _listener_settings(ports: dict[str, int | str], tls: TlsFiles) -> dict[str, str]:
    listeners = ",".join(f"{name}://127.0.0.1:{ports[name]}" for name in ports)
    return {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.broker),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca),
        "listener.name.ssl.ssl.client.auth": "required",
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[TlsFiles, TlsFiles]:
    """The CA both brokers' certificates come from, and another CA no broker uses."""
    base = tmp_path_factory.mktemp("tls")
    return ensure_tls_dir(base / "ca"), ensure_tls_dir(base / "other")


@pytest.fixture(scope="module")
def kstub3(tls: tuple[TlsFiles, TlsFiles]) -> Iterator[dict[str, str]]:
    """A 3-broker kstub: bootstrap servers per listener."""
    base = free_ports(33)
    ports = {name: base + 11 * i for i, name in enumerate(LISTENERS)}
    config = _listener_settings(ports, tls[0]) | {"kstub.sasl.users": f"{ALICE}:{SECRET}"}
    with Cluster(brokers=3, config=config) as cluster:
        yield {name: cluster.bootstrap(name) for name in LISTENERS}


@pytest.fixture(scope="module")
def kafka1(tls: tuple[TlsFiles, TlsFiles]) -> Iterator[dict[str, str]]:
    """Real Kafka with the same three listeners (and PLAINTEXT to set it up): bootstrap servers per listener."""
    from kstub.compat.realkafka import RealKafka, RealKafkaUnavailable

    base = free_ports(3)
    ports = {name: base + i for i, name in enumerate(LISTENERS)}
    config = _listener_settings(ports, tls[0])
    jaas = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{ALICE}="{SECRET}";'
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    for listener in ("sasl_ssl", "sasl_plaintext"):
        config[f"listener.name.{listener}.plain.sasl.jaas.config"] = jaas
        config[f"listener.name.{listener}.scram-sha-512.sasl.jaas.config"] = scram
    config["listeners"] = (
        "PLAINTEXT://127.0.0.1:{port}," + config["listeners"] + ",CONTROLLER://127.0.0.1:{controller_port}"
    )
    config["advertised.listeners"] = "PLAINTEXT://127.0.0.1:{port}," + config["advertised.listeners"]
    config["listener.security.protocol.map"] = (
        ",".join(f"{n}:{n}" for n in ("PLAINTEXT", *LISTENERS)) + ",CONTROLLER:PLAINTEXT"
    )
    try:
        kafka_ = RealKafka(config=config).start()
    except RealKafkaUnavailable as exc:
        unavailable(f"real Kafka unavailable: {exc}")
    try:
        host, _, port = kafka_.bootstrap_servers.rpartition(":")
        admin = BrokerConnection(host, int(port), "security-clients", 30.0)
        salt = os.urandom(16)
        upsert = {
            "name": ALICE,
            "mechanism": 2,  # SCRAM-SHA-512
            "iterations": 4096,
            "salt": salt,
            "salted_password": hashlib.pbkdf2_hmac("sha512", SECRET.encode(), salt, 4096),
        }
        answer = admin.request(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, {"deletions": [], "upsertions": [upsert]})
        assert [r.error_code for r in answer.results] == [0], answer
        admin.close()
        yield {name: f"127.0.0.1:{p}" for name, p in ports.items()}
    finally:
        kafka_.stop()


def _topic() -> str:
    return f"sec-{uuid.uuid4().hex[:8]}"


# --- the clients ----------------------------------------------------------------------------------


def _librdkafka(bootstrap: str, way: Way) -> dict[str, str]:
    config = {"bootstrap.servers": bootstrap, "security.protocol": way.protocol}
    if way.ca:
        config["ssl.ca.location"] = str(way.ca)
    if way.cert and way.key:
        config |= {"ssl.certificate.location": str(way.cert), "ssl.key.location": str(way.key)}
    if way.mechanism:
        config |= {"sasl.mechanism": way.mechanism, "sasl.username": ALICE, "sasl.password": way.password}
    return config


class Confluent:
    name = "confluent-kafka"

    def roundtrip(self, bootstrap: str, way: Way, topic: str) -> list[bytes]:
        return confluent_roundtrip(_librdkafka(bootstrap, way), topic, EXPECTED)

    def failure(self, bootstrap: str, way: Way) -> tuple[object, frozenset[str]]:
        errors: list[ck.KafkaError] = []
        producer = ck.Producer({**_librdkafka(bootstrap, way), "error_cb": errors.append})
        for _ in range(100):
            producer.poll(0.2)
            if errors:
                break
        assert errors, "the client reported no error"
        return errors[0].name(), categories(errors[0].str())


def _kafka_python(bootstrap: str, way: Way) -> dict:
    settings: dict = {"bootstrap_servers": bootstrap, "security_protocol": way.protocol}
    if way.ca:
        settings["ssl_cafile"] = str(way.ca)
    if way.cert and way.key:
        settings |= {"ssl_certfile": str(way.cert), "ssl_keyfile": str(way.key)}
    if way.mechanism:
        settings |= {"sasl_mechanism": way.mechanism, "sasl_plain_username": ALICE, "sasl_plain_password": way.password}
    return settings


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _logged(logger: str, run: Callable[[], None]) -> tuple[str, list[str]]:
    """Run `run`, which must fail: the exception's class name and what `logger` logged (debug included: aiokafka
    tells why a connection closed only there)."""
    handler = _Messages()
    log = logging.getLogger(logger)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        run()
    except Exception as exc:  # the failure is what is compared
        return type(exc).__name__, [*handler.messages, str(exc)]
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    raise AssertionError("the client did not fail")


class KafkaPython:
    name = "kafka-python"

    def roundtrip(self, bootstrap: str, way: Way, topic: str) -> list[bytes]:
        return kafka_python_roundtrip(_kafka_python(bootstrap, way), topic, EXPECTED)

    def failure(self, bootstrap: str, way: Way) -> tuple[object, frozenset[str]]:
        # kafka-python retries until its bootstrap timeout and logs why each try failed: long enough for a real
        # Kafka under load to have answered (its first TLS handshakes can take seconds in a busy JVM)
        settings = _kafka_python(bootstrap, way) | {"bootstrap_timeout_ms": 20000}
        name, messages = _logged("kafka", lambda: kafka.KafkaProducer(**settings).close())
        return name, categories(*messages)


def _aiokafka(bootstrap: str, way: Way) -> dict:
    from aiokafka.helpers import create_ssl_context

    settings: dict = {"bootstrap_servers": bootstrap, "security_protocol": way.protocol}
    if way.ca:
        settings["ssl_context"] = create_ssl_context(
            cafile=str(way.ca),
            certfile=str(way.cert) if way.cert else None,
            keyfile=str(way.key) if way.key else None,
        )
    if way.mechanism:
        settings |= {"sasl_mechanism": way.mechanism, "sasl_plain_username": ALICE, "sasl_plain_password": way.password}
    return settings


class AioKafka:
    name = "aiokafka"

    def roundtrip(self, bootstrap: str, way: Way, topic: str) -> list[bytes]:
        return aiokafka_roundtrip(_aiokafka(bootstrap, way), topic, EXPECTED)

    def failure(self, bootstrap: str, way: Way) -> tuple[object, frozenset[str]]:
        from aiokafka import AIOKafkaProducer

        async def run() -> None:
            producer = AIOKafkaProducer(request_timeout_ms=10000, **_aiokafka(bootstrap, way))
            try:
                await producer.start()
            finally:
                await producer.stop()

        name, messages = _logged("aiokafka", lambda: asyncio.run(run()))
        return name, categories(*messages)


class Kcat:
    name = "kcat"

    @staticmethod
    def _options(bootstrap: str, way: Way) -> list[str]:
        config = _librdkafka(bootstrap, way)
        return [
            "-b",
            bootstrap,
            *(a for k, v in config.items() if k != "bootstrap.servers" for a in ("-X", f"{k}={v}")),
        ]

    def roundtrip(self, bootstrap: str, way: Way, topic: str) -> list[bytes]:
        require_programs("kcat")
        options = self._options(bootstrap, way)
        lines = "".join(f"{v.decode()}\n" for v in EXPECTED)
        produced = subprocess.run(
            ["kcat", *options, "-P", "-t", topic, "-m", "15"], input=lines, capture_output=True, text=True, timeout=60
        )
        assert produced.returncode == 0, produced.stderr
        consumed = subprocess.run(
            ["kcat", *options, "-C", "-t", topic, "-o", "beginning", "-e", "-m", "30"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return sorted(line.encode() for line in consumed.stdout.splitlines())

    def failure(self, bootstrap: str, way: Way) -> tuple[object, frozenset[str]]:
        require_programs("kcat")
        listed = subprocess.run(
            ["kcat", *self._options(bootstrap, way), "-L", "-m", "10"], capture_output=True, text=True, timeout=60
        )
        assert listed.returncode != 0, listed.stdout
        return listed.returncode, categories(listed.stderr)


class Java:
    """Kafka's console producer (the pinned 4.4.0 jars) writing one record."""

    name = "java"

    @staticmethod
    def _properties(way: Way, path: Path) -> Path:
        lines = [f"security.protocol={way.protocol}", "max.block.ms=15000", "delivery.timeout.ms=15000",
                 "request.timeout.ms=10000"]  # fmt: skip
        if way.ca:
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={way.ca}"]
        if way.cert and way.key:
            chain = way.cert.read_text().strip().replace("\n", "\\n")
            key = way.key.read_text().strip().replace("\n", "\\n")
            lines += ["ssl.keystore.type=PEM", f"ssl.keystore.certificate.chain={chain}", f"ssl.keystore.key={key}"]
        if way.mechanism:
            module = "plain.PlainLoginModule" if way.mechanism == "PLAIN" else "scram.ScramLoginModule"
            lines += [
                f"sasl.mechanism={way.mechanism}",
                f"sasl.jaas.config=org.apache.kafka.common.security.{module} required "
                f'username="{ALICE}" password="{way.password}";',
            ]
        path.write_text("\n".join(lines) + "\n")
        return path

    def failure(self, bootstrap: str, way: Way, tmp: Path) -> tuple[object, frozenset[str]]:
        from kstub.compat.realkafka import RealKafkaUnavailable, ensure_jars, run_tool

        try:
            ensure_jars()
        except RealKafkaUnavailable as exc:
            unavailable(f"the Java client is unavailable: {exc}")
        properties = self._properties(way, tmp / f"client-{uuid.uuid4().hex[:6]}.properties")
        produced = run_tool(
            "kafka-console-producer",
            ["--bootstrap-server", bootstrap, "--topic", _topic(), "--command-config", str(properties)],
            input="one\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        exceptions = sorted(set(re.findall(r"org\.apache\.kafka\.common\.errors\.(\w+)", produced.stderr)))
        assert exceptions, produced.stderr
        return tuple(exceptions), categories(produced.stderr)


CLIENTS = [Confluent(), KafkaPython(), AioKafka(), Kcat()]


# --- produce and consume: each client, each listener, three brokers ------------------------------------


def _ways(tls: TlsFiles) -> dict[str, Way]:
    return {
        "SASL_SSL/SCRAM-SHA-512": Way("SASL_SSL", "SCRAM-SHA-512", ca=tls.ca),
        "SASL_PLAINTEXT/PLAIN": Way("SASL_PLAINTEXT", "PLAIN"),
        "SSL/mutual": Way("SSL", ca=tls.ca, cert=tls.client_cert, key=tls.client_key),
    }


@pytest.mark.parametrize("way", ["SASL_SSL/SCRAM-SHA-512", "SASL_PLAINTEXT/PLAIN", "SSL/mutual"])
@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.name)
def test_produce_and_consume(kstub3: dict[str, str], tls: tuple[TlsFiles, TlsFiles], client: object, way: str) -> None:
    chosen = _ways(tls[0])[way]
    if client.name == "kcat" and chosen.mechanism == "SCRAM-SHA-512" and _kcat_scram_broken():
        # Debian's kcat (librdkafka 2.0.2) sends a broken SCRAM final message, refused by Kafka too
        # (test_kcat_scram_fails_as_against_kafka); PLAIN over the same SASL_SSL listener instead
        chosen = replace(chosen, mechanism="PLAIN")
    bootstrap = kstub3[chosen.protocol]
    assert len(bootstrap.split(",")) == 3
    assert client.roundtrip(bootstrap, chosen, _topic()) == EXPECTED


def _kcat_scram_broken() -> bool:
    """librdkafka before 2.2 repeats the client nonce in its SCRAM client-final message."""
    kcat = shutil.which("kcat")
    if kcat is None:
        return False
    version = subprocess.run([kcat, "-V"], capture_output=True, text=True)
    found = re.search(r"librdkafka (?:version )?(\d+)\.(\d+)", version.stdout + version.stderr)
    return found is not None and (int(found[1]), int(found[2])) < (2, 2)


# --- failures, as against Kafka -------------------------------------------------------------------


def _failure_ways(tls: TlsFiles, other: TlsFiles, client: str) -> dict[str, Way]:
    mechanism = "PLAIN" if client == "kcat" and _kcat_scram_broken() else "SCRAM-SHA-512"
    return {
        "wrong-password": Way("SASL_SSL", mechanism, password="wrong", ca=tls.ca),
        "unknown-mechanism": Way("SASL_SSL", "SCRAM-SHA-256", ca=tls.ca),  # not enabled on the brokers
        "untrusted-ca": Way("SASL_SSL", mechanism, ca=other.ca),
        "no-client-certificate": Way("SSL", ca=tls.ca),
    }


FAILURES = ["wrong-password", "unknown-mechanism", "untrusted-ca", "no-client-certificate"]
#: kafka-python drops what it read together with the end of the connection (kafka/net/transport.py's
#: `_sock_recv` returns the error and discards the bytes read before it). Kafka answers a failed SASL step
#: after its failed-authentication delay and closes at once, so whether kafka-python reads that answer, and
#: logs its reason, is a race on the client's side: CI saw it lost against Kafka (kstub's answer read) and
#: lost against kstub (Kafka's read). For these cases the exception must match, and the reason too where
#: the client read one; the other clients compare the reason in full.
ANSWER_LOST_AT_CLOSE = {("kafka-python", "unknown-mechanism"): "mechanism", ("kafka-python", "wrong-password"): "auth"}


@pytest.mark.parametrize("case", FAILURES)
@pytest.mark.parametrize("client", [*CLIENTS, Java()], ids=lambda c: c.name)
def test_failures_as_against_kafka(
    kstub3: dict[str, str],
    kafka1: dict[str, str],
    tls: tuple[TlsFiles, TlsFiles],
    tmp_path: Path,
    client: object,
    case: str,
) -> None:
    way = _failure_ways(*tls, client.name)[case]
    extra = (tmp_path,) if isinstance(client, Java) else ()
    first = kstub3[way.protocol].split(",")[0]  # one bootstrap broker each, as the one Kafka broker
    ours = client.failure(first, way, *extra)
    theirs = client.failure(kafka1[way.protocol], way, *extra)
    reason = ANSWER_LOST_AT_CLOSE.get((client.name, case))
    if reason is None:
        assert ours == theirs, f"{client.name}, {case}: kstub {ours}, Kafka {theirs}"
        assert ours[1], f"{client.name}, {case}: the failure says nothing recognisable: {ours}"
    else:
        assert ours[0] == theirs[0], f"{client.name}, {case}: kstub {ours}, Kafka {theirs}"
        assert ours[1] <= {reason} and theirs[1] <= {reason}, f"{client.name}, {case}: kstub {ours}, Kafka {theirs}"
    # the failure cost that client only: a good one is served as before
    good = _ways(tls[0])["SASL_SSL/SCRAM-SHA-512"]
    assert Confluent().roundtrip(kstub3["SASL_SSL"], good, _topic()) == EXPECTED


def test_kcat_scram_fails_as_against_kafka(
    kstub3: dict[str, str], kafka1: dict[str, str], tls: tuple[TlsFiles, TlsFiles]
) -> None:
    """Where kcat's SCRAM does not work, it fails against Kafka the same way (the broker is not to blame)."""
    require_programs("kcat")
    if not _kcat_scram_broken():
        pytest.skip("this kcat's SCRAM works (librdkafka 2.2+): test_produce_and_consume covers it")
    way = Way("SASL_SSL", "SCRAM-SHA-512", ca=tls[0].ca)
    ours, theirs = Kcat().failure(kstub3["SASL_SSL"], way), Kcat().failure(kafka1["SASL_SSL"], way)
    assert ours == theirs and "auth" in ours[1], (ours, theirs)
