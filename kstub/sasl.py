"""SASL on the Kafka port: PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER (unsecured tokens).

The settings a SASL listener reads (`sasl_settings`) and `SaslServer`, the
per-connection state machine that kstub/connection.py drives before a
connection may do anything else. See kstub/security.py for the settings.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from kstub.protocol import ApiKey, ErrorCode

from .listeners import SecurityConfigError, _split, listener_setting

log = logging.getLogger("kstub.security")

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
#: enabled when sasl.enabled.mechanisms is not set (OAUTHBEARER's unsecured tokens let anyone be anyone: opt in)
DEFAULT_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Kafka's SCRAM minimum (and kafka-configs' default) iteration count
SCRAM_ITERATIONS = 4096


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
