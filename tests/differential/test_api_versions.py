"""ApiVersions: which APIs and versions each broker serves, and its own error path.

For every API kstub serves, its version range must equal Kafka's but for the
differences listed in differences.toml (``api-versions``): kstub keeps old
versions Kafka 4 removed, and lacks some newer ones.
"""

from __future__ import annotations

import pytest

from kstub.kafka_client import AdminError, BrokerConnection
from kstub.protocol import APIS

from support.batches import legacy_message
from support.diff_requests import create, fetch_body, produce_body
from support.differential import Pair, Side

SOFTWARE = {"client_software_name": "kstub-differential", "client_software_version": "1.0"}


def test_version_ranges_of_the_apis_kstub_serves(pair: Pair) -> None:
    kstub, kafka = pair.send(18, SOFTWARE)
    ours = {k.api_key: [k.min_version, k.max_version] for k in kstub.api_keys}
    theirs = {k.api_key: [k.min_version, k.max_version] for k in kafka.api_keys}
    assert set(ours) <= set(theirs), f"kstub serves APIs Kafka does not: {set(ours) - set(theirs)}"
    pair.judge(
        "ApiVersions ranges",
        {APIS[k].name: ours[k] for k in sorted(ours)},
        {APIS[k].name: theirs[k] for k in sorted(ours)},
        known="api-versions",
    )


@pytest.mark.parametrize("version", [0, 1, 2])
def test_answer_apart_from_the_ranges(pair: Pair, version: int) -> None:
    pair.compare(18, SOFTWARE, version=version, ignore=("api_keys",))


FEATURES = ("supported_features", "finalized_features")


@pytest.mark.parametrize("version", [3, 4, 5])
def test_feature_levels(pair: Pair, version: int) -> None:
    known = "api-versions-features-v3" if version == 3 else "api-versions-features"
    ignore = ("api_keys", "finalized_features_epoch")
    pair.compare(18, SOFTWARE, version=version, ignore=ignore, known=known, unordered=FEATURES)
    kstub, kafka = pair.send(18, SOFTWARE, version=version)
    # the epoch is the metadata offset where Kafka finalized its features: it moves as topics are made
    assert kstub.finalized_features_epoch >= 0 and kafka.finalized_features_epoch >= 0


def test_v5_cluster_and_node_checks(pair: Pair) -> None:
    """KIP-1242: a client names the cluster and node it expects; both or neither, else INVALID_REQUEST."""

    def asking(cluster: str | None, node: str | int) -> object:
        def body(side: Side) -> dict:
            md = side.conn.request(3, {"topics": [], "allow_auto_topic_creation": False}, version=12)
            ids = {"ours": (md.cluster_id, md.controller_id), "other": ("AAAAAAAAAAAAAAAAAAAAAA", 9999)}
            cluster_id = ids[cluster][0] if cluster else None
            node_id = node if isinstance(node, int) else ids[node][1]
            return {**SOFTWARE, "cluster_id": cluster_id, "node_id": node_id}

        return body

    cases = [(None, -1), ("ours", "ours"), ("ours", -1), (None, "ours"), ("ours", "other"), ("other", "ours")]
    for cluster, node in cases:
        ignore = ("api_keys", "finalized_features_epoch")
        answer, _ = pair.compare(
            18, asking(cluster, node), version=5, ignore=ignore, unordered=FEATURES,
            known="api-versions-features" if cluster == node == "ours" or (cluster is None and node == -1) else None,
        )  # fmt: skip
        expected = {(None, -1): 0, ("ours", "ours"): 0, ("ours", -1): 42, (None, "ours"): 42}.get((cluster, node), 129)
        assert answer["error_code"] == expected, (cluster, node, answer)


@pytest.mark.parametrize(
    "software",
    [
        {"client_software_name": "bad name!", "client_software_version": "1"},
        {"client_software_name": "ok", "client_software_version": "-1"},
        {"client_software_name": "", "client_software_version": ""},
    ],
)
def test_invalid_client_software_is_invalid_request(pair: Pair, software: dict[str, str]) -> None:
    pair.compare(18, software, version=3)


#: requests at versions Kafka 4 removed (Produce v0-v2 it still advertises, for librdkafka's sake)
REMOVED = [(0, 2), (0, 1), (1, 3), (1, 0), (2, 0), (19, 1), (20, 0), (23, 1), (32, 0), (35, 0)]


def _removed_request(api_key: int, version: int, topic: str) -> dict:
    return {
        0: produce_body(topic, legacy_message(magic=1)),
        1: fetch_body(topic, 0),
        2: {"replica_id": -1, "topics": [{"name": topic, "partitions": [{"partition_index": 0, "timestamp": -1}]}]},
        19: {"topics": [], "timeout_ms": 1000, "validate_only": False},
        20: {"topic_names": [], "timeout_ms": 1000},
        23: {"topics": [{"topic": topic, "partitions": [{"partition": 0, "leader_epoch": 0}]}]},
        32: {"resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": ["retention.ms"]}]},
        35: {"topics": []},
    }[api_key]


def removed_outcomes(pair: Pair) -> dict[str, dict[str, str]]:
    """Per side, what each request at a version Kafka 4 removed (REMOVED) met: "connection closed",
    "answered" or "no answer" (a closed connection is replaced for the next request)."""
    topic = create(pair)
    outcomes: dict[str, dict[str, str]] = {"kstub": {}, "kafka": {}}
    for side in pair.sides:
        for api_key, version in REMOVED:
            label = f"{APIS[api_key].name} v{version}"
            try:
                answer = side.conn.request(api_key, _removed_request(api_key, version, topic), version=version)
            except AdminError as exc:
                assert "closed the connection" in str(exc), exc
                outcomes[side.name][label] = "connection closed"
                host, port = side.conn.address.rsplit(":", 1)  # a fresh connection for the next request
                side.admin._bootstrap = BrokerConnection(host, int(port), "differential", 30.0)
            else:
                outcomes[side.name][label] = "answered" if answer is not None else "no answer"
    return outcomes


def test_versions_kafka_4_removed(pair: Pair) -> None:
    outcomes = removed_outcomes(pair)
    pair.judge("removed versions", outcomes["kstub"], outcomes["kafka"], known="removed-versions")


def test_real_kafka_cluster_ids_never_look_like_an_option() -> None:
    """kafka-storage format takes the id on its command line: one starting with '-' failed 1 start in 64."""
    from kstub.compat.realkafka import _cluster_id

    assert not any(_cluster_id().startswith("-") for _ in range(2000))
