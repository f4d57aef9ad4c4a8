"""DescribeGroups, ListGroups and DeleteGroups: what admin tools see of groups, and removing them."""

from __future__ import annotations

from typing import Any

import pytest

from kstub.protocol import ErrorCode

from support.differential import Pair
from support.differential_groups import (
    commit,
    create_topic,
    describe,
    join,
    join_new,
    new_group,
    stable_group,
    submit_join,
    wait_state,
)

LIST_GROUPS, DELETE_GROUPS, LEAVE_GROUP = 16, 42, 13


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4, 5])
def test_describe_a_stable_group(pair: Pair, version: int) -> None:
    group = new_group(pair)
    stable_group(pair, group, "some-topic")
    answer = describe(pair, group, version=version, operations=True)
    assert answer["groups"][0]["group_state"] == "Stable"


def test_describe_unknown_and_empty_group_ids(pair: Pair) -> None:
    group = new_group(pair)
    # (not the empty group id: other tests may commit offsets for it on the shared Kafka)
    answer = describe(pair, group, pair.name("g"), group, operations=True)
    assert {g["group_state"] for g in answer["groups"]} == {"Dead"}


def test_describe_a_group_of_static_members(pair: Pair) -> None:
    group = new_group(pair)
    first = stable_group(pair, group, instance="i-1")
    second = submit_join(pair, group, instance="i-2")  # a second static member: a rebalance, waiting for i-1
    wait_state(pair, group, "PreparingRebalance")
    answer = describe(pair, group)
    assert answer["groups"][0]["group_state"] == "PreparingRebalance"
    assert join(pair, group, first.member, instance="i-1")["leader"] == first.member
    second.compare(unordered=("members",))
    describe(pair, group)


def test_describe_a_simple_group(pair: Pair) -> None:
    """A group that only commits offsets (no members, no protocol type)."""
    group = new_group(pair)
    topic = pair.name("t")
    create_topic(pair, topic)
    assert commit(pair, group, {topic: {0: 1}}) == {(topic, 0): ErrorCode.NONE}
    answer = describe(pair, group)
    assert answer["groups"][0]["group_state"] == "Empty"


def _ours(pair: Pair) -> Any:
    """A ListGroups answer reduced to this test's groups (the real Kafka is shared by the run)."""
    return lambda answer: {**answer, "groups": [g for g in answer["groups"] if g["group_id"].startswith(pair.prefix)]}


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_list_groups(pair: Pair, version: int) -> None:
    stable = new_group(pair)
    stable_group(pair, stable)
    empty = new_group(pair)
    a = join_new(pair, empty)
    pair.compare(LEAVE_GROUP, lambda side: {"group_id": empty, "member_id": side.raw("member", a.member)}, version=2)
    body = {"states_filter": []} if version >= 4 else {}
    ours, _ = pair.compare(LIST_GROUPS, body, version=version, view=_ours(pair), unordered=("groups",))
    if version >= 4:
        assert {(g["group_id"], g["group_state"]) for g in ours["groups"]} == {(stable, "Stable"), (empty, "Empty")}


@pytest.mark.parametrize(
    "states",
    [["Stable"], ["stable", "empty"], ["PreparingRebalance", "CompletingRebalance"], ["NoSuchState"], ["Dead"]],
    ids=lambda s: "-".join(s),
)
def test_list_groups_by_state(pair: Pair, states: list[str]) -> None:
    stable = new_group(pair)
    stable_group(pair, stable)
    completing = new_group(pair)
    join_new(pair, completing)
    pair.compare(LIST_GROUPS, {"states_filter": states}, version=4, view=_ours(pair), unordered=("groups",))


@pytest.mark.parametrize("version", [0, 1, 2])
def test_delete_groups(pair: Pair, version: int) -> None:
    busy = new_group(pair)
    stable_group(pair, busy)
    empty = new_group(pair)
    a = join_new(pair, empty)
    join(pair, empty, a.member, protos=[])  # refused (INCONSISTENT_GROUP_PROTOCOL): the member stays
    pair.compare(LEAVE_GROUP, lambda side: {"group_id": empty, "member_id": side.raw("member", a.member)}, version=2)
    unknown = pair.name("g")
    body = {"groups_names": [busy, empty, unknown]}
    ours, _ = pair.compare(DELETE_GROUPS, body, version=version, unordered=("results",))
    errors = {r["group_id"]: r["error_code"] for r in ours["results"]}
    assert errors[busy] == ErrorCode.NON_EMPTY_GROUP and errors[unknown] == ErrorCode.GROUP_ID_NOT_FOUND
    describe(pair, busy, empty)


def test_delete_a_group_with_offsets(pair: Pair) -> None:
    group = new_group(pair)
    topic = pair.name("t")
    create_topic(pair, topic)
    assert commit(pair, group, {topic: {0: 1}}) == {(topic, 0): ErrorCode.NONE}
    ours, _ = pair.compare(DELETE_GROUPS, {"groups_names": [group, group]})
    assert ours["results"][0]["error_code"] == ErrorCode.NONE
    fetch = {"group_id": group, "topics": None, "require_stable": False}
    assert pair.compare(9, fetch, version=7)[0]["topics"] == []


@pytest.mark.parametrize(
    ("api_key", "version", "body"),
    [
        (10, 4, {"key_type": 0, "coordinator_keys": []}),
        (15, 5, {"groups": [], "include_authorized_operations": True}),
        (42, 2, {"groups_names": []}),
        (8, 8, None),
        (9, 8, {"groups": [], "require_stable": False}),
        (9, 7, None),
        (13, 5, None),
    ],
    ids=["find-coordinator", "describe", "delete", "commit", "fetch-v8", "fetch-v7", "leave"],
)
def test_empty_requests(pair: Pair, api_key: int, version: int, body: dict | None) -> None:
    """Requests naming nothing (no groups, topics or members)."""
    if body is None:
        group = new_group(pair)
        stable_group(pair, group)
        body = {
            8: {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "topics": []},
            9: {"group_id": group, "topics": [], "require_stable": False},
            13: {"group_id": group, "members": []},
        }[api_key]
    pair.compare(api_key, body, version=version)
