"""Record walks that may decompress a lot run in a worker thread, one at a time per server.

A compressed batch can inflate a thousandfold (a 30 KB zstd batch to 1 GB). The
walks themselves hold bounded memory (`kstub.protocol.records` decompresses a
chunk at a time and skips keys and values), but the CPU they take must not stop
the event loop: other connections are served meanwhile. One limiter per server
(a Trio run) keeps a burst of such requests from taking every core; they queue.
"""

from __future__ import annotations

import functools
import inspect
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


# trio 0.23 renamed `cancellable` to `abandon_on_cancel`
_PARAMETERS = inspect.signature(trio.to_thread.run_sync).parameters
_ABANDON = "abandon_on_cancel" if "abandon_on_cancel" in _PARAMETERS else "cancellable"


async def in_thread(fn: Callable[..., _T], *args: object, **kwargs: object) -> _T:
    """`fn(*args, **kwargs)` in a worker thread, behind the server's one-at-a-time limiter.

    Cancellation (the server stopping) does not wait for the walk: its result is not needed,
    and `fn` touches nothing shared. The thread holds the limiter until it ends.
    """
    call = functools.partial(fn, *args, **kwargs)
    return await trio.to_thread.run_sync(call, limiter=_limiter(), **{_ABANDON: True})  # type: ignore[arg-type]


def is_heavy(data: bytes | bytearray | memoryview) -> bool:
    """Whether walking the records of stored `data` decompresses, or is long: work for `in_thread`."""
    if len(data) > ON_LOOP_BYTES:
        return True
    if len(data) < RecordBatch.HEADER_SIZE:
        return len(data) > LOG_OVERHEAD + 5 and bool(data[17] & 0x07)  # a legacy message's attributes
    magic = data[16]
    return bool(data[22] & 0x07) if magic == 2 else bool(data[17] & 0x07)
