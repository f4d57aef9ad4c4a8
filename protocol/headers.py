"""Request and response headers, and which header version goes with which API.

Request header v1 (non-flexible APIs) is api_key, api_version,
correlation_id, client_id; v2 (flexible versions) adds a tagged-field
section, but keeps client_id as a classic int16-length string so that a broker
can always read it. Response header v0 is the correlation id; v1 adds tags.
The ApiVersions response always uses header v0 (KIP-511): see
`Api.response_header_version`.
"""

from __future__ import annotations

import io

from .constructs import Container
from .schema import Field as F
from .schema import Message, MessageCodec

REQUEST_HEADER = Message(
    "RequestHeader",
    [
        F("request_api_key", "int16"),
        F("request_api_version", "int16"),
        F("correlation_id", "int32"),
        F("client_id", "string", "1+", nullable="1+", default=None, classic=True),
    ],
)

RESPONSE_HEADER = Message("ResponseHeader", [F("correlation_id", "int32")])


def request_header_codec(version: int) -> MessageCodec:
    return REQUEST_HEADER.codec(version, flexible=version >= 2)


def response_header_codec(version: int) -> MessageCodec:
    return RESPONSE_HEADER.codec(version, flexible=version >= 1)


def read_request_header(stream: io.BytesIO, version: int) -> Container:
    return request_header_codec(version).read(stream)


def encode_request_header(
    version: int, api_key: int, api_version: int, correlation_id: int, client_id: str | None
) -> bytes:
    return request_header_codec(version).encode(
        {
            "request_api_key": api_key,
            "request_api_version": api_version,
            "correlation_id": correlation_id,
            "client_id": client_id,
        }
    )


def encode_response_header(version: int, correlation_id: int) -> bytes:
    return response_header_codec(version).encode({"correlation_id": correlation_id})
