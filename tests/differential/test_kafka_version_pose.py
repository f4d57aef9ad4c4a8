"""kstub posing as the pinned Kafka (`--kafka-version 4.4`) against that real Kafka.

Its ApiVersions ranges are 4.4's, minimums included (kstub's default keeps the
versions Kafka 4.0 removed; posing, it does not), but for the newest versions
kstub does not implement (differences.toml: api-versions-posing-4-4); and every
request at a version Kafka 4 removed closes the connection on both, Produce
v0-v2 included, which both still advertise.
"""

from __future__ import annotations

import pytest
from test_api_versions import REMOVED, SOFTWARE, _removed_request

from kstub.compat.realkafka import KAFKA_VERSION
from kstub.kafka_client import AdminError, BrokerConnection
from kstub.kafka_versions import release_name
from kstub.protocol import APIS

from support.diff_requests import create
from support.differential import Pair

POSED = release_name(KAFKA_VERSION)

pytestmark = pytest.mark.kstub(kafka_version=POSED)


def test_version_ranges_as_the_real_kafka(pair: Pair) -> None:
    kstub, kafka = pair.send(18, SOFTWARE)
    ours = {k.api_key: [k.min_version, k.max_version] for k in kstub.api_keys}
    theirs = {k.api_key: [k.min_version, k.max_version] for k in kafka.api_keys}
    assert set(ours) <= set(theirs), f"kstub advertises APIs Kafka does not: {set(ours) - set(theirs)}"
    pair.judge(
        "ApiVersions ranges (posing)",
        {APIS[k].name: ours[k] for k in sorted(ours)},
        {APIS[k].name: theirs[k] for k in sorted(ours)},
        known=f"api-versions-posing-{POSED.replace('.', '-')}",
    )


def test_removed_versions_close_the_connection_as_on_kafka(pair: Pair) -> None:
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
    assert set(outcomes["kafka"].values()) == {"connection closed"}
    pair.judge("removed versions (posing)", outcomes["kstub"], outcomes["kafka"])


def test_derived_table_is_what_the_real_kafka_advertises(pair: Pair) -> None:
    """The derivation's rule (listeners, unstable versions, telemetry, Produce from v0) checked on the pinned
    release: the table read from 4.4's jars is the real 4.4 broker's ApiVersions answer, every API included."""
    from kstub.kafka_versions import RELEASES

    _, kafka = pair.send(18, SOFTWARE)
    real = {k.api_key: (k.min_version, k.max_version) for k in kafka.api_keys}
    derived = {int(k): tuple(v) for k, v in RELEASES[POSED]["advertised"].items()}
    assert derived == real
