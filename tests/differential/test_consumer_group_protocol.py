"""The consumer group protocol (KIP-848) against real Kafka: ConsumerGroupHeartbeat sequences and their
errors, ConsumerGroupDescribe, ListGroups with types and DescribeGroups of a consumer group.

Member ids are the client's own in KIP-848 (v1), so both brokers see the same
ids; topic ids are aliased by the harness. Error messages are compared too,
apart (`judge`), where kstub mirrors Kafka's text.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from kstub.protocol import ErrorCode

from support.differential import Pair
from support.differential_groups import create_topic, new_group
from support.groups_raw import heartbeat_join_body as join

HB, DESCRIBE, LIST_GROUPS, DESCRIBE_GROUPS, OFFSET_COMMIT, OFFSET_FETCH = 68, 69, 16, 15, 8, 9


def member_id() -> str:
    return uuid.uuid4().hex[:22]


def beat(group: str, member: str, epoch: int, **extra: Any) -> dict[str, Any]:
    return {"group_id": group, "member_id": member, "member_epoch": epoch, **extra}


def owning(side_answer: Any) -> list[dict[str, Any]]:
    """The partitions an answer assigns, as the member reports them back as owned (raw topic ids)."""
    return [{"topic_id": t.topic_id, "partitions": list(t.partitions)} for t in side_answer.assignment.topic_partitions]


def compare_hb(pair: Pair, body: Any, **kwargs: Any) -> tuple[Any, Any]:
    """ConsumerGroupHeartbeat compared, error messages too; returns both raw answers."""
    answers: list[Any] = []

    def send(side: Any) -> Any:
        request = body(side) if callable(body) else body
        answers.append(side.conn.request(HB, request))
        return answers[-1]

    kstub, kafka = pair.each(send)
    pair._compare_answers(HB, pair.version(HB), (kstub, kafka), kwargs.get("known"), (), True)
    ours, theirs = kstub.error_message, kafka.error_message
    if kwargs.get("regex_message"):
        # the text after the pattern is the regex engine's own (RE2/J's, Python's re here)
        ours, theirs = (m.split(":")[0] if m else m for m in (ours, theirs))
    pair.judge("ConsumerGroupHeartbeat error message", ours, theirs)
    return kstub, kafka


def topic_ready(pair: Pair, topic: str, partitions: int) -> None:
    """Until both group coordinators see `topic` (Kafka's coordinator learns of it from its metadata image a
    moment after CreateTopics answers): a throwaway group's member is assigned its partitions. Polls (a JVM
    has no event to wait on)."""
    group = new_group(pair, "ready")
    for side in pair.sides:
        deadline = time.monotonic() + 30
        while True:
            member = member_id()
            answer = side.conn.request(HB, join(group, member, [topic]))
            side.conn.request(HB, beat(group, member, -1))
            if answer.assignment and sum(len(t.partitions) for t in answer.assignment.topic_partitions) == partitions:
                break
            assert time.monotonic() < deadline, f"{side.name}: the coordinator never saw {topic}"
            time.sleep(0.2)


#: Kafka 4.4's group.consumer.assignment.interval.ms: a new target assignment at most once a second
ASSIGNMENT_INTERVAL = 1.0


def new_topic(pair: Pair, partitions: int) -> str:
    topic = pair.name("t")
    create_topic(pair, topic, partitions)
    topic_ready(pair, topic, partitions)
    return topic


def describe(pair: Pair, *groups: str, version: int | None = None) -> Any:
    body = {"group_ids": list(groups), "include_authorized_operations": True}
    kstub, kafka = pair.send(DESCRIBE, body, version=version)
    pair.judge(
        "ConsumerGroupDescribe error messages",
        {g.group_id: g.error_message for g in kstub.groups},
        {g.group_id: g.error_message for g in kafka.groups},
    )
    # Kafka answers groups per __consumer_offsets partition (hash order): compared as sets
    return pair.compare(DESCRIBE, body, version=version, unordered=("groups", "members"))[1]


def test_join_heartbeat_and_leave(pair: Pair) -> None:
    group = new_group(pair)
    topic = new_topic(pair, 6)
    a, b = member_id(), member_id()
    ka, fa = compare_hb(pair, join(group, a, [topic]))
    assert ka.member_epoch == 2 and sum(len(t.partitions) for t in ka.assignment.topic_partitions) == 6
    describe(pair, group)
    compare_hb(pair, join(group, b, [topic]))  # the new target waits for the assignment interval
    assert describe(pair, group)["groups"][0]["group_state"] == "Assigning"
    time.sleep(ASSIGNMENT_INTERVAL + 0.2)
    compare_hb(pair, beat(group, b, 2, topic_partitions=[]))  # epoch 3, its partitions not yet released
    # a still reports all six: it is asked to revoke three, and stays at epoch 2
    owned = {"kstub": owning(ka), "kafka": owning(fa)}
    ka2, fa2 = compare_hb(pair, lambda side: beat(group, a, 2, topic_partitions=owned[side.name]))
    assert describe(pair, group)["groups"][0]["group_state"] == "Reconciling"
    # it has revoked them: epoch 3
    owned = {"kstub": owning(ka2), "kafka": owning(fa2)}
    compare_hb(pair, lambda side: beat(group, a, 2, topic_partitions=owned[side.name]))
    kb, _ = compare_hb(pair, beat(group, b, 3, topic_partitions=[]))
    assert sum(len(t.partitions) for t in kb.assignment.topic_partitions) == 3
    assert describe(pair, group)["groups"][0]["group_state"] == "Stable"
    leave, _ = compare_hb(pair, beat(group, a, -1))
    assert leave.member_epoch == -1
    assert describe(pair, group)["groups"][0]["group_state"] == "Assigning"
    time.sleep(ASSIGNMENT_INTERVAL + 0.2)
    compare_hb(pair, beat(group, b, 3, topic_partitions=[]))
    describe(pair, group)


@pytest.mark.parametrize(
    "case",
    [
        "empty-member-id",
        "no-rebalance-timeout",
        "owned-on-join",
        "no-subscription",
        "bad-epoch",
        "static-leave-without-instance",
        "unknown-assignor",
        "unknown-group",
        "bad-regex",
    ],
)
def test_invalid_heartbeats(pair: Pair, case: str) -> None:
    group = new_group(pair)
    m = member_id()
    body = {
        "empty-member-id": join(group, "", ["t"]),
        "no-rebalance-timeout": join(group, m, ["t"], rebalance_timeout_ms=-1),
        "owned-on-join": join(group, m, ["t"], topic_partitions=None),
        "no-subscription": join(group, m, None),
        "bad-epoch": beat(group, m, -3),
        "static-leave-without-instance": beat(group, m, -2),
        "unknown-assignor": join(group, m, ["t"], server_assignor="sticky"),
        "unknown-group": beat(group, m, 3),
        "bad-regex": join(group, m, None, subscribed_topic_regex="("),
    }[case]
    kstub, _ = compare_hb(pair, body, regex_message=case == "bad-regex")
    assert kstub.error_code != ErrorCode.NONE


def test_fencing_errors(pair: Pair) -> None:
    group = new_group(pair)
    topic = new_topic(pair, 2)
    a, s = member_id(), member_id()
    compare_hb(pair, join(group, a, [topic]))
    compare_hb(pair, beat(group, member_id(), 1))  # UNKNOWN_MEMBER_ID
    compare_hb(pair, beat(group, a, 7, topic_partitions=[]))  # FENCED_MEMBER_EPOCH (greater)
    compare_hb(pair, beat(group, member_id(), -1))  # leaving, unknown
    compare_hb(pair, join(group, s, [topic], instance_id="inst"))
    compare_hb(pair, join(group, member_id(), [topic], instance_id="inst"))  # UNRELEASED_INSTANCE_ID
    compare_hb(pair, beat(group, member_id(), -2, instance_id="inst"))  # FENCED_INSTANCE_ID
    compare_hb(pair, beat(group, a, 0, topic_partitions=[], rebalance_timeout_ms=30000,
                          subscribed_topic_names=[topic]))  # fmt: skip  # a rejoins with epoch 0
    describe(pair, group)
    compare_hb(pair, beat(group, s, -2, instance_id="inst"))
    describe(pair, group)
    compare_hb(pair, join(group, member_id(), [topic], instance_id="inst"))
    describe(pair, group)


def test_describe_list_and_describe_groups(pair: Pair) -> None:
    group, classic = new_group(pair), new_group(pair)
    topic = new_topic(pair, 1)
    compare_hb(pair, join(group, member_id(), [topic]))
    partition = {"partition_index": 0, "committed_offset": 3, "committed_metadata": ""}
    commit = {"group_id": classic, "generation_id_or_member_epoch": -1, "member_id": "",
              "topics": [{"name": topic, "partitions": [partition]}]}  # fmt: skip
    pair.compare(OFFSET_COMMIT, commit, version=9)
    describe(pair, group, classic, pair.name("none"))

    def ours(answer: Any) -> Any:
        return {**answer, "groups": [g for g in answer["groups"] if g["group_id"] in (group, classic)]}

    for types in ([], ["consumer"], ["Classic"], ["nothing"]):
        pair.compare(LIST_GROUPS, {"states_filter": [], "types_filter": types}, view=ours, unordered=("groups",))
    pair.compare(LIST_GROUPS, {"states_filter": ["stable"], "types_filter": []}, view=ours, unordered=("groups",))
    for version in (5, 6):
        pair.compare(DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": False}, version=version)
    kstub, kafka = pair.send(DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": False}, version=6)
    pair.judge("DescribeGroups v6 error message", kstub.groups[0].error_message, kafka.groups[0].error_message)


def test_offsets_with_member_epochs(pair: Pair) -> None:
    group = new_group(pair)
    topic = new_topic(pair, 1)
    m = member_id()
    compare_hb(pair, join(group, m, [topic]))

    def commit(epoch: int, member: str) -> dict[str, Any]:
        partition = {"partition_index": 0, "committed_offset": 5, "committed_metadata": ""}
        return {"group_id": group, "generation_id_or_member_epoch": epoch, "member_id": member,
                "topics": [{"name": topic, "partitions": [partition]}]}  # fmt: skip

    for epoch, member, version in ((2, m, 9), (1, member_id(), 9), (-1, "", 9), (1, m, 8), (1, m, 9)):
        pair.compare(OFFSET_COMMIT, commit(epoch, member), version=version)

    def fetch(member: str | None, epoch: int) -> dict[str, Any]:
        wanted = [{"name": topic, "partition_indexes": [0]}]
        one = {"group_id": group, "member_id": member, "member_epoch": epoch, "topics": wanted}
        return {"groups": [one], "require_stable": False}

    for member, epoch in ((m, 1), (m, 0), (member_id(), 1), (None, -1)):
        pair.compare(OFFSET_FETCH, fetch(member, epoch), version=9)
