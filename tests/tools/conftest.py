"""Kafka's own command-line tools against kstub (and, to compare, against real Kafka)."""

from __future__ import annotations

import pytest

from support.kafka_tools import require_kafka_tools


@pytest.fixture(autouse=True)
def _kafka_tools() -> None:
    """Every test here runs Kafka's tools: skip (fail under CI) where their jars cannot be had."""
    require_kafka_tools()
