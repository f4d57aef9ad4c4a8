"""Shared fixtures: a kstub cluster served from a background thread on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from kstub.embedded import EmbeddedCluster

#: broker settings every test cluster starts from (a marker's config wins)
TEST_BROKER_CONFIG = {"group.initial.rebalance.delay.ms": "0"}


@pytest.fixture
def kstub_cluster(request: pytest.FixtureRequest) -> Iterator[EmbeddedCluster]:
    """A fresh one-broker cluster; `@pytest.mark.kstub(brokers=3, config={...})` changes it.

    Tests get group.initial.rebalance.delay.ms=0 (Kafka's default, 3000, would
    hold every new group's first assignment for 3 s) unless the marker sets it.
    """
    marker = request.node.get_closest_marker("kstub")
    kwargs = dict(marker.kwargs) if marker else {}
    kwargs["config"] = {**TEST_BROKER_CONFIG, **(kwargs.get("config") or {})}
    with EmbeddedCluster(**kwargs) as cluster:
        yield cluster


@pytest.fixture
def bootstrap(kstub_cluster: EmbeddedCluster) -> str:
    return kstub_cluster.bootstrap_servers


@pytest.fixture(autouse=True)
def _quiet_client_logs() -> None:
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
