"""The consumer group protocol's embedded messages (Kafka's ``ConsumerProtocol*``).

A consumer's JoinGroup metadata is a `SUBSCRIPTION` and the leader's
SyncGroup assignment for each member is an `ASSIGNMENT`, each serialized as an
int16 version followed by the struct (never flexible). The group coordinator
treats both as opaque bytes; kstub decodes them only where Kafka does (the
topics a consumer group subscribes to, for OffsetDelete) and for the
``kstub groups describe`` tool.

As Kafka's ConsumerProtocol does, a version newer than the highest declared
one is read as the highest: later versions only append fields.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

from .constructs import Container
from .errors import DecodeError
from .schema import Field as F
from .schema import Message

__all__ = [
    "ASSIGNMENT",
    "HIGHEST_VERSION",
    "PROTOCOL_TYPE",
    "SUBSCRIPTION",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
]

#: the protocol type consumers put in JoinGroup
PROTOCOL_TYPE = "consumer"
HIGHEST_VERSION = 3

SUBSCRIPTION = Message(
    "ConsumerProtocolSubscription",
    [
        F("topics", "[]string"),
        F("user_data", "bytes", nullable="0+", default=None),
        F("owned_partitions", [F("topic", "string", "1+"), F("partitions", "[]int32", "1+")], "1+"),
        F("generation_id", "int32", "2+", default=-1),
        F("rack_id", "string", "3+", nullable="3+", default=None),
    ],
)

ASSIGNMENT = Message(
    "ConsumerProtocolAssignment",
    [
        F("assigned_partitions", [F("topic", "string"), F("partitions", "[]int32")]),
        F("user_data", "bytes", nullable="0+", default=None),
    ],
)

_VERSION = struct.Struct(">h")


def _decode(message: Message, data: bytes) -> Container:
    if len(data) < _VERSION.size:
        raise DecodeError(f"{len(data)} bytes, no version", message.name)
    (version,) = _VERSION.unpack_from(data)
    if version < 0:
        raise DecodeError(f"version {version}", message.name)
    version = min(version, HIGHEST_VERSION)
    body = message.codec(version, flexible=False).read(io.BytesIO(data[_VERSION.size :]))
    body["version"] = version
    return body


def _encode(message: Message, obj: Mapping[str, Any], version: int) -> bytes:
    return _VERSION.pack(version) + message.codec(version, flexible=False).encode(obj)


def decode_subscription(data: bytes) -> Container:
    """A JoinGroup protocol's metadata, as a consumer sends it."""
    return _decode(SUBSCRIPTION, data)


def decode_assignment(data: bytes) -> Container:
    """One member's assignment, as the leader sends it in SyncGroup."""
    return _decode(ASSIGNMENT, data)


def encode_subscription(obj: Mapping[str, Any], version: int = HIGHEST_VERSION) -> bytes:
    return _encode(SUBSCRIPTION, obj, version)


def encode_assignment(obj: Mapping[str, Any], version: int = HIGHEST_VERSION) -> bytes:
    return _encode(ASSIGNMENT, obj, version)
