"""The console's live feed: the cluster's picture pushed as Server-Sent Events (``GET /v1/events``).

One `ConsoleHub` per cluster (`hub_for`) listens to what the cluster tells:

- the cluster's hooks (a broker stopped or started, a new leader, a new
  controller) and the control plane's actions, with a timestamped line each
  in the events log;
- each partition's high-watermark waiters (`Partition.add_waiter`: a produce
  became visible, a leader changed), while a page is open;
- for what announces itself nowhere (a commit, a rebalance, an ISR shrink, a
  follower catching up), a cheap fingerprint of the model, compared every
  `CHECK_INTERVAL` while a page is open. Its ISR and group changes go to the
  events log too.

Each change bumps a generation number. Every open page has its own task
(`stream_events`) that waits for the generation to move, then sends the
newest picture: one JSON snapshot built on the Trio thread for all pages
(`ConsoleHub.payload`, cached per generation) and encoded in a worker
thread. A page's queue holds one picture at most (the newest: pages that
read slowly skip pictures, they never queue them), a page gets at most one
picture per `min_interval` (adaptive: never more than ~1/8 of the Trio
thread on snapshots), and the brokers never wait for a page: only the page's
own task blocks on its socket, and gives up after `SEND_TIMEOUT`.

The rates (messages and bytes in and bytes out per topic, bytes in and out per broker,
offsets committed per group) and each group's total lag are sampled once a second while a page is open
and sent as the last `HISTORY` samples, for the sparklines.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from kstub.console import snapshot
from kstub.group_views import group_views

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterState
    from kstub.cluster.partition import Partition

log = logging.getLogger("kstub.console")

#: the smallest interval between two pictures sent to one page (seconds)
MIN_INTERVAL = 0.1
#: how often, while a page is open, the model is checked for changes nothing announced
CHECK_INTERVAL = 0.25
#: rates are sampled this often (seconds); this many samples are kept
SAMPLE_INTERVAL = 1.0
HISTORY = 60
#: a comment line this often keeps proxies from closing a quiet stream
KEEPALIVE = 15.0
#: a page that takes longer than this to take one picture is dropped
SEND_TIMEOUT = 30.0
#: pages open at once (each holds a connection and a task)
MAX_STREAMS = 32
#: lines kept in the events log
MAX_EVENTS = 500


def _now() -> float:
    return round(time.time(), 3)


@dataclass
class PageStats:
    """What one open page was sent: pictures, and changes folded into later pictures (coalesced)."""

    pictures: int = 0
    skipped: int = 0
    #: its task is waiting for the page's socket to take a picture
    sending: bool = False


class ConsoleHub:
    """What every open console page of one cluster shares: the events log, the rates, the newest picture."""

    def __init__(self, cluster: ClusterState) -> None:
        self.cluster = cluster
        #: bumped on every change anyone announced or the fingerprint saw
        self.generation = 0
        self._changed = trio.Event()
        self.events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self.samples: deque[dict[str, Any]] = deque(maxlen=HISTORY + 1)
        self.streams = 0
        self.pages: list[PageStats] = []
        self.min_interval = MIN_INTERVAL
        self._payload: tuple[int, bytes] | None = None
        self._building: trio.Event | None = None
        self._fingerprint: Any = None
        self._seen_isr: dict[str, tuple[int, ...]] = {}
        self._seen_groups: dict[str, tuple[str, int, str]] = {}
        self._watching: trio.Event | None = None
        hooks = cluster.hooks
        hooks.broker_started.append(self._broker_started)
        hooks.broker_stopped.append(self._broker_stopped)
        hooks.leader_changed.append(self._leader_changed)
        hooks.controller_changed.append(self._controller_changed)
        cluster.control.listeners.append(self._action)

    # --- what the cluster announces ------------------------------------------------

    def changed(self) -> None:
        """Something changed: every page gets a new picture (at its own pace)."""
        self.generation += 1
        self._changed.set()
        self._changed = trio.Event()

    def _event(self, kind: str, text: str, **fields: Any) -> None:
        self.events.append({"time": _now(), "kind": kind, "text": text, **fields})
        self.changed()

    def _broker_started(self, broker_id: int) -> None:
        self._event("broker", f"broker {broker_id} rejoined the cluster", broker=broker_id)

    def _broker_stopped(self, broker_id: int) -> None:
        self._event("broker", f"broker {broker_id} left the cluster (fenced)", broker=broker_id)

    def _leader_changed(self, p: Partition, old: int, new: int) -> None:
        who = "no leader" if new < 0 else f"leader {new}"
        self._event(
            "election", f"{p.name}: {who} (was {old}), epoch {p.leader_epoch}", topic=p.topic.name, partition=p.index
        )

    def _controller_changed(self, old: int, new: int) -> None:
        self._event("controller", f"controller {old} -> {new}")

    def _action(self, entry: dict[str, Any]) -> None:
        params = " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("time", "action") and v is not None)
        self._event("action", f"{entry['action']} {params}".strip())

    # --- what nothing announces: a fingerprint of the model ---------------------------

    def fingerprint(self) -> Any:
        cluster = self.cluster
        brokers = tuple(
            (
                b.node_id,
                b.alive,
                b.running,
                b.replication.paused,
                b.replication.isolated,
                b.replication.delay_ms,
            )
            for b in cluster.brokers.values()
        )
        parts = tuple(
            (
                p.topic.name,
                p.index,
                p.leader,
                tuple(p.isr),
                p.high_watermark,
                *((log.log_start_offset, log.log_end_offset) for log in p.logs.values()),
            )
            for p in cluster.iter_partitions()
        )
        groups = tuple(
            (
                gid,
                g.state.value,
                g.generation_id,
                tuple(g.members),
                tuple((tp, c.offset) for tp, c in g.offsets.items()),
            )
            for gid, g in cluster.groups.groups.items()
        )
        consumer_groups = tuple(
            (
                gid,
                g.group_epoch,
                g.assignment_epoch,
                tuple(
                    (
                        m.member_id,
                        m.member_epoch,
                        m.state,
                        tuple(sorted((str(t), tuple(sorted(ps))) for t, ps in m.owned().items())),
                    )
                    for m in g.members.values()
                ),
            )
            for gid, g in cluster.groups.consumer.groups.items()
        )
        txns = tuple((tid, t.state, len(t.partitions)) for tid, t in cluster.transactions.txns.items())
        return hash((brokers, parts, groups, consumer_groups, txns, len(cluster.control.faults), cluster.controller_id))

    def check(self) -> None:
        """Compare the model with the last look; announce a change if it moved."""
        fingerprint = self.fingerprint()
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self.changed()

    def _note_transitions(self, snap: dict[str, Any]) -> None:
        """ISR changes and group transitions since the last picture, for the events log."""
        isr = {f"{p['topic']}-{p['partition']}": tuple(p["isr"]) for p in snap["partitions"]}
        for name, now in isr.items():
            before = self._seen_isr.get(name)
            if before is not None and before != now:
                verb = "shrank" if len(now) < len(before) else "expanded" if len(now) > len(before) else "changed"
                self.events.append(
                    {"time": _now(), "kind": "isr", "text": f"{name}: ISR {verb} {list(before)} -> {list(now)}"}
                )
        self._seen_isr = isr
        groups = {g["id"]: (g["state"], g["generation"], g["type"]) for g in snap["groups"]}
        for gid, (state, gen, kind) in groups.items():
            before_g = self._seen_groups.get(gid)
            if before_g != (state, gen, kind):
                word = "epoch" if kind == "consumer" else "generation"
                was = "new" if before_g is None else f"{before_g[0]} {word} {before_g[1]}"
                text = f"{kind} group {gid}: {state}, {word} {gen} (was {was})"
                self.events.append({"time": _now(), "kind": "group", "text": text})
        self._seen_groups = groups

    # --- rates ----------------------------------------------------------------------

    def sample(self) -> None:
        """Counters now, for the rates: a sample at most every SAMPLE_INTERVAL."""
        now = time.monotonic()
        if self.samples and now - self.samples[-1]["t"] < SAMPLE_INTERVAL * 0.9:
            return
        cluster = self.cluster
        # messages and bytes in, bytes out per topic: the brokers' counters (Kafka's BrokerTopicMetrics)
        topics: dict[str, list[int]] = {name: [0, 0, 0] for name in cluster.topics}
        for b in cluster.brokers.values():
            for name, counts in b.stats.topics.items():
                total = topics.get(name)
                if total is not None:
                    total[0] += counts[0]
                    total[1] += counts[1]
                    total[2] += counts[2]
        brokers = {b.node_id: (b.stats.bytes_in, b.stats.bytes_out) for b in cluster.brokers.values()}
        groups: dict[str, tuple[int, int]] = {}
        for view in group_views(cluster):
            committed = lag = 0
            for (topic, index), c in view.offsets.items():
                committed += c.offset
                p = cluster.partition(topic, index)
                lag += 0 if p is None else max(0, p.high_watermark - c.offset)
            groups[view.group_id] = (committed, lag)
        self.samples.append({"t": now, "topics": topics, "brokers": brokers, "groups": groups})

    def rates(self) -> dict[str, Any]:
        """Per-second rates between successive samples, oldest first (never negative: retention, truncation)."""
        topics: dict[str, dict[str, list[float]]] = {}
        brokers: dict[str, dict[str, list[float]]] = {}
        groups: dict[str, dict[str, list[float]]] = {}
        samples = list(self.samples)
        for a, b in itertools.pairwise(samples):
            dt = max(b["t"] - a["t"], 1e-3)
            for name, counts in b["topics"].items():
                before = a["topics"].get(name)
                if before is None:
                    continue
                series = topics.setdefault(name, {"messages_in": [], "bytes_in": [], "bytes_out": []})
                for key, now_count, then in zip(("messages_in", "bytes_in", "bytes_out"), counts, before, strict=True):
                    series[key].append(round(max(0, now_count - then) / dt, 1))
            for node, (bytes_in, bytes_out) in b["brokers"].items():
                before_b = a["brokers"].get(node)
                if before_b is None:
                    continue
                series = brokers.setdefault(str(node), {"bytes_in": [], "bytes_out": []})
                series["bytes_in"].append(round(max(0, bytes_in - before_b[0]) / dt, 1))
                series["bytes_out"].append(round(max(0, bytes_out - before_b[1]) / dt, 1))
            for gid, (committed, lag) in b["groups"].items():
                if gid in a["groups"]:
                    series = groups.setdefault(gid, {"committed": [], "lag": []})
                    series["committed"].append(round(max(0, committed - a["groups"][gid][0]) / dt, 1))
                    series["lag"].append(lag)
        return {"interval": SAMPLE_INTERVAL, "topics": topics, "brokers": brokers, "groups": groups}

    # --- the picture --------------------------------------------------------------------

    def picture(self) -> dict[str, Any]:
        """The snapshot (kstub/console.py) with the events log and the rates; on the Trio thread."""
        self.sample()
        snap = snapshot(self.cluster)
        self._note_transitions(snap)
        snap["events"] = list(self.events)[-200:]
        snap["rates"] = self.rates()
        snap["generation"] = self.generation
        return snap

    async def payload(self) -> tuple[int, bytes]:
        """The newest picture as one SSE message: built once per generation, whoever asks first."""
        while True:
            cached = self._payload
            if cached is not None and cached[0] == self.generation:
                return cached
            if self._building is not None:  # another page is building it: wait and take theirs
                await self._building.wait()
                continue
            self._building = done = trio.Event()
            try:
                generation = self.generation
                started = time.thread_time()
                picture = self.picture()
                built = time.thread_time() - started
                body, written = await trio.to_thread.run_sync(_encode, picture)
                # Never more than ~1/8 of the process on pictures, however large the cluster (the JSON is
                # written in a worker thread, but under the GIL). CPU time, not the wall clock: on a busy
                # machine the wall clock counts other processes' turns too, and would slow the page for nothing.
                self.min_interval = max(MIN_INTERVAL, 8 * (built + written))
                self._payload = (generation, f"event: state\ndata: {body}\n\n".encode())
                return self._payload
            finally:
                self._building = None
                done.set()

    async def wait_changed(self, seen: int) -> None:
        """Until the generation moves past `seen`."""
        while self.generation <= seen:
            await self._changed.wait()

    # --- the watchers that run while a page is open ------------------------------------

    async def watch(self) -> None:
        """While pages are open: the partitions' waiters, the fingerprint, the rate samples.

        Every page's task calls this; one of them runs the watchers, the others
        wait to take over if that page goes away.
        """
        while True:
            running = self._watching
            if running is not None:
                await running.wait()
                continue
            self._watching = done = trio.Event()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_partitions)
                    nursery.start_soon(self._watch_model)
            finally:
                self._watching = None
                done.set()

    async def _watch_partitions(self) -> None:
        while True:
            event = trio.Event()
            parts = list(self.cluster.iter_partitions())
            for p in parts:
                p.add_waiter(event)
            try:
                with trio.move_on_after(CHECK_INTERVAL * 4):  # new partitions join on the next round
                    await event.wait()
            finally:
                for p in parts:
                    p.remove_waiter(event)
            if event.is_set():
                self.changed()
                # Pictures are not built faster than that anyway; what moves meanwhile is caught below.
                marks = [p.high_watermark for p in parts]
                await trio.sleep(self.min_interval)
                if any(p.high_watermark != mark for p, mark in zip(parts, marks, strict=True)):
                    self.changed()

    async def _watch_model(self) -> None:
        last_sample = 0.0
        while True:
            self.check()
            if time.monotonic() - last_sample >= SAMPLE_INTERVAL:
                last_sample = time.monotonic()
                self.sample()
                self.changed()  # new rates for the sparklines
            await trio.sleep(CHECK_INTERVAL)


def _encode(picture: dict[str, Any]) -> tuple[str, float]:
    """The picture's JSON and the CPU time it took (in the worker thread that writes it)."""
    started = time.thread_time()
    body = json.dumps(picture)
    return body, time.thread_time() - started


_hubs: weakref.WeakKeyDictionary[ClusterState, ConsoleHub] = weakref.WeakKeyDictionary()


def hub_for(cluster: ClusterState) -> ConsoleHub:
    """The cluster's hub (made on first use: the admin server makes it when it starts)."""
    hub = _hubs.get(cluster)
    if hub is None:
        hub = _hubs[cluster] = ConsoleHub(cluster)
    return hub


async def stream_events(hub: ConsoleHub, send: Callable[[bytes], Awaitable[None]]) -> None:
    """One page's stream: the picture now, then a newer one after each change (coalesced, rate-bounded).

    Returns when the page is too slow (SEND_TIMEOUT); the caller cancels it when the page goes away.
    """
    hub.streams += 1
    page = PageStats()
    hub.pages.append(page)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hub.watch)
            await send(f"retry: 1000\n: kstub console, {hub.cluster.cluster_id}\n\n".encode())
            seen = -1
            while True:
                with trio.move_on_after(KEEPALIVE) as idle:
                    await hub.wait_changed(seen)
                if idle.cancelled_caught:
                    message = b": keep-alive\n\n"
                else:
                    generation, message = await hub.payload()
                    if seen >= 0:
                        page.skipped += generation - seen - 1
                    seen = generation
                    page.pictures += 1
                with trio.move_on_after(SEND_TIMEOUT) as sending:
                    page.sending = True
                    await send(message)
                page.sending = False
                if sending.cancelled_caught:
                    log.info("console: a page took more than %.0f s to read; dropped", SEND_TIMEOUT)
                    break
                await trio.sleep(hub.min_interval)
            nursery.cancel_scope.cancel()
    finally:
        hub.streams -= 1
        hub.pages.remove(page)
