"""HTTP/1.1 for the admin API, by h11 (sans-IO): requests read, answers rendered, refusals as errors.

`RequestReader` wraps an ``h11.Connection`` (bytes in, `HttpRequest` out;
bounded head and body, no chunked bodies); `render` writes a `Reply` through it.
A `StreamReply` is sent as it is made (kstub/control_http.py). A request
without Content-Length has no body (RFC 9112).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024

_TARGET = re.compile(r"/[\x21-\x7e]*")

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
