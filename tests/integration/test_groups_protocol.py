"""The group coordinator at the protocol level: every group API, version and error code, over TCP.

Requests are built with kstub's own codec (RawClient). A JoinGroup or
SyncGroup that must wait for the rest of the group is sent on its own
connection and its answer read later, as a real client's parked request.
The timers (session and rebalance timeouts, initial delay, offset retention)
are tested under a mock clock in tests/cluster/test_group_coordinator.py.
"""

from __future__ import annotations

import time

import pytest

from kstub.protocol import ErrorCode
from kstub.protocol.consumer_protocol import decode_assignment, encode_assignment

from support.groups_raw import (
    TOPIC_META,
    commit,
    connect,
    create_topic,
    describe,
    fetch_offsets,
    heartbeat,
    join,
    join_body,
    join_new,
    sync,
    sync_body,
    wait_state,
)
from support.raw import RawClient


@pytest.fixture
def raw(kstub_cluster):
    with connect(kstub_cluster) as c:
        yield c


@pytest.fixture
def second(kstub_cluster):
    """Another connection: for the member whose request waits."""
    with connect(kstub_cluster) as c:
        yield c


def stable_pair(a: RawClient, b: RawClient, group: str) -> tuple[str, str, int]:
    """Two members, a the leader, through the whole protocol; returns (a, b, generation)."""
    a_id = join_new(a, group)
    first = join(a, group, a_id)
    assert (first.error_code, first.generation_id, first.leader) == (ErrorCode.NONE, 1, a_id)
    assert sync(a, group, 1, a_id, {a_id: b"a1"}).assignment == b"a1"
    b_id = join_new(b, group)
    b.send(11, 7, join_body(group, b_id))  # parks: the group waits for a to rejoin
    wait_state(a, group, "PreparingRebalance")
    assert heartbeat(a, group, 1, a_id) == ErrorCode.REBALANCE_IN_PROGRESS
    leader = join(a, group, a_id)
    follower = b.receive()
    assert leader.generation_id == follower.generation_id == 2
    b.send(14, 5, sync_body(group, 2, b_id))  # parks until the leader's assignment
    sync(a, group, 2, a_id, {a_id: b"for-a", b_id: b"for-b"})
    assert b.receive().assignment == b"for-b"
    return a_id, b_id, 2


# --- FindCoordinator ----------------------------------------------------------------


@pytest.mark.kstub(brokers=3)
def test_groups_are_spread_over_brokers_and_others_answer_not_coordinator(kstub_cluster):
    groups = [f"group-{i}" for i in range(30)]
    with connect(kstub_cluster, 0) as c0, connect(kstub_cluster, 1) as c1, connect(kstub_cluster, 2) as c2:
        v4 = c0.request(10, 4, {"key_type": 0, "coordinator_keys": groups}).coordinators
        assert all(x.error_code == ErrorCode.NONE for x in v4)
        placed = {x.key: x.node_id for x in v4}
        assert set(placed.values()) == {0, 1, 2}, "groups spread over every broker"
        for client in (c1, c2):  # every broker gives the same answer, in every version
            for g in groups[:5]:
                for version in (0, 2, 3):
                    body = client.request(10, version, {"key": g, "key_type": 0})
                    assert (body.error_code, body.node_id) == (ErrorCode.NONE, placed[g])
        clients = {0: c0, 1: c1, 2: c2}
        create_topic(c0, "t")
        g = groups[0]
        home, away = clients[placed[g]], clients[(placed[g] + 1) % 3]
        port = next(b.port for b in kstub_cluster.brokers if b.node_id == placed[g])
        assert c0.request(10, 1, {"key": g, "key_type": 0}).port == port
        # the group APIs only work at the coordinator
        assert join(away, g).error_code == ErrorCode.NOT_COORDINATOR
        assert heartbeat(away, g, 1, "m") == ErrorCode.NOT_COORDINATOR
        assert sync(away, g, 1, "m").error_code == ErrorCode.NOT_COORDINATOR
        assert commit(away, g, "t", {0: 5}) == {0: ErrorCode.NOT_COORDINATOR}
        assert describe(away, g).error_code == ErrorCode.NOT_COORDINATOR
        assert away.request(13, 1, {"group_id": g, "member_id": "m"}).error_code == ErrorCode.NOT_COORDINATOR
        assert away.request(42, 2, {"groups_names": [g]}).results[0].error_code == ErrorCode.NOT_COORDINATOR
        v7 = away.request(9, 7, {"group_id": g, "topics": [{"name": "t", "partition_indexes": [0]}]})
        assert v7.error_code == ErrorCode.NOT_COORDINATOR and v7.topics == []
        v1 = away.request(9, 1, {"group_id": g, "topics": [{"name": "t", "partition_indexes": [0]}]})
        assert v1.topics[0].partitions[0].error_code == ErrorCode.NOT_COORDINATOR  # v0-1: per partition
        assert commit(home, g, "t", {0: 5}) == {0: ErrorCode.NONE}
        member = join_new(home, g)
        assert join(home, g, member).error_code == ErrorCode.NONE
        # each broker lists the groups it coordinates
        listed = {n: {x.group_id for x in c.request(16, 4, {"states_filter": []}).groups} for n, c in clients.items()}
        assert listed[placed[g]] == {g} and all(not v for n, v in listed.items() if n != placed[g])


def test_no_live_broker_no_coordinator(raw, kstub_cluster):
    """The only COORDINATOR_NOT_AVAILABLE: every broker is down (here, marked down in the model)."""

    def set_alive(alive: bool) -> None:
        for broker in kstub_cluster.cluster.brokers.values():
            broker.alive = alive

    kstub_cluster.call(set_alive, False)
    try:
        body = raw.request(10, 4, {"key_type": 0, "coordinator_keys": ["g"]}).coordinators[0]
        assert (body.error_code, body.node_id) == (ErrorCode.COORDINATOR_NOT_AVAILABLE, -1)
        assert join(raw, "g").error_code == ErrorCode.NOT_COORDINATOR
    finally:
        kstub_cluster.call(set_alive, True)
    assert raw.request(10, 3, {"key": "g", "key_type": 0}).error_code == ErrorCode.NONE


def test_find_coordinator_rejects_unknown_key_types(raw):
    body = raw.request(10, 4, {"key_type": 7, "coordinator_keys": ["g"]})
    assert body.coordinators[0].error_code == ErrorCode.INVALID_REQUEST
    assert raw.request(10, 2, {"key": "g", "key_type": 7}).error_code == ErrorCode.INVALID_REQUEST
    assert raw.request(10, 2, {"key": "txn", "key_type": 1}).error_code == ErrorCode.NONE


# --- JoinGroup / SyncGroup / Heartbeat ---------------------------------------------------


def test_join_asks_for_a_member_id_then_elects_a_leader(raw, kstub_cluster):
    member = join_new(raw, "g")
    assert member.startswith("raw-test-")  # client id, then a uuid, as Kafka does
    body = join(raw, "g", member)
    assert (body.error_code, body.generation_id, body.leader, body.member_id) == (ErrorCode.NONE, 1, member, member)
    assert (body.protocol_type, body.protocol_name) == ("consumer", "range")
    assert [(m.member_id, m.metadata) for m in body.members] == [(member, TOPIC_META)]
    assert describe(raw, "g").group_state == "CompletingRebalance"
    synced = sync(raw, "g", 1, member, {member: b"mine"})
    assert (synced.error_code, synced.assignment, synced.protocol_type, synced.protocol_name) == (
        ErrorCode.NONE,
        b"mine",
        "consumer",
        "range",
    )
    assert describe(raw, "g").group_state == "Stable"
    assert heartbeat(raw, "g", 1, member) == ErrorCode.NONE
    # a follower that asks again with the same metadata gets the current generation, no rebalance
    assert join(raw, "g", member).generation_id == 2  # (the leader rejoining does rebalance)


def test_old_versions_join_without_the_member_id_handshake(raw):
    for version in (0, 1, 3):
        body = join(raw, f"old-{version}", version=version)
        assert body.error_code == ErrorCode.NONE and body.member_id and body.generation_id == 1
        assert body.protocol_name == "range" and body.leader == body.member_id


def test_join_errors(raw, kstub_cluster):
    assert join(raw, "").error_code == ErrorCode.INVALID_GROUP_ID
    assert join(raw, "g", session_ms=5999).error_code == ErrorCode.INVALID_SESSION_TIMEOUT  # group.min.session...
    assert join(raw, "g", session_ms=1_800_001).error_code == ErrorCode.INVALID_SESSION_TIMEOUT
    assert join(raw, "g", "no-such-member").error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert join(raw, "g", protocols=[]).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert join(raw, "g", protocol_type="").error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    member = join_new(raw, "g")
    assert join(raw, "g", member).error_code == ErrorCode.NONE
    # a newcomer must speak the group's protocol type and share a protocol with every member
    assert join(raw, "g", protocol_type="connect").error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert join(raw, "g", protocols=[("sticky", b"")]).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


@pytest.mark.kstub(config={"group.max.size": "1"})
def test_join_beyond_group_max_size(raw):
    member = join_new(raw, "g")
    assert join(raw, "g", member).error_code == ErrorCode.NONE
    assert join(raw, "g").error_code == ErrorCode.GROUP_MAX_SIZE_REACHED


def test_protocol_is_chosen_by_vote_among_protocols_all_members_support(raw, second):
    a = join_new(raw, "g", protocols=[("roundrobin", b"rr"), ("range", b"r")])
    assert join(raw, "g", a, protocols=[("roundrobin", b"rr"), ("range", b"r")]).protocol_name == "roundrobin"
    b = join_new(second, "g", protocols=[("range", b"r2"), ("sticky", b"s")])
    second.send(11, 7, join_body("g", b, protocols=[("range", b"r2"), ("sticky", b"s")]))
    wait_state(raw, "g", "PreparingRebalance")
    leader = join(raw, "g", a, protocols=[("roundrobin", b"rr"), ("range", b"r")])
    follower = second.receive()
    assert leader.protocol_name == follower.protocol_name == "range"  # the only common one
    assert {m.member_id: m.metadata for m in leader.members} == {a: b"r", b: b"r2"}  # metadata of that protocol


def test_a_rebalance_generation_by_generation(raw, second, kstub_cluster):
    create_topic(raw, "t")
    a, b, gen = stable_pair(raw, second, "g")
    state = describe(raw, "g")
    assert (state.group_state, state.protocol_type, state.protocol_data) == ("Stable", "consumer", "range")
    members = {m.member_id: m for m in state.members}
    assert members[a].member_assignment == b"for-a" and members[b].member_assignment == b"for-b"
    assert members[a].member_metadata == TOPIC_META and members[a].client_host == "/127.0.0.1"
    assert members[a].client_id == "raw-test"
    assert state.authorized_operations == (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
    # stale generations and unknown members are refused
    assert heartbeat(raw, "g", gen - 1, a) == ErrorCode.ILLEGAL_GENERATION
    assert heartbeat(raw, "g", gen, "stranger") == ErrorCode.UNKNOWN_MEMBER_ID
    assert heartbeat(raw, "nope", gen, a) == ErrorCode.UNKNOWN_MEMBER_ID
    assert sync(raw, "g", gen - 1, a).error_code == ErrorCode.ILLEGAL_GENERATION
    assert sync(raw, "g", gen, "stranger").error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert (
        sync(raw, "g", gen, a, version=5, protocol_type="connect").error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    )
    assert commit(raw, "g", "t", {0: 1}, generation=gen - 1, member_id=a) == {0: ErrorCode.ILLEGAL_GENERATION}
    assert commit(raw, "g", "t", {0: 1}, generation=gen, member_id="stranger") == {0: ErrorCode.UNKNOWN_MEMBER_ID}
    # a non-member commit (generation -1, no member id) to a group with members
    assert commit(raw, "g", "t", {0: 1}) == {0: ErrorCode.UNKNOWN_MEMBER_ID}
    assert commit(raw, "g", "t", {0: 10}, generation=gen, member_id=a) == {0: ErrorCode.NONE}
    # b rejoins with new metadata: the group prepares a rebalance
    second.send(11, 7, join_body("g", b, protocols=[("range", b"changed")]))
    wait_state(raw, "g", "PreparingRebalance")
    assert describe(raw, "g").group_state == "PreparingRebalance"
    # not stable: no metadata shown, but the last generation's assignments are (as in Kafka 4)
    assert describe(raw, "g").members[0].member_metadata == b""
    assert {m.member_assignment for m in describe(raw, "g").members} == {b"for-a", b"for-b"}
    assert heartbeat(raw, "g", gen, a) == ErrorCode.REBALANCE_IN_PROGRESS
    assert sync(raw, "g", gen, a).error_code == ErrorCode.REBALANCE_IN_PROGRESS
    # commits are still accepted while the group prepares (Kafka relies on the heartbeat to tell)
    assert commit(raw, "g", "t", {0: 11}, generation=gen, member_id=a) == {0: ErrorCode.NONE}
    leader = join(raw, "g", a)
    follower = second.receive()
    gen += 1
    assert leader.generation_id == follower.generation_id == gen and follower.members == []
    assert describe(raw, "g").group_state == "CompletingRebalance"
    assert heartbeat(second, "g", gen, b) == ErrorCode.NONE
    # members that joined but have no assignment yet may not commit
    assert commit(second, "g", "t", {0: 12}, generation=gen, member_id=b) == {0: ErrorCode.REBALANCE_IN_PROGRESS}
    second.send(14, 5, sync_body("g", gen, b))
    sync(raw, "g", gen, a, {a: b"A", b: b"B"})
    assert second.receive().assignment == b"B"
    assert fetch_offsets(raw, "g", "t", [0])[0][0] == 11


def test_during_a_rebalance_every_waiting_follower_is_told(raw, second):
    a = join_new(raw, "g")
    join(raw, "g", a)
    b = join_new(second, "g")
    second.send(11, 7, join_body("g", b))
    wait_state(raw, "g", "PreparingRebalance")
    join(raw, "g", a)
    second.receive()
    # b waits for its assignment; a rejoins instead of syncing: b learns of the new rebalance
    second.send(14, 5, sync_body("g", 2, b))
    raw.send(11, 7, join_body("g", a, protocols=[("range", b"new")]))
    assert second.receive().error_code == ErrorCode.REBALANCE_IN_PROGRESS
    second.send(11, 7, join_body("g", b))
    assert raw.receive().generation_id == second.receive().generation_id == 3


def test_leave_group_single_and_batched(raw, second):
    a, b, gen = stable_pair(raw, second, "g")
    v1 = raw.request(13, 1, {"group_id": "g", "member_id": "stranger"})
    assert v1.error_code == ErrorCode.UNKNOWN_MEMBER_ID  # v0-2: the member's error at the top level
    v5 = raw.request(
        13, 5, {"group_id": "g", "members": [{"member_id": b, "reason": "bye"}, {"member_id": "stranger"}]}
    )
    assert v5.error_code == ErrorCode.NONE
    assert [(m.member_id, m.error_code) for m in v5.members] == [
        (b, ErrorCode.NONE),
        ("stranger", ErrorCode.UNKNOWN_MEMBER_ID),
    ]
    assert describe(raw, "g").group_state == "PreparingRebalance"
    assert heartbeat(second, "g", gen, b) == ErrorCode.UNKNOWN_MEMBER_ID
    assert raw.request(13, 0, {"group_id": "g", "member_id": a}).error_code == ErrorCode.NONE
    assert describe(raw, "g").group_state == "Empty"
    unknown = raw.request(13, 3, {"group_id": "nope", "members": [{"member_id": "x"}]})
    assert unknown.error_code == ErrorCode.NONE and unknown.members[0].error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert raw.request(13, 3, {"group_id": "", "members": []}).error_code == ErrorCode.INVALID_GROUP_ID


def test_static_membership_fences_the_old_instance(raw, second):
    # static members skip MEMBER_ID_REQUIRED
    first = join(raw, "g", instance_id="host-1", version=5)
    old = first.member_id
    assert first.error_code == ErrorCode.NONE and old.startswith("host-1-")
    assert sync(raw, "g", 1, old, {old: b"A"}, instance_id="host-1").assignment == b"A"
    # the same instance comes back (a restart): a new member id, the same generation, no rebalance
    again = join(second, "g", instance_id="host-1", version=5)
    assert (again.error_code, again.generation_id) == (ErrorCode.NONE, 1) and again.member_id != old
    assert describe(raw, "g").group_state == "Stable"
    assert describe(raw, "g").members[0].group_instance_id == "host-1"
    assert sync(second, "g", 1, again.member_id, instance_id="host-1").assignment == b"A"
    # the old one is fenced everywhere
    assert heartbeat(raw, "g", 1, old, instance_id="host-1") == ErrorCode.FENCED_INSTANCE_ID
    assert sync(raw, "g", 1, old, instance_id="host-1").error_code == ErrorCode.FENCED_INSTANCE_ID
    assert join(raw, "g", old, instance_id="host-1", version=5).error_code == ErrorCode.FENCED_INSTANCE_ID
    assert commit(raw, "g", "t", {0: 1}, generation=1, member_id=old, version=7, group_instance_id="host-1") == {
        0: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    }
    create_topic(raw, "t")
    assert commit(raw, "g", "t", {0: 1}, generation=1, member_id=old, version=7, group_instance_id="host-1") == {
        0: ErrorCode.FENCED_INSTANCE_ID
    }
    assert heartbeat(raw, "g", 1, again.member_id, instance_id="other") == ErrorCode.UNKNOWN_MEMBER_ID
    # an admin removes a static member by instance id alone
    gone = raw.request(13, 4, {"group_id": "g", "members": [{"member_id": "", "group_instance_id": "host-1"}]})
    assert [(m.member_id, m.group_instance_id, m.error_code) for m in gone.members] == [("", "host-1", ErrorCode.NONE)]
    assert describe(raw, "g").group_state == "Empty"


# --- offsets -----------------------------------------------------------------------


def test_simple_commits_and_fetches(raw):
    create_topic(raw, "t")
    assert commit(raw, "simple", "t", {0: 5, 2: 7}, metadata="m") == {0: ErrorCode.NONE, 2: ErrorCode.NONE}
    got = fetch_offsets(raw, "simple", "t", [0, 1, 2])
    assert got == {0: (5, 3, "m", 0), 1: (-1, -1, "", 0), 2: (7, 3, "m", 0)}
    # committing from a group generation to a group that does not exist
    assert commit(raw, "nope", "t", {0: 1}, generation=3, member_id="m") == {0: ErrorCode.ILLEGAL_GENERATION}
    # per partition: unknown partitions, too much metadata; the rest is committed
    body = raw.request(
        8,
        8,
        {
            "group_id": "simple",
            "generation_id_or_member_epoch": -1,
            "member_id": "",
            "topics": [
                {
                    "name": "t",
                    "partitions": [
                        {"partition_index": 1, "committed_offset": 9, "committed_metadata": None},
                        {"partition_index": 9, "committed_offset": 9, "committed_metadata": ""},
                        {"partition_index": 3, "committed_offset": 9, "committed_metadata": "x" * 4097},
                    ],
                },
                {"name": "missing", "partitions": [{"partition_index": 0, "committed_offset": 1}]},
            ],
        },
    )
    # Kafka's order: what is refused before the coordinator (unknown partitions) first, per topic
    assert [[(p.partition_index, p.error_code) for p in t.partitions] for t in body.topics] == [
        [(9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (1, ErrorCode.NONE), (3, ErrorCode.OFFSET_METADATA_TOO_LARGE)],
        [(0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)],
    ]
    assert fetch_offsets(raw, "simple", "t", [1, 3]) == {1: (9, -1, "", 0), 3: (-1, -1, "", 0)}
    assert describe(raw, "simple").group_state == "Empty" and describe(raw, "simple").protocol_type == ""


@pytest.mark.parametrize("version", range(0, 9))
def test_offset_commit_every_version(raw, version):
    create_topic(raw, "t")
    extra = {"retention_time_ms": 60_000} if 2 <= version <= 4 else {}
    assert commit(raw, f"g{version}", "t", {1: 100 + version}, version=version, **extra) == {1: ErrorCode.NONE}
    assert fetch_offsets(raw, f"g{version}", "t", [1])[1][0] == 100 + version


def test_offset_fetch_every_shape(raw):
    create_topic(raw, "t")
    create_topic(raw, "u", 1)
    commit(raw, "g", "t", {0: 1, 3: 4})
    commit(raw, "g", "u", {0: 9})
    req = {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [3, 1]}]}
    for version in range(0, 8):
        body = raw.request(9, version, req)
        parts = body.topics[0].partitions
        assert [(p.partition_index, p.committed_offset) for p in parts] == [(3, 4), (1, -1)], version
        assert parts[0].committed_leader_epoch == (3 if version >= 5 else -1)
    # v2+: a null topic list is every committed partition
    everything = raw.request(9, 7, {"group_id": "g", "topics": None, "require_stable": True})
    assert {(t.name, p.partition_index, p.committed_offset) for t in everything.topics for p in t.partitions} == {
        ("t", 0, 1),
        ("t", 3, 4),
        ("u", 0, 9),
    }
    # v8: several groups in one request, each answered on its own
    body = raw.request(
        9,
        8,
        {
            "groups": [
                {"group_id": "g", "topics": None},
                {"group_id": "unknown", "topics": [{"name": "t", "partition_indexes": [0]}]},
                {"group_id": "", "topics": [{"name": "t", "partition_indexes": [0]}]},
            ]
        },
    )
    g, unknown, empty = body.groups
    assert sum(len(t.partitions) for t in g.topics) == 3
    assert unknown.topics[0].partitions[0].committed_offset == -1 and unknown.error_code == ErrorCode.NONE
    assert empty.error_code == ErrorCode.NONE  # Kafka keeps the empty group id valid for offsets


def test_two_groups_keep_their_own_offsets(raw):
    create_topic(raw, "t")
    commit(raw, "one", "t", {0: 3})
    commit(raw, "two", "t", {0: 8})
    assert fetch_offsets(raw, "one", "t", [0])[0][0] == 3
    assert fetch_offsets(raw, "two", "t", [0])[0][0] == 8


# --- describe, list, delete ----------------------------------------------------------


def test_describe_list_and_delete_groups(raw, second):
    create_topic(raw, "t")
    stable_pair(raw, second, "busy")
    commit(raw, "idle", "t", {0: 1})
    unknown = describe(raw, "never-heard-of")
    assert (unknown.error_code, unknown.group_state, unknown.members) == (ErrorCode.NONE, "Dead", [])
    for version in range(0, 6):
        body = raw.request(15, version, {"groups": ["busy", "idle"]})
        assert [g.group_state for g in body.groups] == ["Stable", "Empty"]
        assert body.groups[0].authorized_operations == -(2**31)  # not asked for
    listed = raw.request(16, 4, {"states_filter": []}).groups
    assert {(g.group_id, g.protocol_type, g.group_state) for g in listed} == {
        ("busy", "consumer", "Stable"),
        ("idle", "", "Empty"),
    }
    assert [g.group_id for g in raw.request(16, 4, {"states_filter": ["stable"]}).groups] == ["busy"]
    assert raw.request(16, 4, {"states_filter": ["Nonsense"]}).groups == []
    assert {g.group_id for g in raw.request(16, 0, {}).groups} == {"busy", "idle"}
    body = raw.request(42, 2, {"groups_names": ["busy", "idle", "never-heard-of"]})
    assert [(r.group_id, r.error_code) for r in body.results] == [
        ("busy", ErrorCode.NON_EMPTY_GROUP),
        ("idle", ErrorCode.NONE),
        ("never-heard-of", ErrorCode.GROUP_ID_NOT_FOUND),
    ]
    assert fetch_offsets(raw, "idle", "t", [0])[0][0] == -1, "deleting a group deletes its offsets"
    assert describe(raw, "idle").group_state == "Dead"


def test_offset_delete(raw, second):
    create_topic(raw, "t")
    create_topic(raw, "other", 1)
    a, _, gen = stable_pair(raw, second, "g")  # subscribed to "t"
    commit(raw, "g", "t", {0: 1}, generation=gen, member_id=a)
    commit(raw, "g", "other", {0: 2}, generation=gen, member_id=a)
    body = raw.request(
        47,
        0,
        {
            "group_id": "g",
            "topics": [
                {"name": "t", "partitions": [{"partition_index": 0}]},
                {"name": "other", "partitions": [{"partition_index": 0}]},
                {"name": "missing", "partitions": [{"partition_index": 0}]},
            ],
        },
    )
    assert body.error_code == ErrorCode.NONE
    assert [(t.name, t.partitions[0].error_code) for t in body.topics] == [
        ("missing", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),  # refused before the coordinator: first, as in Kafka
        ("t", ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC),
        ("other", ErrorCode.NONE),
    ]
    assert fetch_offsets(raw, "g", "other", [0])[0][0] == -1 and fetch_offsets(raw, "g", "t", [0])[0][0] == 1
    assert raw.request(47, 0, {"group_id": "nope", "topics": []}).error_code == ErrorCode.GROUP_ID_NOT_FOUND
    assert raw.request(47, 0, {"group_id": "", "topics": []}).error_code == ErrorCode.INVALID_GROUP_ID
    # a group of another protocol type with members: nothing can be deleted
    m = join_new(raw, "connect-g", protocol_type="connect")
    join(raw, "connect-g", m, protocol_type="connect")
    commit(raw, "connect-g", "t", {0: 1}, generation=1, member_id=m)
    body = raw.request(
        47, 0, {"group_id": "connect-g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]}
    )
    assert body.error_code == ErrorCode.NON_EMPTY_GROUP


def test_a_member_only_sees_its_own_assignment(raw, second, kstub_cluster):
    create_topic(raw, "t")
    a, b, gen = stable_pair(raw, second, "g")
    theirs = encode_assignment({"assigned_partitions": [{"topic": "t", "partitions": [2, 3]}]}, 0)
    raw.send(11, 7, join_body("g", a))  # the leader rejoins: a rebalance
    wait_state(second, "g", "PreparingRebalance")
    join(second, "g", b)
    raw.receive()
    second.send(14, 5, sync_body("g", gen + 1, b))
    mine = sync(
        raw,
        "g",
        gen + 1,
        a,
        {a: encode_assignment({"assigned_partitions": [{"topic": "t", "partitions": [0, 1]}]}, 0), b: theirs},
    )
    assert decode_assignment(mine.assignment).assigned_partitions[0].partitions == [0, 1]
    assert second.receive().assignment == theirs


# --- partitions added through the model (CreatePartitions is not an API yet) -----------


def test_add_partitions_grows_a_topic_and_refuses_to_shrink(raw, kstub_cluster):
    from kstub.cluster.model import ClusterError

    create_topic(raw, "t", 2)
    added = kstub_cluster.call(lambda: [p.index for p in kstub_cluster.cluster.add_partitions("t", 5)])
    assert added == [2, 3, 4]
    meta = raw.request(3, 12, {"topics": [{"name": "t"}]}).topics[0]
    assert [p.partition_index for p in meta.partitions] == [0, 1, 2, 3, 4]
    for total in (5, 3):
        with pytest.raises(ClusterError) as err:
            kstub_cluster.call(kstub_cluster.cluster.add_partitions, "t", total)
        assert err.value.code == ErrorCode.INVALID_PARTITIONS
    with pytest.raises(ClusterError) as err:
        kstub_cluster.call(kstub_cluster.cluster.add_partitions, "nope", 3)
    assert err.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


# --- bad input and vanished clients ---------------------------------------------------


def test_odd_requests_get_kafka_answers(raw):
    create_topic(raw, "t")
    assert join(raw, "g", session_ms=-1).error_code == ErrorCode.INVALID_SESSION_TIMEOUT
    member = join_new(raw, "g")
    assert join(raw, "g", member).error_code == ErrorCode.NONE
    # assignments for members the group does not have are ignored; the leader gets its own
    synced = sync(raw, "g", 1, member, {member: b"mine", "ghost": b"x"})
    assert synced.assignment == b"mine" and [m.member_id for m in describe(raw, "g").members] == [member]
    assert sync(raw, "g", 1, member).assignment == b"mine", "a repeated SyncGroup in Stable gets the same answer"
    empty = raw.request(13, 5, {"group_id": "g", "members": []})
    assert (empty.error_code, empty.members) == (ErrorCode.NONE, [])
    assert raw.request(15, 5, {"groups": []}).groups == []
    assert raw.request(42, 2, {"groups_names": []}).results == []
    assert raw.request(9, 8, {"groups": []}).groups == []
    assert commit(raw, "g", "t", {-1: 5}, generation=1, member_id=member) == {-1: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    body = raw.request(47, 0, {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 99}]}]})
    assert body.topics[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_a_member_that_vanishes_while_its_join_waits_is_dropped_at_the_sync_deadline(raw, kstub_cluster):
    a = join_new(raw, "g", rebalance_ms=1000)
    join(raw, "g", a, rebalance_ms=1000)
    sync(raw, "g", 1, a, {a: b"A"})
    with connect(kstub_cluster) as gone:
        b = join_new(gone, "g", rebalance_ms=1000)
        gone.send(11, 7, join_body("g", b, rebalance_ms=1000))
        wait_state(raw, "g", "PreparingRebalance")
    # b's connection is closed with its JoinGroup parked; the group still completes
    leader = join(raw, "g", a, rebalance_ms=1000)
    assert leader.generation_id == 2 and {m.member_id for m in leader.members} == {a, b}
    assert sync(raw, "g", 2, a, {a: b"A2", b: b"B2"}).assignment == b"A2"
    # b never sends SyncGroup: after the rebalance timeout it is removed and the group rebalances
    deadline = time.monotonic() + 10
    while heartbeat(raw, "g", 2, a) == ErrorCode.NONE:
        assert time.monotonic() < deadline, "b was never removed"
        time.sleep(0.05)
    assert heartbeat(raw, "g", 2, a) == ErrorCode.REBALANCE_IN_PROGRESS
    rejoined = join(raw, "g", a, rebalance_ms=1000)
    assert rejoined.generation_id == 3 and [m.member_id for m in rejoined.members] == [a]


def test_answers_the_differential_tests_taught(raw):
    """Kafka 4 behaviours found by tests/differential (kept here so they hold without a JVM)."""
    a = join_new(raw, "g")
    joined = join(raw, "g", a)
    assert sync(raw, "g", joined.generation_id, a, {a: b"mine"}).error_code == ErrorCode.NONE
    # SyncGroup v5+ without protocol type or name: refused before anything else
    for missing in ({"protocol_type": None}, {"protocol_name": None}):
        assert sync(raw, "g", joined.generation_id, a, **missing).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        assert sync(raw, "", 1, "m", **missing).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    # a group named twice in DeleteGroups is answered once
    body = raw.request(42, 2, {"groups_names": ["g", "g"]})
    assert [(r.group_id, r.error_code) for r in body.results] == [("g", ErrorCode.NON_EMPTY_GROUP)]
    # a pending member (MEMBER_ID_REQUIRED, never joined) that leaves rebalances the group
    pending = join(raw, "g").member_id
    body = raw.request(13, 5, {"group_id": "g", "members": [{"member_id": pending, "group_instance_id": None}]})
    assert body.members[0].error_code == ErrorCode.NONE
    assert describe(raw, "g").group_state == "PreparingRebalance"
    assert describe(raw, "g").members[0].member_assignment == b"mine"  # kept until the next assignment
