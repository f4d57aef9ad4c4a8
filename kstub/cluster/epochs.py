"""The leader epoch cache of one replica's log (Kafka's LeaderEpochFileCache).

For each leader epoch that wrote to the log, the offset where it began, in
order. Followers use it to find where their log diverges from a new leader's
(OffsetForLeaderEpoch, KIP-101/KIP-279); `save` is called with the entries
after every change (the storage checkpoints them).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

Entries = list[tuple[int, int]]


class LeaderEpochCache:
    def __init__(self, entries: Iterable[tuple[int, int]] = (), save: Callable[[Entries], None] | None = None) -> None:
        #: (epoch, start offset) for each leader epoch that wrote to the log
        self.entries: Entries = list(entries)
        self._save = save or (lambda entries: None)

    def _set(self, entries: Entries) -> None:
        if entries != self.entries:
            self.entries = entries
            self._save(self.entries)

    def epoch_at(self, offset: int) -> int:
        """The leader epoch that wrote `offset` (-1 if unknown)."""
        epoch = -1
        for e, start in self.entries:
            if start > offset:
                break
            epoch = e
        return epoch

    @property
    def latest(self) -> int:
        return self.entries[-1][0] if self.entries else -1

    def assign(self, epoch: int, start: int) -> None:
        """Kafka's assign: later or overlapping entries give way to the new one."""
        entries = list(self.entries)
        while entries and (entries[-1][0] >= epoch or entries[-1][1] >= start):
            entries.pop()
        entries.append((epoch, start))
        self.entries = entries
        self._save(self.entries)

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's endOffsetFor (OffsetForLeaderEpoch).

        (largest epoch <= `epoch`, the start offset of the first later epoch),
        or the log end offset if `epoch` is the latest. An epoch older than
        any known answers (`epoch`, start of the first known epoch); one newer
        than any known, or -1, answers (-1, -1).
        """
        entries = self.entries
        if epoch < 0 or not entries:
            return -1, -1
        if entries[-1][0] == epoch:
            return epoch, log_end_offset
        i = bisect.bisect_right(entries, (epoch, float("inf")))
        if i == len(entries):
            return -1, -1
        higher_start = entries[i][1]
        if i == 0:
            return epoch, higher_start
        return entries[i - 1][0], higher_start

    def truncate_from_start(self, offset: int) -> None:
        """Kafka's truncateFromStart: the epoch live at `offset` now starts there."""
        older = [i for i, (_, start) in enumerate(self.entries) if start <= offset]
        if not older:
            return
        last = older[-1]
        self._set([(self.entries[last][0], offset), *self.entries[last + 1 :]])

    def truncate_from_end(self, offset: int) -> None:
        """Kafka's truncateFromEnd: epochs starting at or after `offset` go."""
        self._set([(e, s) for e, s in self.entries if s < offset])

    def clear(self) -> None:
        self.entries = []
        self._save(self.entries)
