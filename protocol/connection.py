"""Both ends of a Kafka connection as sans-IO state machines (h11-style).

`ServerConnection`: feed it bytes with `receive_data`, take decoded `Request`s
from `next_request` (or `NEED_DATA`), and turn response bodies into bytes with
`encode_response`. `ClientConnection` is the mirror image, used by kstub's own
tools and tests. Neither touches a socket.

A bad frame raises `RemoteProtocolError` (a size prefix above the maximum, an
unknown api key or version, an undecodable body); the caller closes the
connection, as Kafka does. The one exception is ApiVersions at a version we do
not implement: Kafka answers that with a v0-shaped UNSUPPORTED_VERSION body so
the client can retry lower, and so do we (`Request.unsupported_version`).
"""

from __future__ import annotations

import io
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from .api_keys import ApiKey
from .constructs import Container
from .errors import DecodeError, ErrorCode, FrameTooLarge, RemoteProtocolError, UnsupportedRequest
from .headers import (
    encode_request_header,
    encode_response_header,
    request_header_codec,
    response_header_codec,
)
from .messages import ALL
from .schema import Api

__all__ = ["NEED_DATA", "ClientConnection", "Request", "Response", "ServerConnection"]

API_VERSIONS_KEY: Final = ApiKey.API_VERSIONS
DEFAULT_MAX_FRAME: Final = 104_857_600  # Kafka's socket.request.max.bytes


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

_SIZE = struct.Struct(">i")
_KEY_VERSION_CORR = struct.Struct(">hhi")


@dataclass(slots=True)
class Request:
    api: Api
    api_version: int
    correlation_id: int
    client_id: str | None
    body: Container | None  # None only when unsupported_version
    size: int
    unsupported_version: bool = False

    @property
    def api_key(self) -> int:
        return self.api.key


@dataclass(slots=True)
class Response:
    api: Api
    api_version: int
    correlation_id: int
    body: Container


class _FrameBuffer:
    """Length-prefixed frames with a size cap.

    Received chunks are kept as they came, with an offset into the first. A
    frame leaves them as the chunk itself when it is exactly one, else as one
    copy (a `bytearray`) of its part of one chunk or of its pieces when it
    spans several (a large produce request). Nothing buffered is copied as
    more arrives or when a frame is taken out before the rest.
    """

    def __init__(self, max_frame: int) -> None:
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of the first chunk already taken
        self._pending = 0  # bytes buffered and not yet taken
        self._max = max_frame

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._chunks.append(data if isinstance(data, bytes) else bytes(data))
            self._pending += len(data)

    def next_frame(self) -> bytes | bytearray | None:
        if self._pending < 4:
            return None
        first, offset = self._chunks[0], self._offset
        if len(first) - offset >= 4:
            (size,) = _SIZE.unpack_from(first, offset)
        else:
            (size,) = _SIZE.unpack(self._peek(4))
        if size < 0 or size > self._max:
            raise FrameTooLarge(f"frame of {size} bytes (maximum {self._max})")
        if self._pending < 4 + size:
            return None
        self._take(4)
        return self._take(size)

    def _peek(self, n: int) -> bytes:
        """The next `n` buffered bytes (`n` at most what is buffered), left in the buffer."""
        out = bytearray()
        offset = self._offset
        for chunk in self._chunks:
            out += chunk[offset : offset + n - len(out)]
            offset = 0
            if len(out) == n:
                break
        return bytes(out)

    def _take(self, n: int) -> bytes | bytearray:
        """The next `n` buffered bytes (`n` at most what is buffered), taken out of the buffer.

        The chunk itself when it is exactly those bytes; else a copy, made a `bytearray` so that a
        produced batch in it can be stored as a view of it and patched in place (its offsets)
        without a second copy.
        """
        if not n:
            return b""
        chunks = self._chunks
        first, offset = chunks[0], self._offset
        if len(first) - offset >= n:
            if offset == 0 and len(first) == n:
                out: bytes | bytearray = first
            else:
                out = bytearray(memoryview(first)[offset : offset + n])
            self._advance(n)
            return out
        out = bytearray(n)
        at = 0
        while at < n:
            first, offset = chunks[0], self._offset
            take = min(len(first) - offset, n - at)
            out[at : at + take] = memoryview(first)[offset : offset + take]
            at += take
            self._advance(take)
        return out

    def _advance(self, n: int) -> None:
        self._offset += n
        self._pending -= n
        if self._offset == len(self._chunks[0]):
            self._chunks.popleft()
            self._offset = 0

    @property
    def pending(self) -> int:
        return self._pending


class ServerConnection:
    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME, apis: dict[int, Api] | None = None) -> None:
        self._frames = _FrameBuffer(max_frame)
        self._apis = ALL if apis is None else apis

    def receive_data(self, data: bytes) -> None:
        self._frames.feed(data)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a request (a truncated frame at EOF)."""
        return self._frames.pending

    def next_request(self) -> Request | _NeedData:
        frame = self._frames.next_frame()
        if frame is None:
            return NEED_DATA
        return self.decode_request(frame)

    def next_raw_frame(self) -> bytes | _NeedData:
        """The next frame's bytes, undecoded: the raw SASL tokens after a SaslHandshake v0."""
        frame = self._frames.next_frame()
        return NEED_DATA if frame is None else bytes(frame)

    def decode_request(self, frame: bytes | bytearray) -> Request:
        if len(frame) < _KEY_VERSION_CORR.size:
            raise DecodeError(f"request header truncated ({len(frame)} bytes)", "RequestHeader")
        key, version, correlation_id = _KEY_VERSION_CORR.unpack_from(frame)
        api = self._apis.get(key)
        if api is None:
            raise UnsupportedRequest(key, version, correlation_id)
        if not api.supports(version):
            if key == API_VERSIONS_KEY and version > api.max_version:
                return Request(api, version, correlation_id, None, None, len(frame), unsupported_version=True)
            raise UnsupportedRequest(key, version, correlation_id)
        # decoded where it lies: a bytearray frame's record data stays a (writable) view of it
        header, pos = request_header_codec(api.request_header_version(version)).decode_from(frame, 0)
        body, _ = api.request_codec(version).decode_from(frame, pos)
        return Request(api, version, correlation_id, header.client_id, body, len(frame))

    def encode_response(self, request: Request, body: dict[str, Any]) -> bytes:
        """The whole response frame (size prefix included) for `request`."""
        if request.unsupported_version:
            return self.encode_unsupported_api_versions(request.correlation_id, request.api)
        return _frame(
            encode_response_header(request.api.response_header_version(request.api_version), request.correlation_id),
            request.api.response_codec(request.api_version).encode(body),
        )

    @staticmethod
    def encode_unsupported_api_versions(correlation_id: int, api: Api) -> bytes:
        """Kafka's answer to a too-new ApiVersions request: header v0, a v0 body."""
        body = {
            "error_code": ErrorCode.UNSUPPORTED_VERSION,
            "api_keys": [{"api_key": api.key, "min_version": api.min_version, "max_version": api.max_version}],
        }
        return _frame(encode_response_header(0, correlation_id), api.response_codec(0).encode(body))


def _frame(*parts: bytes) -> bytes:
    size = sum(len(p) for p in parts)
    return b"".join((_SIZE.pack(size), *parts))  # one copy (a body can be megabytes of fetched records)


class ClientConnection:
    """The client side: encode requests, match responses to them in order."""

    def __init__(self, client_id: str | None = "kstub", *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.client_id = client_id
        self._frames = _FrameBuffer(max_frame)
        self._next_correlation = 0
        self._in_flight: list[tuple[int, Api, int]] = []

    def send_request(self, api_key: int, api_version: int, body: dict[str, Any]) -> bytes:
        api = ALL[api_key]
        correlation_id = self._next_correlation
        self._next_correlation += 1
        header = encode_request_header(
            api.request_header_version(api_version), api_key, api_version, correlation_id, self.client_id
        )
        payload = api.request_codec(api_version).encode(body)
        self._in_flight.append((correlation_id, api, api_version))
        return _frame(header, payload)

    def forget_last(self) -> None:
        """The last request gets no response (Produce with acks=0)."""
        self._in_flight.pop()

    def receive_data(self, data: bytes) -> None:
        self._frames.feed(data)

    def next_response(self) -> Response | _NeedData:
        frame = self._frames.next_frame()
        if frame is None:
            return NEED_DATA
        if not self._in_flight:
            raise RemoteProtocolError("a response to no request")
        correlation_id, api, version = self._in_flight.pop(0)
        stream = io.BytesIO(frame)
        header = response_header_codec(api.response_header_version(version)).read(stream)
        if header.correlation_id != correlation_id:
            raise RemoteProtocolError(f"correlation id {header.correlation_id}, expected {correlation_id}")
        body_version = version
        error = frame[stream.tell() : stream.tell() + 2]
        if api.key == API_VERSIONS_KEY and error == ErrorCode.UNSUPPORTED_VERSION.to_bytes(2, "big"):
            body_version = 0  # Kafka answers a too-new version with a v0-shaped body (see ServerConnection)
        body = api.response_codec(body_version).read(stream)
        return Response(api, version, correlation_id, body)
