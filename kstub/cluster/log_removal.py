"""Data leaving a replica's log: a moving log start, retention, truncation.

Data leaves the log only by whole segments, when the log start offset moves
past them (retention, DeleteRecords: `delete_oldest_segments`,
`advance_start`) or by truncation on a follower, never because it was read.
A part of `Log` (kstub/cluster/log.py), kept apart from appending and reading.
"""

from __future__ import annotations

import logging

from .epochs import LeaderEpochCache
from .producers import PartitionProducers
from .segments import LogState

logger = logging.getLogger("kstub.log")


class LogRemoval(LogState):
    """Moving the log start, deleting old segments, truncating: mixed into `Log`."""

    # more of the state `Log` keeps (kstub/cluster/log.py), beside `LogState`
    epoch_cache: LeaderEpochCache
    producers: PartitionProducers
    # (and its is_persistent, epochs, roll(), segment_index(), _rebuild_producers())

    def advance_start(self, offset: int) -> None:
        """Move the log start offset forward (DeleteRecords, a follower following its leader).

        Segments wholly below the new start are deleted at once (Kafka's
        deleteLogStartOffsetBreachedSegments; never the active one). Past the
        log end, the log is emptied and restarts at `offset`.
        """
        if offset <= self.log_start_offset:
            return
        self.log_start_offset = offset
        if offset > self.log_end_offset:
            now = self._clock()
            for seg in self._segments:
                seg.delete()
            self._segments = [self.storage.new_segment(offset, now)]
            self._seg_bases = [offset]
            self.log_end_offset = offset
            self.recovery_point = max(self.recovery_point, offset) if self.is_persistent else offset
            self._dirty_dir = True
        else:
            drop = 0
            while drop < len(self._segments) - 1 and self._segments[drop + 1].base_offset <= offset:
                drop += 1
            self._drop_oldest(drop)
        self.epoch_cache.truncate_from_start(offset)
        self.storage.save_log_start(offset)

    def _drop_oldest(self, count: int) -> None:
        for seg in self._segments[:count]:
            seg.delete()
        del self._segments[:count]
        del self._seg_bases[:count]
        if count:  # the aborted transactions whose markers were in those segments go with them, as in Kafka
            self.producers.forget_aborted_before(self._segments[0].base_offset)

    def delete_oldest_segments(self, count: int, reason: str) -> int:
        """Delete the `count` oldest segments (retention), rolling first if that is all of them.

        Kafka never deletes the active segment: when every segment is to go,
        it rolls a new empty one first. The log start offset moves to the
        first remaining segment's base offset. Returns the number deleted.
        """
        if count <= 0:
            return 0
        if count >= len(self._segments):
            count = len(self._segments)
            self.roll()
        doomed = self._segments[:count]
        self._drop_oldest(count)
        logger.info(
            "deleting %d segment(s) with base offsets %s: %s",
            len(doomed),
            [s.base_offset for s in doomed],
            reason,
        )
        new_start = self._segments[0].base_offset
        if new_start > self.log_start_offset:
            self.log_start_offset = new_start
            self.epoch_cache.truncate_from_start(new_start)
            self.storage.save_log_start(new_start)
        return len(doomed)

    def truncate_to(self, offset: int) -> None:
        """Drop everything at or above `offset` (a follower removing divergent data).

        Whole batches go: the log ends at the first batch boundary at or below
        `offset`. The epoch cache and the producer state forget what went. As
        in Kafka, epochs starting at or after `offset` leave the cache even if
        no data does (a former leader's epoch in which it wrote nothing).
        """
        if offset >= self.log_end_offset:
            self.epoch_cache.truncate_from_end(offset)
            return
        si = self.segment_index(offset)
        for seg in self._segments[si + 1 :]:
            seg.delete()
        del self._segments[si + 1 :]
        del self._seg_bases[si + 1 :]
        seg = self._segments[si]
        seg.truncate(seg.index_of(offset))
        self.log_end_offset = max(self.log_start_offset, seg.end_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self.epoch_cache.truncate_from_end(self.log_end_offset)
        self.storage.save_epochs(self.epochs)
        self._rebuild_producers()

    def truncate_fully(self, start_offset: int) -> None:
        """Drop everything and restart empty at `start_offset` (a follower behind its leader's log start)."""
        for seg in self._segments:
            seg.delete()
        self._segments = [self.storage.new_segment(start_offset, self._clock())]
        self._seg_bases = [start_offset]
        self.log_start_offset = self.log_end_offset = start_offset
        self.recovery_point = start_offset
        self._dirty_dir = True
        self.epoch_cache.clear()
        self.storage.save_log_start(start_offset)
        self.producers = PartitionProducers()
