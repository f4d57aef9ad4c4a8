"""Authorization of the APIs that came after the ACLs: transactions, KIP-848 groups, quotas, config listings.

In memory (User:ANONYMOUS, as a PLAINTEXT client) under Trio's autojump
clock, with Kafka's StandardAuthorizer semantics: each test grants the
principal what the API needs step by step and checks the error Kafka's
KafkaApis answers at each step (TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED,
CLUSTER_AUTHORIZATION_FAILED) and that a refused request changed nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from kstub.cluster.acls import STANDARD_AUTHORIZER, Acl, PatternType, Permission, ResourceType
from kstub.cluster.acls import AclOperation as Op
from kstub.protocol import ApiKey, ErrorCode

from support.memory import MemoryClient, memory_cluster
from support.raw_requests import batch

ANON = "User:ANONYMOUS"
AUTHZ = {"authorizer.class.name": STANDARD_AUTHORIZER}
T, G, C, TX = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER, ResourceType.TRANSACTIONAL_ID
E = ErrorCode


def grant(mc: Any, rtype: ResourceType, name: str, *ops: Op, permission: Permission = Permission.ALLOW) -> None:
    mc.model.acls.add(Acl(rtype, name, PatternType.LITERAL, ANON, "*", op, permission) for op in ops)


def deny(mc: Any, rtype: ResourceType, name: str, *ops: Op) -> None:
    grant(mc, rtype, name, *ops, permission=Permission.DENY)


@pytest.fixture
async def secured(autojump_clock):
    """An authorizer, no ACLs yet, topics "t" and "u" (2 partitions) and an ANONYMOUS client."""
    async with memory_cluster(1, AUTHZ) as mc, mc.connect(0) as c:
        mc.model.create_topic("t", 2, 1)
        mc.model.create_topic("u", 1, 1)
        yield mc, c


async def init(c: MemoryClient, tid: str) -> tuple[int, int]:
    body = {"transactional_id": tid, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    answer = await c.request(ApiKey.INIT_PRODUCER_ID, 4, body)
    assert answer.error_code == E.NONE
    return answer.producer_id, answer.producer_epoch


async def add(c: MemoryClient, tid: str, pid: int, epoch: int, topics: dict[str, list[int]]) -> dict:
    body = {
        "v3_and_below_transactional_id": tid,
        "v3_and_below_producer_id": pid,
        "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": n, "partitions": ps} for n, ps in topics.items()],
    }
    answer = await c.request(ApiKey.ADD_PARTITIONS_TO_TXN, 3, body)
    return {
        (t.name, p.partition_index): p.partition_error_code
        for t in answer.results_by_topic_v3_and_below
        for p in t.results_by_partition
    }


def offsets_body(tid: str, pid: int, epoch: int, group: str, topics: dict[str, list[int]]) -> dict:
    return {
        "transactional_id": tid,
        "group_id": group,
        "producer_id": pid,
        "producer_epoch": epoch,
        "generation_id": -1,
        "member_id": "",
        "topics": [
            {"name": n, "partitions": [{"partition_index": i, "committed_offset": 0} for i in ps]}
            for n, ps in topics.items()
        ],
    }


def txn_errors(answer: Any) -> dict:
    return {(t.name, p.partition_index): p.error_code for t in answer.topics for p in t.partitions}


# --- transactions ----------------------------------------------------------------------------------


async def test_a_transaction_step_by_step(secured) -> None:
    mc, c = secured
    grant(mc, TX, "tx", Op.WRITE)
    pid, epoch = await init(c, "tx")
    # another transactional id: refused everywhere before anything else is looked at
    assert await add(c, "other", pid, epoch, {"t": [0, 1]}) == {("t", 0): 53, ("t", 1): 53}
    ids = {"producer_id": pid, "producer_epoch": epoch}
    other = {"transactional_id": "other", **ids}
    assert (await c.request(ApiKey.ADD_OFFSETS_TO_TXN, 3, other | {"group_id": "g"})).error_code == 53
    ended = await c.request(ApiKey.END_TXN, 3, other | {"committed": True})
    assert (ended.error_code, ended.producer_id, ended.producer_epoch) == (53, -1, -1)
    refused = await c.request(ApiKey.TXN_OFFSET_COMMIT, 3, offsets_body("other", pid, epoch, "g", {"t": [0, 1]}))
    assert txn_errors(refused) == {("t", 0): 53, ("t", 1): 53}

    # its own id: WRITE on each topic (checked before whether it exists; internal topics never)
    added = await add(c, "tx", pid, epoch, {"t": [0], "missing": [0], "__consumer_offsets": [0]})
    assert added == {("t", 0): 29, ("missing", 0): 29, ("__consumer_offsets", 0): 29}
    grant(mc, T, "t", Op.WRITE)
    grant(mc, T, "missing", Op.WRITE)
    added = await add(c, "tx", pid, epoch, {"t": [0], "u": [0], "missing": [0]})
    assert added == {("t", 0): 55, ("u", 0): 29, ("missing", 0): 3}  # the others: OPERATION_NOT_ATTEMPTED
    assert mc.model.transactions.get("tx").topics() == {}
    assert await add(c, "tx", pid, epoch, {"t": [0, 1]}) == {("t", 0): 0, ("t", 1): 0}

    # the offsets: READ on the group, then READ on each topic
    mine = {"transactional_id": "tx", **ids, "group_id": "g"}
    assert (await c.request(ApiKey.ADD_OFFSETS_TO_TXN, 3, mine)).error_code == 30
    committed = await c.request(ApiKey.TXN_OFFSET_COMMIT, 3, offsets_body("tx", pid, epoch, "g", {"t": [0]}))
    assert txn_errors(committed) == {("t", 0): 30}
    grant(mc, G, "g", Op.READ)
    assert (await c.request(ApiKey.ADD_OFFSETS_TO_TXN, 3, mine)).error_code == 0
    body = offsets_body("tx", pid, epoch, "g", {"t": [0], "u": [0], "gone": [0]})
    assert txn_errors(await c.request(ApiKey.TXN_OFFSET_COMMIT, 3, body)) == {
        ("t", 0): 29,
        ("u", 0): 29,
        ("gone", 0): 29,
    }
    grant(mc, T, "t", Op.READ)
    grant(mc, T, "gone", Op.READ)
    assert txn_errors(await c.request(ApiKey.TXN_OFFSET_COMMIT, 3, body)) == {
        ("t", 0): 0,
        ("u", 0): 29,
        ("gone", 0): 3,
    }
    ended = await c.request(ApiKey.END_TXN, 3, {"transactional_id": "tx", **ids, "committed": True})
    assert ended.error_code == 0


def txn_records(pid: int, epoch: int) -> bytes:
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True, producer_id=pid,
                                        producer_epoch=epoch, base_sequence=0, batch_size=1 << 20)  # fmt: skip
    builder.append(0, timestamp=1_700_000_000_000, key=b"k", value=b"v", headers=[])
    return bytes(builder.build())


async def test_transactional_produce_needs_transactional_id_write(secured) -> None:
    mc, c = secured
    grant(mc, TX, "tx", Op.WRITE)
    pid, epoch = await init(c, "tx")
    assert await add(c, "tx", pid, epoch, {"t": [0]}) == {("t", 0): 29}
    grant(mc, T, "t", Op.WRITE)
    assert await add(c, "tx", pid, epoch, {"t": [0]}) == {("t", 0): 0}

    def produce(tid: str | None, records: bytes) -> dict:
        data = [{"name": n, "partition_data": [{"index": 0, "records": records}]} for n in ("t", "u")]
        return {"transactional_id": tid, "acks": -1, "timeout_ms": 5000, "topic_data": data}

    async def errors(body: dict) -> list[int]:
        answer = await c.request(ApiKey.PRODUCE, 9, body)
        return [r.partition_responses[0].error_code for r in answer.responses]

    # transactional records without WRITE on the id (or without an id): every partition refused
    assert await errors(produce("other", txn_records(pid, epoch))) == [53, 53]
    assert await errors(produce(None, txn_records(pid, epoch))) == [53, 53]
    assert mc.model.topics["t"].partitions[0].high_watermark == 0
    # its own id: WRITE on each topic decides
    assert await errors(produce("tx", txn_records(pid, epoch))) == [0, 29]
    # plain records need no transactional id
    assert await errors(produce("other", batch(1))) == [0, 29]


async def test_add_partitions_from_brokers_needs_cluster_action(secured) -> None:
    mc, c = secured
    body = {
        "transactions": [
            {"transactional_id": "tx", "producer_id": 1, "producer_epoch": 0, "verify_only": True, "topics": []}
        ]
    }
    answer = await c.request(ApiKey.ADD_PARTITIONS_TO_TXN, 4, body)
    assert (answer.error_code, answer.results_by_transaction) == (E.CLUSTER_AUTHORIZATION_FAILED, [])
    grant(mc, C, "kafka-cluster", Op.CLUSTER_ACTION)
    answer = await c.request(ApiKey.ADD_PARTITIONS_TO_TXN, 4, body)
    assert (answer.error_code, [r.transactional_id for r in answer.results_by_transaction]) == (0, ["tx"])


async def test_describe_and_list_transactions_show_what_may_be_described(secured) -> None:
    mc, c = secured
    grant(mc, TX, "tx", Op.WRITE)  # WRITE implies DESCRIBE
    grant(mc, TX, "hidden", Op.WRITE)
    grant(mc, T, "t", Op.WRITE)
    grant(mc, T, "u", Op.WRITE)
    pid, epoch = await init(c, "tx")
    assert await add(c, "tx", pid, epoch, {"t": [0], "u": [0]}) == {("t", 0): 0, ("u", 0): 0}
    await init(c, "hidden")
    deny(mc, T, "u", Op.DESCRIBE)  # may still write u, no longer see it
    deny(mc, TX, "hidden", Op.DESCRIBE)
    described = await c.request(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": ["tx", "hidden", "none"]})
    states = {s.transactional_id: s for s in described.transaction_states}
    assert [(i, s.error_code) for i, s in states.items()] == [("tx", 0), ("hidden", 53), ("none", 53)]
    assert [(x.topic, list(x.partitions)) for x in states["tx"].topics] == [("t", [0])]
    assert (states["hidden"].producer_id, states["hidden"].transaction_state) == (0, "")
    listed = await c.request(ApiKey.LIST_TRANSACTIONS, 1, {"state_filters": [], "producer_id_filters": []})
    assert [s.transactional_id for s in listed.transaction_states] == ["tx"]
    assert sorted(mc.model.transactions.get(t).producer_id >= 0 for t in ("tx", "hidden")) == [True, True]


async def test_describe_producers_needs_read(secured) -> None:
    mc, c = secured
    body = {"topics": [{"name": "t", "partition_indexes": [0, 1]}, {"name": "missing", "partition_indexes": [0]}]}
    answer = await c.request(ApiKey.DESCRIBE_PRODUCERS, 0, body)
    assert [[p.error_code for p in t.partitions] for t in answer.topics] == [[29, 29], [29]]
    grant(mc, T, "t", Op.READ)
    grant(mc, T, "missing", Op.READ)
    answer = await c.request(ApiKey.DESCRIBE_PRODUCERS, 0, body)
    assert [[p.error_code for p in t.partitions] for t in answer.topics] == [[0, 0], [3]]


# --- KIP-848 consumer groups -----------------------------------------------------------------------


def join(group: str, topics: list[str] | None, **extra: Any) -> dict:
    return {
        "group_id": group,
        "member_id": "m-1",
        "member_epoch": 0,
        "rebalance_timeout_ms": 30000,
        "subscribed_topic_names": topics,
        "topic_partitions": [],
    } | extra


async def test_consumer_group_heartbeat_needs_group_read_and_topic_describe(secured) -> None:
    mc, c = secured
    answer = await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, join("g", ["t"]))
    assert (answer.error_code, answer.member_id, answer.assignment) == (E.GROUP_AUTHORIZATION_FAILED, None, None)
    # refused before the request is validated (no rebalance timeout on a join: INVALID_REQUEST otherwise)
    invalid = join("g", ["t"], rebalance_timeout_ms=-1)
    assert (await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, invalid)).error_code == E.GROUP_AUTHORIZATION_FAILED
    grant(mc, G, "g", Op.READ)
    answer = await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, join("g", ["t", "u"]))
    assert answer.error_code == E.TOPIC_AUTHORIZATION_FAILED
    described = await c.request(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": ["g"]})
    assert described.groups[0].error_code == E.GROUP_ID_NOT_FOUND  # the refused heartbeats made no group
    grant(mc, T, "t", Op.DESCRIBE)
    assert (await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, join("g", ["t", "u"]))).error_code == 29
    answer = await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, join("g", ["t"]))
    assert answer.error_code == 0 and answer.member_epoch > 0
    # a regex subscription names no topic: only the group is checked
    regex = join("g", None, member_id="m-2", subscribed_topic_regex="u.*")
    assert (await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, regex)).error_code == 0


async def test_a_regex_resolves_to_the_topics_the_member_may_describe(secured) -> None:
    mc, c = secured
    grant(mc, G, "g", Op.READ)
    grant(mc, T, "t", Op.DESCRIBE)  # t and u match; u may not be described
    answer = await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, join("g", None, subscribed_topic_regex="[tu]"))
    assert answer.error_code == 0
    ids = {mc.model.topics[n].topic_id: n for n in ("t", "u")}
    assert {ids[tp.topic_id]: sorted(tp.partitions) for tp in answer.assignment.topic_partitions} == {"t": [0, 1]}
    grant(mc, T, "u", Op.DESCRIBE)  # now it may: the next heartbeat resolves u too
    beat = {"group_id": "g", "member_id": answer.member_id, "member_epoch": answer.member_epoch,
            "topic_partitions": [{"topic_id": mc.model.topics["t"].topic_id, "partitions": [0, 1]}]}  # fmt: skip
    for _ in range(10):  # heartbeats (virtual seconds apart) until the new target reaches the member
        await trio.sleep(1)
        answer = await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, beat | {"member_epoch": answer.member_epoch})
        assert answer.error_code == 0
        if answer.assignment is not None:
            break
    assert {ids[tp.topic_id] for tp in answer.assignment.topic_partitions} == {"t", "u"}


async def test_consumer_group_describe(secured) -> None:
    mc, c = secured
    grant(mc, G, "g", Op.READ)
    grant(mc, T, "t", Op.DESCRIBE)
    joined = await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, join("g", ["t"]))
    assert joined.error_code == 0 and joined.assignment is not None
    asked = {"group_ids": ["g", "denied"], "include_authorized_operations": True}
    described = (await c.request(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, asked)).groups
    # the refused groups first, as Kafka answers them
    assert [(g.group_id, g.error_code) for g in described] == [("denied", 30), ("g", 0)]
    assert described[0].authorized_operations == -(2**31)
    assert described[1].authorized_operations == (1 << 3) | (1 << 8)  # READ and the DESCRIBE it implies
    assert [m.member_id for m in described[1].members] == ["m-1"]
    not_asked = await c.request(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": ["g"]})
    assert not_asked.groups[0].authorized_operations == -(2**31)
    deny(mc, T, "t", Op.DESCRIBE)  # the group's assignment names a topic the principal may not see
    (hidden,) = (await c.request(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": ["g"]})).groups
    assert (hidden.error_code, hidden.members, hidden.group_state) == (E.TOPIC_AUTHORIZATION_FAILED, [], "")
    assert hidden.error_message == "The group has described topic(s) that the client is not authorized to describe."


async def test_without_an_authorizer_describe_lists_every_group_operation(autojump_clock) -> None:
    async with memory_cluster(1) as mc, mc.connect(0) as c:
        mc.model.create_topic("t", 1, 1)
        assert (await c.request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, join("g", ["t"]))).error_code == 0
        asked = {"group_ids": ["g"], "include_authorized_operations": True}
        (group,) = (await c.request(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, asked)).groups
        assert group.authorized_operations == (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)


# --- quotas and config listings ----------------------------------------------------------------------


async def test_client_quotas_need_cluster_configs(secured) -> None:
    mc, c = secured
    entry = {"entity": [{"entity_type": "client-id", "entity_name": "app"}], "ops": [{"key": "producer_byte_rate",
             "value": 1024.0, "remove": False}]}  # fmt: skip
    altered = await c.request(ApiKey.ALTER_CLIENT_QUOTAS, 1, {"entries": [entry, entry], "validate_only": False})
    assert [(e.error_code, [(x.entity_type, x.entity_name) for x in e.entity]) for e in altered.entries] == [
        (E.CLUSTER_AUTHORIZATION_FAILED, [("client-id", "app")])
    ] * 2
    assert mc.model.client_quotas.entities == {}
    described = await c.request(ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, {"components": [], "strict": False})
    assert (described.error_code, described.entries) == (E.CLUSTER_AUTHORIZATION_FAILED, None)
    grant(mc, C, "kafka-cluster", Op.DESCRIBE_CONFIGS)
    assert (await c.request(ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, {"components": [], "strict": False})).entries == []
    altered = await c.request(ApiKey.ALTER_CLIENT_QUOTAS, 1, {"entries": [entry], "validate_only": False})
    assert altered.entries[0].error_code == E.CLUSTER_AUTHORIZATION_FAILED  # DESCRIBE_CONFIGS does not alter
    grant(mc, C, "kafka-cluster", Op.ALTER_CONFIGS)
    altered = await c.request(ApiKey.ALTER_CLIENT_QUOTAS, 1, {"entries": [entry], "validate_only": False})
    assert altered.entries[0].error_code == E.NONE
    assert len(mc.model.client_quotas.entities) == 1


async def test_list_config_resources_needs_cluster_describe_configs(secured) -> None:
    mc, c = secured
    answer = await c.request(ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [2]})
    assert (answer.error_code, answer.config_resources) == (E.CLUSTER_AUTHORIZATION_FAILED, [])
    grant(mc, C, "kafka-cluster", Op.DESCRIBE_CONFIGS)
    answer = await c.request(ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [2]})
    assert (answer.error_code, sorted(r.resource_name for r in answer.config_resources)) == (0, ["t", "u"])


async def test_group_and_client_metrics_configs_are_authorized_as_kafka_does(secured) -> None:
    mc, c = secured
    body = {
        "resources": [
            {"resource_type": 32, "resource_name": "g", "configuration_keys": None},
            {"resource_type": 16, "resource_name": "metrics", "configuration_keys": None},
        ]
    }
    answer = await c.request(ApiKey.DESCRIBE_CONFIGS, 4, body)
    assert [(r.resource_type, r.error_code) for r in answer.results] == [(32, 30), (16, 31)]
    grant(mc, G, "g", Op.DESCRIBE_CONFIGS)
    grant(mc, C, "kafka-cluster", Op.DESCRIBE_CONFIGS)
    answer = await c.request(ApiKey.DESCRIBE_CONFIGS, 4, body)
    assert all(r.error_code not in (30, 31) for r in answer.results)
