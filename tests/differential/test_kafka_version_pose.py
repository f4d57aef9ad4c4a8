"""kstub posing as the pinned Kafka (`--kafka-version 4.4`) against that real Kafka.

Its ApiVersions ranges are 4.4's, minimums included (kstub's default keeps the
versions Kafka 4.0 removed; posing, it does not), but for the newest versions
kstub does not implement (differences.toml: api-versions-posing-4-4); and every
request at a version Kafka 4 removed closes the connection on both, Produce
v0-v2 included, which both still advertise.
"""

from __future__ import annotations

import pytest
from test_api_versions import SOFTWARE, removed_outcomes

from kstub.compat.realkafka import KAFKA_VERSION
from kstub.kafka_versions import release_name
from kstub.protocol import APIS

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
    outcomes = removed_outcomes(pair)
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
