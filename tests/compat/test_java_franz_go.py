"""The Java client's and franz-go's legs of the matrix against kstub: every scenario, through their drivers.

Each leg builds its driver on first use (Maven for compat/java, `go build` for
compat/go) and runs every scenario against kstub in-process (3 brokers, its
control plane, auto-creation off), as `python -m compat --clients java` does.
Neither client may skip anything: both can express every scenario. The cells
they fail against any broker are declared (`limitations`, confirmed against
real Kafka by the matrix against both brokers): those must fail, with the
scenario's own reason, and every other cell must pass. Without java and mvn
(or go) the test skips, saying so; under CI it fails.
"""

from __future__ import annotations

import re

import pytest

from kstub.compat.__main__ import self_started
from kstub.compat.build import GO_DIR
from kstub.compat.clients import CLIENTS
from kstub.compat.realkafka import KAFKA_VERSION
from kstub.compat.report import text
from kstub.compat.runner import FAIL, PASS, Runner
from kstub.compat.scenarios import SCENARIOS

from support.external import require_programs, unavailable

PROGRAMS = {"java": ("java", "mvn"), "franz-go": ("go",)}
LIMITATION_REASONS = {"null-key-spread": "all 30 null-key messages went to one partition"}


def _franz_go_version() -> str:
    found = re.search(r"github\.com/twmb/franz-go (v\S+)", (GO_DIR / "go.mod").read_text())
    assert found, "go.mod pins no franz-go version"
    return found.group(1)


@pytest.mark.parametrize("name", ["java", "franz-go"])
def test_leg_runs_every_scenario_against_kstub(name: str) -> None:
    require_programs(*PROGRAMS[name])
    cls = CLIENTS[name]
    reason = cls.unavailable()
    if reason:
        unavailable(reason)
    with self_started(brokers=3) as (bootstrap, admin_url):
        results = Runner(
            bootstrap,
            [cls],
            list(SCENARIOS.values()),
            admin_url=admin_url,
            timeout=15.0,
            cell_timeout=90.0,
            jobs=3,
        ).run()
    matrix = text(results)
    version = results.clients[name] or ""
    expected = KAFKA_VERSION if name == "java" else _franz_go_version()
    assert version.startswith(f"{expected} ("), f"{name} reported version {version!r}\n{matrix}"
    cells = {c.scenario: c for c in results.cells}
    assert set(cls.limitations) <= set(LIMITATION_REASONS), cls.limitations
    for scenario, cell in cells.items():
        if scenario in cls.limitations:
            assert cell.status == FAIL, f"{scenario} is declared a limitation of {name} but did not fail\n{matrix}"
            assert cell.reason.startswith(LIMITATION_REASONS[scenario]), matrix
            assert f"a known limitation of {name}" in cell.reason, matrix
        else:
            assert cell.status == PASS, f"{scenario} x {name}: {cell.status}: {cell.reason}\n{matrix}"
