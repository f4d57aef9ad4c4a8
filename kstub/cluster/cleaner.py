"""Log compaction: the log cleaner, by Kafka's rules (its LogCleaner, LogCleanerManager and Cleaner).

A log whose ``cleanup.policy`` includes ``compact`` keeps, in its closed
segments, only the latest record of each key. One cleaning of one log:

1. **What to clean.** The *first dirty offset* is where the previous cleaning
   ended (kept per log; the log start offset at first, or when it is no longer
   inside the log). The *first uncleanable offset* is the smallest of the last
   stable offset (the high watermark without open transactions), the active
   segment's base offset (the active segment is never cleaned) and, with
   ``min.compaction.lag.ms``, the base of the first dirty segment holding a
   record younger than that lag; it is then moved down to the base offset of
   the segment it falls in, so cleaning stops at a segment boundary.
2. **Whether to clean.** The dirty ratio is the size of the segments from the
   first dirty offset to the first uncleanable one over the size of the whole
   cleanable log; the log is cleaned when it passes ``min.cleanable.dirty.ratio``,
   or when some dirty segment's first batch is older than
   ``max.compaction.lag.ms`` (and there is something to clean).
3. **The offset map**: the last offset of each key in the dirty range (records
   of aborted transactions and control records aside).
4. **Rewrite.** Every segment below the first uncleanable offset (the clean
   part too) is filtered, in groups of consecutive segments whose sizes add up
   to at most ``segment.bytes``; each group becomes one new segment with the
   group's first base offset, which replaces the group (`Log.replace_segments`).
   A record stays if its offset is past the map's end, or it is the latest of
   its key and either has a value or is a tombstone still within its delete
   horizon. Records without a key go. A batch whose records all stay is kept
   as its bytes; otherwise it is rebuilt with the records that stay, with the
   same base offset, last offset, producer fields, leader epoch and codec (so
   offsets are preserved and gaps appear between batches; consumers skip
   them). A batch with tombstones (or a marker of a transaction with nothing
   left) gets, the first time it is cleaned, its *delete horizon*: now +
   ``delete.retention.ms``, written in its base timestamp with attribute bit
   0x40, as Kafka does since KIP-534; after that time a cleaning removes the
   tombstones (and such a marker). Magic 0/1 message sets have no horizon:
   their tombstones stay while their segment was modified within
   ``delete.retention.ms`` of the last clean segment, and what stays of them
   is rebuilt as a magic 2 batch (Kafka does the same).
5. **Batches with no record left** go, except the last batch of each producer
   (kept empty, so that the producer state can be rebuilt from the log) and
   the batch that ends right at the first uncleanable offset.
6. **Transactions**, as the batch attributes show them: data batches of an
   aborted transaction go whole; a COMMIT marker goes (after its horizon) when
   no batch of its transaction is left, an ABORT marker when no data of its
   transaction was left by the previous cleanings.

**Replicas.** Kafka cleans each replica on its own. kstub cleans all the
replicas of a partition in the same pass, at the same time, up to the same
offset (bounded by every in-sync replica's first uncleanable offset): the
decision is taken on the leader's log. Replicas whose segments start at the
same offsets (the usual case: rolling is by size and by record timestamps)
come out byte-identical; the others keep the same records.

**Files.** With ``--data-dir`` the new segment is written as
``<base>.log.cleaned`` (and its indexes), renamed ``<base>.log.swap`` once
complete and fsynced, with a ``<base>.replaces`` list of the segments it
replaces; then those are deleted and the swap file takes its final name.
Recovery deletes ``.cleaned`` files and completes a swap (kstub/cluster/log_files.py).
The first dirty offset is kept in ``cleaner-offset-checkpoint`` in the log's folder.

**When.** `LogCleaner.run` (a task on the cluster's nursery) cleans when
woken: by a segment roll on a compacted partition, a high watermark moving
past a closed segment, a topic config change, or the time when
``max.compaction.lag.ms`` or ``min.compaction.lag.ms`` next makes a segment
cleanable; it never polls. Each pass cleans the eligible logs one after the
other; the decoding and filtering of each read window (1 MiB) runs in a worker
thread, so the server's other tasks keep running. `LogCleaner.clean_now`
(the control plane's ``clean_logs``) runs one pass at once.

**Modules.** This one holds the cleaner task (`LogCleaner`) and the first dirty
offsets, and imports the others when it first meets a compacted partition;
``cleaner_plan.py`` decides whether and what to clean (1, 2) and when next;
``cleaner_rewrite.py`` cleans one log (3 to 5: the offset map, the
filtering, the segment groups); ``cleaner_transactions.py`` reads the
transactions off the batches (6); ``cleaner_batches.py`` reads segments a
window at a time, decodes batches and rebuilds them.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .log import Log

if TYPE_CHECKING:
    from .cleaner_plan import LogToClean
    from .cleaner_rewrite import CleaningResult
    from .model import ClusterState, Partition

log = logging.getLogger("kstub.cleaner")

CHECKPOINT_FILE = "cleaner-offset-checkpoint"


def is_compacted(config: Callable[[str], str]) -> bool:
    return "compact" in [p.strip() for p in config("cleanup.policy").split(",")]


# --- checkpoints ------------------------------------------------------------------------------


def _checkpoint_path(lg: Log) -> str | None:
    directory = getattr(lg.storage, "directory", None)
    return os.path.join(directory, CHECKPOINT_FILE) if directory is not None else None


# --- the cleaner --------------------------------------------------------------------------------


class LogCleaner:
    """The cluster's log cleaner: first dirty offsets, wake-ups, and cleaning passes."""

    def __init__(self, cluster: ClusterState) -> None:
        self.cluster = cluster
        self._checkpoints: weakref.WeakKeyDictionary[Log, int] = weakref.WeakKeyDictionary()
        self._event = trio.Event()
        self._lock = trio.Lock()
        #: partitions whose cleaning failed (Kafka's uncleanable partitions), by topic id and index
        self._uncleanable: set[tuple[object, int]] = set()
        #: partitions whose high watermark wakes the cleaner (their waiter is `_event`)
        self._registered: list[Partition] = []
        #: cleanings done so far (a count, for status and tests)
        self.cleanings = 0

    # --- wake-ups ---

    def wake(self) -> None:
        """Something may have become cleanable (a roll, a config change, a high watermark)."""
        self._event.set()

    def rolled(self, partition: Partition) -> None:
        """A partition's leader rolled a segment: if compacted, its closed segments may be cleanable."""
        if is_compacted(partition.config):
            self._event.set()

    # --- checkpoints ---

    def checkpoint(self, lg: Log) -> int | None:
        if lg in self._checkpoints:
            return self._checkpoints[lg]
        path = _checkpoint_path(lg)
        if path is not None:
            try:
                with open(path) as f:
                    value = int(f.read().strip())
                self._checkpoints[lg] = value
                return value
            except (OSError, ValueError):
                return None
        return None

    def _save_checkpoint(self, lg: Log, offset: int) -> None:
        self._checkpoints[lg] = offset
        path = _checkpoint_path(lg)
        if path is not None:
            from pathlib import Path

            from .log_files import write_atomically

            try:
                write_atomically(Path(path), f"{offset}\n".encode(), fsync=False)
            except OSError as exc:
                log.warning("cannot save %s: %s", path, exc)

    # --- passes ---

    def _stable_offset(self, partition: Partition) -> int:
        return min(partition.high_watermark, partition.last_stable_offset)

    async def run(self) -> None:
        """Clean whenever woken or when a lag rule's time comes, until cancelled."""
        while True:
            for partition in self._registered:
                partition.remove_waiter(self._event)
            self._registered.clear()
            self._event = trio.Event()
            deadline = await self.clean_pass()
            wait_s = None if deadline is None else max(0.0, (deadline - self.cluster.now_ms()) / 1000)
            if self._event.is_set():
                continue
            if wait_s is None:
                await self._event.wait()
            else:
                with trio.move_on_after(wait_s):
                    await self._event.wait()

    async def clean_now(self, topic: str | None = None, *, force: bool = False) -> list[dict[str, Any]]:
        """One pass now: every eligible compacted log (of `topic`); `force` ignores min.cleanable.dirty.ratio."""
        results: list[dict[str, Any]] = []
        await self.clean_pass(topic=topic, force=force, results=results)
        return results

    async def clean_pass(
        self, *, topic: str | None = None, force: bool = False, results: list[dict[str, Any]] | None = None
    ) -> int | None:
        """Clean what is eligible; returns the next time (ms) a lag rule may make something eligible."""
        async with self._lock:
            now = self.cluster.now_ms()
            deadline: int | None = None
            for partition in list(self.cluster.iter_partitions()):
                if partition.deleted or (topic is not None and partition.topic.name != topic):
                    continue
                if not is_compacted(partition.config) or partition.leader < 0:
                    continue
                key = (partition.topic.topic_id, partition.index)
                if key in self._uncleanable:
                    continue
                before = _shapes(partition)
                try:
                    d = await self._clean_partition(partition, now, force, results)
                except Exception:
                    if _shapes(partition) != before:
                        # retention, truncation or a reassignment changed the logs under the cleaner (or the
                        # cleaner had swapped segments in): not the partition's fault; the next wake-up retries
                        log.info(
                            "%s: logs changed during cleaning; cleaning again later", partition.name, exc_info=True
                        )
                        continue
                    # Kafka marks such a partition uncleanable (until restart) and goes on with the others
                    log.exception("%s: cleaning failed; the partition is not cleaned again", partition.name)
                    self._uncleanable.add(key)
                    continue
                if d is not None and (deadline is None or d < deadline):
                    deadline = d
            return deadline

    async def _clean_partition(
        self, partition: Partition, now: int, force: bool, results: list[dict[str, Any]] | None
    ) -> int | None:
        # the cleaning itself is imported with the first compacted partition (most servers never compact)
        from .cleaner_batches import Work
        from .cleaner_plan import cleanable, next_deadline, segment_base_at, should_clean
        from .cleaner_rewrite import clean_log

        leader_log = partition.leader_log
        config = partition.config
        stable = self._stable_offset(partition)
        plans: dict[int, LogToClean] = {}
        for broker_id, lg in partition.logs.items():
            plans[broker_id] = cleanable(lg, config, self.checkpoint(lg), min(stable, lg.log_end_offset), now)
        lead = plans[partition.leader]
        if not (should_clean(lead, config) or (force and lead.cleanable_bytes > 0)):
            if stable < leader_log.active_segment.base_offset:
                # closed segments held back by the high watermark: look again once it moves, if that would do
                unblocked = cleanable(leader_log, config, self.checkpoint(leader_log), leader_log.log_end_offset, now)
                if should_clean(unblocked, config):
                    partition.add_waiter(self._event)
                    self._registered.append(partition)
            return next_deadline(leader_log, config, lead.first_dirty, now)
        common = min((plans[r].first_uncleanable for r in partition.isr if r in plans), default=lead.first_uncleanable)
        for broker_id, lg in list(partition.logs.items()):
            if partition.deleted:
                break
            plan = plans[broker_id]
            upto = segment_base_at(lg, min(common, plan.first_uncleanable))
            if upto <= plan.first_dirty:
                continue
            bconfig = _replica_config(partition, broker_id)
            result: CleaningResult | None = None
            for step in clean_log(lg, bconfig, plan.first_dirty, upto, now):
                if isinstance(step, Work):
                    await trio.to_thread.run_sync(step.run)  # CPU work off the server's Trio thread
                else:
                    result = step
            if result is None or partition.logs.get(broker_id) is not lg:
                continue
            if not result.aborted:
                self._save_checkpoint(lg, result.end_offset)
                self.cleanings += 1
            log.info(
                "%s-%d (broker %d): cleaned offsets %d..%d: %d of %d records kept, %d -> %d bytes",
                partition.topic.name,
                partition.index,
                broker_id,
                plan.first_dirty,
                result.end_offset,
                result.records_kept,
                result.records_read,
                result.bytes_before,
                result.bytes_after,
            )
            if results is not None:
                results.append(
                    {"topic": partition.topic.name, "partition": partition.index, "broker": broker_id}
                    | result.describe()
                )
        return next_deadline(leader_log, config, self.checkpoint(leader_log) or 0, self.cluster.now_ms())


def _shapes(partition: Partition) -> list[tuple[int, list[tuple[int, int, int]]]]:
    """What the cleaner reads of a partition's logs: each replica's closed segments (identity, batches, size)."""
    return [(id(lg), [(id(s), len(s), s.size) for s in lg.segments[:-1]]) for lg in partition.logs.values()]


def _replica_config(partition: Partition, broker_id: int) -> Callable[[str], str]:
    def config(name: str) -> str:
        return partition.topic.config(name, broker_id)

    return config
