"""Listeners, TLS and SASL on the Kafka port, configured with Kafka's settings.

Listeners: ``listeners=NAME://host:port,...`` with ``listener.security.protocol.map``
(a name that is itself a protocol needs no entry) and ``advertised.listeners``;
without ``listeners`` there is one listener at ``--host``/``--port`` whose name
and protocol are `ListenerSpec.security_protocol` (PLAINTEXT unless asked). In a
cluster of several brokers broker N listens (and advertises) on each
listener's port + N. Metadata, FindCoordinator and DescribeCluster answer with
the endpoints of the listener the request came through.

TLS (SSL, SASL_SSL): PEM key stores as Kafka 2.7+ accepts them,
``ssl.keystore.type=PEM`` with ``ssl.keystore.location`` (certificate chain and
private key in one file, the key optionally encrypted with ``ssl.key.password``)
or inline ``ssl.keystore.certificate.chain`` / ``ssl.keystore.key``;
``ssl.truststore.location`` (PEM) for client certificates;
``ssl.client.auth=required|requested|none``. `ensure_tls_dir` makes a
throwaway CA and broker certificate (``kstub serve --tls-dir DIR``). Every
setting may be given per listener as ``listener.name.<name>.<setting>``.

SASL (SASL_PLAINTEXT, SASL_SSL): mechanisms PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512 and OAUTHBEARER with unsecured tokens (``sasl.enabled.mechanisms``;
the first three when unset, where Kafka would default to GSSAPI, which kstub
lacks); re-authentication (KIP-368) with ``connections.max.reauth.ms``. PLAIN users come from the JAAS
setting as Kafka's PlainLoginModule reads them
(``listener.name.<name>.plain.sasl.jaas.config=... user_alice="secret";``);
PLAIN and SCRAM users both from ``kstub.sasl.users=alice:secret,...``
(``kstub serve --sasl-users``), since kstub has no metadata log to keep SCRAM
credentials in. `SaslServer` is the per-connection state machine that
kstub/connection.py drives before a connection may do anything else.
"""

from __future__ import annotations

import logging
import re
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kstub.protocol import ApiKey, ErrorCode

log = logging.getLogger("kstub.security")

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
#: enabled when sasl.enabled.mechanisms is not set (OAUTHBEARER's unsecured tokens let anyone be anyone: opt in)
DEFAULT_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Kafka's SCRAM minimum (and kafka-configs' default) iteration count
SCRAM_ITERATIONS = 4096
#: how long a client has to complete the TLS handshake
TLS_HANDSHAKE_TIMEOUT = 10.0

_LISTENER = re.compile(r"^([A-Za-z0-9_]+)://(\[[^\]]*\]|[^:]*):(\d+)$")


class SecurityConfigError(ValueError):
    """A listener, TLS or SASL setting kstub cannot serve; the message says which and why."""


@dataclass(frozen=True)
class Listener:
    """One listener as configured; ports are the first broker's (broker N adds N; 0: ephemeral)."""

    name: str
    protocol: str
    host: str
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _parse_endpoint(entry: str, setting: str) -> tuple[str, str, int]:
    match = _LISTENER.match(entry)
    if not match:
        raise SecurityConfigError(f"{setting}: {entry!r} is not NAME://host:port")
    name, host, port = match.group(1).upper(), match.group(2).strip("[]"), int(match.group(3))
    if port > 65535:
        raise SecurityConfigError(f"{setting}: port {port} of {entry!r} is not a TCP port")
    return name, host, port


def parse_listeners(config: Any, host: str, port: int, protocol: str = "PLAINTEXT") -> list[Listener]:
    """The listeners the settings ask for (``listeners`` etc.), else one `protocol` listener at host:port."""
    protocol = protocol.upper()
    if protocol not in PROTOCOLS:
        raise SecurityConfigError(f"unknown security protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
    raw = config.raw("listeners")
    if not raw:
        return [Listener(protocol, protocol, host, port)]
    protocol_map: dict[str, str] = {}
    for entry in _split(config.raw("listener.security.protocol.map")):
        name, sep, mapped = entry.partition(":")
        if not sep or mapped.strip().upper() not in PROTOCOLS:
            raise SecurityConfigError(f"listener.security.protocol.map: {entry!r} is not NAME:PROTOCOL")
        protocol_map[name.strip().upper()] = mapped.strip().upper()
    advertised: dict[str, tuple[str, int]] = {}
    for entry in _split(config.raw("advertised.listeners")):
        name, adv_host, adv_port = _parse_endpoint(entry, "advertised.listeners")
        advertised[name] = (adv_host, adv_port)
    listeners: list[Listener] = []
    for entry in _split(raw):
        name, listen_host, listen_port = _parse_endpoint(entry, "listeners")
        mapped = protocol_map.get(name) or (name if name in PROTOCOLS else None)
        if mapped is None:
            raise SecurityConfigError(
                f"listeners: no security protocol for listener {name} (add it to listener.security.protocol.map)"
            )
        if any(listener.name == name for listener in listeners):
            raise SecurityConfigError(f"listeners: listener {name} is given twice")
        adv_host, adv_port = advertised.get(name, (None, None))
        listeners.append(Listener(name, mapped, listen_host or host, listen_port, adv_host or None, adv_port))
    unknown = set(advertised) - {listener.name for listener in listeners}
    if unknown:
        raise SecurityConfigError(f"advertised.listeners names listener(s) not in listeners: {', '.join(unknown)}")
    if not listeners:
        raise SecurityConfigError("listeners is empty")
    return listeners


def listener_setting(config: Any, listener: str, name: str) -> str | None:
    """A setting as Kafka looks it up for a listener: ``listener.name.<listener>.<name>``, then ``<name>``."""
    value = config.raw(f"listener.name.{listener.lower()}.{name}")
    return value if value is not None else config.raw(name)


#: settings (and listener.name.<l>.<setting> forms) that hold secrets: DescribeConfigs hides their values
_SECRET_SUFFIXES = ("password", "sasl.jaas.config", "ssl.keystore.key", "kstub.sasl.users")


def is_secret_setting(name: str) -> bool:
    """Whether a broker setting holds a secret (Kafka's PASSWORD type): described as sensitive, without value."""
    return name.endswith(_SECRET_SUFFIXES)


# --- TLS ---------------------------------------------------------------------------------


def _pem_file(text: str, directory: Path, name: str) -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def ssl_context(config: Any, listener: str) -> ssl.SSLContext:
    """The server-side TLS context of a listener, from its ``ssl.*`` settings."""

    def get(name: str) -> str | None:
        value = listener_setting(config, listener, name)
        return value if value not in (None, "") else None

    store_type = (get("ssl.keystore.type") or "PEM").upper()
    if store_type != "PEM":
        raise SecurityConfigError(
            f"listener {listener}: ssl.keystore.type={store_type} is not supported; use PEM "
            "(ssl.keystore.location with the certificate chain and key), or kstub serve --tls-dir"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    location, password = get("ssl.keystore.location"), get("ssl.key.password") or get("ssl.keystore.password")
    chain, key = get("ssl.keystore.certificate.chain"), get("ssl.keystore.key")
    try:
        if location:
            context.load_cert_chain(location, password=password)
        elif chain and key:
            with tempfile.TemporaryDirectory(prefix="kstub-pem-") as tmp:
                context.load_cert_chain(
                    _pem_file(chain, Path(tmp), "chain.pem"), _pem_file(key, Path(tmp), "key.pem"), password=password
                )
        else:
            raise SecurityConfigError(
                f"listener {listener} uses TLS but has no key store: set ssl.keystore.location "
                "(PEM: certificate chain and private key) or use kstub serve --tls-dir DIR"
            )
    except (OSError, ssl.SSLError) as exc:
        raise SecurityConfigError(f"listener {listener}: cannot load the key store: {exc}") from None
    client_auth = (get("ssl.client.auth") or "none").lower()
    if client_auth not in ("required", "requested", "none"):
        raise SecurityConfigError(f"ssl.client.auth={client_auth}: expected required, requested or none")
    trust_type = (get("ssl.truststore.type") or "PEM").upper()
    trust, trust_inline = get("ssl.truststore.location"), get("ssl.truststore.certificates")
    if trust_type != "PEM" and (trust or trust_inline):
        raise SecurityConfigError(f"listener {listener}: ssl.truststore.type={trust_type} is not supported; use PEM")
    try:
        if trust:
            context.load_verify_locations(cafile=trust)
        elif trust_inline:
            context.load_verify_locations(cadata=trust_inline)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityConfigError(f"listener {listener}: cannot load the trust store: {exc}") from None
    if client_auth != "none" and not (trust or trust_inline):
        raise SecurityConfigError(f"listener {listener}: ssl.client.auth={client_auth} needs ssl.truststore.location")
    context.verify_mode = {"required": ssl.CERT_REQUIRED, "requested": ssl.CERT_OPTIONAL}.get(
        client_auth, ssl.CERT_NONE
    )
    return context


@dataclass(frozen=True)
class TlsFiles:
    """What `ensure_tls_dir` leaves in its directory, for the broker and for clients."""

    directory: Path

    @property
    def ca(self) -> Path:
        """The CA certificate clients trust (ssl.ca.location, ssl.truststore.location)."""
        return self.directory / "ca.pem"

    @property
    def broker(self) -> Path:
        """The broker's certificate chain and private key (ssl.keystore.location)."""
        return self.directory / "broker.pem"

    @property
    def client_cert(self) -> Path:
        """A client certificate (CN=client) signed by the CA, for mutual TLS."""
        return self.directory / "client-cert.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"


def ensure_tls_dir(directory: str | Path, hosts: list[str] | tuple[str, ...] = ()) -> TlsFiles:
    """A throwaway CA and a broker certificate for localhost (and `hosts`) in `directory`.

    Files already there are kept (clients configured with the CA keep working
    across restarts), unless the broker certificate lacks one of `hosts`.
    """
    import trustme

    files = TlsFiles(Path(directory))
    files.directory.mkdir(parents=True, exist_ok=True)
    names = ["localhost", "127.0.0.1", "::1"]
    names += [h for h in hosts if h and h not in names and h not in ("0.0.0.0", "::")]
    marker = files.directory / "hosts.txt"
    if (
        files.ca.exists()
        and files.broker.exists()
        and marker.exists()
        and set(names) <= set(marker.read_text().split())
    ):
        return files
    ca = trustme.CA(organization_name="kstub throwaway CA")
    ca.cert_pem.write_to_path(str(files.ca))
    broker = ca.issue_cert(*names, common_name="kstub broker")
    chain = b"".join(blob.bytes() for blob in broker.cert_chain_pems)
    files.broker.write_bytes(_pkcs8(broker.private_key_pem.bytes()) + chain)
    client = ca.issue_cert("client", common_name="client", organization_unit_name="kstub")
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    files.client_key.write_bytes(_pkcs8(client.private_key_pem.bytes()))
    marker.write_text("\n".join(names) + "\n")
    return files


def _pkcs8(pem: bytes) -> bytes:
    """A private key as PKCS#8 PEM ("BEGIN PRIVATE KEY"), the form Java's PEM key stores read."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def use_tls_dir(config: Any, files: TlsFiles) -> None:
    """Point the broker's key store (and trust store) at `files`, unless they are set already."""
    if config.raw("ssl.keystore.location") is None and config.raw("ssl.keystore.certificate.chain") is None:
        if config.raw("ssl.keystore.type") is None:
            config.set("ssl.keystore.type", "PEM")
        config.set("ssl.keystore.location", str(files.broker))
    if config.raw("ssl.truststore.location") is None and config.raw("ssl.truststore.certificates") is None:
        if config.raw("ssl.truststore.type") is None:
            config.set("ssl.truststore.type", "PEM")
        config.set("ssl.truststore.location", str(files.ca))


_RULE = re.compile(r"\s*(DEFAULT|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?))\s*(?:,|$)")


def parse_mapping_rules(value: str | None) -> list[tuple[re.Pattern[str], str, str] | None]:
    """ssl.principal.mapping.rules: ``RULE:pattern/replacement/[LU]`` entries and ``DEFAULT`` (None here)."""
    rules: list[tuple[re.Pattern[str], str, str] | None] = []
    text = (value or "DEFAULT").strip()
    position = 0
    while position < len(text):
        match = _RULE.match(text, position)
        if match is None or match.end() == position:
            raise SecurityConfigError(f"ssl.principal.mapping.rules: cannot read {text[position:]!r}")
        if match.group(1) == "DEFAULT":
            rules.append(None)
        else:
            replacement = re.sub(r"\$(\d)", r"\\\1", match.group(3))  # Java's $1 → Python's \1
            try:
                rules.append((re.compile(match.group(2)), replacement, match.group(4)))
            except re.error as exc:
                raise SecurityConfigError(
                    f"ssl.principal.mapping.rules: bad pattern {match.group(2)!r}: {exc}"
                ) from None
        position = match.end()
    return rules


def principal_from_certificate(der: bytes | None, rules: str | None = None) -> str:
    """The principal name of a TLS client, by ssl.principal.mapping.rules (DEFAULT: the subject, RFC 2253).

    The first rule whose pattern matches the whole distinguished name gives
    the name (with ``/L`` lower-cased, ``/U`` upper-cased); DEFAULT keeps the
    name as it is; no matching rule also keeps it.
    """
    if not der:
        return "ANONYMOUS"
    from cryptography import x509

    name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    for rule in parse_mapping_rules(rules):
        if rule is None:
            return name
        pattern, replacement, case = rule
        if pattern.fullmatch(name):
            mapped = pattern.sub(replacement, name)
            return mapped.lower() if case == "L" else mapped.upper() if case == "U" else mapped
    return name


# --- SASL --------------------------------------------------------------------------------

_JAAS_USER = re.compile(r'user_([^\s=]+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_users(value: str | None) -> dict[str, str]:
    """``alice:secret,bob:pw`` → {user: password} (a password may contain ':')."""
    users: dict[str, str] = {}
    for entry in _split(value):
        name, sep, password = entry.partition(":")
        if not sep or not name:
            raise SecurityConfigError(f"kstub.sasl.users: {entry!r} is not user:password")
        users[name] = password
    return users


@dataclass
class SaslSettings:
    """What a SASL listener accepts: its mechanisms, and the users of each."""

    mechanisms: list[str]
    plain_users: dict[str, str]
    scram: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]] = field(default_factory=dict)
    #: connections.max.reauth.ms (KIP-368): a session's lifetime; 0: sessions never expire, no re-authentication
    reauth_ms: int = 0


def sasl_settings(
    config: Any, listener: str, scram_store: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]] | None = None
) -> SaslSettings:
    """A listener's SASL settings; SCRAM credentials go to (and are read from) `scram_store`, the cluster's."""
    enabled = [m.upper() for m in _split(listener_setting(config, listener, "sasl.enabled.mechanisms"))]
    if not enabled:
        enabled = list(DEFAULT_MECHANISMS)
    unknown = [m for m in enabled if m not in MECHANISMS]
    if unknown:
        raise SecurityConfigError(
            f"listener {listener}: SASL mechanism(s) {', '.join(unknown)} not supported by kstub "
            f"(supported: {', '.join(MECHANISMS)})"
        )
    users = parse_users(config.raw("kstub.sasl.users"))
    plain = dict(users)
    jaas = config.raw(f"listener.name.{listener.lower()}.plain.sasl.jaas.config") or config.raw("sasl.jaas.config")
    for name, password in _JAAS_USER.findall(jaas or ""):
        plain[name] = password.replace('\\"', '"').replace("\\\\", "\\")
    raw_reauth = listener_setting(config, listener, "connections.max.reauth.ms")
    try:
        reauth_ms = int(raw_reauth) if raw_reauth not in (None, "") else 0
    except ValueError:
        raise SecurityConfigError(f"connections.max.reauth.ms={raw_reauth}: expected a number of ms") from None
    store = {} if scram_store is None else scram_store
    settings = SaslSettings(enabled, plain, store, reauth_ms=max(reauth_ms, 0))
    from scramp import ScramMechanism

    for mechanism in SCRAM_MECHANISMS:
        known = store.setdefault(mechanism, {})
        missing = {name: password for name, password in users.items() if name not in known}
        if missing:
            scram = ScramMechanism(mechanism)
            for name, password in missing.items():
                known[name] = tuple(scram.make_auth_info(password, iteration_count=SCRAM_ITERATIONS))  # type: ignore[assignment]
    return settings


#: SCRAM mechanisms by their number in DescribeUserScramCredentials / AlterUserScramCredentials
SCRAM_MECHANISMS = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}


def scram_keys(mechanism: str, salted_password: bytes) -> tuple[bytes, bytes]:
    """(stored key, server key) of a salted password (RFC 5802), as AlterUserScramCredentials sends it."""
    import hashlib
    import hmac

    digest = "sha256" if mechanism == "SCRAM-SHA-256" else "sha512"
    client_key = hmac.new(salted_password, b"Client Key", digest).digest()
    server_key = hmac.new(salted_password, b"Server Key", digest).digest()
    return hashlib.new(digest, client_key).digest(), server_key


class SaslFailure(Exception):
    """Authentication failed: answer `error` with `message`, then close the connection."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


class SaslServer:
    """One connection's SASL exchange, as Kafka's SaslServerAuthenticator runs it.

    Before authentication only ApiVersions, SaslHandshake and (after the
    handshake) SaslAuthenticate are served; `step` takes the client's token and
    returns the server's, or raises `SaslFailure`. `principal` is set once done.
    """

    def __init__(self, settings: SaslSettings) -> None:
        self.settings = settings
        self.mechanism: str | None = None
        self.principal: str | None = None
        self._scram: Any = None
        self._scram_round = 0
        self._scram_user = ""
        self._oauth_error: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.principal is not None

    def handshake(self, mechanism: str) -> ErrorCode:
        if mechanism not in self.settings.mechanisms:
            return ErrorCode.UNSUPPORTED_SASL_MECHANISM
        self.mechanism = mechanism
        return ErrorCode.NONE

    def step(self, token: bytes) -> bytes:
        if self.mechanism == "PLAIN":
            return self._plain(token)
        if self.mechanism == "OAUTHBEARER":
            return self._oauthbearer(token)
        return self._scram_step(token)

    def _plain(self, token: bytes) -> bytes:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise SaslFailure(
                ErrorCode.SASL_AUTHENTICATION_FAILED,
                f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}",
            )
        authzid, user, password = (p.decode("utf-8", "replace") for p in parts)
        if not user:
            raise SaslFailure(ErrorCode.SASL_AUTHENTICATION_FAILED, "Authentication failed: username not specified")
        if not password:
            raise SaslFailure(ErrorCode.SASL_AUTHENTICATION_FAILED, "Authentication failed: password not specified")
        if self.settings.plain_users.get(user) != password:
            raise SaslFailure(
                ErrorCode.SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password"
            )
        if authzid and authzid != user:
            raise SaslFailure(
                ErrorCode.SASL_AUTHENTICATION_FAILED,
                "Authentication failed: Client requested an authorization id that is different from username",
            )
        self.principal = f"User:{user}"
        return b""

    def _oauthbearer(self, token: bytes) -> bytes:
        """OAUTHBEARER (RFC 7628) with unsecured JWS tokens, as Kafka's default validator accepts them.

        The token's header must say ``"alg":"none"``; its ``sub`` claim is the
        principal; ``exp`` (seconds) must be present and in the future. A bad
        token is answered with an error challenge (``{"status":"invalid_token"}``)
        and, once the client acknowledges it, SASL_AUTHENTICATION_FAILED.
        """
        if self._oauth_error is not None:
            raise SaslFailure(ErrorCode.SASL_AUTHENTICATION_FAILED, _OAUTH_CHALLENGE.decode())  # as Kafka says it
        try:
            subject = _unsecured_jws_subject(token)
        except ValueError as exc:
            self._oauth_error = str(exc)
            log.info("SASL OAUTHBEARER token refused: %s", exc)
            return _OAUTH_CHALLENGE
        self.principal = f"User:{subject}"
        return b""

    def _scram_step(self, token: bytes) -> bytes:
        from scramp import ScramException, ScramMechanism

        assert self.mechanism is not None
        credentials = self.settings.scram.get(self.mechanism, {})
        failed = SaslFailure(
            ErrorCode.SASL_AUTHENTICATION_FAILED,
            "Authentication failed during authentication due to invalid credentials with SASL mechanism "
            + self.mechanism,
        )
        try:
            if self._scram_round == 0:
                self._scram_round = 1

                def lookup(user: str) -> tuple[bytes, bytes, bytes, int]:
                    self._scram_user = user
                    info = credentials.get(user)
                    if info is None:
                        raise ScramException(f"unknown user {user}")
                    return info

                self._scram = ScramMechanism(self.mechanism).make_server(lookup)
                self._scram.set_client_first(token.decode("utf-8"))
                return str(self._scram.get_server_first()).encode()
            if self._scram_round == 1:
                self._scram_round = 2
                self._scram.set_client_final(token.decode("utf-8"))
                self.principal = f"User:{self._scram_user}"
                return str(self._scram.get_server_final()).encode()
        except (ScramException, UnicodeDecodeError, ValueError, KeyError) as exc:
            log.info("SASL %s failed: %s", self.mechanism, exc)
            raise failed from None
        raise SaslFailure(ErrorCode.ILLEGAL_SASL_STATE, "Unexpected SASL token after authentication")


_OAUTH_CHALLENGE = b'{"status":"invalid_token"}'
_OAUTH_MESSAGE = re.compile(rb"^n,(?:a=[^,]*)?,\x01((?:[^\x01]*\x01)*)\x01$", re.DOTALL)


def _b64url_json(part: str) -> dict[str, Any]:
    import base64
    import json

    value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _unsecured_jws_subject(message: bytes) -> str:
    """The ``sub`` of the unsecured JWS in an OAUTHBEARER client message; ValueError says what is wrong."""
    import time

    match = _OAUTH_MESSAGE.match(message)
    if match is None:
        raise ValueError("Invalid OAUTHBEARER client first message")
    pairs = dict(pair.split(b"=", 1) for pair in match.group(1).split(b"\x01") if pair and b"=" in pair)
    auth = pairs.get(b"auth", b"").decode("utf-8", "replace")
    scheme, _, jws = auth.partition(" ")
    if scheme.lower() != "bearer" or not jws:
        raise ValueError("Invalid OAUTHBEARER client first message: no bearer token")
    parts = jws.strip().split(".")
    if len(parts) != 3 or parts[2]:
        raise ValueError("the token is not an unsecured JWS (header.payload. with no signature)")
    try:
        header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
    except ValueError as exc:
        raise ValueError(f"the token's header or claims are not base64url JSON: {exc}") from None
    if header.get("alg") != "none":
        raise ValueError(f"the token's alg is {header.get('alg')!r}, not 'none'")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise ValueError("the token has no 'sub' claim")
    expiry = claims.get("exp")
    if not isinstance(expiry, int | float) or isinstance(expiry, bool):
        raise ValueError("the token has no numeric 'exp' claim")
    if expiry * 1000 <= time.time() * 1000:
        raise ValueError("the token has expired")
    return subject


#: what a connection may send before it has authenticated
PRE_AUTH_APIS = frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE})


@dataclass
class ListenerSecurity:
    """A listener's TLS context and SASL settings, built once when the cluster starts."""

    listener: Listener
    ssl_context: ssl.SSLContext | None = None
    sasl: SaslSettings | None = None
    #: ssl.principal.mapping.rules (None: DEFAULT)
    principal_rules: str | None = None


def listener_security(
    config: Any, listener: Listener, scram_store: dict[str, dict[str, tuple[bytes, bytes, bytes, int]]] | None = None
) -> ListenerSecurity:
    rules = listener_setting(config, listener.name, "ssl.principal.mapping.rules") if listener.tls else None
    parse_mapping_rules(rules)  # refused at start if unreadable
    return ListenerSecurity(
        listener,
        ssl_context(config, listener.name) if listener.tls else None,
        sasl_settings(config, listener.name, scram_store) if listener.sasl else None,
        rules,
    )
