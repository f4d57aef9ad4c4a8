"""kstub's pytest plugin, registered through the ``pytest11`` entry point (``-p no:kstub`` turns it off).

Fixtures:

- ``kafka_cluster``: a `kstub.Cluster`. One cluster is shared by the tests of
  a session (``--kstub-scope`` / ini ``kstub_scope``: session, package, module,
  class or function) and `reset` before each test, so every test starts with
  no topics and no groups. ``@pytest.mark.kafka_cluster(brokers=3,
  partitions=..., config={...})`` gives a test a fresh cluster of its own.
- ``kafka_bootstrap``: the bootstrap servers string for Kafka clients.

``--kafka-bootstrap HOST:PORT`` runs the same tests against an external
cluster, a real Kafka: ``kafka_bootstrap`` is then that address, and the tests
that need kstub itself (``kafka_cluster``: its model, control plane, `reset`,
or a cluster built to a marker's settings) are skipped with the reason. Tests
written against ``kafka_bootstrap`` alone are the portable ones.

This module is imported by every pytest run where kstub is installed, so it
imports nothing heavy: Trio and the broker load when a fixture is first used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kstub.embedded import Cluster

MARKER = "kafka_cluster"
SCOPES = ("session", "package", "module", "class", "function")
_ADDRESS = re.compile(r"[^\s,:]+:\d{1,5}|\[[0-9a-fA-F:.]+\]:\d{1,5}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kstub", "kstub: a Kafka cluster in the test process")
    group.addoption(
        "--kstub-brokers",
        type=int,
        default=None,
        metavar="N",
        help="brokers in the kafka_cluster fixture's cluster (default: ini kstub_brokers, or 1)",
    )
    group.addoption(
        "--kstub-scope",
        choices=SCOPES,
        default=None,
        help="how long one kafka_cluster lives; it is reset between tests (default: ini kstub_scope, or session)",
    )
    group.addoption(
        "--kafka-bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="run against this external Kafka cluster instead of kstub: kafka_bootstrap returns it, "
        "tests using kafka_cluster or its marker are skipped",
    )
    parser.addini("kstub_brokers", "brokers in the kafka_cluster fixture's cluster (default 1)", default="1")
    parser.addini("kstub_scope", "scope of the shared kafka_cluster: " + ", ".join(SCOPES), default="session")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(brokers=1, partitions=None, config=None): give this test a fresh kstub cluster with these "
        "settings (kafka_cluster and kafka_bootstrap fixtures)",
    )
    _brokers(config)
    _scope(MARKER, config)
    external = _external(config)
    if external is not None and not all(_ADDRESS.fullmatch(a) for a in external.split(",")):
        raise pytest.UsageError(f"--kafka-bootstrap: expected HOST:PORT[,HOST:PORT...], got {external!r}")


def pytest_report_header(config: pytest.Config) -> str | None:
    external = _external(config)
    if external is not None:
        return f"kafka: external cluster at {external} (--kafka-bootstrap); tests needing kafka_cluster are skipped"
    return None


def _external(config: pytest.Config) -> str | None:
    return config.getoption("kafka_bootstrap")


def _brokers(config: pytest.Config) -> int:
    value = config.getoption("kstub_brokers")
    if value is None:
        try:
            value = int(config.getini("kstub_brokers"))
        except ValueError:
            raise pytest.UsageError(f"ini kstub_brokers: not a number: {config.getini('kstub_brokers')!r}") from None
    if value < 1:
        raise pytest.UsageError(f"kstub: a cluster needs at least one broker, not {value}")
    return value


def _scope(fixture_name: str, config: pytest.Config) -> str:
    scope = config.getoption("kstub_scope") or config.getini("kstub_scope")
    if scope not in SCOPES:
        raise pytest.UsageError(f"ini kstub_scope: expected one of {', '.join(SCOPES)}, got {scope!r}")
    return scope


@pytest.fixture(scope=_scope)
def _kstub_shared_cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The cluster `kafka_cluster` hands out to unmarked tests, one per ``kstub_scope``."""
    from kstub.embedded import Cluster

    with Cluster(brokers=_brokers(pytestconfig)) as cluster:
        yield cluster


def _marker_settings(request: pytest.FixtureRequest, marker: pytest.Mark) -> dict[str, Any]:
    if marker.args:
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.{MARKER} takes keyword arguments "
            "(brokers=, partitions=, config=), not positional ones"
        )
    return {"brokers": _brokers(request.config), **marker.kwargs}


@pytest.fixture
def kafka_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A kstub cluster (`kstub.Cluster`) with no topics and no groups.

    ``bootstrap_servers``, ``create_topic(name, partitions=, replication_factor=, config=)``,
    ``control`` (fault injection), ``cluster`` (the model, through ``call``).
    Shared across tests and reset before each; ``@pytest.mark.kafka_cluster(...)``
    gives a test a fresh one. Skipped under ``--kafka-bootstrap``.
    """
    external = _external(request.config)
    if external is not None:
        pytest.skip(f"needs kstub's kafka_cluster; running against the external cluster {external}")
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        from kstub.embedded import Cluster

        with Cluster(**_marker_settings(request, marker)) as cluster:
            yield cluster
        return
    cluster = request.getfixturevalue("_kstub_shared_cluster")
    cluster.reset()
    yield cluster


@pytest.fixture
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """Bootstrap servers (``host:port,...``) of `kafka_cluster`, or of the cluster given with ``--kafka-bootstrap``."""
    external = _external(request.config)
    if external is None:
        return request.getfixturevalue("kafka_cluster").bootstrap_servers
    if request.node.get_closest_marker(MARKER) is not None:
        pytest.skip(f"@pytest.mark.{MARKER} settings cannot be applied to the external cluster {external}")
    return external
