"""The matrix against both brokers: each cell's result on kstub beside its result on real Apache Kafka.

A cell failing on kstub only is marked a kstub bug, one failing on both a
client limitation; scenarios needing kstub's control plane are "n/a" on Kafka.
The end-to-end test starts kstub and a 3-node real Kafka (`--against both`)
and runs a reduced set of scenarios and clients.
"""

from __future__ import annotations

import json

import pytest

from kstub.compat.__main__ import main
from kstub.compat.realkafka import KAFKA_VERSION, unavailable_reason
from kstub.compat.report import BEGIN, END, Comparison, compare_markdown, compare_text
from kstub.compat.runner import FAIL, NA, PASS, SKIP, Capabilities, Cell, Results
from kstub.compat.scenarios import SCENARIOS

from support.external import require_programs, unavailable


def _results(cells: list[Cell]) -> Results:
    scenarios = [SCENARIOS[n] for n in dict.fromkeys(c.scenario for c in cells)]
    clients = {c.client: "1.0" for c in cells}
    return Results("x:1", clients, scenarios, Capabilities(frozenset(), 3), cells, 0.0)


def test_each_cell_shows_both_brokers_and_what_a_failure_means() -> None:
    kstub = _results(
        [
            Cell("metadata", "a", FAIL, "brokers differ"),
            Cell("metadata", "b", FAIL, "b cannot do it"),
            Cell("failover-acks-all", "a", PASS),
            Cell("failover-acks-all", "b", SKIP, "b has no producer"),
        ]
    )
    kafka = _results(
        [
            Cell("metadata", "a", PASS),
            Cell("metadata", "b", FAIL, "b cannot do it"),
            Cell("failover-acks-all", "a", NA, "needs kstub's control plane"),
            Cell("failover-acks-all", "b", SKIP, "b has no producer"),
        ]
    )
    cmp = Comparison(kstub, kafka, "9.9.9")
    md = compare_markdown(cmp)
    assert "| `metadata` | **fail** [1] / pass | **fail** [2] / **fail** [2] |" in md
    assert "| `failover-acks-all` | pass / n/a [3] | skip [4] / skip [4] |" in md
    assert "1. fails on kstub only, a kstub bug: brokers differ" in md
    assert "2. fails on both brokers, a client limitation: b cannot do it" in md
    assert "3. n/a: needs kstub's control plane" in md
    assert "4. skip: b has no producer" in md
    assert "against **Apache Kafka 9.9.9**" in md
    assert cmp.kstub_bugs() == [("metadata", "a")]
    assert cmp.differences() == [("metadata", "a")]
    assert "1 cell(s) fail on kstub and pass on Kafka: metadata x a" in compare_text(cmp)


def test_against_cannot_be_combined_with_bootstrap(capsys) -> None:
    assert main(["--bootstrap", "127.0.0.1:1", "--against", "kafka", "-q"]) == 2
    assert "cannot be combined with --bootstrap" in capsys.readouterr().err


@pytest.mark.slow
def test_matrix_against_both_brokers(tmp_path, capsys) -> None:
    reason = unavailable_reason()
    if reason:
        unavailable(f"real Kafka unavailable: {reason}")
    require_programs("java", "mvn")
    readme = tmp_path / "README.md"
    readme.write_text(f"# before\n\n{BEGIN}\nold table\n{END}\n\n# after\n")
    out_json = tmp_path / "both.json"
    code = main(
        [
            "--against", "both",
            "--clients", "confluent-kafka,java",
            "--scenarios", "metadata,null-key-spread,failover-acks-all",
            "--json", str(out_json),
            "--markdown", str(readme),
            "-q",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    data = json.loads(out_json.read_text())
    assert data["kafka_version"] == KAFKA_VERSION
    both = {
        (c["scenario"], c["client"]): (c["status"], k["status"])
        for c, k in zip(data["kstub"]["cells"], data["kafka"]["cells"], strict=True)
    }
    assert both == {
        ("metadata", "confluent-kafka"): (PASS, PASS),
        ("metadata", "java"): (PASS, PASS),
        ("null-key-spread", "confluent-kafka"): (PASS, PASS),
        ("null-key-spread", "java"): (FAIL, FAIL),  # the Java client's partitioner, on any broker
        ("failover-acks-all", "confluent-kafka"): (PASS, NA),
        ("failover-acks-all", "java"): (PASS, NA),
    }, printed
    assert data["kstub"]["brokers"] == data["kafka"]["brokers"] == 3
    text = readme.read_text()
    assert text.startswith(f"# before\n\n{BEGIN}\n") and text.endswith(f"{END}\n\n# after\n")
    assert "old table" not in text
    assert "| `metadata` | pass / pass | pass / pass |" in text
    assert "| `failover-acks-all` | pass / n/a [2] | pass / n/a [2] |" in text
    assert "1. fails on both brokers, a client limitation: all 30 null-key messages went to one partition" in text
    assert "2. n/a: needs kstub's control plane" in text
    assert "0 cell(s) fail on kstub and pass on Kafka" in printed
