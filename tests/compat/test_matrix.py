"""The whole compatibility matrix against kstub: every real client, every scenario, no cell may fail.

Runs `kstub.compat` as `python -m compat` does without --bootstrap (kstub
in-process: 3 brokers, auto-creation off, no initial rebalance delay, and its
admin API). kstub offers every capability the scenarios need (groups, the
control plane...), so the only skips are what a client cannot do, and each
must say why; kafka-python and confluent-kafka are test dependencies, so their
cells never skip for being absent. On failure the assertion message is the
matrix with every reason.
"""

from __future__ import annotations

from kstub.compat.__main__ import self_started
from kstub.compat.clients import CLIENTS
from kstub.compat.report import text
from kstub.compat.runner import FAIL, SKIP, Runner
from kstub.compat.scenarios import CONTROL_PLANE, GROUPS, NO_AUTO_CREATE, SCENARIOS, THREE_BROKERS

#: the Java client and franz-go have tests of their own (test_java_franz_go.py), which need java, mvn and go
DRIVEN = ("java", "franz-go")


def test_every_client_passes_every_scenario_it_can_run() -> None:
    with self_started(brokers=3) as (bootstrap, admin_url):
        runner = Runner(
            bootstrap,
            [c for c in CLIENTS.values() if c.name not in DRIVEN],
            list(SCENARIOS.values()),
            admin_url=admin_url,
            timeout=15.0,
            cell_timeout=90.0,
            jobs=3,
        )
        results = runner.run()
    matrix = text(results)
    assert not [c for c in results.cells if c.status == FAIL], "\n" + matrix
    # kstub has every capability a scenario can need, so no cell may be skipped for the cluster's sake
    assert results.capabilities.caps >= {GROUPS, NO_AUTO_CREATE, CONTROL_PLANE, THREE_BROKERS}, results.capabilities
    assert all(c.reason for c in results.cells if c.status == SKIP), "\n" + matrix
    for name in ("kafka-python", "confluent-kafka"):
        assert results.clients[name] is not None, f"{name} is a test dependency but is not installed"
        plain = [s.name for s in SCENARIOS.values() if not s.needs]
        skipped = [c.scenario for c in results.cells if c.client == name and c.scenario in plain and c.status == SKIP]
        assert not skipped, f"{name} skipped scenarios that need nothing of the cluster: {skipped}\n{matrix}"
