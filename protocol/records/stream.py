"""A stream of record bytes, possibly inflating as it is read, with bounded memory."""

from __future__ import annotations

from .compression import _CHUNK, Reader
from .layout import BatchError, Buffer, _invalid

# --- streams of record bytes -------------------------------------------------------


class _Stream:
    """Record bytes read front to back: a buffer, refilled from a decompressing reader if there is one.

    Holds at most one refill (`_CHUNK`) plus the few bytes of a record header; `skip` passes over
    keys and values without keeping them, so walking a batch takes memory independent of its
    decompressed size. `taken` counts the bytes consumed so far.
    """

    __slots__ = ("_base", "_buf", "_pos", "_read")

    def __init__(self, buf: Buffer, read: Reader | None = None) -> None:
        self._buf = buf
        self._pos = 0
        self._read = read
        self._base = 0  # stream position of _buf[0]

    @property
    def taken(self) -> int:
        return self._base + self._pos

    def _fill(self, n: int) -> bool:
        """Have at least `n` bytes buffered after the position; False if the stream ends first."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            return True
        if self._read is None:
            return False
        parts = [bytes(self._buf[self._pos :])]
        while avail < n:
            chunk = self._read(max(n - avail, _CHUNK))
            if not chunk:
                self._read = None
                break
            parts.append(chunk)
            avail += len(chunk)
        self._base += self._pos
        self._buf = b"".join(parts)
        self._pos = 0
        return avail >= n

    def at_end(self) -> bool:
        return not self._fill(1)

    def buffer(self, n: int) -> bool:
        """Have the next `n` bytes in one buffer (`_skim_record` reads them there)."""
        return self._fill(n)

    def byte(self) -> int:
        if not self._fill(1):
            raise _premature_eof()
        b = self._buf[self._pos]
        self._pos += 1
        return b

    def varint(self, max_bytes: int) -> int:
        """A zigzag varint (Kafka's ByteUtils.readVarint/readVarlong)."""
        self._fill(max_bytes)
        buf, pos = self._buf, self._pos
        try:
            b = buf[pos]
            if b < 0x80:
                self._pos = pos + 1
                return (b >> 1) ^ -(b & 1)
            result = shift = 0
            for _ in range(max_bytes):
                b = buf[pos]
                pos += 1
                result |= (b & 0x7F) << shift
                if b < 0x80:
                    self._pos = pos
                    return (result >> 1) ^ -(result & 1)
                shift += 7
        except IndexError:
            raise _premature_eof() from None
        raise _invalid(f"varint longer than {max_bytes} bytes")

    def take(self, n: int) -> bytes:
        if not self._fill(n):
            raise _premature_eof()
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return out

    def skip(self, n: int) -> None:
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return
        n -= avail
        self._base += len(self._buf)
        self._buf, self._pos = b"", 0
        while n > 0:
            chunk = self._read(min(n, _CHUNK)) if self._read is not None else b""
            if not chunk:
                self._read = None
                raise _premature_eof()
            self._base += len(chunk)
            n -= len(chunk)


def _premature_eof() -> BatchError:
    return _invalid("Incorrect declared batch size, premature EOF reached")
