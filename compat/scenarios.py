"""The scenarios: what each checks, stated once for every client.

A scenario gets a client adapter (`compat.clients`) and a `Ctx`. It uses the
client for what it tests and the probe (`ctx.probe`, the suite's own protocol
client) for set-up and for independent checks, and asserts exact outcomes:
which messages, in which order, at which partition and offset. A failed
expectation raises CheckFailed with what was expected and what came instead.

Each scenario names the cluster capabilities it needs (`needs`); the runner
skips it, with the reason, on a cluster that lacks one. Clients declare the
scenarios they cannot run (`Client.unsupported`).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .clients.base import Client, Member, wait_until
from .model import CapabilityMissing, CheckFailed, ClientError, Delivery, Msg, Record, Unsupported
from .probe import Probe

# Capabilities a cluster may have (found by compat.runner.discover).
GROUPS = "groups"  # consumer groups: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch
NO_AUTO_CREATE = "no-auto-create"  # auto.create.topics.enable=false
CONTROL_PLANE = "control-plane"  # an admin URL that can stop and start brokers
THREE_BROKERS = "three-brokers"

CAPABILITY_MISSING = {
    GROUPS: "the cluster does not offer consumer groups (ApiVersions lacks {missing})",
    NO_AUTO_CREATE: "the cluster creates topics on first use (auto.create.topics.enable=true)",
    CONTROL_PLANE: "no control plane to stop a broker (give --admin-url)",
    THREE_BROKERS: "the cluster has fewer than 3 brokers",
}


@dataclass
class Ctx:
    run_id: str
    scenario: str
    client: str
    probe: Probe
    caps: frozenset[str]
    admin: Any = None  # compat.control_client.ControlPlane when CONTROL_PLANE is in caps
    timeout: float = 15.0
    _names: Counter[str] = field(default_factory=Counter)
    created: list[str] = field(default_factory=list)

    def name(self, kind: str) -> str:
        """A topic or group name unique to this run, scenario and client."""
        self._names[kind] += 1
        n = self._names[kind]
        raw = f"compat-{self.run_id}-{self.scenario}-{self.client}-{kind}{n if n > 1 else ''}"
        return re.sub(r"[^a-zA-Z0-9._-]", "-", raw)

    def topic(self, partitions: int = 1, replication_factor: int = 1, configs: dict[str, str] | None = None) -> str:
        """A new topic, created by the probe, with a leader for every partition."""
        name = self.name("topic")
        self.created.append(name)
        self.probe.create_topic(name, partitions, replication_factor, configs)
        return name

    def cleanup(self) -> None:
        """Delete the topics this cell made (a shared cluster is left as found; offline partitions of
        leftover topics would also disturb clients that read every topic's metadata, e.g. kafkajs)."""
        for topic in self.created:
            try:
                self.probe.delete_topic(topic)
            except Exception:
                pass


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    fn: Callable[[Client, Ctx], str | None]
    needs: frozenset[str] = frozenset()
    exclusive: bool = False  # disturbs the cluster: run alone, after the others

    @property
    def checks(self) -> str:
        return (self.fn.__doc__ or "").strip()


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, title: str, *needs: str, exclusive: bool = False):
    def register(fn: Callable[[Client, Ctx], str | None]) -> Callable[[Client, Ctx], str | None]:
        SCENARIOS[name] = Scenario(name, title, fn, frozenset(needs), exclusive)
        return fn

    return register


# --- checking ------------------------------------------------------------------------------


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise CheckFailed(f"{what}: expected {_short(expected)}, got {_short(actual)}")


def by_partition(records: Iterable[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r)
    return out


def expect_offsets_from(records: list[Record], start: int, what: str) -> None:
    """Per partition, the records come in offset order with no gap, from `start`."""
    for p, rs in sorted(by_partition(records).items()):
        expect_equal([r.offset for r in rs], list(range(start, start + len(rs))), f"{what}: offsets in partition {p}")


def expect_exactly(records: list[Record], msgs: list[Msg], what: str) -> None:
    """Every message consumed exactly once (by content), nothing else."""
    got = Counter(r.content() for r in records)
    want = Counter((m.key, m.value, m.headers) for m in msgs)
    missing, extra = want - got, got - want
    expect(
        not missing and not extra,
        f"{what}: {sum(missing.values())} message(s) missing {_short(list(missing)[:3])}, "
        f"{sum(extra.values())} unexpected {_short(list(extra)[:3])} (of {len(msgs)} produced, {len(records)} read)",
    )


def expect_deliveries_match(deliveries: list[Delivery] | None, msgs: list[Msg], records: list[Record]) -> None:
    """Where the client reported each message landed is where it was read (messages are unique by value)."""
    if deliveries is None:
        return
    expect_equal(len(deliveries), len(msgs), "delivery reports")
    found = {r.value: (r.partition, r.offset) for r in records}
    for m, d in zip(msgs, deliveries, strict=True):
        expect_equal((d.partition, d.offset), found.get(m.value), f"delivery report of {m.value!r}")


def all_partitions(n: int) -> dict[int, int]:
    return dict.fromkeys(range(n), 0)


def keyed(n: int, keys: int, prefix: str = "value", partition: int | None = None) -> list[Msg]:
    return [Msg(f"key-{i % keys}".encode(), f"{prefix}-{i}".encode(), partition=partition) for i in range(n)]


# --- scenarios -------------------------------------------------------------------------------


@scenario("metadata", "Metadata: brokers and a topic's partitions")
def metadata(c: Client, ctx: Ctx) -> str | None:
    """The client sees every broker (id, host, port) and each partition's leader, replicas and ISR of a
    3-partition topic exactly as the cluster's own Metadata answer says."""
    topic = ctx.topic(partitions=3)
    ref = ctx.probe.metadata([topic])
    meta = c.metadata([topic])
    expect_equal(meta.brokers, ref.brokers, "brokers (id: host, port)")
    expect_equal(meta.topics.get(topic), ref.topics[topic], f"partitions of {topic} (leader, replicas, isr)")
    return f"{len(meta.brokers)} brokers, 3 partitions"


@scenario("create-topic", "Create a topic; creating it again is TOPIC_ALREADY_EXISTS")
def create_topic(c: Client, ctx: Ctx) -> str | None:
    """The client's admin API creates a 3-partition topic, which the cluster then lists with a leader
    for each partition; creating the same topic again fails with TOPIC_ALREADY_EXISTS."""
    topic = ctx.name("created")
    ctx.created.append(topic)
    c.create_topic(topic, 3, 1)
    parts = ctx.probe.wait_for_topic(topic, 3, timeout=ctx.timeout)
    expect_equal(sorted(parts), [0, 1, 2], "partitions of the created topic")
    try:
        c.create_topic(topic, 3, 1)
    except ClientError as exc:
        expect_equal(exc.kind, "TOPIC_ALREADY_EXISTS", "error for the second creation")
    else:
        raise CheckFailed("creating an existing topic succeeded")
    return None


@scenario("keyed-order", "Keyed messages come back in order per partition")
def keyed_order(c: Client, ctx: Ctx) -> str | None:
    """90 messages over 6 keys to a 3-partition topic: each is read back exactly once; each partition's
    offsets run 0, 1, 2... without gaps; within a partition the messages keep the order they were sent
    in; all messages of a key are in one partition; delivery reports name where each was read."""
    topic = ctx.topic(partitions=3)
    msgs = keyed(90, keys=6)
    deliveries = c.produce(topic, msgs)
    records = c.consume(topic, all_partitions(3), len(msgs))
    expect_exactly(records, msgs, "read back")
    expect_offsets_from(records, 0, "read back")
    order = {m.value: i for i, m in enumerate(msgs)}
    for p, rs in by_partition(records).items():
        sent = [order[r.value] for r in rs]
        expect_equal(sent, sorted(sent), f"send order of the messages in partition {p}")
    partitions_of_key: dict[bytes | None, set[int]] = {}
    for r in records:
        partitions_of_key.setdefault(r.key, set()).add(r.partition)
    split = {k: v for k, v in partitions_of_key.items() if len(v) > 1}
    expect(not split, f"keys found in more than one partition: {_short(split)}")
    expect_deliveries_match(deliveries, msgs, records)
    return None


@scenario("key-partitioning", "The same key goes to the same partition every time")
def key_partitioning(c: Client, ctx: Ctx) -> str | None:
    """16 keys are produced twice, by two producers, the second time in reverse order, to a 4-partition
    topic: each key's two messages are in the same partition, and the keys use more than one partition."""
    topic = ctx.topic(partitions=4)
    keys = [f"user-{i}".encode() for i in range(16)]
    first = [Msg(k, b"first-" + k) for k in keys]
    second = [Msg(k, b"second-" + k) for k in reversed(keys)]
    d1 = c.produce(topic, first)
    d2 = c.produce(topic, second)
    records = c.consume(topic, all_partitions(4), 32)
    expect_exactly(records, first + second, "read back")
    where: dict[bytes | None, set[int]] = {}
    for r in records:
        where.setdefault(r.key, set()).add(r.partition)
    moved = {k: sorted(v) for k, v in where.items() if len(v) != 1}
    expect(not moved, f"keys produced to different partitions: {_short(moved)}")
    used = {next(iter(v)) for v in where.values()}
    expect(len(used) > 1, f"16 keys all went to partition {used}")
    expect_deliveries_match(d1, first, records)
    expect_deliveries_match(d2, second, records)
    return f"16 keys over partitions {sorted(used)}"


@scenario("null-key-spread", "Messages without a key spread over partitions")
def null_key_spread(c: Client, ctx: Ctx) -> str | None:
    """30 messages with a null key, each acknowledged before the next is sent (so each is a batch of its
    own for sticky partitioners), to a 3-partition topic: all are read back once, keys still null, and
    they are in more than one partition."""
    topic = ctx.topic(partitions=3)
    msgs = [Msg(None, f"no-key-{i}".encode()) for i in range(30)]
    deliveries = c.produce(topic, msgs, flush_each=True)
    records = c.consume(topic, all_partitions(3), len(msgs))
    expect_exactly(records, msgs, "read back")
    used = sorted(by_partition(records))
    expect(len(used) > 1, "all 30 null-key messages went to one partition")
    expect_deliveries_match(deliveries, msgs, records)
    return f"partitions {used}"


@scenario("second-group-from-zero", "A second group re-reads everything from offset 0", GROUPS)
def second_group(c: Client, ctx: Ctx) -> str | None:
    """40 messages on 2 partitions; group A reads all 40 and commits; a new group B, with
    auto.offset.reset=earliest, reads the same 40 again, from offset 0 of each partition."""
    topic = ctx.topic(partitions=2)
    msgs = keyed(40, keys=8)
    c.produce(topic, msgs)
    a = c.group_consume(ctx.name("group-a"), topic, len(msgs))
    expect_exactly(a, msgs, "group A")
    expect_offsets_from(a, 0, "group A")
    b = c.group_consume(ctx.name("group-b"), topic, len(msgs))
    expect_exactly(b, msgs, "group B")
    expect_offsets_from(b, 0, "group B")
    return None


@scenario("commit-resume", "Commit, then resume with no gap and no duplicate", GROUPS)
def commit_resume(c: Client, ctx: Ctx) -> str | None:
    """30 messages on one partition: a consumer of a group takes 12, commits them and leaves; the next
    consumer of that group gets exactly offsets 12-29; after 5 more are produced, a third gets exactly
    those 5 (offsets 30-34)."""
    topic = ctx.topic(partitions=1)
    group = ctx.name("group")
    msgs = keyed(30, keys=3)
    c.produce(topic, msgs)
    first = c.group_consume(group, topic, 12)
    expect_equal([r.offset for r in first], list(range(12)), "offsets read by the first consumer")
    expect_exactly(first, msgs[:12], "first consumer")
    second = c.group_consume(group, topic, 18)
    expect_equal([r.offset for r in second], list(range(12, 30)), "offsets read after resuming")
    expect_exactly(second, msgs[12:], "second consumer")
    more = keyed(5, keys=3, prefix="more")
    c.produce(topic, more)
    third = c.group_consume(group, topic, 5)
    expect_equal([r.offset for r in third], list(range(30, 35)), "offsets read by the third consumer")
    expect_exactly(third, more, "third consumer")
    return None


def _wait_members(members: list[Member], condition: Callable[[], bool], timeout: float, what: str) -> None:
    def check() -> bool:
        for m in members:
            if m.error():
                raise CheckFailed(f"a group member failed: {m.error()}")
        return condition()

    if not wait_until(check, timeout):
        state = [(sorted(m.assignment() or ()), len(m.records())) for m in members]
        raise CheckFailed(f"{what} within {timeout}s; members' (assignment, records read): {state}")


@scenario("group-rebalance", "Two members share partitions; when one leaves, the other takes over", GROUPS)
def group_rebalance(c: Client, ctx: Ctx) -> str | None:
    """Two members of one group on a 4-partition topic: once both are in, their assignments are disjoint,
    non-empty and cover all 4; 40 messages are read once between them, each by the member owning its
    partition. The first member leaves (committing what it read); the second is assigned all 4
    partitions, and of 40 more messages reads exactly those 40, nothing twice."""
    topic = ctx.topic(partitions=4)
    group = ctx.name("group")
    everything = frozenset(range(4))
    wait = ctx.timeout * 2
    a = c.group_member(group, topic)
    members = [a]
    try:
        _wait_members(
            members, lambda: a.assignment() == everything, wait, "the first member did not get all partitions"
        )
        b = c.group_member(group, topic)
        members.append(b)

        def shared() -> bool:
            pa, pb = a.assignment() or frozenset(), b.assignment() or frozenset()
            return bool(pa) and bool(pb) and not (pa & pb) and (pa | pb) == everything

        _wait_members(members, shared, wait, "the two members did not split the partitions")
        split = (sorted(a.assignment() or ()), sorted(b.assignment() or ()))
        first = keyed(40, keys=16, prefix="first")
        c.produce(topic, first)
        _wait_members(members, lambda: len(a.records()) + len(b.records()) >= 40, wait, "40 messages were not read")
        _wait_members(members, shared, 0.0, "the assignment changed while reading")
        expect_exactly(a.records() + b.records(), first, "read by the two members")
        for name, m in (("first", a), ("second", b)):
            outside = {r.partition for r in m.records()} - set(m.assignment() or ())
            expect(not outside, f"the {name} member read partitions {sorted(outside)} it was not assigned")
        b_before = len(b.records())
        a.close()
        members.remove(a)
        if a.error():
            raise CheckFailed(f"the first member failed as it left: {a.error()}")
        _wait_members(members, lambda: b.assignment() == everything, wait, "the remaining member did not take over")
        second = keyed(40, keys=16, prefix="second")
        c.produce(topic, second)
        _wait_members(members, lambda: len(b.records()) >= b_before + 40, wait, "the remaining member did not read 40")
        expect_exactly(b.records()[b_before:], second, "read by the remaining member after the first left")
        return f"split {split[0]} / {split[1]}"
    finally:
        for m in members:
            m.close()


CODEC_IDS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _compression(codec: str) -> Callable[[Client, Ctx], str | None]:
    def run(c: Client, ctx: Ctx) -> str | None:
        if codec not in c.codecs:
            raise Unsupported(f"{c.name} cannot produce {codec} (it has {', '.join(c.codecs)})")
        topic = ctx.topic(partitions=1)
        msgs = [Msg(f"k{i}".encode(), (f"{codec} message {i} " * 20).encode(), partition=0) for i in range(50)]
        c.produce(topic, msgs, compression=codec)
        stored = ctx.probe.stored_codecs(topic, 0)
        expect_equal(set(stored), {CODEC_IDS[codec]}, f"codec ids of the {len(stored)} stored batch(es)")
        records = c.consume(topic, {0: 0}, len(msgs))
        expect_equal([r.content() for r in records], [(m.key, m.value, m.headers) for m in msgs], "read back")
        expect_offsets_from(records, 0, "read back")
        return f"{len(stored)} batch(es)"

    run.__doc__ = (
        f"50 messages produced with {codec} compression: the stored batches carry the {codec} codec id "
        f"({CODEC_IDS[codec]}) and reading them back gives the same messages at offsets 0-49."
    )
    return run


for _codec in CODEC_IDS:
    scenario(f"compression-{_codec}", f"{_codec} compression round trip")(_compression(_codec))


@scenario("headers-nulls", "Headers, null values, empty and null keys survive the round trip")
def headers_nulls(c: Client, ctx: Ctx) -> str | None:
    """Messages with repeated and empty-valued headers, a null value (tombstone), an empty key, a null
    key and an empty value are read back exactly: null stays null, empty stays empty, headers keep
    their order and repeats."""
    topic = ctx.topic(partitions=1)
    msgs = [
        Msg(b"k1", b"with headers", (("trace", b"a"), ("trace", b"b"), ("empty", b"")), partition=0),
        Msg(b"k1", None, partition=0),
        Msg(b"", b"empty key", partition=0),
        Msg(None, b"null key", partition=0),
        Msg(b"k2", b"", partition=0),
    ]
    c.produce(topic, msgs)
    records = c.consume(topic, {0: 0}, len(msgs))
    expect_equal([r.content() for r in records], [(m.key, m.value, m.headers) for m in msgs], "read back")
    return None


@scenario("offsets-for-times", "Offsets for timestamps")
def offsets_for_times(c: Client, ctx: Ctx) -> str | None:
    """10 messages per partition of a 3-partition topic, with timestamps one second apart an hour ago
    (clients that cannot set timestamps send them in two rounds): asked for partition 0 at the 6th
    message's timestamp, partition 1 before the first and partition 2 after the last, the client gets
    the first offset at or after each time (as read back), and for the last: none, or the end offset."""
    topic = ctx.topic(partitions=3)
    base = (int(time.time()) - 3600) * 1000
    msgs = [[Msg(f"k{i}".encode(), f"p{p}-m{i}".encode(), partition=p, timestamp=base + i * 1000)
             for i in range(10)] for p in range(3)]  # fmt: skip
    halves = [[m for part in msgs for m in part[:5]], [m for part in msgs for m in part[5:]]]
    explicit = True
    try:
        c.produce(topic, halves[0])
    except Unsupported:
        explicit = False
        halves = [[Msg(m.key, m.value, partition=m.partition) for m in half] for half in halves]
        c.produce(topic, halves[0])
    c.produce(topic, halves[1])
    records = c.consume(topic, all_partitions(3), 30)
    expect_exactly(records, halves[0] + halves[1], "read back")
    parts = by_partition(records)
    if explicit:
        expect_equal([r.timestamp for r in parts[0]], [m.timestamp for m in msgs[0]], "timestamps read back")
    ts = [r.timestamp or 0 for r in parts[0]]
    query = {0: ts[5], 1: (parts[1][0].timestamp or 0) - 1, 2: max(r.timestamp or 0 for r in parts[2]) + 1}
    found = c.offsets_for_times(topic, query)
    expect_equal(found.get(0), min(i for i, t in enumerate(ts) if t >= ts[5]), "offset for the 6th timestamp")
    expect_equal(found.get(1), 0, "offset for a time before the first message")
    expect(
        found.get(2) in (None, 10),
        f"offset for a time after the last message: expected none (or the end offset 10), got {found.get(2)!r}",
    )
    return None if explicit else "timestamps set by the client's clock"


@scenario("offset-reset", "auto.offset.reset: earliest reads all, latest only what comes next", GROUPS)
def offset_reset(c: Client, ctx: Ctx) -> str | None:
    """10 messages on one partition: a new group with auto.offset.reset=earliest reads exactly those 10
    from offset 0; another new group with latest, once its position is set, reads exactly the 5
    messages produced after that (offsets 10-14) and none of the first 10."""
    topic = ctx.topic(partitions=1)
    old = keyed(10, keys=2, prefix="old", partition=0)
    c.produce(topic, old)
    early = c.group_consume(ctx.name("earliest"), topic, 10, reset="earliest")
    expect_equal([r.offset for r in early], list(range(10)), "offsets read with earliest")
    expect_exactly(early, old, "read with earliest")
    new = keyed(5, keys=2, prefix="new", partition=0)
    late = c.consume_new(ctx.name("latest"), topic, new)
    expect_equal([r.offset for r in late], list(range(10, 15)), "offsets read with latest")
    expect_exactly(late, new, "read with latest")
    return None


@scenario("missing-topic", "Producing to a missing topic fails cleanly when auto-creation is off", NO_AUTO_CREATE)
def missing_topic(c: Client, ctx: Ctx) -> str | None:
    """With auto.create.topics.enable=false, producing to a topic that does not exist fails with
    UNKNOWN_TOPIC_OR_PARTITION (or the client's timeout waiting for the topic's metadata) within the
    client's timeout, the topic is still absent afterwards, and the cluster still serves other topics."""
    topic = ctx.name("missing")
    short = c.with_timeout(min(ctx.timeout, 5.0))  # clients that wait for the topic give up after this
    started = time.monotonic()
    try:
        short.produce(topic, [Msg(b"k", b"v")])
    except ClientError as exc:
        kind = exc.kind
    else:
        raise CheckFailed(f"producing to the missing topic {topic} succeeded")
    took = time.monotonic() - started
    expect(
        kind in ("UNKNOWN_TOPIC_OR_PARTITION", "TIMEOUT"),
        f"error: expected UNKNOWN_TOPIC_OR_PARTITION (or TIMEOUT), got {kind}",
    )
    expect(took < short.timeout * 3, f"the error took {took:.1f}s")
    expect(topic not in ctx.probe.metadata([topic]).topics, f"{topic} exists after the failed produce")
    other = ctx.topic(partitions=1)
    c.produce(other, [Msg(b"k", b"after", partition=0)])
    expect_equal(ctx.probe.end_offset(other, 0), 1, "end offset of an existing topic produced to afterwards")
    return f"{kind} after {took:.1f}s"


@scenario("failover-acks-all", "acks=all survives a leader failover", CONTROL_PLANE, THREE_BROKERS, exclusive=True)
def failover(c: Client, ctx: Ctx) -> str | None:
    """A topic with 3 replicas and min.insync.replicas=2: once all 3 are in sync, 20 messages are
    produced with acks=all (idempotent), the leader's broker is stopped, a new leader is elected, 20 more
    are produced with acks=all; reading back gives all 40 exactly once, in order, at offsets 0-39."""
    topic = ctx.topic(partitions=1, replication_factor=3, configs={"min.insync.replicas": "2"})
    # Every broker's address, so that the client can bootstrap whichever broker is stopped.
    c = c.with_bootstrap(",".join(f"{h}:{p}" for h, p in ctx.probe.metadata([]).brokers.values()))
    in_sync = wait_until(lambda: len(ctx.probe.metadata([topic]).topics[topic][0].isr) == 3, ctx.timeout)
    expect(in_sync, f"the ISR never reached 3 replicas: {ctx.probe.metadata([topic]).topics[topic][0]}")
    first = keyed(20, keys=4, prefix="before", partition=0)
    c.produce(topic, first, acks="all", idempotent=True)
    leader = ctx.probe.metadata([topic]).topics[topic][0].leader
    ctx.admin.stop_broker(leader)
    try:
        moved = wait_until(lambda: ctx.probe.metadata([topic]).topics[topic][0].leader not in (leader, -1), ctx.timeout)
        expect(moved, f"no new leader after broker {leader} stopped")
        second = keyed(20, keys=4, prefix="after", partition=0)
        c.produce(topic, second, acks="all", idempotent=True)
        records = c.consume(topic, {0: 0}, 40)
        expect_equal([r.value for r in records], [m.value for m in first + second], "messages read back, in order")
        expect_offsets_from(records, 0, "read back")
        return f"leader {leader} -> {ctx.probe.metadata([topic]).topics[topic][0].leader}"
    finally:
        ctx.admin.start_broker(leader)


def require(caps: frozenset[str], needs: frozenset[str], missing_group_apis: list[str]) -> None:
    """Raise CapabilityMissing for the first need the cluster lacks."""
    for need in sorted(needs):
        if need not in caps:
            raise CapabilityMissing(CAPABILITY_MISSING[need].format(missing=", ".join(missing_group_apis)))


__all__ = ["SCENARIOS", "Ctx", "Probe", "Scenario"]
