"""DescribeTopicPartitions (75): topics in name order, unknown ones flagged, pages by cursor."""

from __future__ import annotations

import pytest

from kstub.protocol import ErrorCode

from support.memory import memory_cluster
from support.raw_requests import create_req


@pytest.fixture
async def raw(autojump_clock):
    async with memory_cluster(1, None) as mc, mc.connect(0) as c:
        yield c


async def describe(raw, names: list[str], limit: int = 2000, cursor: dict | None = None):
    return await raw.request(75, 0, {"topics": [{"name": n} for n in names], "response_partition_limit": limit,
                                     "cursor": cursor})  # fmt: skip


async def test_pages_through_partitions_in_topic_order(raw) -> None:
    for name, partitions in (("b", 3), ("a", 2)):
        req = create_req(name, partitions)
        assert req.pick(await raw.request(req.api_key, req.version, req.body)).error_code == ErrorCode.NONE

    body = await describe(raw, ["b", "nope", "a"])
    assert [(t.name, t.error_code, [p.partition_index for p in t.partitions]) for t in body.topics] == [
        ("a", ErrorCode.NONE, [0, 1]),
        ("b", ErrorCode.NONE, [0, 1, 2]),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []),
    ]
    assert body.next_cursor is None
    p = body.topics[0].partitions[0]
    assert (p.leader_id, p.replica_nodes, p.isr_nodes, p.eligible_leader_replicas, p.last_known_elr) == (
        0, [0], [0], [], []
    )  # fmt: skip

    pages, cursor = [], None
    while True:
        body = await describe(raw, [], limit=2, cursor=cursor)  # no names: every topic
        pages.append([(t.name, [p.partition_index for p in t.partitions]) for t in body.topics])
        if body.next_cursor is None:
            break
        cursor = {"topic_name": body.next_cursor.topic_name, "partition_index": body.next_cursor.partition_index}
    assert pages == [[("a", [0, 1])], [("b", [0, 1])], [("b", [2])]]
