"""The admin HTTP API: the control plane over HTTP/1.1 and JSON, for any language.

``kstub serve --admin-port P`` serves it; ``kstub ctl`` is its command-line
client; docs/replication.md ("The admin HTTP API") lists the routes with curl examples.

A deliberately small server: `RequestReader` parses one request (sans-IO:
bytes in, `HttpRequest` out; no chunked bodies, bounded head and body), the
Trio side reads it, routes it to the cluster's `ControlPlane`, answers JSON,
and closes the connection. Refusals are JSON too: ``{"error": "..."}`` with
400 (bad input), 404 (no such broker, topic, fault, route), 405, 408, 409
(not possible in the cluster's current state), 413, 431, 501, 505. A request
without Content-Length has no body (RFC 9112), as curl -X POST sends it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import trio

from kstub.control import ControlError

if TYPE_CHECKING:
    from kstub.cluster.model import Cluster
    from kstub.control import ControlPlane

log = logging.getLogger("kstub.admin")

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
READ_TIMEOUT = 30.0

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_DIGITS = re.compile(r"[0-9]+")
#: integers in a body must fit Kafka's longs (a delay of 10**400 ms would overflow a float)
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


class RequestReader:
    """Parses one HTTP/1.x request from bytes fed with `receive_data`."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: tuple[str, str, str, dict[str, str]] | None = None
        self._length = 0

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    @property
    def started(self) -> bool:
        """Whether any byte of a request was received."""
        return bool(self._buffer) or self._head is not None

    def next_request(self) -> HttpRequest | object:
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise HttpError(431, "request head too large")
                return NEED_DATA
            if end > MAX_HEAD:
                raise HttpError(431, "request head too large")
            self._head = self._parse_head(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
        if len(self._buffer) < self._length:
            return NEED_DATA
        method, path, query, headers = self._head
        return HttpRequest(method, path, query, headers, bytes(self._buffer[: self._length]))

    def _parse_head(self, head: bytes) -> tuple[str, str, str, dict[str, str]]:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
            raise HttpError(400, "malformed request line")
        method, target, version = parts
        if not re.fullmatch(rb"HTTP/1\.[01]", version):
            if re.fullmatch(rb"HTTP/\d\.\d", version):
                raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are served")
            raise HttpError(400, "malformed request line")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.fullmatch(name):
                raise HttpError(400, "malformed header line")
            key = name.decode("ascii").lower()
            if key == "content-length" and key in headers:
                raise HttpError(400, "more than one Content-Length")
            headers[key] = value.strip(b" \t").decode("latin-1")
        if "transfer-encoding" in headers:
            raise HttpError(501, "chunked bodies are not supported: send Content-Length")
        length = headers.get("content-length", "0")
        if not _DIGITS.fullmatch(length) or len(length) > 20:
            raise HttpError(400, "bad Content-Length")
        self._length = int(length)
        if self._length > MAX_BODY:
            raise HttpError(413, "body too large")
        path, _, query = target.decode("ascii").partition("?")
        return method.decode("ascii"), path, query, headers


def render(status: int, obj: Any) -> bytes:
    body = (json.dumps(obj, indent=2) + "\n").encode()
    reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


# --- routes -------------------------------------------------------------------------

Handler = Callable[["ControlPlane", re.Match[str], HttpRequest], Awaitable[tuple[int, Any]]]
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


@route("POST", r"/v1/leaders/elect-preferred")
async def _elect_preferred(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, {"moved": control.elect_preferred_leaders()}


@route("POST", r"/v1/clear")
async def _clear(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    control.clear()
    return 200, control.describe_cluster()


@route("GET", r"/v1/actions")
async def _actions(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, list(control.actions)


async def dispatch(control: ControlPlane, req: HttpRequest) -> tuple[int, Any]:
    allowed = []
    for method, pattern, handler in ROUTES:
        m = pattern.fullmatch(req.path)
        if m is None:
            continue
        if method != req.method:
            allowed.append(method)
            continue
        try:
            return await handler(control, m, req)
        except ControlError as exc:
            return exc.status, {"error": str(exc)}
    if allowed:
        return 405, {"error": f"{req.method} not allowed here (allowed: {', '.join(allowed)})"}
    return 404, {"error": f"no route {req.path}"}


# --- the server -------------------------------------------------------------------


async def _serve_one(control: ControlPlane, stream: trio.SocketStream) -> None:
    reader = RequestReader()
    try:
        with trio.fail_after(READ_TIMEOUT):
            request = reader.next_request()
            while request is NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    if reader.started:
                        raise HttpError(400, "connection closed before the request was complete")
                    return
                reader.receive_data(data)
                request = reader.next_request()
        assert isinstance(request, HttpRequest)
        status, obj = await dispatch(control, request)
        log.info("admin: %s %s -> %d", request.method, request.path, status)
    except HttpError as exc:
        status, obj = exc.status, {"error": exc.message}
        log.info("admin: refused a request: %d %s", exc.status, exc.message)
    except trio.TooSlowError:
        status, obj = 408, {"error": "request not received in time"}
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    except Exception:
        log.exception("admin: internal error")
        status, obj = 500, {"error": "internal error (see the kstub log)"}
    try:
        await stream.send_all(render(status, obj))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def serve_admin(
    cluster: Cluster, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the admin API on `host`:`port` (0: ephemeral) until cancelled; reports the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    if port == 0:
        for extra in listeners[1:]:
            await extra.aclose()
        listeners = listeners[:1]
    bound = listeners[0].socket.getsockname()[1]
    log.info("admin API on http://%s:%d", host, bound)
    task_status.started(bound)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            await _serve_one(cluster.control, stream)

    await trio.serve_listeners(handle, listeners)
