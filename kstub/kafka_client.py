"""A small blocking Kafka client on kstub's own codec, for command-line tools.

It speaks the Kafka protocol over plain sockets to any Kafka-compatible
broker: it negotiates versions with ApiVersions on each connection (the
highest version both sides implement), learns the brokers from Metadata,
finds group coordinators with FindCoordinator, and sends any declared request
to a given broker. No Trio: a CLI does one thing at a time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

from kstub.protocol import APIS, ApiKey, Container, ErrorCode
from kstub.protocol.connection import NEED_DATA, ClientConnection


class AdminError(Exception):
    """A failure to report to the user (and exit non-zero)."""


def parse_servers(servers: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` (IPv6 hosts in brackets) as a list of addresses."""
    out = []
    for entry in servers.split(","):
        entry = entry.strip()
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise AdminError(f"invalid bootstrap server {entry!r} (expected HOST:PORT)")
        out.append((host.strip("[]"), int(port)))
    return out


def read_properties(path: str) -> dict[str, str]:
    """A Java-style ``key=value`` properties file (``#`` and ``!`` comments), as Kafka's tools take them."""
    settings: dict[str, str] = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.strip()
            if not line or line[0] in "#!":
                continue
            key, sep, value = line.partition("=")
            if not sep:
                key, _, value = line.partition(":")
            settings[key.strip()] = value.strip()
    return settings


class ClientSecurity:
    """How to reach a secured listener, from Kafka client settings (``--command-config``).

    ``security.protocol``; for TLS ``ssl.truststore.location`` (PEM) or
    ``ssl.ca.location``, and for a client certificate ``ssl.certificate.location``
    with ``ssl.key.location``; for SASL ``sasl.mechanism`` (PLAIN, SCRAM-SHA-256,
    SCRAM-SHA-512) with ``sasl.username``/``sasl.password`` or the username and
    password of ``sasl.jaas.config``.
    """

    def __init__(self, settings: Mapping[str, str]) -> None:
        import re

        self.protocol = settings.get("security.protocol", "PLAINTEXT").upper()
        self.ssl_context = None
        if "SSL" in self.protocol:
            import ssl

            ca = settings.get("ssl.truststore.location") or settings.get("ssl.ca.location")
            self.ssl_context = ssl.create_default_context(cafile=ca)
            cert = settings.get("ssl.certificate.location")
            if cert:
                self.ssl_context.load_cert_chain(
                    cert, settings.get("ssl.key.location"), settings.get("ssl.key.password")
                )
        self.mechanism = settings.get("sasl.mechanism", "GSSAPI").upper()
        jaas = settings.get("sasl.jaas.config", "")
        found = dict(re.findall(r'(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"', jaas))
        self.username = settings.get("sasl.username", found.get("username", ""))
        self.password = settings.get("sasl.password", found.get("password", ""))
        if self.protocol.startswith("SASL") and self.mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise AdminError(
                f"sasl.mechanism={self.mechanism}: kstub's tools speak PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"
            )

    def authenticate(self, connection: Connection) -> None:
        """SaslHandshake and SaslAuthenticate on a new connection; AdminError if refused."""
        handshake = connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": self.mechanism})
        if handshake.error_code != ErrorCode.NONE:
            raise AdminError(
                f"{connection.address}: SASL mechanism {self.mechanism} refused "
                f"({ErrorCode(handshake.error_code).name}; enabled: {', '.join(handshake.mechanisms)})"
            )

        def step(token: bytes) -> bytes:
            answer = connection.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": token})
            if answer.error_code != ErrorCode.NONE:
                raise AdminError(f"{connection.address}: {answer.error_message or ErrorCode(answer.error_code).name}")
            return bytes(answer.auth_bytes)

        if self.mechanism == "PLAIN":
            step(f"\0{self.username}\0{self.password}".encode())
            return
        from scramp import ScramClient

        scram = ScramClient([self.mechanism], self.username, self.password)
        scram.set_server_first(step(scram.get_client_first().encode()).decode())
        scram.set_server_final(step(scram.get_client_final().encode()).decode())


class Connection:
    """One blocking socket to one broker, speaking the Kafka protocol with kstub's codec.

    The one request/response client of the project: the tools (`BrokerConnection`
    adds version negotiation), the compatibility suite's probe, the benchmarks
    and the tests that hand-make requests all use it. ``request`` sends at the
    version given; nothing is sent unasked (no ApiVersions handshake), so a test
    controls every byte. Errors are `OSError`s (`ConnectionError` when the
    broker closes the connection).
    """

    def __init__(
        self,
        address: str | tuple[str, int],
        *,
        client_id: str = "kstub",
        timeout: float = 10.0,
        security: ClientSecurity | None = None,
    ) -> None:
        if isinstance(address, str):
            address = parse_servers(address)[0]
        host, port = address
        self.address = f"{host}:{port}"
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.conn = ClientConnection(client_id)
        if security is not None:
            if security.ssl_context is not None:
                self.sock = security.ssl_context.wrap_socket(self.sock, server_hostname=host)
            if security.protocol.startswith("SASL"):
                security.authenticate(self)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, api_key: int, version: int, body: Mapping[str, Any], *, expect_response: bool = True) -> None:
        """Send one request; with ``expect_response=False`` (Produce acks=0) no answer is awaited for it."""
        self.sock.sendall(self.conn.send_request(api_key, version, body))
        if not expect_response:
            self.conn.forget_last()

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: a hand-made or broken frame."""
        self.sock.sendall(data)

    def receive(self) -> Container:
        """The next response's body."""
        while True:
            response = self.conn.next_response()
            if response is not NEED_DATA:
                return response.body
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError(f"{self.address} closed the connection")
            self.conn.receive_data(data)

    def request(self, api_key: int, version: int, body: Mapping[str, Any]) -> Container:
        self.send(api_key, version, body)
        return self.receive()

    def is_closed_by_peer(self, *, wait: bool = True) -> bool:
        """Whether the broker closed the connection: waiting up to the timeout for it to, or (``wait=False``)
        as things stand (an idle connection's broker has nothing to say unasked)."""
        if wait:
            try:
                return self.sock.recv(1) == b""
            except ConnectionResetError:
                return True
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.sock.settimeout(timeout)


class BrokerConnection:
    """A `Connection` with the versions the broker supports (ApiVersions on connect); errors are AdminErrors."""

    def __init__(
        self, host: str, port: int, client_id: str, timeout: float, security: ClientSecurity | None = None
    ) -> None:
        self.address = f"{host}:{port}"
        try:
            self.link = Connection((host, port), client_id=client_id, timeout=timeout, security=security)
        except OSError as exc:
            raise AdminError(f"cannot connect to {self.address}: {exc}") from None
        self.versions = self._api_versions()

    @property
    def sock(self) -> socket.socket:
        return self.link.sock

    def close(self) -> None:
        self.link.close()

    def _roundtrip(self, api_key: int, version: int, body: Mapping[str, Any]) -> Container:
        try:
            return self.link.request(api_key, version, body)
        except OSError as exc:
            raise AdminError(f"{self.address}: {exc}") from None

    def _api_versions(self) -> dict[int, tuple[int, int]]:
        ours = APIS[ApiKey.API_VERSIONS]
        software = {"client_software_name": "kstub", "client_software_version": "1"}
        body = self._roundtrip(ApiKey.API_VERSIONS, ours.max_version, software)
        if body.error_code == ErrorCode.UNSUPPORTED_VERSION:
            # the broker's answer (v0-shaped) names the ApiVersions versions it does speak (v3+ still need
            # the client's software name: an older broker, or kstub posing as one, refuses an empty one)
            theirs = next((k.max_version for k in body.api_keys if k.api_key == ApiKey.API_VERSIONS), 0)
            body = self._roundtrip(ApiKey.API_VERSIONS, min(theirs, ours.max_version), software)
        if body.error_code != ErrorCode.NONE:
            raise AdminError(f"{self.address}: ApiVersions failed with {ErrorCode(body.error_code).name}")
        return {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}

    def version(self, api_key: int, max_version: int | None = None) -> int:
        """The highest version of `api_key` both sides implement (at most `max_version`)."""
        api = APIS[api_key]
        theirs = self.versions.get(api_key)
        if theirs is None:
            raise AdminError(f"{self.address} does not support {api.name}")
        high = min(api.max_version, theirs[1], api.max_version if max_version is None else max_version)
        if high < max(api.min_version, theirs[0]):
            raise AdminError(f"{self.address} supports no version of {api.name} that kstub speaks")
        return high

    def request(self, api_key: int, body: Mapping[str, Any], *, version: int | None = None) -> Container:
        return self._roundtrip(api_key, self.version(api_key) if version is None else version, body)


class AdminClient:
    """Connections to a cluster's brokers, found from the bootstrap servers."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "kstub-admin",
        timeout: float = 30.0,
        security: ClientSecurity | None = None,
    ) -> None:
        self.client_id = client_id
        self.timeout = timeout
        self.security = security
        self._connections: dict[int, BrokerConnection] = {}
        errors = []
        for host, port in parse_servers(bootstrap):
            try:
                self._bootstrap = BrokerConnection(host, port, client_id, timeout, security)
                break
            except AdminError as exc:
                errors.append(str(exc))
        else:
            raise AdminError("; ".join(errors))
        self.brokers: dict[int, tuple[str, int]] = {}
        self.metadata()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._bootstrap.close()
        for conn in self._connections.values():
            conn.close()

    def broker(self, node_id: int) -> BrokerConnection:
        conn = self._connections.get(node_id)
        if conn is None:
            if node_id not in self.brokers:
                raise AdminError(f"unknown broker {node_id}")
            host, port = self.brokers[node_id]
            conn = self._connections[node_id] = BrokerConnection(
                host, port, self.client_id, self.timeout, self.security
            )
        return conn

    def metadata(self, topics: list[str] | None = None) -> Container:
        """Metadata for `topics` (None: every topic), without creating any."""
        conn = self._bootstrap
        version = conn.version(ApiKey.METADATA)
        if topics is None and version == 0:
            version = 1  # v0 cannot ask for "all topics" with null
        body = conn.request(
            ApiKey.METADATA,
            {
                "topics": None if topics is None else [{"name": t} for t in topics],
                "allow_auto_topic_creation": False,
            },
            version=version,
        )
        self.brokers = {b.node_id: (b.host, b.port) for b in body.brokers}
        return body

    def find_coordinator(self, group: str, attempts: int = 10, *, key_type: int = 0) -> int:
        """The node id coordinating `group` (key type 1: a transactional id), retrying while Kafka creates its
        offsets (transaction state) topic."""
        conn = self._bootstrap
        for attempt in range(attempts):
            version = conn.version(ApiKey.FIND_COORDINATOR)
            if version >= 4:
                body = conn.request(
                    ApiKey.FIND_COORDINATOR, {"key_type": key_type, "coordinator_keys": [group]}, version=version
                )
                answer = body.coordinators[0]
            else:
                answer = conn.request(ApiKey.FIND_COORDINATOR, {"key": group, "key_type": key_type}, version=version)
            error = ErrorCode(answer.error_code)
            if error == ErrorCode.NONE:
                self.brokers.setdefault(answer.node_id, (answer.host, answer.port))
                return answer.node_id
            if error not in (ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS):
                raise AdminError(f"FindCoordinator for '{group}' failed: {error.name}")
            time.sleep(min(0.1 * 2**attempt, 2.0))
        raise AdminError(f"no coordinator available for '{group}'")

    def coordinator(self, group: str) -> BrokerConnection:
        return self.broker(self.find_coordinator(group))
