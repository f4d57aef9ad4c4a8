"""The little the codec needs of a parser library: a `Construct` base, `Container`, stream helpers.

The primitives (protocol/primitives.py) and the per-version structs
(protocol/schema.py) are `Construct`s: ``_parse(stream, context, path)``
reads one value from a binary stream, ``_build(obj, stream, context, path)``
writes one. ``parse(data)`` / ``build(obj)`` do the same on bytes. Decoded
messages are `Container`s: dicts whose keys can also be read as attributes.

These follow the interface of the `construct` library, which kstub used
before (see docs/ARCHITECTURE.md, "construct"): that library's import costs
about 20 ms and 2 MB at every start of ``kstub serve`` (it loads pdb, pickle,
glob...), for a base class, a dict and two functions.
"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["Construct", "ConstructError", "Container", "StreamError", "stream_read", "stream_write"]


class ConstructError(Exception):
    """A value that cannot be read or written; `path` names the field."""

    def __init__(self, message: str = "", path: str | None = None) -> None:
        self.path = path
        super().__init__(message if path is None else f"Error in path {path}\n{message}")


class StreamError(ConstructError):
    """The stream ended early (or a value was not bytes)."""


def stream_read(stream: Any, length: int, path: str) -> bytes:
    """Exactly `length` bytes from `stream`, or `StreamError`."""
    if length < 0:
        raise StreamError(f"length must be non-negative, found {length}", path=path)
    try:
        data = stream.read(length)
    except Exception:
        raise StreamError(f"stream.read() failed, requested {length} bytes", path=path) from None
    if len(data) != length:
        raise StreamError(f"stream read less than specified amount, expected {length}, found {len(data)}", path=path)
    return data


def stream_write(stream: Any, data: bytes, length: int, path: str) -> None:
    """Write `data` (bytes, `length` of them) to `stream`, or `StreamError`."""
    if not isinstance(data, bytes):
        raise StreamError(f"given non-bytes value, perhaps unicode? {data!r}", path=path)
    if len(data) != length:
        raise StreamError(f"bytes object of wrong length, expected {length}, found {len(data)}", path=path)
    try:
        written = stream.write(data)
    except Exception:
        raise StreamError(f"stream.write() failed, given {data!r}", path=path) from None
    if written != length:
        raise StreamError(f"stream written less than specified, expected {length}, written {written}", path=path)


class Construct:
    """A binary reader/writer of one kind of value."""

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        raise NotImplementedError

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        raise NotImplementedError

    def _sizeof(self, context: Any, path: str) -> int:
        raise ConstructError(f"{type(self).__name__} has no fixed size", path=path)

    def parse(self, data: bytes | bytearray | memoryview) -> Any:
        """The value `data` starts with (trailing bytes are left alone)."""
        return self._parse(io.BytesIO(data), None, "(parsing)")

    def build(self, obj: Any) -> bytes:
        stream = io.BytesIO()
        self._build(obj, stream, None, "(building)")
        return stream.getvalue()

    def sizeof(self) -> int:
        return self._sizeof(None, "(sizeof)")


class Container(dict):
    """A decoded message or struct: a dict whose keys are also attributes (``body.topics``).

    Equality ignores keys starting with ``_`` (such as ``_unknown_tags``), so a
    decoded message equals the plain dict it was encoded from.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def copy(self) -> Container:
        return Container(self)

    __copy__ = copy

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, dict):
            return False
        for k, v in self.items():
            if isinstance(k, str) and k.startswith("_"):
                continue
            if k not in other or v != other[k]:
                return False
        for k in other:
            if isinstance(k, str) and k.startswith("_"):
                continue
            if k not in self:
                return False
        return True

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.items() if not (isinstance(k, str) and k.startswith("_"))]
        return f"Container({', '.join(parts)})"


class Sealed(dict):
    """A message part that is never changed once made, shared by the responses that carry it (a
    handler's cached part of an answer). The compiled encoders (protocol/compiled.py) keep its
    encoding, per message version, at its first use, and write those bytes again after that."""

    __slots__ = ("encoded",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encoded: dict[object, bytes] = {}
