"""Fixtures of the broker tests: an in-memory cluster under Trio's autojump clock, and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support.memory import MemoryClient, MemoryCluster, memory_cluster


@pytest.fixture
async def cluster(request: pytest.FixtureRequest, autojump_clock) -> AsyncIterator[MemoryCluster]:
    """A fresh in-memory cluster; `@pytest.mark.kstub(brokers=3, config={...})` changes it."""
    marker = request.node.get_closest_marker("kstub")
    kwargs = dict(marker.kwargs) if marker else {}
    async with memory_cluster(kwargs.get("brokers", 1), kwargs.get("config")) as mc:
        yield mc


@pytest.fixture
async def raw(cluster: MemoryCluster) -> AsyncIterator[MemoryClient]:
    """A client of broker 0 of `cluster`."""
    async with cluster.connect(0) as c:
        yield c
