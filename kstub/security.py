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

Listeners are parsed in kstub/listeners.py and SASL is in kstub/sasl.py; this
module has TLS, principals, and what a listener needs of both (`listener_security`).
"""

from __future__ import annotations

import logging
import re
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .listeners import PROTOCOLS, Listener, SecurityConfigError, listener_setting, parse_listeners
from .sasl import (
    DEFAULT_MECHANISMS,
    MECHANISMS,
    PRE_AUTH_APIS,
    SCRAM_ITERATIONS,
    SCRAM_MECHANISMS,
    SaslFailure,
    SaslServer,
    SaslSettings,
    parse_users,
    sasl_settings,
    scram_keys,
)

log = logging.getLogger("kstub.security")

# the names of kstub/listeners.py and kstub/sasl.py are importable from here too
__all__ = [
    "DEFAULT_MECHANISMS",
    "MECHANISMS",
    "PRE_AUTH_APIS",
    "PROTOCOLS",
    "SCRAM_ITERATIONS",
    "SCRAM_MECHANISMS",
    "TLS_HANDSHAKE_TIMEOUT",
    "Listener",
    "ListenerSecurity",
    "SaslFailure",
    "SaslServer",
    "SaslSettings",
    "SecurityConfigError",
    "TlsFiles",
    "ensure_tls_dir",
    "is_secret_setting",
    "listener_security",
    "listener_setting",
    "parse_listeners",
    "parse_mapping_rules",
    "parse_users",
    "principal_from_certificate",
    "sasl_settings",
    "scram_keys",
    "ssl_context",
    "use_tls_dir",
]

#: how long a client has to complete the TLS handshake
TLS_HANDSHAKE_TIMEOUT = 10.0

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
