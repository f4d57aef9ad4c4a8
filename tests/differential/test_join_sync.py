"""JoinGroup and SyncGroup: the classic group protocol's rebalance, its handshakes and its errors."""

from __future__ import annotations

import pytest

from kstub.protocol import ErrorCode

from support.differential import Pair
from support.differential_groups import (
    assignment,
    describe,
    heartbeat,
    join,
    join_new,
    new_group,
    protocols,
    stable_group,
    submit_join,
    sync,
    sync_body,
    wait_state,
)


@pytest.mark.parametrize("version", [4, 5, 6, 7, 8, 9])
def test_new_member_needs_a_member_id_from_v4(pair: Pair, version: int) -> None:
    group = new_group(pair)
    first = join(pair, group, version=version)
    assert first["error_code"] == ErrorCode.MEMBER_ID_REQUIRED
    joined = join(pair, group, first["member_id"], version=version)
    assert joined["error_code"] == ErrorCode.NONE and joined["leader"] == first["member_id"]


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_new_member_joins_at_once_before_v4(pair: Pair, version: int) -> None:
    group = new_group(pair)
    joined = join(pair, group, version=version)
    assert joined["error_code"] == ErrorCode.NONE and joined["generation_id"] == 1


def test_unknown_member_of_an_unknown_group(pair: Pair) -> None:
    group = new_group(pair)
    assert join(pair, group, "no-such-member")["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID


def test_unknown_member_of_a_stable_group(pair: Pair) -> None:
    group = new_group(pair)
    stable_group(pair, group)
    assert join(pair, group, "no-such-member")["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID


def test_inconsistent_protocol_type(pair: Pair) -> None:
    group = new_group(pair)
    stable_group(pair, group)
    answer = join(pair, group, protocol_type="connect")
    assert answer["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_inconsistent_protocols(pair: Pair) -> None:
    group = new_group(pair)
    member = stable_group(pair, group).member
    answer = join(pair, group, member, protos=protocols(names=["roundrobin"]))
    assert answer["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


@pytest.mark.parametrize("kwargs", [{"protocol_type": ""}, {"protos": []}], ids=["no-type", "no-protocols"])
def test_empty_protocols_of_a_new_group(pair: Pair, kwargs: dict) -> None:
    group = new_group(pair)
    assert join(pair, group, **kwargs)["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


@pytest.mark.parametrize("session_ms", [0, 5999, 1_800_001], ids=["zero", "below-min", "above-max"])
def test_session_timeout_bounds(pair: Pair, session_ms: int) -> None:
    group = new_group(pair)
    assert join(pair, group, session_ms=session_ms)["error_code"] == ErrorCode.INVALID_SESSION_TIMEOUT


@pytest.mark.parametrize("version", [0, 4, 9])
def test_empty_group_id(pair: Pair, version: int) -> None:
    assert join(pair, "", version=version)["error_code"] == ErrorCode.INVALID_GROUP_ID


def test_static_member_joins_without_the_handshake(pair: Pair) -> None:
    group = new_group(pair)
    answer = join(pair, group, instance="static-1")
    assert answer["error_code"] == ErrorCode.NONE and answer["members"][0]["group_instance_id"] == "static-1"


def test_static_member_rejoining_fences_its_old_id(pair: Pair) -> None:
    group = new_group(pair)
    old = stable_group(pair, group, instance="static-1")
    again = join(pair, group, instance="static-1")  # a restarted instance: new member id, same generation
    assert again["error_code"] == ErrorCode.NONE and again["member_id"] != old.member
    answer = sync(pair, group, old.member, old.generation, instance="static-1")
    assert answer["error_code"] == ErrorCode.FENCED_INSTANCE_ID
    answer = join(pair, group, old.member, instance="static-1")
    assert answer["error_code"] == ErrorCode.FENCED_INSTANCE_ID
    describe(pair, group)


def test_static_member_with_an_unknown_member_id(pair: Pair) -> None:
    group = new_group(pair)
    stable_group(pair, group, instance="static-1")
    assert join(pair, group, "not-the-member", instance="static-1")["error_code"] == ErrorCode.FENCED_INSTANCE_ID
    assert join(pair, group, "not-the-member", instance="static-2")["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID


def test_sync_errors_of_a_stable_group(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    assert sync(pair, group, a.member, a.generation + 1)["error_code"] == ErrorCode.ILLEGAL_GENERATION
    assert sync(pair, group, "no-such-member", a.generation)["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    answer = sync(pair, group, a.member, a.generation, protocol_type="connect")
    assert answer["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    answer = sync(pair, group, a.member, a.generation, protocol_name="roundrobin")
    assert answer["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    # a stable member asking again gets its assignment again
    assert sync(pair, group, a.member, a.generation)["error_code"] == ErrorCode.NONE


@pytest.mark.parametrize(
    ("protocol_type", "protocol_name"),
    [(None, None), ("consumer", None), (None, "range")],
    ids=["both", "name", "type"],
)
def test_sync_v5_without_protocol_type_or_name(
    pair: Pair, protocol_type: str | None, protocol_name: str | None
) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    answer = sync(pair, group, a.member, a.generation, protocol_type=protocol_type, protocol_name=protocol_name)
    assert answer["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_sync_before_v5(pair: Pair, version: int) -> None:
    group = new_group(pair)
    joined = join_new(pair, group)
    answer = sync(pair, group, joined.member, joined.generation, {joined.member: assignment(t=[0])}, version=version)
    assert answer["error_code"] == ErrorCode.NONE


def test_sync_of_an_unknown_group(pair: Pair) -> None:
    group = new_group(pair)
    assert sync(pair, group, "no-such-member", 1)["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID


def test_a_second_member_rebalances_the_group(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    b_id = join(pair, group)["member_id"]  # MEMBER_ID_REQUIRED
    b_join = submit_join(pair, group, b_id)  # waits for a to rejoin
    wait_state(pair, group, "PreparingRebalance")
    assert heartbeat(pair, group, a.member, a.generation)["error_code"] == ErrorCode.REBALANCE_IN_PROGRESS
    assert sync(pair, group, a.member, a.generation)["error_code"] == ErrorCode.REBALANCE_IN_PROGRESS
    describe(pair, group)
    a_again = join(pair, group, a.member)
    assert a_again["error_code"] == ErrorCode.NONE and len(a_again["members"]) == 2
    b = b_join.compare(unordered=("members",))[1]
    assert b["error_code"] == ErrorCode.NONE and b["members"] == []
    generation = a_again["generation_id"]
    describe(pair, group)
    # the follower's SyncGroup waits for the leader's
    b_sync = pair.submit(14, sync_body(group, b_id, generation, {}))
    wait_state(pair, group, "CompletingRebalance")
    done = sync(pair, group, a.member, generation, {a.member: b"for-a", b_id: b"for-b"})
    assert done["assignment"] == b"for-a"
    assert b_sync.compare()[1]["assignment"] == b"for-b"
    describe(pair, group)


def test_a_lost_join_answer_is_answered_again(pair: Pair) -> None:
    """In CompletingRebalance a member that joins again with the same protocols gets the same answer."""
    group = new_group(pair)
    a = join_new(pair, group)
    again = join(pair, group, a.member)
    assert again["generation_id"] == a.generation
    describe(pair, group)


def test_a_member_changing_its_protocols_rebalances(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group, "one")
    answer = join(pair, group, a.member, protos=protocols("one", "two"))
    assert answer["generation_id"] == a.generation + 1
    describe(pair, group)


def test_the_leader_rejoining_a_stable_group_rebalances(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    assert join(pair, group, a.member)["generation_id"] == a.generation + 1


def test_sync_with_assignments_for_unknown_members(pair: Pair) -> None:
    group = new_group(pair)
    a = join_new(pair, group)
    answer = sync(pair, group, a.member, a.generation, {a.member: b"mine", "stranger": b"theirs"})
    assert answer["assignment"] == b"mine"
    describe(pair, group)


def test_protocol_vote(pair: Pair) -> None:
    """Two members, each listing two protocols in a different order: the group picks one by vote."""
    group = new_group(pair)
    a = join_new(pair, group, protos=protocols(names=["range", "roundrobin"]))
    sync(pair, group, a.member, a.generation, {a.member: b""})
    b_id = join(pair, group, protos=protocols(names=["roundrobin", "range"]))["member_id"]
    b_join = submit_join(pair, group, b_id, protos=protocols(names=["roundrobin", "range"]))
    wait_state(pair, group, "PreparingRebalance")
    a_again = join(pair, group, a.member, protos=protocols(names=["roundrobin", "range"]))
    assert a_again["protocol_name"] == "roundrobin"
    b_join.compare(unordered=("members",))


def test_static_leader_rejoining_skips_the_assignment(pair: Pair) -> None:
    """KIP-814 (v9): a static leader that restarts learns the members but must not reassign."""
    group = new_group(pair)
    stable_group(pair, group, instance="i-1")
    for version in (9, 8):
        answer = join(pair, group, instance="i-1", version=version)
        assert answer["error_code"] == ErrorCode.NONE


def test_join_with_an_instance_id_before_v5_is_dynamic(pair: Pair) -> None:
    group = new_group(pair)
    assert join(pair, group, version=4)["error_code"] == ErrorCode.MEMBER_ID_REQUIRED


def test_sync_after_the_member_left(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    pair.compare(13, lambda side: {"group_id": group, "member_id": side.raw("member", a.member)}, version=2)
    assert sync(pair, group, a.member, a.generation)["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    assert join(pair, group, a.member)["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID


def test_a_newcomer_while_completing_a_rebalance(pair: Pair) -> None:
    """A new member joins while the leader has not synced yet: the leader's SyncGroup is told to rejoin."""
    group = new_group(pair)
    a = join_new(pair, group)  # CompletingRebalance
    b_id = join(pair, group)["member_id"]
    b_join = submit_join(pair, group, b_id)
    wait_state(pair, group, "PreparingRebalance")
    assert sync(pair, group, a.member, a.generation)["error_code"] == ErrorCode.REBALANCE_IN_PROGRESS
    join(pair, group, a.member)
    b_join.compare(unordered=("members",))


@pytest.mark.parametrize("protocol_type", ["connect", "consumer"])
def test_other_protocol_types(pair: Pair, protocol_type: str) -> None:
    group = new_group(pair)
    a = join_new(pair, group, protocol_type=protocol_type, protos=[{"name": "v1", "metadata": b"\x00\x01"}])
    names = {"protocol_type": protocol_type, "protocol_name": "v1"}
    answer = sync(pair, group, a.member, a.generation, {a.member: b"x"}, **names)
    assert answer["error_code"] == ErrorCode.NONE
    describe(pair, group)


def test_long_group_id(pair: Pair) -> None:
    group = pair.name("g") + "x" * 300
    pair.wait_for_coordinator(group)
    join_new(pair, group)
    describe(pair, group)


def test_static_member_replaced_while_completing_a_rebalance(pair: Pair) -> None:
    group = new_group(pair)
    old = join_new(pair, group, instance="i-1")  # CompletingRebalance: joined, not synced
    again = join(pair, group, instance="i-1")
    assert again["error_code"] == ErrorCode.NONE
    assert sync(pair, group, old.member, old.generation, instance="i-1")["error_code"] == 82  # FENCED
    describe(pair, group)


def test_static_member_replaced_with_other_protocols(pair: Pair) -> None:
    group = new_group(pair)
    stable_group(pair, group, instance="i-1")
    again = join(pair, group, instance="i-1", protos=protocols(names=["roundrobin", "range"]))
    assert again["error_code"] == ErrorCode.NONE
    describe(pair, group)


def test_static_follower_replaced_in_a_stable_group(pair: Pair) -> None:
    """A static follower restarting (new member id) gets the current generation back, no rebalance."""
    group = new_group(pair)
    leader = stable_group(pair, group, instance="i-1")
    follower = submit_join(pair, group, instance="i-2")  # a rebalance that waits for i-1
    wait_state(pair, group, "PreparingRebalance")
    rejoined = join(pair, group, leader.member, instance="i-1")
    f = follower.compare(unordered=("members",))[1]
    generation = rejoined["generation_id"]
    f_sync = pair.submit(14, sync_body(group, f["member_id"], generation, {}, instance="i-2"))
    wait_state(pair, group, "CompletingRebalance")
    sync(pair, group, leader.member, generation, {leader.member: b"1", f["member_id"]: b"2"}, instance="i-1")
    assert f_sync.compare()[1]["assignment"] == b"2"
    restarted = join(pair, group, instance="i-2")
    assert restarted["generation_id"] == generation and restarted["member_id"] != f["member_id"]
    describe(pair, group)
