"""The suite judges: a client that loses, reorders or invents messages fails its cell, with the reason;
one that cannot do something is a skip with the reason; the reports carry every cell."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kstub.compat.__main__ import main
from kstub.compat.clients.kafka_python import KafkaPython
from kstub.compat.model import Record, Unsupported
from kstub.compat.report import markdown
from kstub.compat.runner import FAIL, PASS, SKIP, Runner
from kstub.compat.scenarios import SCENARIOS


class Lossy(KafkaPython):
    name = "lossy"

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        return super().consume(topic, starts, count)[1:]


class Reordering(KafkaPython):
    name = "reordering"

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        got = super().consume(topic, starts, count)
        first = got[0].partition
        mine = [r for r in got if r.partition == first]
        return [*mine[::-1], *(r for r in got if r.partition != first)]


class Duplicating(KafkaPython):
    name = "duplicating"

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        got = super().consume(topic, starts, count)
        return [*got, got[-1]]


class NoTimestamps(KafkaPython):
    name = "no-timestamps"

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        raise Unsupported("no-timestamps has no offsets-for-times API")


def _run(bootstrap: str, clients: list, scenarios: list[str]):
    return Runner(bootstrap, clients, [SCENARIOS[s] for s in scenarios], timeout=10.0, jobs=2).run()


@pytest.mark.kstub(brokers=1, config={"auto.create.topics.enable": False})
def test_wrong_results_fail_with_the_reason(bootstrap: str) -> None:
    results = _run(bootstrap, [KafkaPython, Lossy, Reordering, Duplicating], ["keyed-order"])
    cells = {c.client: c for c in results.cells}
    assert cells["kafka-python"].status == PASS, cells["kafka-python"]
    assert cells["lossy"].status == FAIL
    assert "1 message(s) missing" in cells["lossy"].reason
    assert cells["reordering"].status == FAIL
    assert "offsets in partition" in cells["reordering"].reason
    assert cells["duplicating"].status == FAIL
    assert "1 unexpected" in cells["duplicating"].reason
    assert results.failed


@pytest.mark.kstub(brokers=1, config={"auto.create.topics.enable": False})
def test_what_a_client_or_cluster_cannot_do_is_a_skip_with_the_reason(bootstrap: str) -> None:
    results = _run(bootstrap, [NoTimestamps], ["offsets-for-times", "failover-acks-all"])
    cells = {c.scenario: c for c in results.cells}
    assert cells["offsets-for-times"].status == SKIP
    assert cells["offsets-for-times"].reason == "no-timestamps has no offsets-for-times API"
    assert cells["failover-acks-all"].status == SKIP
    assert "control plane" in cells["failover-acks-all"].reason  # and one broker only
    assert not results.failed


def test_a_cluster_without_groups_skips_group_scenarios_naming_the_missing_apis() -> None:
    from kstub.compat.model import CapabilityMissing
    from kstub.compat.scenarios import CONTROL_PLANE, require

    needs = SCENARIOS["group-rebalance"].needs
    with pytest.raises(CapabilityMissing, match=r"ApiVersions lacks JoinGroup\(11\), SyncGroup\(14\)"):
        require(frozenset({CONTROL_PLANE}), needs, ["JoinGroup(11)", "SyncGroup(14)"])
    require(frozenset({"groups"}), needs, [])  # no exception


def test_cli_writes_json_and_markdown_and_exits_nonzero_on_failure(kstub_cluster, tmp_path, capsys) -> None:
    # auto-creation is on in this cluster: the missing-topic scenario is a skip that says so
    out_json, out_md = tmp_path / "m.json", tmp_path / "m.md"
    code = main(
        [
            "--bootstrap",
            kstub_cluster.bootstrap_servers,
            "--clients",
            "kafka-python,confluent-kafka",
            "--scenarios",
            "metadata,missing-topic",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
            "-q",
        ]
    )
    assert code == 0
    data = json.loads(out_json.read_text())
    statuses = {(c["scenario"], c["client"]): c["status"] for c in data["cells"]}
    assert statuses == {
        ("metadata", "kafka-python"): PASS,
        ("metadata", "confluent-kafka"): PASS,
        ("missing-topic", "kafka-python"): SKIP,
        ("missing-topic", "confluent-kafka"): SKIP,
    }
    assert "auto.create.topics.enable=true" in data["cells"][-1]["reason"]
    md = out_md.read_text()
    assert "| `metadata` | pass | pass |" in md
    assert "| `missing-topic` | skip [1] | skip [1] |" in md
    printed = capsys.readouterr().out
    assert "2 passed, 0 failed, 2 skipped" in printed


def test_markdown_marks_failures() -> None:
    from kstub.compat.runner import Capabilities, Cell, Results

    s = SCENARIOS["metadata"]
    results = Results(
        "x:1",
        {"a": "1.0", "b": None},
        [s],
        Capabilities(frozenset(), 1),
        [Cell("metadata", "a", FAIL, "it broke"), Cell("metadata", "b", SKIP, "b is not installed")],
        0.0,
    )
    md = markdown(results)
    assert "| `metadata` | **fail** [1] | skip [2] |" in md
    assert "1. fail: it broke" in md and "2. skip: b is not installed" in md
    assert "b (not available)" in md


def test_kstub_compat_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kstub", "compat", "--list"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for name in SCENARIOS:
        assert name in out
    assert "kafkajs" in out


@pytest.mark.kstub(brokers=1, config={"auto.create.topics.enable": False})
def test_cli_exits_1_when_a_cell_fails(bootstrap: str, monkeypatch, capsys) -> None:
    from kstub.compat.clients import CLIENTS

    monkeypatch.setitem(CLIENTS, "lossy", Lossy)
    code = main(["--bootstrap", bootstrap, "--clients", "lossy", "--scenarios", "keyed-order", "-q"])
    assert code == 1
    assert "keyed-order  FAIL [1]" in capsys.readouterr().out
