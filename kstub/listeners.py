"""Listeners on the Kafka port: ``listeners``, ``listener.security.protocol.map``, ``advertised.listeners``.

Without ``listeners`` there is one listener at ``--host``/``--port``. In a
cluster of several brokers broker N listens (and advertises) on each
listener's port + N. Every TLS or SASL setting may be given per listener as
``listener.name.<name>.<setting>`` (`listener_setting`). The rest of the
security settings are in kstub/security.py (TLS) and kstub/sasl.py (SASL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")

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
