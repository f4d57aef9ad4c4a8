"""Who may send the admin API requests: no web page can drive it (`Access`).

It listens on loopback unless told otherwise (``--admin-host``), answers only
requests whose ``Host`` names a loopback address or the configured host (DNS
rebinding), refuses any ``Origin`` but its own, requires ``Content-Type:
application/json`` on every state-changing request (so no cross-site "simple"
form POST gets through), and with a token (``--admin-token``, or generated when
listening beyond loopback) requires ``Authorization: Bearer TOKEN`` on every request.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import parse_qs

from kstub.control_http_messages import HttpError, HttpRequest

#: methods that change nothing (and that a browser may send cross-site without a preflight)
SAFE_METHODS = frozenset({"GET", "HEAD"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 perhaps in brackets) is this machine's loopback."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(bind_host: str) -> str:
    """How a URL names the server bound to `bind_host` (a wildcard: loopback)."""
    if bind_host.strip("[]") in WILDCARDS:
        return "127.0.0.1"
    return f"[{bind_host}]" if ":" in bind_host and not bind_host.startswith("[") else bind_host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _host_name(value: str) -> str:
    """The name part of a Host header value (``name``, ``name:port``, ``[v6]:port``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass
class Access:
    """The admin server's rules on who may send it requests."""

    #: the address the server is bound to (``--admin-host``)
    bind_host: str = "127.0.0.1"
    #: required as ``Authorization: Bearer TOKEN`` when set
    token: str | None = None

    @classmethod
    def for_bind(cls, bind_host: str, token: str | None = None) -> Access:
        """Rules for a server on `bind_host`; beyond loopback a token is generated unless given."""
        if token is None and not is_loopback(bind_host):
            token = secrets.token_urlsafe(24)
        return cls(bind_host, token or None)

    def host_allowed(self, name: str) -> bool:
        name = name.strip("[]").rstrip(".")
        if is_loopback(name):
            return True
        bind = self.bind_host.strip("[]").lower()
        if bind in WILDCARDS:
            # Listening everywhere: any address literal (rebinding needs a DNS name) or this machine's name.
            return _is_address(name) or name == socket.gethostname().lower()
        return name == bind

    def check(self, req: HttpRequest) -> None:
        """Raise the refusal for a request this server must not act on."""
        host = req.headers.get("host")
        if host is not None and not self.host_allowed(_host_name(host)):
            raise HttpError(403, f"Host {host!r} is not this admin server's (DNS rebinding?)")
        origin = req.headers.get("origin")
        if origin is not None and (host is None or origin.lower() != f"http://{host.strip().lower()}"):
            raise HttpError(403, f"cross-origin requests are refused (Origin {origin!r})")
        if self.token is not None:
            given = req.headers.get("authorization", "")
            scheme, _, credentials = given.partition(" ")
            if req.method == "GET" and req.path == "/" and not given:
                # The console's page, opened as http://HOST:PORT/?token=TOKEN (it then sends the header itself).
                scheme, credentials = "bearer", (parse_qs(req.query).get("token") or [""])[0]
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credentials.strip().encode("utf-8", "replace"), self.token.encode()
            ):
                raise HttpError(
                    401,
                    "this admin server needs its token: Authorization: Bearer TOKEN",
                    [("WWW-Authenticate", "Bearer")],
                )
        if req.method not in SAFE_METHODS:
            media_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media_type != "application/json":
                raise HttpError(415, f"{req.method} requests need Content-Type: application/json")
