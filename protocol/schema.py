"""The declaration language: each API's messages are declared once, as data.

A message is a list of `Field`s. A field has a name (snake_case of Kafka's
name), a type in Kafka's own spelling (``"int32"``, ``"string"``,
``"records"``, ``"[]int32"``...), or a nested list of fields for an array of
structs, or `Struct([...])` for a single nested struct; the versions it
exists in; the versions it may be null in; and, for tagged fields, its tag and
tagged versions. This mirrors Kafka's message JSON closely enough that a test
compares each declaration with Kafka's own schema field by field.

From a declaration, `Message.codec(version, flexible)` derives the encoder and
decoder for one version: a construct (protocol/constructs.py) in which every version test
has already been resolved, so decoding does not branch on the version. Codecs
are built lazily and cached.

Decoded messages are `Container`s (dicts with attribute access).
Fields a version does not carry are filled in with their defaults, so handlers
can read any field of any version. Encoding takes any mapping; a field that is
missing gets its default.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from . import constructs as c
from .errors import DecodeError, LocalProtocolError
from .primitives import (
    ZERO_UUID,
    Boolean,
    Float64,
    Int8,
    Int16,
    Int32,
    Int64,
    KArray,
    KBytes,
    KRecordView,
    KString,
    UInt16,
    UInt32,
    UnsignedVarInt,
    Uuid,
)

__all__ = ["Api", "Field", "Message", "MessageCodec", "Struct", "VersionRange"]

_MISSING: Any = object()

#: a message codec compiles its fast encoder (decoder) at its this-many-th encode (decode)
COMPILE_AT_USE = 2


@dataclass(frozen=True)
class VersionRange:
    """Kafka's version spec: ``"3+"``, ``"0-4"``, ``"5"`` or ``"none"``."""

    low: int
    high: int | None  # None: open-ended

    @classmethod
    def parse(cls, spec: str | None) -> VersionRange | None:
        if spec is None or spec == "none":
            return None
        m = re.fullmatch(r"(\d+)(\+|-(\d+))?", spec)
        if not m:
            raise ValueError(f"bad version spec {spec!r}")
        low = int(m.group(1))
        if m.group(2) == "+":
            return cls(low, None)
        if m.group(3) is not None:
            return cls(low, int(m.group(3)))
        return cls(low, low)

    def __contains__(self, version: int) -> bool:
        return version >= self.low and (self.high is None or version <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def _in(spec: VersionRange | None, version: int) -> bool:
    return spec is not None and version in spec


@dataclass(frozen=True)
class Struct:
    """A single nested struct (not an array), e.g. a tagged ``CurrentLeader``."""

    fields: Sequence[Field]


@dataclass(frozen=True)
class Field:
    name: str
    type: str | Sequence[Field] | Struct
    versions: str = "0+"
    nullable: str | None = None
    tag: int | None = None
    tagged: str | None = None
    default: Any = _MISSING
    #: never use the compact encoding, even in flexible versions (Kafka's
    #: ``"flexibleVersions": "none"``: only the request header's ClientId)
    classic: bool = False
    #: parsed forms, derived in __post_init__
    version_range: VersionRange | None = field(init=False, repr=False, compare=False)
    nullable_range: VersionRange | None = field(init=False, repr=False, compare=False)
    tagged_range: VersionRange | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version_range", VersionRange.parse(self.versions))
        object.__setattr__(self, "nullable_range", VersionRange.parse(self.nullable))
        object.__setattr__(self, "tagged_range", VersionRange.parse(self.tagged))
        if (self.tag is None) != (self.tagged is None):
            raise ValueError(f"{self.name}: tag and tagged go together")

    @property
    def is_struct_array(self) -> bool:
        return not isinstance(self.type, (str, Struct))

    @property
    def children(self) -> Sequence[Field] | None:
        if isinstance(self.type, Struct):
            return self.type.fields
        if isinstance(self.type, str):
            return None
        return self.type

    def default_factory(self, version: int) -> Callable[[], Any]:
        """What a missing value of this field is, in `version`."""
        if self.default is not _MISSING:
            value = self.default
            return (lambda: list(value)) if isinstance(value, list) else (lambda: value)
        if self.tag is not None and not isinstance(self.type, str):
            return lambda: None  # absent tagged struct(s): omitted
        if _in(self.nullable_range, version) and self.type in ("records",):
            return lambda: None
        if isinstance(self.type, Struct):
            children = self.type.fields
            return lambda: {f.name: f.default_factory(version)() for f in children}
        if not isinstance(self.type, str) or self.type.startswith("[]"):
            return list
        return _SCALAR_DEFAULTS[self.type]


_SCALAR_DEFAULTS: dict[str, Callable[[], Any]] = {
    "int8": int,
    "int16": int,
    "int32": int,
    "int64": int,
    "uint16": int,
    "uint32": int,
    "float64": float,
    "bool": bool,
    "string": str,
    "bytes": bytes,
    "records": bytes,
    "uuid": lambda: ZERO_UUID,
}

_FIXED: dict[str, c.Construct] = {
    "int8": Int8,
    "int16": Int16,
    "int32": Int32,
    "int64": Int64,
    "uint16": UInt16,
    "uint32": UInt32,
    "float64": Float64,
    "bool": Boolean,
    "uuid": Uuid,
}


def _scalar(type_: str, flexible: bool, nullable: bool, views: bool = False) -> c.Construct:
    if type_ in _FIXED:
        return _FIXED[type_]
    if type_ == "string":
        return KString(flexible, nullable)
    if type_ == "records" and views:
        return KRecordView(flexible, nullable)
    if type_ in ("bytes", "records"):
        return KBytes(flexible, nullable)
    raise ValueError(f"unknown type {type_!r}")


class _KStruct(c.Construct):
    """One struct at one version: its present fields, then (if flexible) its tags."""

    def __init__(
        self,
        path: str,
        fields: list[tuple[str, c.Construct, Callable[[], Any], str]],
        absent: list[tuple[str, Callable[[], Any]]],
        tagged: dict[int, tuple[str, c.Construct, Callable[[], Any]]] | None,
    ) -> None:
        super().__init__()
        self.path = path
        self.fields = fields
        self.absent = absent
        self.tagged = tagged  # None: not a flexible version

    def _parse(self, stream, context, path):
        obj = c.Container()
        for name, con, _, fpath in self.fields:
            obj[name] = con._parse(stream, context, fpath)
        for name, make in self.absent:
            obj[name] = make()
        if self.tagged is not None:
            self._parse_tags(obj, stream, context)
        return obj

    def _parse_tags(self, obj: c.Container, stream, context) -> None:
        path = f"{self.path}.<tagged fields>"
        for _, (name, _, make) in self.tagged.items():
            obj[name] = make()
        count = UnsignedVarInt._parse(stream, context, path)
        last = -1
        for _ in range(count):
            tag = UnsignedVarInt._parse(stream, context, path)
            size = UnsignedVarInt._parse(stream, context, path)
            data = c.stream_read(stream, size, path)
            if tag <= last:
                raise DecodeError(f"tag {tag} out of order", path)
            last = tag
            known = self.tagged.get(tag)
            if known is None:
                obj.setdefault("_unknown_tags", {})[tag] = data
                continue
            name, con, _ = known
            sub = io.BytesIO(data)
            obj[name] = con._parse(sub, context, f"{self.path}.{name}")

    def _build(self, obj, stream, context, path):
        if not isinstance(obj, Mapping):
            raise LocalProtocolError(f"{self.path}: expected a mapping, got {type(obj).__name__}")
        get = obj.get
        for name, con, make, fpath in self.fields:
            value = get(name, _MISSING)
            if value is _MISSING:
                value = make()
            con._build(value, stream, context, fpath)
        if self.tagged is not None:
            self._build_tags(obj, stream, context)
        return obj

    def _build_tags(self, obj: Mapping, stream, context) -> None:
        entries: dict[int, bytes] = dict(obj.get("_unknown_tags") or {})
        for tag, (name, con, make) in self.tagged.items():
            value = obj.get(name)
            if value is None or value == make():
                continue  # Kafka omits tagged fields holding their default
            buf = io.BytesIO()
            con._build(value, buf, context, f"{self.path}.{name}")
            entries[tag] = buf.getvalue()
        UnsignedVarInt._build(len(entries), stream, context, self.path)
        for tag in sorted(entries):
            data = entries[tag]
            UnsignedVarInt._build(tag, stream, context, self.path)
            UnsignedVarInt._build(len(data), stream, context, self.path)
            stream.write(data)


class _NullableStruct(c.Construct):
    """A nullable (untagged) single struct: an int8 marker first, -1 for null, 1 for present."""

    def __init__(self, struct: _KStruct) -> None:
        super().__init__()
        self.struct = struct

    def _parse(self, stream, context, path):
        if Int8._parse(stream, context, path) < 0:
            return None
        return self.struct._parse(stream, context, path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            Int8._build(-1, stream, context, path)
            return obj
        Int8._build(1, stream, context, path)
        return self.struct._build(obj, stream, context, path)


def _compile_struct(fields: Sequence[Field], version: int, flexible: bool, path: str, views: bool = False) -> _KStruct:
    present: list[tuple[str, c.Construct, Callable[[], Any], str]] = []
    absent: list[tuple[str, Callable[[], Any]]] = []
    tagged: dict[int, tuple[str, c.Construct, Callable[[], Any]]] = {}
    for f in fields:
        make = f.default_factory(version)
        is_tagged = flexible and _in(f.tagged_range, version)
        if not _in(f.version_range, version) or (f.tag is not None and not is_tagged):
            absent.append((f.name, make))
            continue
        fpath = f"{path}.{f.name}"
        con = _compile_field(f, version, flexible and not f.classic, fpath, views)
        if is_tagged:
            tagged[f.tag] = (f.name, con, make)
        else:
            present.append((f.name, con, make, fpath))
    return _KStruct(path, present, absent, tagged if flexible else None)


def _compile_field(f: Field, version: int, flexible: bool, path: str, views: bool = False) -> c.Construct:
    nullable = _in(f.nullable_range, version)
    if isinstance(f.type, Struct):
        struct = _compile_struct(f.type.fields, version, flexible, path, views)
        return _NullableStruct(struct) if nullable and f.tag is None else struct
    if isinstance(f.type, str):
        if f.type.startswith("[]"):
            return KArray(_scalar(f.type[2:], flexible, False, views), flexible, nullable)
        return _scalar(f.type, flexible, nullable, views)
    element = _compile_struct(f.type, version, flexible, path, views)
    return KArray(element, flexible, nullable)


class MessageCodec:
    """The encoder/decoder of one message at one version."""

    def __init__(self, name: str, version: int, flexible: bool, fields: Sequence[Field], views: bool = False) -> None:
        self.name = name
        self.version = version
        self.flexible = flexible
        self._struct = _compile_struct(fields, version, flexible, f"{name} v{version}", views)
        # The same tree compiled to plain Python (protocol/compiled.py): a fast path that leaves anything
        # unusual, and every error, to the constructs above. Compiled at the second use of each direction
        # (compiling costs a few milliseconds: not worth it for a codec used once, as at start-up).
        self._fast_encode: Callable[[Any], bytes] | None = None
        self._fast_decode: Callable[[bytes, int], tuple[c.Container, int]] | None = None
        self._encodes = 0
        self._decodes = 0

    def _compile_encoder(self) -> Callable[[Any], bytes] | None:
        self._encodes += 1
        if self._encodes == COMPILE_AT_USE:
            from .compiled import compile_encoder  # imported at the first codec used twice

            self._fast_encode = compile_encoder(self._struct, self._struct.path, _MISSING)
        return self._fast_encode

    def _compile_decoder(self) -> Callable[[bytes, int], tuple[c.Container, int]] | None:
        self._decodes += 1
        if self._decodes == COMPILE_AT_USE:
            from .compiled import GiveUp, compile_decoder

            try:
                self._fast_decode = compile_decoder(self._struct, self._struct.path)
            except GiveUp:  # a construct the compiler does not know: the constructs decode
                pass
        return self._fast_decode

    def decode_from(self, buf: bytes | bytearray, pos: int) -> tuple[c.Container, int]:
        """Decode the message at `pos` of `buf` (no copy of `buf`, a `bytearray` too); returns it and its end."""
        fast = self._fast_decode or self._compile_decoder()
        if fast is not None:
            try:
                return fast(buf, pos)
            except Exception:
                pass  # the constructs decode it, or say what is wrong
        stream = io.BytesIO(buf if type(buf) is bytes else bytes(buf))
        stream.seek(pos)
        try:
            obj = self._struct._parse(stream, None, self._struct.path)
        except DecodeError:
            raise
        except c.ConstructError as exc:
            raise DecodeError(str(exc).split("\n")[-1].strip(), getattr(exc, "path", "") or "") from None
        return obj, stream.tell()

    def decode(self, data: bytes | memoryview, *, exact: bool = False) -> c.Container:
        """Decode `data`; with `exact`, trailing bytes are an error too."""
        fast = self._fast_decode or self._compile_decoder()
        if fast is not None:
            buf = data if type(data) is bytes else bytes(data)
            try:
                obj, end = fast(buf, 0)
            except Exception:
                pass  # the constructs decode it, or say what is wrong
            else:
                if not exact or end == len(buf):
                    return obj
        stream = io.BytesIO(data)
        obj = self.read(stream)
        if exact and stream.tell() != len(data):
            raise DecodeError(f"{len(data) - stream.tell()} trailing bytes", self._struct.path)
        return obj

    def read(self, stream: io.BytesIO) -> c.Container:
        fast = self._fast_decode or self._compile_decoder()
        if fast is not None and type(stream) is io.BytesIO:
            start = stream.tell()
            try:
                obj, end = fast(stream.getvalue(), start)  # the bytes it was made of: no copy
            except Exception:
                pass  # the constructs decode it, or say what is wrong
            else:
                stream.seek(end)
                return obj
        try:
            return self._struct._parse(stream, None, self._struct.path)
        except DecodeError:
            raise
        except c.ConstructError as exc:
            raise DecodeError(str(exc).split("\n")[-1].strip(), getattr(exc, "path", "") or "") from None

    def encode(self, obj: Mapping[str, Any]) -> bytes:
        fast = self._fast_encode or self._compile_encoder()
        if fast is not None:
            try:
                return fast(obj)
            except Exception:
                pass  # the constructs encode it, or say what is wrong
        stream = io.BytesIO()
        self.write(obj, stream)
        return stream.getvalue()

    def write(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        try:
            self._struct._build(obj, stream, None, self._struct.path)
        except LocalProtocolError:
            raise
        except (c.ConstructError, TypeError, AttributeError, ValueError) as exc:
            raise LocalProtocolError(f"{self.name} v{self.version}: {exc}") from exc


@dataclass(frozen=True)
class Message:
    """A message declared once; `codec(version)` derives one version's codec."""

    name: str
    fields: Sequence[Field]
    #: records are read as views of the message's bytes (requests: the server stores them, copied once)
    views: bool = False

    def codec(self, version: int, flexible: bool) -> MessageCodec:
        return _codec(self, version, flexible)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


@cache
def _codec(message: Message, version: int, flexible: bool) -> MessageCodec:
    return MessageCodec(message.name, version, flexible, message.fields, message.views)


@dataclass(frozen=True)
class Api:
    """One API key: the versions kstub implements and its two messages."""

    key: int
    name: str
    min_version: int
    max_version: int
    flexible_from: int | None  # first flexible version (Kafka's "flexibleVersions": "N+")
    request: Sequence[Field]
    response: Sequence[Field]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_request", Message(f"{self.name}Request", self.request, views=True))
        object.__setattr__(self, "_response", Message(f"{self.name}Response", self.response))

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version

    def is_flexible(self, version: int) -> bool:
        return self.flexible_from is not None and version >= self.flexible_from

    def request_codec(self, version: int) -> MessageCodec:
        return self._request.codec(version, self.is_flexible(version))  # type: ignore[attr-defined]

    def response_codec(self, version: int) -> MessageCodec:
        return self._response.codec(version, self.is_flexible(version))  # type: ignore[attr-defined]

    def request_header_version(self, version: int) -> int:
        return 2 if self.is_flexible(version) else 1

    def response_header_version(self, version: int) -> int:
        # KIP-511: the ApiVersions response always uses header v0, so a client
        # can read it whatever version it asked for.
        if self.key == 18:
            return 0
        return 1 if self.is_flexible(version) else 0

    def __hash__(self) -> int:
        return hash(self.key)
