"""A replica's log on stable storage: group-committed fsyncs, closing, deleting.

A part of `Log` (kstub/cluster/log.py), kept apart from appending and reading.
"""

from __future__ import annotations

import os

import trio

from .segments import LogState


def _fsync_all(fds: list[int]) -> None:
    """fsync then close each descriptor (runs in a worker thread)."""
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


class LogDurability(LogState):
    """fsync (one at a time, shared by concurrent callers), close, delete: mixed into `Log`."""

    # more of the state `Log` keeps (kstub/cluster/log.py), beside `LogState`
    last_flush_ms: int
    _syncing: trio.Event | None

    async def sync(self) -> None:
        """fsync everything appended so far (no-op in memory).

        Concurrent callers share one fsync (group commit): a caller that
        finds one running waits for it and checks again. The fsync runs in a
        worker thread (there is no async fsync), on duplicated descriptors so
        that a segment deleted meanwhile cannot close them under it.
        """
        target = self.log_end_offset
        while self.recovery_point < target:
            if self._syncing is not None:
                await self._syncing.wait()
                continue
            event = self._syncing = trio.Event()
            try:
                end = self.log_end_offset
                fds: list[int] = []
                for seg in self._segments:
                    if seg.end_offset > self.recovery_point:
                        fd = seg.sync_fd()
                        if fd is not None:
                            fds.append(fd)
                if self._dirty_dir:
                    self._dirty_dir = False
                    dir_fd = self.storage.sync_dir_fd()
                    if dir_fd is not None:
                        fds.append(dir_fd)
                await trio.to_thread.run_sync(_fsync_all, fds)
                self.recovery_point = max(self.recovery_point, end)
                self.last_flush_ms = self._clock()
            finally:
                self._syncing = None
                event.set()

    @property
    def unflushed_messages(self) -> int:
        return self.log_end_offset - self.recovery_point

    def close(self) -> None:
        for seg in self._segments:
            seg.close()
        self.storage.close()

    def delete(self) -> None:
        """Delete the whole log (its topic was deleted)."""
        for seg in self._segments:
            seg.delete()
        self.storage.delete()
