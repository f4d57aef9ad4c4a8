"""Mixed groups against real Kafka: a live classic group converted to a consumer group by a
ConsumerGroupHeartbeat, its classic member's JoinGroup, SyncGroup and Heartbeat answered from the consumer
group, and the conversion back when the last member of the new protocol leaves. Every step is compared
(ListGroups' group type and state, DescribeGroups, ConsumerGroupDescribe's member types), and the errors
of the classic APIs on a consumer group and of an upgrade Kafka refuses.
"""

from __future__ import annotations

from typing import Any

from test_consumer_group_protocol import DESCRIBE, HB, LIST_GROUPS, beat, compare_hb, member_id, new_topic
from test_consumer_group_protocol import join as hb_join

from kstub.protocol import ErrorCode

from support.differential import Pair
from support.differential_groups import (
    assignment,
    commit,
    heartbeat,
    join,
    join_new,
    member,
    new_group,
    protocols,
    sync,
)

DESCRIBE_GROUPS, LEAVE_GROUP = 15, 13


def listed(pair: Pair, group: str) -> Any:
    def ours(answer: Any) -> Any:
        return [g for g in answer["groups"] if g["group_id"] == group]

    return pair.compare(LIST_GROUPS, {"states_filter": [], "types_filter": []}, view=ours)[1]


def described(pair: Pair, group: str) -> Any:
    body = {"group_ids": [group], "include_authorized_operations": False}
    return pair.compare(DESCRIBE, body, unordered=("groups", "members"))[1]


def test_a_classic_group_converts_to_a_consumer_group_and_back(pair: Pair) -> None:
    group = new_group(pair)
    topic = new_topic(pair, 2)
    classic = join_new(pair, group, protos=protocols(topic))
    synced = sync(pair, group, classic.member, classic.generation, {classic.member: assignment(**{topic: [0, 1]})})
    assert synced["error_code"] == ErrorCode.NONE
    assert listed(pair, group)[0]["group_type"] == "classic"

    # a member of the new protocol joins: the group is a consumer group now
    new = member_id()
    compare_hb(pair, hb_join(group, new, [topic]))
    assert [(g["group_type"], g["group_state"]) for g in listed(pair, group)] == [("consumer", "Reconciling")]
    types = {m["member_type"] for m in described(pair, group)["groups"][0]["members"]}
    assert types == {0, 1}
    for version in (5, 6):
        pair.compare(DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": False}, version=version)

    # the classic member is told to rejoin, and is answered from the consumer group
    assert heartbeat(pair, group, classic.member, classic.generation)["error_code"] == ErrorCode.REBALANCE_IN_PROGRESS
    rejoined = join(pair, group, classic.member, protos=protocols(topic))
    assert rejoined["error_code"] == ErrorCode.NONE
    generation = rejoined["generation_id"]
    assert sync(pair, group, classic.member, generation)["error_code"] == ErrorCode.NONE
    assert heartbeat(pair, group, classic.member, generation)["error_code"] == ErrorCode.NONE
    assert heartbeat(pair, group, classic.member, generation - 1)["error_code"] == ErrorCode.ILLEGAL_GENERATION
    described(pair, group)

    # the classic APIs' errors on a consumer group
    connect = [{"name": "range", "metadata": b"x"}]
    join(pair, group, classic.member, protocol_type="connect", protos=connect)  # INCONSISTENT_GROUP_PROTOCOL
    join(pair, group, "", protos=protocols(topic))  # MEMBER_ID_REQUIRED
    heartbeat(pair, group, "unknown-member", generation)  # UNKNOWN_MEMBER_ID
    body = lambda side: {"group_id": group, "generation_id": generation, "member_id": new,  # noqa: E731
                         "group_instance_id": None}  # fmt: skip
    pair.compare(12, body)  # a member of the new protocol: UNKNOWN_MEMBER_ID

    # the last member of the new protocol leaves: a classic group again, rebalancing
    compare_hb(pair, beat(group, new, -1))
    assert [(g["group_type"], g["group_state"]) for g in listed(pair, group)] == [("classic", "PreparingRebalance")]
    heartbeat(pair, group, classic.member, generation)
    pair.compare(DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": False})
    again = join(pair, group, classic.member, protos=protocols(topic))  # the rebalance of the classic group
    assert again["error_code"] == ErrorCode.NONE and again["leader"] == again["member_id"]
    mine = {classic.member: assignment(**{topic: [0, 1]})}
    assert sync(pair, group, classic.member, again["generation_id"], mine)["error_code"] == ErrorCode.NONE
    assert [(g["group_type"], g["group_state"]) for g in listed(pair, group)] == [("classic", "Stable")]


def test_an_upgrade_kafka_refuses(pair: Pair) -> None:
    group = new_group(pair)
    topic = new_topic(pair, 1)
    connect = [{"name": "x", "metadata": b"anything"}]
    first = join(pair, group, protocol_type="connect", protos=connect)
    joined = join(pair, group, first["member_id"], protocol_type="connect", protos=connect)
    assert joined["error_code"] == ErrorCode.NONE
    # a live classic group of another protocol type cannot become a consumer group
    compare_hb(pair, hb_join(group, member_id(), [topic]))
    listed(pair, group)
    # nor can a heartbeat of the new protocol that is not a join reach it
    compare_hb(pair, beat(group, member_id(), 1, topic_partitions=[]))


def test_an_empty_consumer_group_becomes_a_classic_group_at_a_join(pair: Pair) -> None:
    group = new_group(pair)
    topic = new_topic(pair, 1)
    new = member_id()
    compare_hb(pair, hb_join(group, new, [topic]))
    compare_hb(pair, beat(group, new, -1))
    assert [(g["group_type"], g["group_state"]) for g in listed(pair, group)] == [("consumer", "Empty")]
    join_new(pair, group, protos=protocols(topic))
    listed(pair, group)
    pair.compare(HB, {"group_id": group, "member_id": member_id(), "member_epoch": 1})


def test_a_classic_member_of_a_consumer_group_commits_syncs_and_leaves(pair: Pair) -> None:
    group = new_group(pair)
    topic = new_topic(pair, 2)
    other = new_topic(pair, 1)  # the new member's own: which partition goes to whom does not hang on member ids
    classic = join_new(pair, group, protos=protocols(topic))
    # the group converts while the classic member has not synced yet (CompletingRebalance)
    new = member_id()
    compare_hb(pair, hb_join(group, new, [other]))
    sync(pair, group, classic.member, classic.generation)  # REBALANCE_IN_PROGRESS: it must rejoin
    rejoined = join(pair, group, classic.member, protos=protocols(topic))
    generation = rejoined["generation_id"]
    sync(pair, group, classic.member, generation, protocol_name="roundrobin")  # INCONSISTENT_GROUP_PROTOCOL
    sync(pair, group, classic.member, generation + 1)  # ILLEGAL_GENERATION
    assert sync(pair, group, classic.member, generation)["error_code"] == ErrorCode.NONE
    for version in (7, 8, 9):  # with its generation, a stale one, as a member of the new protocol would
        for gen in (generation, generation - 1):
            commit(pair, group, {topic: {0: 5}}, version=version, generation=gen, member_alias=classic.member)
    commit(pair, group, {topic: {0: 5}}, generation=generation, member_alias="unknown-member")
    # a classic member leaves: the consumer group stays one, its member of the new protocol takes everything
    body = lambda side: {"group_id": group, "members": [  # noqa: E731
        {"member_id": member(side, classic.member), "group_instance_id": None, "reason": None},
        {"member_id": "unknown-member", "group_instance_id": None, "reason": None}]}  # fmt: skip
    pair.compare(LEAVE_GROUP, body)
    assert [(g["group_type"], g["group_state"]) for g in listed(pair, group)] == [("consumer", "Assigning")]
    described(pair, group)


def test_a_classic_static_member_replacing_the_last_new_one(pair: Pair) -> None:
    group = new_group(pair)
    mine, theirs = new_topic(pair, 1), new_topic(pair, 1)
    classic = join_new(pair, group, protos=protocols(mine))
    sync(pair, group, classic.member, classic.generation, {classic.member: assignment(**{mine: [0]})})
    static = member_id()
    compare_hb(pair, hb_join(group, static, [theirs], instance_id="i"))
    join(pair, group, classic.member, protos=protocols(mine))  # told to rejoin: it is answered at once
    compare_hb(pair, beat(group, static, -2, instance_id="i"))  # away for a while: its place is kept
    listed(pair, group)
    # the instance comes back with the classic protocol: the group is a classic one again, without a rebalance
    back = join(pair, group, "", instance="i", protos=protocols(theirs))
    assert back["error_code"] == ErrorCode.NONE
    assert [g["group_type"] for g in listed(pair, group)] == ["classic"]
    sync(pair, group, back["member_id"], back["generation_id"], instance="i")
    pair.compare(DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": False}, unordered=("members",))
