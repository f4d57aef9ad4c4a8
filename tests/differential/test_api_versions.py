"""ApiVersions: which APIs and versions each broker serves, and its own error path.

For every API kstub serves, its version range must equal Kafka's but for the
differences listed in differences.toml (``api-versions``): kstub keeps old
versions Kafka 4 removed, and lacks some newer ones.
"""

from __future__ import annotations

import pytest

from kstub.protocol import APIS

from support.differential import Pair

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


def test_v3_feature_levels(pair: Pair) -> None:
    pair.compare(
        18, SOFTWARE, version=3, ignore=("api_keys", "finalized_features_epoch"), known="api-versions-features"
    )
    kstub, kafka = pair.send(18, SOFTWARE, version=3)
    # the epoch is the metadata offset where Kafka finalized its features: it moves as topics are made
    assert kstub.finalized_features_epoch == -1
    assert kafka.finalized_features_epoch >= 0


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
