"""OffsetCommit, OffsetFetch and OffsetDelete: committed offsets of simple and consumer groups."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kstub.protocol import ErrorCode

from support.differential import Pair
from support.differential_groups import commit, create_topic, new_group, stable_group

OFFSET_FETCH, OFFSET_DELETE = 9, 47


@pytest.fixture
def topic(pair: Pair) -> str:
    name = pair.name("t")
    create_topic(pair, name, partitions=2)
    return name


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7, 8])
def test_simple_consumer_commits(pair: Pair, topic: str, version: int) -> None:
    group = new_group(pair)
    errors = commit(pair, group, {topic: {0: 5, 1: 7}}, version=version)
    assert set(errors.values()) == {ErrorCode.NONE}
    fetch = {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0, 1]}], "require_stable": False}
    pair.compare(OFFSET_FETCH, fetch, version=min(version, 7))


def test_unknown_topics_and_partitions(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    errors = commit(pair, group, {topic: {0: 1, 9: 1}, pair.name("nope"): {0: 1}})
    assert errors[(topic, 9)] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and errors[(topic, 0)] == ErrorCode.NONE


def test_metadata_too_large(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    assert commit(pair, group, {topic: {0: 1}}, metadata="m" * 4097) == {(topic, 0): 12}
    assert commit(pair, group, {topic: {0: 1}}, metadata="m" * 4096) == {(topic, 0): ErrorCode.NONE}
    assert commit(pair, group, {topic: {1: 1}}, metadata=None) == {(topic, 1): ErrorCode.NONE}
    fetch = {"group_id": group, "topics": None, "require_stable": False}
    pair.compare(OFFSET_FETCH, fetch, version=7)


@pytest.mark.parametrize("version", [2, 4])
def test_retention_time(pair: Pair, topic: str, version: int) -> None:
    group = new_group(pair)
    assert commit(pair, group, {topic: {0: 3}}, retention_ms=3_600_000, version=version) == {(topic, 0): 0}


def test_generation_without_a_group(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    # OffsetCommit v9+ (the highest both serve) answers GROUP_ID_NOT_FOUND; ILLEGAL_GENERATION before v9
    assert commit(pair, group, {topic: {0: 1}}, generation=3) == {(topic, 0): ErrorCode.GROUP_ID_NOT_FOUND}
    assert commit(pair, group, {topic: {0: 1}}, generation=3, version=8) == {(topic, 0): ErrorCode.ILLEGAL_GENERATION}
    errors = commit(pair, group, {topic: {0: 1}}, member_alias="someone")
    assert errors == {(topic, 0): ErrorCode.NONE}  # no generation: a simple commit, the member id is not checked


def test_commits_of_a_consumer_group(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    a = stable_group(pair, group, topic)
    good = {"generation": a.generation, "member_alias": a.member}
    assert commit(pair, group, {topic: {0: 10}}, **good) == {(topic, 0): ErrorCode.NONE}
    assert commit(pair, group, {topic: {0: 11}}, generation=a.generation + 1, member_alias=a.member) == {
        (topic, 0): ErrorCode.ILLEGAL_GENERATION
    }
    assert commit(pair, group, {topic: {0: 11}}, generation=a.generation, member_alias="someone") == {
        (topic, 0): ErrorCode.UNKNOWN_MEMBER_ID
    }
    # a simple commit (generation -1) into a group with members
    assert commit(pair, group, {topic: {0: 11}}) == {(topic, 0): ErrorCode.UNKNOWN_MEMBER_ID}
    # an older version (v2 carries a retention time), and an instance id the group does not know
    assert commit(pair, group, {topic: {1: 4}}, version=2, **good) == {(topic, 1): ErrorCode.NONE}
    assert commit(pair, group, {topic: {1: 5}}, instance="nope", **good) == {(topic, 1): ErrorCode.UNKNOWN_MEMBER_ID}


def test_commits_of_a_static_member(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    a = stable_group(pair, group, topic, instance="i-1")
    good = {"generation": a.generation, "member_alias": a.member}
    assert commit(pair, group, {topic: {0: 1}}, instance="i-1", **good) == {(topic, 0): ErrorCode.NONE}
    assert commit(pair, group, {topic: {0: 1}}, instance="i-1", generation=a.generation, member_alias="other") == {
        (topic, 0): ErrorCode.FENCED_INSTANCE_ID
    }


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5, 6, 7])
def test_fetch_some_partitions(pair: Pair, topic: str, version: int) -> None:
    group = new_group(pair)
    commit(pair, group, {topic: {0: 5}}, metadata="hello")
    body = {
        "group_id": group,
        "topics": [
            {"name": topic, "partition_indexes": [0, 1, 7]},
            {"name": pair.name("nope"), "partition_indexes": [0]},
        ],
        "require_stable": False,
    }
    pair.compare(OFFSET_FETCH, body, version=version)


@pytest.mark.parametrize("version", [2, 7])
def test_fetch_all_partitions(pair: Pair, topic: str, version: int) -> None:
    group = new_group(pair)
    commit(pair, group, {topic: {0: 5, 1: 6}})
    ours, _ = pair.compare(OFFSET_FETCH, {"group_id": group, "topics": None, "require_stable": False}, version=version)
    assert len(ours["topics"][0]["partitions"]) == 2


@pytest.mark.parametrize("version", [1, 7])
def test_fetch_of_an_unknown_group(pair: Pair, topic: str, version: int) -> None:
    body = {"group_id": new_group(pair), "topics": [{"name": topic, "partition_indexes": [0]}], "require_stable": True}
    pair.compare(OFFSET_FETCH, body, version=version)


def test_fetch_require_stable_of_a_consumer_group(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    a = stable_group(pair, group, topic)
    commit(pair, group, {topic: {0: 3}}, generation=a.generation, member_alias=a.member)
    body = {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}], "require_stable": True}
    pair.compare(OFFSET_FETCH, body, version=7)


def test_fetch_batched_groups(pair: Pair, topic: str) -> None:
    one, two, unknown = new_group(pair), new_group(pair), new_group(pair)
    commit(pair, one, {topic: {0: 1, 1: 2}})
    commit(pair, two, {topic: {1: 9}})
    body = {
        "groups": [
            {"group_id": one, "topics": None},
            {"group_id": two, "topics": [{"name": topic, "partition_indexes": [0, 1]}]},
            {"group_id": unknown, "topics": None},
        ],
        "require_stable": False,
    }
    pair.compare(OFFSET_FETCH, body, version=8, unordered=("groups",))


def _delete(group: str, offsets: dict[str, list[int]]) -> dict[str, Any]:
    return {
        "group_id": group,
        "topics": [{"name": t, "partitions": [{"partition_index": p} for p in ps]} for t, ps in offsets.items()],
    }


def test_delete_offsets_of_a_simple_group(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    commit(pair, group, {topic: {0: 1, 1: 2}})
    ours, _ = pair.compare(OFFSET_DELETE, _delete(group, {topic: [0, 5], pair.name("nope"): [0]}))
    assert ours["error_code"] == ErrorCode.NONE
    pair.compare(OFFSET_FETCH, {"group_id": group, "topics": None, "require_stable": False}, version=7)


def test_delete_offsets_of_a_subscribed_topic(pair: Pair, topic: str) -> None:
    other = pair.name("t")
    create_topic(pair, other)
    group = new_group(pair)
    a = stable_group(pair, group, topic)
    commit(pair, group, {topic: {0: 1}, other: {0: 1}}, generation=a.generation, member_alias=a.member)
    ours, _ = pair.compare(OFFSET_DELETE, _delete(group, {topic: [0], other: [0]}))
    errors = {t["name"]: t["partitions"][0]["error_code"] for t in ours["topics"]}
    assert errors == {topic: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, other: ErrorCode.NONE}


@pytest.mark.parametrize("group", ["unknown", ""])
def test_delete_offsets_of_unknown_or_invalid_groups(pair: Pair, topic: str, group: str) -> None:
    group_id = new_group(pair) if group == "unknown" else group
    ours, _ = pair.compare(OFFSET_DELETE, _delete(group_id, {topic: [0]}))
    assert ours["error_code"] in (ErrorCode.GROUP_ID_NOT_FOUND, ErrorCode.INVALID_GROUP_ID)


def test_commits_during_a_rebalance(pair: Pair, topic: str) -> None:
    from support.differential_groups import join, join_new, submit_join, wait_state

    group = new_group(pair)
    a = join_new(pair, group, protos=None)
    # CompletingRebalance: the member has joined but not synced
    assert commit(pair, group, {topic: {0: 1}}, generation=a.generation, member_alias=a.member) == {
        (topic, 0): ErrorCode.REBALANCE_IN_PROGRESS
    }
    from support.differential_groups import sync

    sync(pair, group, a.member, a.generation, {a.member: b""})
    b_id = join(pair, group)["member_id"]
    b_join = submit_join(pair, group, b_id)
    wait_state(pair, group, "PreparingRebalance")
    # PreparingRebalance: the last generation may still commit
    assert commit(pair, group, {topic: {0: 2}}, generation=a.generation, member_alias=a.member) == {
        (topic, 0): ErrorCode.NONE
    }
    fetch = {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}], "require_stable": True}
    pair.compare(OFFSET_FETCH, fetch, version=7)
    join(pair, group, a.member)
    b_join.compare(unordered=("members",))


def test_delete_offsets_of_a_non_consumer_group(pair: Pair, topic: str) -> None:
    from support.differential_groups import join_new

    group = new_group(pair)
    a = join_new(pair, group, protocol_type="connect")
    del a
    ours, _ = pair.compare(OFFSET_DELETE, _delete(group, {topic: [0]}))
    assert ours["error_code"] == ErrorCode.NON_EMPTY_GROUP


def test_fetch_batched_with_an_invalid_group(pair: Pair, topic: str) -> None:
    one = new_group(pair)
    commit(pair, one, {topic: {0: 4}})
    body = {
        "groups": [{"group_id": one, "topics": [{"name": topic, "partition_indexes": [0]}]}],
        "require_stable": True,
    }
    pair.compare(OFFSET_FETCH, body, version=8)


@pytest.mark.parametrize("offset", [-1, -5, 2**62], ids=["minus-one", "negative", "huge"])
def test_odd_offsets(pair: Pair, topic: str, offset: int) -> None:
    group = new_group(pair)
    commit(pair, group, {topic: {0: offset}})
    pair.compare(OFFSET_FETCH, {"group_id": group, "topics": None, "require_stable": False}, version=7)


def test_negative_partition(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    assert commit(pair, group, {topic: {-1: 3}}) == {(topic, -1): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}


def test_generation_with_an_empty_member_id(pair: Pair, topic: str) -> None:
    """A generation but no member id: an Empty group (after its member left) refuses it."""
    from support.differential_groups import LEAVE_GROUP

    group = new_group(pair)
    a = stable_group(pair, group, topic)
    body = lambda side: {"group_id": group, "member_id": side.raw("member", a.member)}  # noqa: E731
    pair.compare(LEAVE_GROUP, body, version=2)
    commit(pair, group, {topic: {0: 1}}, generation=a.generation)
    commit(pair, group, {topic: {0: 1}}, generation=a.generation + 1, member_alias=a.member)
    commit(pair, group, {topic: {0: 1}})


def test_fetch_repeated_partitions(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    commit(pair, group, {topic: {1: 8}})
    body = {"group_id": group, "topics": [{"name": topic, "partition_indexes": [1, 1, 0]}], "require_stable": False}
    pair.compare(OFFSET_FETCH, body, version=7)


def test_offsets_of_a_deleted_topic(pair: Pair, topic: str) -> None:
    group = new_group(pair)
    commit(pair, group, {topic: {0: 8, 1: 9}})
    pair.compare(20, {"topic_names": [topic], "topics": [{"name": topic}], "timeout_ms": 30_000}, ignore=("topic_id",))
    fetch = {"group_id": group, "topics": None, "require_stable": False}
    # Kafka's coordinator drops the offsets when the deletion reaches it from the metadata log, a moment later
    deadline = time.monotonic() + 30
    while pair.kafka.conn.request(OFFSET_FETCH, fetch, version=7).topics:
        assert time.monotonic() < deadline, "Kafka keeps the offsets of a deleted topic"
        time.sleep(0.05)
    ours, _ = pair.compare(OFFSET_FETCH, fetch, version=7)
    assert ours["topics"] == []


@pytest.mark.parametrize(
    ("generation", "who", "instance"),
    [(-1, "member", None), (-1, "member", "i-1"), (-1, "", "i-1"), (0, "member", "i-1"), (1, "old", "i-1")],
    ids=["no-generation", "no-generation-static", "instance-only", "generation-zero", "fenced-old-id"],
)
def test_commit_identities_of_a_static_group(
    pair: Pair, topic: str, generation: int, who: str, instance: str | None
) -> None:
    from support.differential_groups import join

    group = new_group(pair)
    old = stable_group(pair, group, topic, instance="i-1")
    new = join(pair, group, instance="i-1")["member_id"]  # restarted: the old id is fenced
    member_alias = {"member": new, "old": old.member, "": ""}[who]
    commit(pair, group, {topic: {0: 1}}, generation=generation, member_alias=member_alias, instance=instance)
