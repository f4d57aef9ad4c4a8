"""ACLs over the protocol: DescribeAcls/CreateAcls/DeleteAcls, and each API's authorization checks.

In-memory connections are User:ANONYMOUS (as Kafka's PLAINTEXT ones): the
tests grant or refuse that principal through the cluster's ACLs, then send the
request and look at the error Kafka would answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from kstub.cluster.acls import STANDARD_AUTHORIZER, Acl, PatternType, Permission, ResourceType
from kstub.cluster.acls import AclOperation as Op
from kstub.protocol import ApiKey, ErrorCode

from support.memory import MemoryClient, memory_cluster
from support.raw_requests import batch

ANON = "User:ANONYMOUS"
AUTHZ = {"authorizer.class.name": STANDARD_AUTHORIZER}
T, G, C, TX = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER, ResourceType.TRANSACTIONAL_ID


def grant(mc: Any, rtype: ResourceType, name: str, *ops: Op, permission: Permission = Permission.ALLOW) -> None:
    mc.model.acls.add(Acl(rtype, name, PatternType.LITERAL, ANON, "*", op, permission) for op in ops)


@pytest.fixture
async def admin(autojump_clock):
    """An authorizer with User:ANONYMOUS as a super user: the ACL APIs themselves."""
    async with memory_cluster(1, {**AUTHZ, "super.users": ANON}) as mc, mc.connect(0) as c:
        yield c


@pytest.fixture
async def secured(autojump_clock):
    """An authorizer, no ACLs yet, topic "t" and an ANONYMOUS client: the model and the client."""
    async with memory_cluster(1, AUTHZ) as mc, mc.connect(0) as c:
        mc.model.create_topic("t", 1, 1)
        yield mc, c


def creation(rtype: int = 2, name: str = "t", pattern: int = 3, principal: str = "User:alice", **kw: Any) -> dict:
    return {
        "resource_type": rtype,
        "resource_name": name,
        "resource_pattern_type": pattern,
        "principal": principal,
        "host": kw.get("host", "*"),
        "operation": kw.get("operation", 3),
        "permission_type": kw.get("permission_type", 3),
    }


def any_filter(**kw: Any) -> dict:
    base = {
        "resource_type_filter": 1,
        "resource_name_filter": None,
        "pattern_type_filter": 1,
        "principal_filter": None,
        "host_filter": None,
        "operation": 1,
        "permission_type": 1,
    }
    return base | kw


def described(body: Any) -> set[tuple]:
    return {
        (r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host, a.operation, a.permission_type)
        for r in body.resources
        for a in r.acls
    }


# --- the ACL APIs ---------------------------------------------------------------------------


async def test_without_an_authorizer_the_acl_apis_answer_security_disabled(autojump_clock) -> None:
    async with memory_cluster(1) as mc, mc.connect(0) as c:
        d = await c.request(ApiKey.DESCRIBE_ACLS, 3, any_filter())
        assert (d.error_code, d.error_message) == (
            ErrorCode.SECURITY_DISABLED,
            "No Authorizer is configured on the broker",
        )
        created = await c.request(ApiKey.CREATE_ACLS, 3, {"creations": [creation(), creation(name="u")]})
        assert [r.error_code for r in created.results] == [ErrorCode.SECURITY_DISABLED] * 2
        deleted = await c.request(ApiKey.DELETE_ACLS, 3, {"filters": [any_filter()]})
        assert [r.error_code for r in deleted.filter_results] == [ErrorCode.SECURITY_DISABLED]


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_create_describe_delete(admin: MemoryClient, version: int) -> None:
    created = await admin.request(
        ApiKey.CREATE_ACLS,
        version,
        {
            "creations": [
                creation(),
                creation(name="orders-", pattern=4, permission_type=2, operation=4),
                creation(),  # the same binding twice: created once, both succeed
            ]
        },
    )
    assert [(r.error_code, r.error_message) for r in created.results] == [(0, "")] * 3  # Kafka: empty, not null
    everything = await admin.request(ApiKey.DESCRIBE_ACLS, version, any_filter())
    assert everything.error_code == ErrorCode.NONE
    assert described(everything) == {(2, "t", 3, "User:alice", "*", 3, 3), (2, "orders-", 4, "User:alice", "*", 4, 2)}
    match = any_filter(resource_type_filter=2, resource_name_filter="orders-1", pattern_type_filter=2)
    assert described(await admin.request(ApiKey.DESCRIBE_ACLS, version, match)) == {
        (2, "orders-", 4, "User:alice", "*", 4, 2)
    }
    deleted = await admin.request(
        ApiKey.DELETE_ACLS, version, {"filters": [any_filter(pattern_type_filter=3), any_filter(operation=8)]}
    )
    assert [[(m.resource_name, m.operation) for m in r.matching_acls] for r in deleted.filter_results] == [
        [("t", 3)],
        [],
    ]
    assert described(await admin.request(ApiKey.DESCRIBE_ACLS, version, any_filter())) == {
        (2, "orders-", 4, "User:alice", "*", 4, 2)
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (creation(rtype=4, name="other"), "The only valid name for the CLUSTER resource is kafka-cluster"),
        (creation(name=""), "Invalid empty resource name"),
        (creation(rtype=42), "Invalid resourceType UNKNOWN"),  # codes Kafka does not know become UNKNOWN
        (creation(pattern=42), "Invalid patternType UNKNOWN"),
        (creation(operation=42), "Invalid operation UNKNOWN"),
        (creation(permission_type=42), "Invalid permissionType UNKNOWN"),
        (creation(principal="alice"), "Could not parse principal from `alice`"),
    ],
)
async def test_create_refuses_what_kafka_refuses(admin: MemoryClient, bad: dict, message: str) -> None:
    created = await admin.request(ApiKey.CREATE_ACLS, 3, {"creations": [bad, creation(name="kept")]})
    first, second = created.results
    assert first.error_code == ErrorCode.INVALID_REQUEST and first.error_message.startswith(message)
    assert second.error_code == ErrorCode.NONE
    assert {r.resource_name for r in (await admin.request(ApiKey.DESCRIBE_ACLS, 3, any_filter())).resources} == {"kept"}


@pytest.mark.parametrize(
    ("api", "body"),
    [
        (ApiKey.DESCRIBE_ACLS, any_filter(operation=0)),
        (ApiKey.CREATE_ACLS, {"creations": [creation(rtype=0)]}),
        (ApiKey.DELETE_ACLS, {"filters": [any_filter(pattern_type_filter=0)]}),
    ],
)
async def test_unknown_codes_close_the_connection(admin: MemoryClient, api: int, body: dict) -> None:
    await admin.send(api, 3, body)
    assert await admin.closed_by_broker()


@pytest.mark.parametrize(
    "bad",
    [creation(rtype=1), creation(pattern=2), creation(pattern=1), creation(operation=1), creation(permission_type=1)],
)
async def test_any_or_match_in_a_binding_fails_the_whole_request(admin: MemoryClient, bad: dict) -> None:
    created = await admin.request(ApiKey.CREATE_ACLS, 3, {"creations": [creation(name="kept"), bad]})
    assert [r.error_code for r in created.results] == [ErrorCode.UNKNOWN_SERVER_ERROR] * 2
    assert (await admin.request(ApiKey.DESCRIBE_ACLS, 3, any_filter())).resources == []


async def test_delete_filters_with_codes_kafka_does_not_know(admin: MemoryClient) -> None:
    await admin.request(ApiKey.CREATE_ACLS, 3, {"creations": [creation()]})
    filters = [any_filter(pattern_type_filter=42), any_filter(operation=42), any_filter(resource_type_filter=42)]
    deleted = await admin.request(ApiKey.DELETE_ACLS, 3, {"filters": filters})
    assert [(r.error_code, r.error_message) for r in deleted.filter_results] == [
        (ErrorCode.INVALID_REQUEST, "Unknown patternFilter."),
        (ErrorCode.INVALID_REQUEST, "Unknown entryFilter."),
        (ErrorCode.INVALID_REQUEST, "Unknown patternFilter."),
    ]
    assert len((await admin.request(ApiKey.DESCRIBE_ACLS, 3, any_filter())).resources) == 1


async def test_acl_apis_need_cluster_describe_and_alter(secured) -> None:
    mc, c = secured
    d = await c.request(ApiKey.DESCRIBE_ACLS, 3, any_filter())
    assert d.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    created = await c.request(ApiKey.CREATE_ACLS, 3, {"creations": [creation()]})
    assert [r.error_code for r in created.results] == [ErrorCode.CLUSTER_AUTHORIZATION_FAILED]
    grant(mc, C, "kafka-cluster", Op.ALTER)  # ALTER implies DESCRIBE
    assert (await c.request(ApiKey.DESCRIBE_ACLS, 3, any_filter())).error_code == ErrorCode.NONE
    created = await c.request(ApiKey.CREATE_ACLS, 3, {"creations": [creation()]})
    assert [r.error_code for r in created.results] == [ErrorCode.NONE]
    deleted = await c.request(ApiKey.DELETE_ACLS, 3, {"filters": [any_filter(principal_filter="User:alice")]})
    assert [len(r.matching_acls) for r in deleted.filter_results] == [1]


async def test_acls_survive_a_restart_with_a_data_dir(tmp_path) -> None:
    from kstub.cluster.config import BrokerConfig
    from kstub.cluster.disk_store import DiskStore
    from kstub.cluster.model import ClusterState

    def cluster() -> ClusterState:
        model = ClusterState(BrokerConfig(AUTHZ))
        model.add_broker(0, "127.0.0.1", 9)
        model.store = DiskStore(tmp_path)
        model.store.recover(model)
        return model

    first = cluster()
    first.acls.add([Acl(T, "orders-", PatternType.PREFIXED, "User:alice", "*", Op.READ, Permission.ALLOW)])
    first.store.save_metadata(first)
    first.store.close(first)
    assert cluster().acls.bindings() == first.acls.bindings()


# --- enforcement, API by API -----------------------------------------------------------------


async def test_produce_needs_write(secured) -> None:
    mc, c = secured
    body = {
        "acks": 1,
        "timeout_ms": 5000,
        "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": batch(1)}]}],
    }
    answer = (await c.request(ApiKey.PRODUCE, 9, body)).responses[0].partition_responses[0]
    assert answer.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert mc.model.topics["t"].partitions[0].high_watermark == 0
    grant(mc, T, "t", Op.WRITE)
    assert (await c.request(ApiKey.PRODUCE, 9, body)).responses[0].partition_responses[0].error_code == 0


async def test_fetch_needs_read_and_list_offsets_describe(secured) -> None:
    mc, c = secured
    fetch = {
        "max_wait_ms": 0,
        "min_bytes": 1,
        "max_bytes": 1 << 20,
        "topics": [{"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}],
    }
    offsets = {"replica_id": -1, "topics": [{"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}]}]}
    assert (await c.request(ApiKey.FETCH, 12, fetch)).responses[0].partitions[0].error_code == 29
    assert (await c.request(ApiKey.LIST_OFFSETS, 7, offsets)).topics[0].partitions[0].error_code == 29
    grant(mc, T, "t", Op.READ)  # READ implies DESCRIBE
    assert (await c.request(ApiKey.FETCH, 12, fetch)).responses[0].partitions[0].error_code == 0
    assert (await c.request(ApiKey.LIST_OFFSETS, 7, offsets)).topics[0].partitions[0].error_code == 0


async def test_metadata_hides_topics_and_auto_creation_needs_create(secured) -> None:
    mc, c = secured
    mc.model.create_topic("visible", 1, 1)
    grant(mc, T, "visible", Op.DESCRIBE)
    every = await c.request(ApiKey.METADATA, 12, {"topics": None, "include_topic_authorized_operations": True})
    assert [(t.name, t.topic_authorized_operations) for t in every.topics] == [("visible", 1 << 8)]
    named = await c.request(ApiKey.METADATA, 12, {"topics": [{"name": "t"}, {"name": "visible"}, {"name": "new"}]})
    assert [(t.name, t.error_code) for t in named.topics] == [("visible", 0), ("t", 29), ("new", 29)]
    grant(mc, T, "new", Op.DESCRIBE)  # may know of it, may not create it
    asked = {"topics": [{"name": "new"}], "allow_auto_topic_creation": True}
    assert [t.error_code for t in (await c.request(ApiKey.METADATA, 12, asked)).topics] == [29]
    assert "new" not in mc.model.topics
    grant(mc, T, "new", Op.CREATE)
    assert [t.error_code for t in (await c.request(ApiKey.METADATA, 12, asked)).topics] == [3]  # being created
    assert "new" in mc.model.topics
    cluster_ops = await c.request(ApiKey.METADATA, 10, {"topics": [], "include_cluster_authorized_operations": True})
    assert cluster_ops.cluster_authorized_operations == 0  # no DESCRIBE on the cluster


async def test_group_apis_need_group_read(secured) -> None:
    mc, c = secured
    join = {
        "group_id": "g",
        "session_timeout_ms": 10000,
        "rebalance_timeout_ms": 10000,
        "member_id": "",
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b""}],
    }
    commit = {
        "group_id": "g",
        "generation_id_or_member_epoch": -1,
        "member_id": "",
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 0}]}],
    }
    fetch = {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}]}
    denied = ErrorCode.GROUP_AUTHORIZATION_FAILED
    assert (await c.request(ApiKey.JOIN_GROUP, 9, join)).error_code == denied
    sync = {
        "group_id": "g",
        "generation_id": 1,
        "member_id": "m",
        "protocol_type": "consumer",
        "protocol_name": "range",
    }
    assert (await c.request(ApiKey.SYNC_GROUP, 5, sync)).error_code == denied
    assert (
        await c.request(ApiKey.HEARTBEAT, 4, {"group_id": "g", "generation_id": 1, "member_id": "m"})
    ).error_code == denied
    assert (
        await c.request(ApiKey.LEAVE_GROUP, 5, {"group_id": "g", "members": [{"member_id": "m"}]})
    ).error_code == denied
    assert (await c.request(ApiKey.OFFSET_COMMIT, 8, commit)).topics[0].partitions[0].error_code == denied
    assert (await c.request(ApiKey.OFFSET_FETCH, 8, fetch)).groups[0].error_code == denied
    found = await c.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["g"]})
    assert found.coordinators[0].error_code == denied
    grant(mc, G, "g", Op.READ)
    assert (await c.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["g"]})).coordinators[
        0
    ].error_code == 0
    # the group may be used, the topic not yet
    assert (await c.request(ApiKey.OFFSET_COMMIT, 8, commit)).topics[0].partitions[0].error_code == 29
    fetched = (await c.request(ApiKey.OFFSET_FETCH, 8, fetch)).groups[0]
    assert (fetched.error_code, fetched.topics[0].partitions[0].error_code) == (0, 29)
    grant(mc, T, "t", Op.READ)
    assert (await c.request(ApiKey.OFFSET_COMMIT, 8, commit)).topics[0].partitions[0].error_code == 0
    assert (await c.request(ApiKey.OFFSET_FETCH, 8, fetch)).groups[0].topics[0].partitions[0].committed_offset == 0


async def test_group_admin_apis(secured) -> None:
    mc, c = secured
    commit = {
        "group_id": "g",
        "generation_id_or_member_epoch": -1,
        "member_id": "",
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 0}]}],
    }
    grant(mc, G, "g", Op.READ)
    grant(mc, T, "t", Op.READ)
    assert (await c.request(ApiKey.OFFSET_COMMIT, 8, commit)).topics[0].partitions[0].error_code == 0
    listed = await c.request(ApiKey.LIST_GROUPS, 4, {})
    assert [g.group_id for g in listed.groups] == ["g"]  # READ implies DESCRIBE
    described = await c.request(
        ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["other", "g"], "include_authorized_operations": True}
    )
    assert [(g.group_id, g.error_code) for g in described.groups] == [("other", 30), ("g", 0)]
    assert described.groups[1].authorized_operations == (1 << 3) | (1 << 8)
    deleted = await c.request(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["g"]})
    assert [(r.group_id, r.error_code) for r in deleted.results] == [("g", 30)]
    grant(mc, G, "g", Op.DELETE)
    deleted = await c.request(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["g"]})
    assert [(r.group_id, r.error_code) for r in deleted.results] == [("g", 0)]


async def test_topic_admin_apis(secured) -> None:
    mc, c = secured
    create = {"topics": [{"name": "n", "num_partitions": 1, "replication_factor": 1}], "timeout_ms": 5000}
    created = (await c.request(ApiKey.CREATE_TOPICS, 7, create)).topics[0]
    assert (created.name, created.error_code, created.error_message) == ("n", 29, "Authorization failed.")
    grant(mc, T, "n", Op.CREATE)
    assert (await c.request(ApiKey.CREATE_TOPICS, 7, create)).topics[0].error_code == 0
    grow = {"topics": [{"name": "n", "count": 2, "assignments": None}], "timeout_ms": 5000, "validate_only": False}
    assert (await c.request(ApiKey.CREATE_PARTITIONS, 3, grow)).results[0].error_code == 29
    grant(mc, T, "n", Op.ALTER)
    assert (await c.request(ApiKey.CREATE_PARTITIONS, 3, grow)).results[0].error_code == 0
    delete = {"topics": [{"name": "n"}], "timeout_ms": 5000}
    assert (await c.request(ApiKey.DELETE_TOPICS, 6, delete)).responses[0].error_code == 29
    grant(mc, T, "n", Op.DELETE)
    assert (await c.request(ApiKey.DELETE_TOPICS, 6, delete)).responses[0].error_code == 0
    assert "n" not in mc.model.topics


async def test_config_apis(secured) -> None:
    mc, c = secured
    describe = {
        "resources": [
            {"resource_type": 2, "resource_name": "t", "configuration_keys": None},
            {"resource_type": 4, "resource_name": "0", "configuration_keys": None},
        ]
    }
    assert [r.error_code for r in (await c.request(ApiKey.DESCRIBE_CONFIGS, 4, describe)).results] == [29, 31]
    alter = {
        "resources": [
            {
                "resource_type": 2,
                "resource_name": "t",
                "configs": [{"name": "retention.ms", "config_operation": 0, "value": "1000"}],
            }
        ],
        "validate_only": False,
    }
    assert [r.error_code for r in (await c.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, alter)).responses] == [29]
    grant(mc, T, "t", Op.ALTER_CONFIGS)  # implies DESCRIBE_CONFIGS
    grant(mc, C, "kafka-cluster", Op.DESCRIBE_CONFIGS)
    assert [r.error_code for r in (await c.request(ApiKey.DESCRIBE_CONFIGS, 4, describe)).results] == [0, 0]
    assert [r.error_code for r in (await c.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, alter)).responses] == [0]
    assert mc.model.topics["t"].configs["retention.ms"] == "1000"


async def test_describe_cluster_operations(secured) -> None:
    mc, c = secured
    asked = {"include_cluster_authorized_operations": True}
    assert (await c.request(ApiKey.DESCRIBE_CLUSTER, 1, asked)).cluster_authorized_operations == 0
    grant(mc, C, "kafka-cluster", Op.DESCRIBE, Op.IDEMPOTENT_WRITE)
    assert (await c.request(ApiKey.DESCRIBE_CLUSTER, 1, asked)).cluster_authorized_operations == (1 << 8) | (1 << 12)


async def test_init_producer_id(secured) -> None:
    mc, c = secured
    idempotent = {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    transactional = idempotent | {"transactional_id": "tx"}
    assert (await c.request(ApiKey.INIT_PRODUCER_ID, 4, idempotent)).error_code == 31
    assert (await c.request(ApiKey.INIT_PRODUCER_ID, 4, transactional)).error_code == 53
    grant(mc, T, "t", Op.WRITE)  # WRITE on some topic is enough for an idempotent producer
    assert (await c.request(ApiKey.INIT_PRODUCER_ID, 4, idempotent)).error_code == 0
    grant(mc, TX, "tx", Op.WRITE)
    assert (await c.request(ApiKey.INIT_PRODUCER_ID, 4, transactional)).error_code == 0
    found = await c.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 1, "coordinator_keys": ["tx", "other"]})
    assert [k.error_code for k in found.coordinators] == [0, 53]


async def test_super_users_and_allow_everyone(autojump_clock) -> None:
    async with memory_cluster(1, {**AUTHZ, "allow.everyone.if.no.acl.found": "true"}) as mc, mc.connect(0) as c:
        mc.model.create_topic("t", 1, 1)
        mc.model.create_topic("u", 1, 1)
        grant(mc, T, "u", Op.READ, permission=Permission.DENY)
        names = [t.name for t in (await c.request(ApiKey.METADATA, 12, {"topics": None})).topics]
        # any binding naming u (even a DENY READ) takes u out of allow.everyone.if.no.acl.found
        assert names == ["t"]
        body = {
            "acks": 1,
            "timeout_ms": 5000,
            "topic_data": [{"name": n, "partition_data": [{"index": 0, "records": batch(1)}]} for n in ("t", "u")],
        }
        errors = [r.partition_responses[0].error_code for r in (await c.request(ApiKey.PRODUCE, 9, body)).responses]
        assert errors == [0, 29]


@pytest.mark.parametrize(
    ("peer", "host"),
    [("127.0.0.1:5000", "127.0.0.1"), ("::1:5000", "0:0:0:0:0:0:0:1"), ("fe80::a:22", "fe80:0:0:0:0:0:0:a")],
)
def test_client_hosts_are_written_as_kafka_writes_them(peer: str, host: str) -> None:
    """ACL host entries are compared with the client's address as Java writes it (IPv6 in full)."""
    from kstub.handlers.base import Context

    ctx = Context.__new__(Context)
    ctx.peer = peer
    assert ctx.client_host == host
