"""Record walks that may decompress a lot run in a worker thread, one at a time per server.

A compressed batch can inflate a thousandfold (a 30 KB zstd batch to 1 GB). The
walks themselves hold bounded memory (`kstub.protocol.records` decompresses a
chunk at a time and skips keys and values), but the CPU they take must not stop
the event loop: other connections are served meanwhile. One limiter per server
(a Trio run) keeps a burst of such requests from taking every core; they queue.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import trio

from kstub.protocol.records import LOG_OVERHEAD, RecordBatch

_T = TypeVar("_T")

#: Bytes of uncompressed records walked on the event loop; beyond, and whenever a walk decompresses, a thread.
ON_LOOP_BYTES = 256 * 1024

_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("kstub_inflate_limiter")


def _limiter() -> trio.CapacityLimiter:
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(1)
        _LIMITER.set(limiter)
        return limiter


async def in_thread(fn: Callable[..., _T], *args: object, **kwargs: object) -> _T:
    """`fn(*args, **kwargs)` in a worker thread, behind the server's one-at-a-time limiter."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=_limiter())


def is_heavy(data: bytes | bytearray | memoryview) -> bool:
    """Whether walking the records of stored `data` decompresses, or is long: work for `in_thread`."""
    if len(data) > ON_LOOP_BYTES:
        return True
    if len(data) < RecordBatch.HEADER_SIZE:
        return len(data) > LOG_OVERHEAD + 5 and bool(data[17] & 0x07)  # a legacy message's attributes
    magic = data[16]
    return bool(data[22] & 0x07) if magic == 2 else bool(data[17] & 0x07)
