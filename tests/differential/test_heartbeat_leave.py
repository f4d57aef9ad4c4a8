"""Heartbeat and LeaveGroup: a member's liveness, and leaving by member id (v0-2) or in batches (v3+)."""

from __future__ import annotations

from typing import Any

import pytest

from kstub.protocol import ErrorCode

from support.differential import Pair
from support.differential_groups import (
    describe,
    heartbeat,
    join,
    member,
    new_group,
    stable_group,
    submit_join,
    wait_state,
)

LEAVE_GROUP = 13


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_heartbeat_of_a_stable_member(pair: Pair, version: int) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    assert heartbeat(pair, group, a.member, a.generation, version=version)["error_code"] == ErrorCode.NONE


@pytest.mark.parametrize("version", [0, 4])
def test_heartbeat_errors(pair: Pair, version: int) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    assert heartbeat(pair, group, "no-such-member", a.generation, version=version)["error_code"] == 25
    assert heartbeat(pair, group, a.member, a.generation + 1, version=version)["error_code"] == 22
    assert heartbeat(pair, group, a.member, a.generation - 1, version=version)["error_code"] == 22
    assert heartbeat(pair, pair.name("g"), "no-such-member", 1, version=version)["error_code"] == 25
    assert heartbeat(pair, "", "no-such-member", 1, version=version)["error_code"] == ErrorCode.INVALID_GROUP_ID
    # a member id handed out by MEMBER_ID_REQUIRED, not yet used to join
    pending = join(pair, group)["member_id"]
    assert heartbeat(pair, group, pending, a.generation, version=version)["error_code"] == 25


def test_heartbeat_during_a_rebalance(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    b_id = join(pair, group)["member_id"]
    b_join = submit_join(pair, group, b_id)
    wait_state(pair, group, "PreparingRebalance")
    assert heartbeat(pair, group, a.member, a.generation)["error_code"] == ErrorCode.REBALANCE_IN_PROGRESS
    assert heartbeat(pair, group, a.member, a.generation + 1)["error_code"] == ErrorCode.ILLEGAL_GENERATION
    # the newcomer is a member already, waiting in JoinGroup
    assert heartbeat(pair, group, b_id, a.generation)["error_code"] == ErrorCode.REBALANCE_IN_PROGRESS
    join(pair, group, a.member)
    b_join.compare(unordered=("members",))


def test_heartbeat_of_a_static_member(pair: Pair) -> None:
    group = new_group(pair)
    old = stable_group(pair, group, instance="i-1")
    assert heartbeat(pair, group, old.member, old.generation, instance="i-1")["error_code"] == ErrorCode.NONE
    new = join(pair, group, instance="i-1")["member_id"]
    assert heartbeat(pair, group, old.member, old.generation, instance="i-1")["error_code"] == 82  # FENCED
    assert heartbeat(pair, group, new, old.generation, instance="i-1")["error_code"] == ErrorCode.NONE
    assert heartbeat(pair, group, new, old.generation, instance="i-2")["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID


def _leave_v3(group: str, *members: tuple[str, str | None]) -> Any:
    return lambda side: {
        "group_id": group,
        "members": [
            {"member_id": member(side, m), "group_instance_id": i, "reason": "differential test"} for m, i in members
        ],
    }


def _leave_v0(group: str, member_alias: str) -> Any:
    return lambda side: {"group_id": group, "member_id": member(side, member_alias)}


@pytest.mark.parametrize("version", [0, 1, 2])
def test_leave_by_member_id(pair: Pair, version: int) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    ours, _ = pair.compare(LEAVE_GROUP, _leave_v0(group, "no-such-member"), version=version)
    assert ours["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
    ours, _ = pair.compare(LEAVE_GROUP, _leave_v0(group, a.member), version=version)
    assert ours["error_code"] == ErrorCode.NONE
    describe(pair, group)
    ours, _ = pair.compare(LEAVE_GROUP, _leave_v0(group, a.member), version=version)
    assert ours["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID


@pytest.mark.parametrize("version", [3, 4, 5])
def test_leave_in_a_batch(pair: Pair, version: int) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    body = _leave_v3(group, (a.member, None), ("no-such-member", None), ("", "no-such-instance"))
    ours, _ = pair.compare(LEAVE_GROUP, body, version=version)
    assert [m["error_code"] for m in ours["members"]] == [0, 25, 25]
    describe(pair, group)


def test_leave_by_instance_id(pair: Pair) -> None:
    group = new_group(pair)
    stable_group(pair, group, instance="i-1")
    ours, _ = pair.compare(LEAVE_GROUP, _leave_v3(group, ("", "i-1")))
    assert ours["members"][0]["error_code"] == ErrorCode.NONE
    describe(pair, group)


def test_leave_by_instance_id_with_the_wrong_member_id(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group, instance="i-1")
    ours, _ = pair.compare(LEAVE_GROUP, _leave_v3(group, ("someone-else", "i-1"), (a.member, "i-2")))
    assert [m["error_code"] for m in ours["members"]] == [ErrorCode.FENCED_INSTANCE_ID, ErrorCode.UNKNOWN_MEMBER_ID]


@pytest.mark.parametrize("version", [2, 5])
def test_leave_an_unknown_group(pair: Pair, version: int) -> None:
    group = new_group(pair)
    body = _leave_v0(group, "m") if version < 3 else _leave_v3(group, ("m", None))
    pair.compare(LEAVE_GROUP, body, version=version)


@pytest.mark.parametrize("version", [0, 5])
def test_leave_with_an_empty_group_id(pair: Pair, version: int) -> None:
    body = _leave_v0("", "m") if version < 3 else _leave_v3("", ("m", None))
    ours, _ = pair.compare(LEAVE_GROUP, body, version=version)
    assert ours["error_code"] == ErrorCode.INVALID_GROUP_ID


def test_leave_while_another_member_waits(pair: Pair) -> None:
    """The leader leaves during a rebalance: the waiting newcomer completes it alone, as leader."""
    group = new_group(pair)
    a = stable_group(pair, group)
    b_id = join(pair, group)["member_id"]
    b_join = submit_join(pair, group, b_id)
    wait_state(pair, group, "PreparingRebalance")
    pair.compare(LEAVE_GROUP, _leave_v3(group, (a.member, None)))
    b = b_join.compare(unordered=("members",))[1]
    assert b["leader"] == b["member_id"] and b["generation_id"] == a.generation + 1
    describe(pair, group)


def test_heartbeat_while_completing_a_rebalance(pair: Pair) -> None:
    from support.differential_groups import join_new

    group = new_group(pair)
    a = join_new(pair, group)  # joined, not synced: CompletingRebalance
    assert heartbeat(pair, group, a.member, a.generation)["error_code"] == ErrorCode.NONE
    assert heartbeat(pair, group, a.member, a.generation - 1)["error_code"] == ErrorCode.ILLEGAL_GENERATION


def test_leave_the_same_member_twice_in_a_batch(pair: Pair) -> None:
    group = new_group(pair)
    a = stable_group(pair, group)
    ours, _ = pair.compare(LEAVE_GROUP, _leave_v3(group, (a.member, None), (a.member, None)))
    assert ours["members"][0]["error_code"] == ErrorCode.NONE


def test_leave_a_pending_member(pair: Pair) -> None:
    """A member id handed out by MEMBER_ID_REQUIRED may leave before it joins: Kafka 4 rebalances the group."""
    group = new_group(pair)
    a = stable_group(pair, group)
    pending = join(pair, group)["member_id"]
    ours, _ = pair.compare(LEAVE_GROUP, _leave_v3(group, (pending, None)))
    assert ours["members"][0]["error_code"] == ErrorCode.NONE
    describe(pair, group)
    assert heartbeat(pair, group, a.member, a.generation)["error_code"] == ErrorCode.REBALANCE_IN_PROGRESS
    assert join(pair, group, a.member)["generation_id"] == a.generation + 1
