"""FindCoordinator: which broker coordinates a group or a transactional id, one key (v0-3) or a batch (v4)."""

from __future__ import annotations

import pytest

from support.differential import Pair

FIND_COORDINATOR = 10
GROUP, TRANSACTION = 0, 1


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_group_coordinator_of_one_key(pair: Pair, version: int) -> None:
    group = pair.name("g")
    pair.wait_for_coordinator(group)
    body = {"key": group} if version == 0 else {"key": group, "key_type": GROUP}
    ours, _ = pair.compare(FIND_COORDINATOR, body, version=version)
    assert ours["error_code"] == 0 and ours["node_id"] == "node#0"


@pytest.mark.parametrize("version", [1, 3])
def test_transaction_coordinator_of_one_key(pair: Pair, version: int) -> None:
    key = pair.name("tx")
    pair.wait_for_coordinator(key, TRANSACTION)
    ours, _ = pair.compare(FIND_COORDINATOR, {"key": key, "key_type": TRANSACTION}, version=version)
    assert ours["error_code"] == 0


@pytest.mark.parametrize("key_type", [GROUP, TRANSACTION])
def test_batched_keys(pair: Pair, key_type: int) -> None:
    keys = [pair.name("k"), pair.name("k"), "", pair.name("k")]
    for key in keys:
        pair.wait_for_coordinator(key, key_type)
    ours, _ = pair.compare(FIND_COORDINATOR, {"key_type": key_type, "coordinator_keys": keys}, version=4)
    assert [c["key"] for c in ours["coordinators"]] == keys


@pytest.mark.parametrize("key_type", [GROUP, TRANSACTION])
def test_empty_key(pair: Pair, key_type: int) -> None:
    pair.wait_for_coordinator("", key_type)
    pair.compare(FIND_COORDINATOR, {"key": "", "key_type": key_type}, version=3)


@pytest.mark.parametrize(("version", "key_type"), [(1, 2), (3, 2), (3, -1), (4, 2), (4, 7)])
def test_unknown_key_type(pair: Pair, version: int, key_type: int) -> None:
    """Key type 2 (share groups) is Kafka's from v6 only: below, like any unknown type, INVALID_REQUEST."""
    key = pair.name("k")
    if version >= 4:
        ours, _ = pair.compare(FIND_COORDINATOR, {"key_type": key_type, "coordinator_keys": [key]}, version=version)
        assert ours["coordinators"][0]["error_code"] == 42
    else:
        ours, _ = pair.compare(FIND_COORDINATOR, {"key": key, "key_type": key_type}, version=version)
        assert ours["error_code"] == 42
