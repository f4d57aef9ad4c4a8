"""The admin HTTP API: the control plane over HTTP/1.1 and JSON, for any language.

``kstub serve --admin-port P`` serves it; ``kstub ctl`` is its command-line
client; docs/replication.md ("The admin HTTP API") lists the routes with curl examples.

HTTP/1.1 itself is h11's: `RequestReader` wraps an ``h11.Connection`` (sans-IO:
bytes in, `HttpRequest` out; bounded head and body, no chunked bodies) and
`serve_admin` runs one Trio task per connection (keep-alive, as h11 decides)
that routes each request to the cluster's `ControlPlane` and answers JSON.
Refusals are JSON too: ``{"error": "..."}`` with 400 (bad input), 401 (no
or wrong token), 403 (a foreign Origin or Host), 404 (no such broker, topic,
fault, route), 405, 408, 409 (not possible in the cluster's current state),
413, 415 (a state-changing request that is not JSON), 431, 501, 505. A
request without Content-Length has no body (RFC 9112).

No web page can drive it (`Access`): it listens on loopback unless told
otherwise (``--admin-host``), answers only requests whose ``Host`` names a
loopback address or the configured host (DNS rebinding), refuses any
``Origin`` but its own, requires ``Content-Type: application/json`` on every
state-changing request (so no cross-site "simple" form POST gets through),
and with a token (``--admin-token``, or generated when listening beyond
loopback) requires ``Authorization: Bearer TOKEN`` on every request.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import h11
import trio

from kstub.control import ControlError

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterState
    from kstub.control import ControlPlane

log = logging.getLogger("kstub.admin")

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
READ_TIMEOUT = 30.0
#: how long a kept-alive connection may wait for its next request
IDLE_TIMEOUT = 60.0

_TARGET = re.compile(r"/[\x21-\x7e]*")
#: integers in a body must fit Kafka's longs (a delay of 10**400 ms would overflow a float)
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

#: h11's words for what it refuses, in ours
_H11_MESSAGES = [
    ("illegal request line", "malformed request line"),
    ("illegal header line", "malformed header line"),
    ("continuation line", "malformed header line (obsolete line folding)"),
    ("conflicting Content-Length", "more than one Content-Length"),
    ("Receive buffer too long", "request head too large"),
    ("peer closed connection", "connection closed before the request was complete"),
]


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


@dataclass
class HttpRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            obj = json.loads(self.body)
        except RecursionError:
            raise HttpError(400, "body is not JSON kstub accepts: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer with too many digits
            raise HttpError(400, f"body is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise HttpError(400, "body must be a JSON object")
        return obj


NEED_DATA = object()
#: the client closed the connection between requests
CLOSED = object()


def _refusal(exc: h11.RemoteProtocolError) -> HttpError:
    text = str(exc)
    for theirs, ours in _H11_MESSAGES:
        if theirs in text:
            text = ours if theirs != "peer closed connection" else f"{ours} ({text})"
            break
    return HttpError(exc.error_status_hint, text)


class RequestReader:
    """One server-side HTTP/1.1 connection (h11's), read one request at a time.

    Feed bytes with `receive_data` (b"" at end of file); `next_request` gives an
    `HttpRequest`, `NEED_DATA`, `CLOSED`, or raises `HttpError`.
    """

    def __init__(self) -> None:
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._fed = 0
        self._request: h11.Request | None = None
        self._body = bytearray()

    def receive_data(self, data: bytes) -> None:
        self._fed += len(data)
        self.conn.receive_data(data)

    @property
    def method(self) -> bytes | None:
        """The method of the request being read or answered (None: no request line yet)."""
        return None if self._request is None else self._request.method

    @property
    def started(self) -> bool:
        """Whether any byte of the current request was received."""
        return self._request is not None or bool(self.conn.trailing_data[0])

    def next_cycle(self) -> None:
        """After answering: ready for the next request on the same connection."""
        self.conn.start_next_cycle()
        self._fed = len(self.conn.trailing_data[0])
        self._request = None
        self._body = bytearray()

    def next_request(self) -> HttpRequest | object:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _refusal(exc) from None
            if event is h11.NEED_DATA:
                return NEED_DATA
            if isinstance(event, h11.ConnectionClosed):
                return CLOSED
            if isinstance(event, h11.Request):
                self._request = event
                self._check_head(event)
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return self._complete()
            else:  # PAUSED: the previous request was not answered yet
                return NEED_DATA

    def _check_head(self, event: h11.Request) -> None:
        if self._fed - len(self.conn.trailing_data[0]) > MAX_HEAD:
            raise HttpError(431, "request head too large")
        if event.http_version not in (b"1.0", b"1.1"):
            raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are served")
        target = event.target.decode("ascii", "replace")
        if not _TARGET.fullmatch(target):
            raise HttpError(400, "malformed request line")
        for name, value in event.headers:
            if name == b"transfer-encoding":
                raise HttpError(501, "chunked bodies are not supported: send Content-Length")
            if name == b"content-length" and int(value) > MAX_BODY:
                raise HttpError(413, "body too large")

    def _complete(self) -> HttpRequest:
        event = self._request
        assert event is not None
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key, text = name.decode("ascii"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        path, _, query = event.target.decode("ascii").partition("?")
        return HttpRequest(event.method.decode("ascii"), path, query, headers, bytes(self._body))


@dataclass
class Reply:
    """An answer that is not JSON (a page, metrics text)."""

    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class StreamReply:
    """An answer sent as it is made (Server-Sent Events): `produce` calls its `send` until it returns.

    The connection is the stream's from then on: it is closed when `produce`
    returns, or as soon as the client closes its side.
    """

    content_type: str
    produce: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]
    headers: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200


def json_reply(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, (json.dumps(obj, indent=2) + "\n").encode(), "application/json", headers or [])


def render(reader: RequestReader, reply: Reply, *, close: bool = False) -> bytes:
    """The bytes of `reply`, through h11 (which decides keep-alive, Content-Length and the rest)."""
    headers = [
        ("Content-Type", reply.content_type),
        ("Content-Length", str(len(reply.body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *reply.headers,
    ]
    if close:
        headers.append(("Connection", "close"))
    conn = reader.conn
    reason = HTTPStatus(reply.status).phrase.encode()
    out = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason)) or b""
    if reader.method != b"HEAD":  # a HEAD answer has the headers of a GET's and no body
        out += conn.send(h11.Data(data=reply.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


# --- who may ask ---------------------------------------------------------------------

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


# --- routes -------------------------------------------------------------------------

Handler = Callable[["ControlPlane", re.Match[str], HttpRequest], Awaitable[tuple[int, Any] | Reply | StreamReply]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, re.compile(pattern), fn))
        return fn

    return register


def _int(obj: dict[str, Any], name: str, *, required: bool = False, default: Any = None) -> Any:
    value = obj.get(name, default)
    if value is None:
        if required:
            raise HttpError(400, f"{name!r} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HttpError(400, f"{name!r} must be an integer")
    if not LONG_MIN <= value <= LONG_MAX:
        raise HttpError(400, f"{name!r} is out of range (a 64-bit integer)")
    return value


def _str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise HttpError(400, f"{name!r} must be a string")
    return value


@route("GET", r"/v1/cluster")
async def _cluster(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_cluster()


@route("GET", r"/v1/topics")
async def _topics(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_partitions()


@route("GET", r"/v1/topics/(?P<topic>[^/]+)")
async def _topic(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_partitions(m["topic"])


_BROKER_ACTIONS = {
    "stop": "stop_broker",
    "start": "start_broker",
    "kill": "kill_broker",
    "drop-connections": "drop_connections",
    "pause-replication": "pause_replication",
    "resume-replication": "resume_replication",
    "isolate": "isolate",
    "heal": "heal",
}


@route("POST", r"/v1/brokers/(?P<id>-?\d+)/(?P<action>[a-z-]+)")
async def _broker(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    broker_id, action = int(m["id"]), m["action"]
    if action == "replication-delay":
        control.set_replication_delay(broker_id, _int(req.json(), "ms", required=True))
    elif action in _BROKER_ACTIONS:
        result = getattr(control, _BROKER_ACTIONS[action])(broker_id)
        if hasattr(result, "__await__"):
            await result
    else:
        raise HttpError(404, f"no broker action {action!r}")
    return 200, control.describe_cluster()


@route("GET", r"/v1/faults")
async def _faults(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_faults()


@route("POST", r"/v1/faults")
async def _add_fault(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    body = req.json()
    kind = _str(body, "type")
    api = body.get("api")
    if api is not None and not isinstance(api, (str, int)):
        raise HttpError(400, "'api' must be a name or a number")
    count = None if "count" in body and body["count"] is None else _int(body, "count", default=1)
    broker = _int(body, "broker")
    if kind == "error":
        error = body.get("error")
        if api is None or error is None or not isinstance(error, (str, int)):
            raise HttpError(400, "an error fault needs 'api' and 'error'")
        fault = control.inject_error(
            api, error, count, broker, topic=_str(body, "topic"), partition=_int(body, "partition")
        )
    elif kind == "delay":
        fault = control.delay_response(api, _int(body, "ms", required=True), count, broker)
    elif kind == "drop-response":
        fault = control.drop_response(api, count, broker)
    elif kind == "drop-request":
        fault = control.drop_request(api, count, broker)
    else:
        raise HttpError(400, "'type' must be one of error, delay, drop-response, drop-request")
    return 201, fault.describe()


@route("DELETE", r"/v1/faults")
async def _clear_faults(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    for fault in list(control.faults):
        control.remove_fault(fault.id)
    return 200, []


@route("DELETE", r"/v1/faults/(?P<id>\d+)")
async def _remove_fault(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    control.remove_fault(int(m["id"]))
    return 200, control.describe_faults()


@route("POST", r"/v1/topics/(?P<topic>[^/]+)/partitions/(?P<partition>\d+)/move-leader")
async def _move_leader(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    control.move_leader(m["topic"], int(m["partition"]), _int(req.json(), "broker", required=True))
    return 200, control.describe_partitions(m["topic"])


@route("POST", r"/v1/topics/(?P<topic>[^/]+)/partitions/(?P<partition>\d+)/reassign")
async def _reassign(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    replicas = req.json().get("replicas")
    if replicas is not None and (
        not isinstance(replicas, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in replicas)
    ):
        raise HttpError(400, "replicas: a list of broker ids, or null to cancel")
    return 200, control.reassign(m["topic"], int(m["partition"]), replicas)


@route("GET", r"/v1/reassignments")
async def _reassignments(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_reassignments()


@route("POST", r"/v1/leaders/elect-preferred")
async def _elect_preferred(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, {"moved": control.elect_preferred_leaders()}


@route("POST", r"/v1/logs/clean")
async def _clean_logs(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    body = req.json()
    topic = body.get("topic")
    force = body.get("force", False) is True
    if topic is not None and not isinstance(topic, str):
        raise ControlError("topic must be a string")
    return 200, {"cleaned": await control.clean_logs(topic, force=force)}


@route("POST", r"/v1/clear")
async def _clear(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    control.clear()
    return 200, control.describe_cluster()


@route("GET", r"/")
async def _console(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | Reply:
    from kstub.console import PAGE_HEADERS, page

    return Reply(200, page(), "text/html; charset=utf-8", list(PAGE_HEADERS))


@route("GET", r"/v1/state")
async def _state(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | Reply:
    from kstub.console_live import hub_for

    # A fresh structure of plain values: written as JSON in a worker thread while the brokers serve.
    body = await trio.to_thread.run_sync(json.dumps, hub_for(control.cluster).picture())
    return Reply(200, body.encode(), "application/json")


@route("GET", r"/v1/events")
async def _events(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | StreamReply:
    from kstub.console_live import MAX_STREAMS, hub_for, stream_events

    hub = hub_for(control.cluster)
    if hub.streams >= MAX_STREAMS:
        raise HttpError(503, f"too many console pages open (at most {MAX_STREAMS})")

    async def produce(send: Callable[[bytes], Awaitable[None]]) -> None:
        await stream_events(hub, send)

    return StreamReply("text/event-stream; charset=utf-8", produce)


def _query_int(req: HttpRequest, name: str, default: int | None) -> int | None:
    values = parse_qs(req.query).get(name)
    if not values or values[-1] == "":
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise HttpError(400, f"{name!r} must be an integer") from None
    if not LONG_MIN <= value <= LONG_MAX:
        raise HttpError(400, f"{name!r} is out of range (a 64-bit integer)")
    return value


@route("GET", r"/v1/topics/(?P<topic>[^/]+)/partitions/(?P<partition>\d+)/records")
async def _records(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    from kstub.console_records import DEFAULT_LIMIT, DEFAULT_MAX_BYTES, browse

    limit = _query_int(req, "limit", DEFAULT_LIMIT)
    max_bytes = _query_int(req, "max_bytes", DEFAULT_MAX_BYTES)
    assert limit is not None and max_bytes is not None
    offset = _query_int(req, "offset", None)
    return 200, await browse(control.cluster, m["topic"], int(m["partition"]), offset, limit, max_bytes)


@route("GET", r"/metrics")
async def _metrics(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | Reply:
    from kstub.metrics import exposition

    body, content_type = await exposition(control.cluster)
    return Reply(200, body, content_type)


@route("GET", r"/v1/actions")
async def _actions(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, list(control.actions)


async def dispatch(control: ControlPlane, req: HttpRequest) -> tuple[int, Any] | Reply | StreamReply:
    allowed = []
    for method, pattern, handler in ROUTES:
        m = pattern.fullmatch(req.path)
        if m is None:
            continue
        if method != ("GET" if req.method == "HEAD" else req.method):
            allowed.append(method)
            continue
        try:
            result = await handler(control, m, req)
        except ControlError as exc:
            return exc.status, {"error": str(exc)}
        if req.method not in SAFE_METHODS:  # the console's pages see what it did at once
            from kstub.console_live import hub_for

            hub_for(control.cluster).changed()
        return result
    if allowed:
        return 405, {"error": f"{req.method} not allowed here (allowed: {', '.join(allowed)})"}
    return 404, {"error": f"no route {req.path}"}


# --- the server -------------------------------------------------------------------


async def _answer(control: ControlPlane, access: Access, request: HttpRequest) -> Reply | StreamReply:
    try:
        access.check(request)
        result = await dispatch(control, request)
    except HttpError as exc:
        log.info("admin: refused %s %s: %d %s", request.method, request.path, exc.status, exc.message)
        return json_reply(exc.status, {"error": exc.message}, exc.headers)
    reply = result if isinstance(result, (Reply, StreamReply)) else json_reply(*result)
    log.info("admin: %s %s -> %d", request.method, request.path, reply.status)
    return reply


async def _serve_connection(control: ControlPlane, access: Access, stream: trio.abc.Stream) -> None:
    """Requests on one connection, one after the other, until either side closes."""
    reader = RequestReader()
    while True:
        close = False
        try:
            request = await _receive(reader, stream)
            if request is CLOSED:
                return
            assert isinstance(request, HttpRequest)
            reply = await _answer(control, access, request)
        except HttpError as exc:
            log.info("admin: refused a request: %d %s", exc.status, exc.message)
            reply, close = json_reply(exc.status, {"error": exc.message}, exc.headers), True
        except trio.TooSlowError:
            if not reader.started:
                return  # an idle kept-alive connection: nothing to answer
            reply, close = json_reply(408, {"error": "request not received in time"}), True
        except Exception:
            log.exception("admin: internal error")
            reply, close = json_reply(500, {"error": "internal error (see the kstub log)"}), True
        if reader.conn.our_state is not h11.SEND_RESPONSE and reader.conn.our_state is not h11.IDLE:
            return
        if isinstance(reply, StreamReply):
            await _stream(reader, reply, stream)
            return
        await stream.send_all(render(reader, reply, close=close))
        if close or reader.conn.our_state is not h11.DONE or reader.conn.their_state is not h11.DONE:
            return
        reader.next_cycle()


async def _stream(reader: RequestReader, reply: StreamReply, stream: trio.abc.Stream) -> None:
    """Send `reply` as it is produced (chunked, or until the close for HTTP/1.0), until it ends or the client leaves."""
    conn = reader.conn
    headers = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Accel-Buffering", "no"),
        ("Connection", "close"),
        *reply.headers,
    ]
    reason = HTTPStatus(reply.status).phrase.encode()
    await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason)) or b"")
    if reader.method == b"HEAD":
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return

    async def send(data: bytes) -> None:
        await stream.send_all(conn.send(h11.Data(data=data)) or b"")

    async def until_closed(cancel_scope: trio.CancelScope) -> None:
        # Whatever the client sends now is ignored; its end of the connection ends the stream.
        while await stream.receive_some(65536):
            pass
        cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(until_closed, nursery.cancel_scope)
        await reply.produce(send)
        nursery.cancel_scope.cancel()
    if conn.our_state is h11.SEND_BODY:
        with trio.move_on_after(1):
            await stream.send_all(conn.send(h11.EndOfMessage()) or b"")


async def _receive(reader: RequestReader, stream: trio.abc.Stream) -> HttpRequest | object:
    """The next request: at most IDLE_TIMEOUT until it begins, READ_TIMEOUT for the whole of it."""
    request = reader.next_request()
    deadline = trio.current_time() + IDLE_TIMEOUT
    while request is NEED_DATA:
        if reader.started and deadline > trio.current_time() + READ_TIMEOUT:
            deadline = trio.current_time() + READ_TIMEOUT
        if reader.conn.they_are_waiting_for_100_continue:  # curl's Expect: 100-continue on larger bodies
            await stream.send_all(reader.conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        with trio.fail_at(deadline):
            data = await stream.receive_some(65536)
        reader.receive_data(data)
        request = reader.next_request()
    return request


async def serve_admin(
    cluster: ClusterState,
    host: str,
    port: int,
    access: Access | None = None,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the admin API on `host`:`port` (0: ephemeral) until cancelled; reports the bound port."""
    access = access or Access.for_bind(host)
    listeners = await trio.open_tcp_listeners(port, host=host)
    if port == 0:
        for extra in listeners[1:]:
            await extra.aclose()
        listeners = listeners[:1]
    bound = listeners[0].socket.getsockname()[1]
    log.info("admin API on http://%s:%d", host, bound)
    from kstub.console_live import hub_for

    hub_for(cluster)  # the console's events log starts now, before any page is open
    task_status.started(bound)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                await _serve_connection(cluster.control, access, stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            except Exception:  # a bug of ours costs this connection, never the admin server or the cluster
                log.exception("admin: internal error; closing the connection")

    await trio.serve_listeners(handle, listeners)
