"""Replication: each broker's replica fetcher and ISR expiration, as Trio tasks.

Every running broker runs one replica fetcher task (Kafka's ReplicaFetcherThread)
that copies, for each partition it follows, the chunks its leader appended
beyond the follower's log end, then reports its new log end offset to the
leader (`Partition.follower_fetched`): that is what moves the ISR and the high
watermark. The copy reads the leader's model directly instead of sending Fetch
over TCP, but it is a separate task that runs when woken, so replication takes
real, observable time, and it honours the broker's fault knobs: paused,
isolated (neither fetches nor is fetched from), or slowed (each round takes
`delay_ms`; changing or clearing the delay re-times a round already waiting).
A leader append wakes its followers' fetchers on an event: no
polling.

Before copying from a leader in a new leader epoch, a follower reconciles its
log with the leader's as Kafka does since KIP-101/KIP-279: it asks where its
latest epoch ends in the leader's log (OffsetForLeaderEpoch) and truncates
what diverges. That is how data acknowledged with acks=1 but never replicated
is lost when its leader fails.

Every leader broker also runs an ISR expiration task: a follower that has not
caught up with the leader's log end for replica.lag.time.max.ms leaves the ISR.
It sleeps until the earliest such deadline, or waits for a follower to fall
behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import trio

from .segments import Chunk

if TYPE_CHECKING:
    from .log import Log
    from .model import Broker, ClusterState, Partition

log = logging.getLogger("kstub.replication")


class BrokerReplication:
    """A broker's replication knobs (fault injection) and the wake-ups of its tasks."""

    def __init__(self) -> None:
        #: the replica fetcher copies nothing while paused
        self.paused = False
        #: cut off from the other brokers: neither fetches nor is fetched from
        self.isolated = False
        #: each replication round of this broker's fetcher takes this long
        self.delay_ms = 0
        #: partitions whose leader has data this broker may lack (insertion-ordered set)
        self.pending: dict[Partition, None] = {}
        #: look at every partition this broker follows, not only the pending ones
        self.rescan = True
        self.fetch_event = trio.Event()
        self.isr_event = trio.Event()
        #: set when delay_ms changes, so a round already waiting out the old delay re-times itself
        self.delay_event = trio.Event()

    def set_delay(self, delay_ms: int) -> None:
        """Change the delay of each round; a round waiting out the old delay now waits the new one."""
        self.delay_ms = delay_ms
        self.delay_event.set()

    async def wait_delay(self) -> None:
        """Wait out this round's delay: `delay_ms` from now, re-timed (from the same start) when it changes."""
        start = trio.current_time()
        while True:
            remaining = start + self.delay_ms / 1000 - trio.current_time()
            if remaining <= 0:
                return
            self.delay_event = trio.Event()
            with trio.move_on_after(remaining):
                await self.delay_event.wait()

    def wake(self, partition: Partition | None) -> None:
        """Wake the fetcher for one partition, or (None) for all it follows (under `wakes_held`: on release)."""
        if partition is None:
            self.rescan = True
        else:
            self.pending[partition] = None
        if _held is not None:
            _held.append(self)
        else:
            self.fetch_event.set()

    def wake_isr_check(self) -> None:
        self.isr_event.set()

    def snapshot(self) -> dict[str, object]:
        return {"paused": self.paused, "isolated": self.isolated, "delay_ms": self.delay_ms}


#: fetchers woken inside `wakes_held`, woken for real when it ends (None: not holding)
_held: list[BrokerReplication] | None = None


@contextmanager
def wakes_held() -> Iterator[None]:
    """Hold back fetcher wake-ups over a synchronous stretch (no await inside), then set each one still
    needed: a fetcher whose partitions `replicate_now` already copied in the stretch is left asleep.

    An acks=all append wakes each follower's fetcher, then copies to them at once; without this, every
    fetcher would still run one empty round per produce request.
    """
    global _held
    if _held is not None:  # nested: the outer stretch releases
        yield
        return
    _held = []
    try:
        yield
    finally:
        held, _held = _held, None
        for rep in held:
            if rep.pending or rep.rescan:
                rep.fetch_event.set()


# --- truncation -------------------------------------------------------------------


def reconcile(follower: Log, leader: Log, follower_hw: int) -> None:
    """Truncate `follower` where it diverges from `leader`, by leader epochs (KIP-279).

    The follower asks the leader where its latest epoch ends; if the leader
    answers for an older epoch (it never had ours), the follower goes back to
    where it has that epoch, and asks again.
    """
    for _ in range(len(follower.epochs) + 2):
        latest = follower.latest_epoch
        if latest < 0:
            if follower.log_end_offset > leader.log_end_offset:
                follower.truncate_to(min(follower_hw, leader.log_end_offset))
            return
        leader_epoch, leader_end = leader.end_offset_for_epoch(latest)
        if leader_end < 0:
            # the leader knows no such epoch: fall back to the high watermark, as Kafka does
            follower.truncate_to(follower_hw)
            return
        if leader_epoch == latest:
            follower.truncate_to(min(leader_end, follower.log_end_offset))
            return
        follower_epoch, follower_end = follower.end_offset_for_epoch(leader_epoch)
        before = (follower.log_end_offset, len(follower.epochs))
        follower.truncate_to(min(leader_end, follower_end if follower_end >= 0 else leader_end))
        if follower_epoch == leader_epoch or (follower.log_end_offset, len(follower.epochs)) == before:
            return


# --- the replica fetcher ----------------------------------------------------------


def replicate(cluster: ClusterState, follower_id: int, p: Partition) -> bool:
    """One fetch round for one partition; True if the leader still has more to copy."""
    if p.deleted or p.leader < 0 or p.leader == follower_id or follower_id not in p.replicas:
        return False
    leader_broker = cluster.brokers[p.leader]
    if not leader_broker.running or leader_broker.replication.isolated:
        return False  # the leader cannot be reached; its return or healing wakes us
    st = p.states[follower_id]
    flog = p.logs[follower_id]
    llog = p.leader_log
    if st.synced_epoch != p.leader_epoch:
        before = flog.log_end_offset
        reconcile(flog, llog, st.hw)
        st.synced_epoch = p.leader_epoch
        if flog.log_end_offset < before:
            log.info(
                "%s: broker %d truncated its log from %d to %d to follow leader %d (epoch %d)",
                p.name,
                follower_id,
                before,
                flog.log_end_offset,
                p.leader,
                p.leader_epoch,
            )
    if flog.log_end_offset < llog.log_start_offset:
        flog.truncate_fully(llog.log_start_offset)
    fetch_offset = flog.log_end_offset
    max_bytes = cluster.config["replica.fetch.max.bytes"]
    for chunk in llog.read(fetch_offset, max_bytes, llog.log_end_offset):
        if chunk.base_offset < flog.log_end_offset:
            # the leader's log starts inside this chunk (DeleteRecords): start over at the chunk
            # (a chunk past the log end follows a gap a compaction left: appended as it is)
            flog.truncate_fully(chunk.base_offset)
        # a Chunk of its own, sharing the bytes (as dataclasses.replace would, at a fraction of its cost)
        flog.append_chunk(
            Chunk(chunk.base_offset, chunk.last_offset, chunk.max_timestamp, chunk.leader_epoch, chunk.data)
        )
    if llog.log_start_offset > flog.log_start_offset:
        flog.advance_start(llog.log_start_offset)
    p.follower_fetched(follower_id, fetch_offset, flog.log_end_offset, cluster.now_ms())
    st.hw = min(p.high_watermark, flog.log_end_offset)
    if flog.log_end_offset < llog.log_end_offset:
        return True
    # Up to date, high watermark included: a wake-up this very round caused (our report moved the
    # high watermark) has nothing left to bring.
    cluster.brokers[follower_id].replication.pending.pop(p, None)
    return False


def replicate_now(cluster: ClusterState, p: Partition) -> None:
    """Run, at once, the fetch round that `p`'s in-sync followers' fetchers were just woken for.

    For an acks=all produce: the followers copy what the leader appended in
    the same scheduling round as the append, rather than one round later
    (the wait for their tasks is most of an acks=all answer's extra time).
    Only followers whose fetcher would copy right now: running, neither
    paused, isolated nor slowed; the others copy in their own time, as ever.
    What is copied, and what the leader learns, are those of a fetcher round.
    """
    if p.leader < 0:
        return
    # a second pass brings the high watermark the first one moved to the followers that copied before it moved
    for _ in range(2):
        for r in p.isr:  # a follower's fetch that expands the ISR assigns a new list: this one is not changed
            if r == p.leader:
                continue
            broker = cluster.brokers[r]
            rep = broker.replication
            if broker.running and not (rep.paused or rep.isolated or rep.delay_ms > 0) and p in rep.pending:
                replicate(cluster, r, p)


async def run_replica_fetcher(cluster: ClusterState, broker: Broker) -> None:
    """The broker's replica fetcher: copy from leaders whenever woken, until cancelled."""
    rep = broker.replication
    rep.rescan = True
    me = broker.node_id
    while True:
        if rep.paused or rep.isolated or not (rep.rescan or rep.pending):
            rep.fetch_event = trio.Event()
            await rep.fetch_event.wait()
            continue
        if rep.delay_ms > 0:
            await rep.wait_delay()
            if rep.paused or rep.isolated:
                continue
        rescan, rep.rescan = rep.rescan, False
        partitions = [p for p in cluster.iter_partitions() if me in p.replicas] if rescan else list(rep.pending)
        rep.pending.clear()
        for p in partitions:
            if replicate(cluster, me, p):
                rep.pending[p] = None
        await trio.lowlevel.checkpoint()


# --- ISR expiration -----------------------------------------------------------------


def expire_lagging_followers(cluster: ClusterState, leader_id: int) -> int | None:
    """Drop lagging followers past replica.lag.time.max.ms from the ISRs `leader_id` leads.

    Returns the earliest time (cluster ms) another follower could expire, or None.
    """
    now = cluster.now_ms()
    max_lag = cluster.config["replica.lag.time.max.ms"]
    next_deadline: int | None = None
    for p in list(cluster.iter_partitions()):
        if p.leader != leader_id or len(p.isr) < 2:
            continue
        for r in p.lagging_followers():
            deadline = p.states[r].caught_up_ms + max_lag
            if deadline <= now:
                cluster.controller.shrink_isr(p, r, f"not caught up for {now - p.states[r].caught_up_ms} ms")
            elif next_deadline is None or deadline < next_deadline:
                next_deadline = deadline
    return next_deadline


async def run_isr_expiration(cluster: ClusterState, broker: Broker) -> None:
    """Scan the partitions `broker` leads when a follower may have expired: at most once per lag period."""
    rep = broker.replication
    while True:
        rep.isr_event = trio.Event()
        deadline = expire_lagging_followers(cluster, broker.node_id)
        if deadline is None:
            # Woken when a caught-up follower falls behind: it was caught up until now, so
            # nothing can expire before a whole lag period has passed.
            await rep.isr_event.wait()
            deadline = cluster.now_ms() + cluster.config["replica.lag.time.max.ms"]
        # Later laggards have later deadlines: sleeping until this one misses nothing.
        await trio.sleep(max(0, deadline - cluster.now_ms()) / 1000)
