"""The `pair` fixture: a fresh kstub cluster and the run's real Kafka, side by side."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kstub.compat.realkafka import RealKafka
from kstub.embedded import EmbeddedCluster

from support.differential import Pair, comparisons_made


@pytest.fixture
def pair(kstub_cluster: EmbeddedCluster, real_kafka: RealKafka) -> Iterator[Pair]:
    """One connection to a fresh one-broker kstub and one to the shared real Kafka node."""
    p = Pair(kstub_cluster.bootstrap_servers, real_kafka.bootstrap_servers)
    try:
        yield p
    finally:
        p.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    made = comparisons_made()
    if made:
        terminalreporter.write_line(f"differential: {made} request/response comparisons of kstub with real Kafka")
