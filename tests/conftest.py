"""Shared fixtures: a kstub cluster served from a background thread on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from kstub.embedded import EmbeddedCluster


@pytest.fixture
def kstub_cluster(request: pytest.FixtureRequest) -> Iterator[EmbeddedCluster]:
    """A fresh one-broker cluster; `@pytest.mark.kstub(brokers=3, config={...})` changes it."""
    marker = request.node.get_closest_marker("kstub")
    kwargs = dict(marker.kwargs) if marker else {}
    with EmbeddedCluster(**kwargs) as cluster:
        yield cluster


@pytest.fixture
def bootstrap(kstub_cluster: EmbeddedCluster) -> str:
    return kstub_cluster.bootstrap_servers


@pytest.fixture(autouse=True)
def _quiet_client_logs() -> None:
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
