"""kafka-verifiable-producer and kafka-verifiable-consumer against three kstub brokers: no acked message lost.

Both tools print one JSON event per line; every message the producer reports
acknowledged (topic, partition, offset, value) must be consumed by the
consumer group, and the offsets it commits must reach the end of each
partition.
"""

from __future__ import annotations

import json

import pytest

from support.kafka_tools import create_topic, tool, unique

MESSAGES = 3000


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.kstub(brokers=3)
def test_every_acked_message_is_consumed(bootstrap: str) -> None:
    topic, group = unique("verifiable"), unique("verifiable-group")
    create_topic(bootstrap, topic, 3, 3)
    produced = _events(
        tool(
            "kafka-verifiable-producer", "--bootstrap-server", bootstrap, "--topic", topic,
            "--max-messages", str(MESSAGES), "--acks", "-1", "--repeating-keys", "30",
        ).stdout
    )  # fmt: skip
    acked = {(e["partition"], e["offset"]): e["value"] for e in produced if e["name"] == "producer_send_success"}
    assert not [e for e in produced if e["name"] == "producer_send_error"]
    (summary,) = [e for e in produced if e["name"] == "tool_data"]
    assert summary["sent"] == summary["acked"] == MESSAGES == len(acked)
    assert sorted(set(acked.values()), key=int) == [str(i) for i in range(MESSAGES)]
    assert {p for p, _ in acked} == {0, 1, 2}  # keys spread them over every partition

    consumed = _events(
        tool(
            "kafka-verifiable-consumer", "--bootstrap-server", bootstrap, "--topic", topic, "--group-id", group,
            "--max-messages", str(MESSAGES), "--reset-policy", "earliest", "--verbose",
        ).stdout
    )  # fmt: skip
    seen = {(r["partition"], r["offset"]): r["value"] for e in consumed if e["name"] == "record_data" for r in [e]}
    assert seen == acked  # every acked message, at the offset it was acked at, and nothing else
    ends: dict[int, int] = {}
    for e in consumed:
        if e["name"] == "offsets_committed":
            assert e["success"], e
            for o in e["offsets"]:
                ends[o["partition"]] = max(ends.get(o["partition"], 0), o["offset"])
    assert ends == {p: max(o for q, o in acked if q == p) + 1 for p in (0, 1, 2)}
