"""Shared fixtures: a kstub cluster served from a background thread on loopback."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import pytest

from kstub.compat.realkafka import RealKafka, RealKafkaUnavailable
from kstub.embedded import Cluster

from support.external import require_programs, unavailable


@pytest.fixture
def kstub_cluster(kafka_cluster: Cluster) -> Cluster:
    """The shipped fixture `kafka_cluster` (kstub/pytest_plugin.py), under the suite's older name.

    `@pytest.mark.kstub(brokers=3, config={...})` is an alias of the plugin's
    `@pytest.mark.kafka_cluster(...)` (see `pytest_collection_modifyitems`).
    The suite runs it with ``kstub_scope = function`` (pyproject.toml): each
    test gets a fresh cluster, with the fixture defaults (e.g.
    group.initial.rebalance.delay.ms=0) unless its marker overrides them.
    """
    return kafka_cluster


@pytest.fixture
def bootstrap(kstub_cluster: Cluster) -> str:
    return kstub_cluster.bootstrap_servers


@pytest.fixture
def kcat() -> str:
    """The path of kcat; the test skips without it (fails under CI, where .ci/run installs it)."""
    require_programs("kcat")
    return shutil.which("kcat")


@pytest.fixture(autouse=True)
def _quiet_client_logs() -> None:
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def _real_kafka_session() -> Iterator[RealKafka | str]:
    """One real Kafka node for the whole run, started on first use (or why it could not start)."""
    try:
        kafka = RealKafka(brokers=1).start()
    except RealKafkaUnavailable as exc:
        yield str(exc)
        return
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def real_kafka(_real_kafka_session: RealKafka | str) -> RealKafka:
    """Real Apache Kafka (one KRaft node, the version pinned in compat/kafka/pom.xml), shared by the run.

    Tests using it make their own topics and groups with unique names. Where it
    cannot run (no java, Maven Central out of reach) the test skips with the
    reason, and fails under CI.
    """
    if isinstance(_real_kafka_session, str):
        unavailable(f"real Kafka unavailable: {_real_kafka_session}")
    return _real_kafka_session


#: What `-m "not slow"` leaves out for a fast loop: tests that start JVMs or real Kafka, build packages,
#: move a lot of data, or wait out real failovers (marked here, in one place, by where they live).
SLOW_PATHS = (
    "tests/compat/",
    "tests/differential/",
    "tests/packaging/",
    "tests/tools/",
    "tests/fuzz/test_fuzz_server.py",
    "tests/integration/test_compaction.py",
    "tests/integration/test_compression_bombs.py",
    "tests/integration/test_consumer_protocol_clients.py",
    "tests/integration/test_mixed_group_clients.py",
    "tests/integration/test_consumer_group_failover.py",
    "tests/integration/test_consumer_group_scenarios.py",
    "tests/integration/test_consumer_group_restart.py",
    "tests/integration/test_console.py",
    "tests/integration/test_console_browser.py",
    "tests/integration/test_coordinator_failover.py",
    "tests/integration/test_durability.py",
    "tests/integration/test_failover.py",
    "tests/integration/test_groups_clients.py",
    "tests/integration/test_memory_budget.py",
    "tests/integration/test_read_committed_clients.py",
    "tests/integration/test_replication_readme.py",
    "tests/integration/test_security_clients.py",
    "tests/integration/test_security_readme.py",
    "tests/integration/test_transactions_each_client.py",
    "tests/integration/test_transactions_eos.py",
    "tests/integration/test_transactions_java.py",
    "tests/integration/test_transactions_timeout.py",
    "tests/integration/test_txn_copier.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        path = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if path.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)
        alias = item.get_closest_marker("kstub")
        if alias is not None and item.get_closest_marker("kafka_cluster") is None:
            item.add_marker(pytest.mark.kafka_cluster(*alias.args, **alias.kwargs))
