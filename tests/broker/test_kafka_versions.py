"""`--kafka-version`: kstub posing as an older Apache Kafka, without sockets.

The expected ranges below are facts of the releases (their ApiVersions as
documented by the releases' message schemas), written out here rather than
read back from kstub's table, so a wrong derivation fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from kstub.cluster.config import BrokerConfig
from kstub.kafka_versions import UnknownKafkaVersion, known, release_name, resolve
from kstub.protocol import ErrorCode

from support.memory import MemoryClient, memory_cluster
from support.raw_requests import batch, create_req, produce_req

SOFTWARE = {"client_software_name": "kstub-test", "client_software_version": "1.0"}


async def api_versions(c: MemoryClient, version: int = 3) -> Any:
    return await c.request(18, version, SOFTWARE if version >= 3 else {})


def ranges(answer: Any) -> dict[int, tuple[int, int]]:
    return {k.api_key: (k.min_version, k.max_version) for k in answer.api_keys}


async def closes(c: MemoryClient, api_key: int, version: int, body: dict) -> bool:
    """True if the broker closes the connection on this request instead of answering."""
    await c.send(api_key, version, body)
    return await c.closed_by_broker()


def test_release_names() -> None:
    assert release_name("2.8") == release_name("2.8.2") == "2.8"
    assert release_name("3") == release_name("3.x") == "3.9"
    assert release_name("4") == known()[-1]
    with pytest.raises(UnknownKafkaVersion, match=r"2\.8, 3\.0"):
        release_name("2.7")
    with pytest.raises(ValueError, match=r"kstub\.kafka\.version"):
        BrokerConfig({"kstub.kafka.version": "1.1"})["kstub.kafka.version"]
    assert resolve("") is None


async def test_kafka_2_8(autojump_clock) -> None:
    async with memory_cluster(1, {"kstub.kafka.version": "2.8"}) as mc, mc.connect(0) as c:
        answer = await api_versions(c)
        served = ranges(answer)
        # Kafka 2.8's broker: Produce 0-9, Fetch 0-12, Metadata 0-11, ApiVersions 0-3, DescribeCluster 0 (new in 2.8)
        assert served[0] == (0, 9) and served[1] == (0, 12) and served[3] == (0, 11) and served[18] == (0, 3)
        assert served[60] == (0, 0) and served[45] == (0, 0) and served[46] == (0, 0)
        assert 68 not in served and 75 not in served  # KIP-848 and DescribeTopicPartitions came later
        # a ZooKeeper-based cluster of 2.8 reports no feature levels
        assert list(answer.supported_features) == [] and list(answer.finalized_features) == []
        assert answer.finalized_features_epoch == -1
        req = create_req("old")
        assert (await c.request(req.api_key, req.version, req.body)).topics[0].error_code == 0
        produced = produce_req("old", batch(2), version=2)  # accepted before 4.0
        answer = await c.request(produced.api_key, produced.version, produced.body)
        assert answer.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        # ApiVersions v4 did not exist: the v0-shaped UNSUPPORTED_VERSION answer, naming 0-3
        too_new = await api_versions(c, 4)
        assert too_new.error_code == ErrorCode.UNSUPPORTED_VERSION and ranges(too_new) == {18: (0, 3)}
    async with memory_cluster(1, {"kstub.kafka.version": "2.8"}) as mc, mc.connect(0) as c:
        body = {"topics": [], "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}
        assert await closes(c, 3, 12, body)  # Metadata v12 came with 3.0


async def test_kafka_4_0_refuses_what_it_removed(autojump_clock) -> None:
    async with memory_cluster(1, {"kstub.kafka.version": "4.0"}) as mc:
        async with mc.connect(0) as c:
            answer = await api_versions(c, 4)
            served = ranges(answer)
            # 4.0 still advertises Produce from v0 (KAFKA-18659), but Fetch from v4, ListOffsets from v1
            assert served[0] == (0, 12) and served[1] == (4, 17) and served[2] == (1, 10)
            levels = {f.name: f.max_version_level for f in answer.finalized_features}
            assert levels == {"metadata.version": 25, "group.version": 1, "transaction.version": 2}
            req = create_req("new")
            assert (await c.request(req.api_key, req.version, req.body)).topics[0].error_code == 0
        for version in (0, 2):
            async with mc.connect(0) as c:
                produced = produce_req("new", batch(2), version=version)
                assert await closes(c, produced.api_key, produced.version, produced.body)
        async with mc.connect(0) as c:
            produced = produce_req("new", batch(2), version=3)
            answer = await c.request(produced.api_key, produced.version, produced.body)
            assert answer.responses[0].partition_responses[0].error_code == ErrorCode.NONE


async def test_kafka_3_7_consumer_protocol_not_enabled(autojump_clock) -> None:
    async with memory_cluster(1, {"kstub.kafka.version": "3.7"}) as mc, mc.connect(0) as c:
        answer = await api_versions(c)
        served = ranges(answer)
        assert served[68] == (0, 0) and 69 not in served  # ConsumerGroupDescribe was still unstable in 3.7
        assert {f.name: f.max_version for f in answer.supported_features} == {"metadata.version": 19}
        body = {
            "group_id": "g",
            "member_id": "",
            "member_epoch": 0,
            "instance_id": None,
            "rack_id": None,
            "rebalance_timeout_ms": 30000,
            "subscribed_topic_names": ["t"],
            "server_assignor": None,
            "topic_partitions": [],
        }
        answer = await c.request(68, 0, body)
        assert answer.error_code == ErrorCode.UNSUPPORTED_VERSION


async def test_default_is_the_newest_surface(autojump_clock) -> None:
    async with memory_cluster(1) as mc, mc.connect(0) as c:
        served = ranges(await api_versions(c))
        assert served[1][0] == 0  # kstub keeps Fetch v0-v3 for old clients
        assert served[68] == (0, 1)
