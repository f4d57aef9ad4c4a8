"""Running Kafka's own command-line tools (from the pinned jars) in tests, and reading what they print.

`require_kafka_tools()` skips (fails under CI) where the jars cannot be had;
`tool(name, *args)` runs one tool to completion. Each run starts a JVM (1-2 s):
tests keep the number of runs small.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Sequence

from kstub.compat.realkafka import RealKafkaUnavailable, ensure_jars, run_tool

from .external import unavailable

_jars_checked: str | None = None


def require_kafka_tools() -> None:
    """Skip (fail under CI) unless Kafka's tool jars are here or Maven can fetch them."""
    global _jars_checked
    if _jars_checked is None:
        try:
            ensure_jars()
            _jars_checked = ""
        except RealKafkaUnavailable as exc:
            _jars_checked = str(exc)
    if _jars_checked:
        unavailable(f"Kafka's CLI tools unavailable: {_jars_checked}")


class ToolFailed(AssertionError):
    pass


def tool(
    name: str, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess:
    """Run Kafka's tool `name` with `args`; with `check`, a non-zero exit fails with its output."""
    result = run_tool(name, list(args), input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise ToolFailed(
            f"{name} {' '.join(args)} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def table(text: str, header_first: str = "GROUP") -> list[dict[str, str]]:
    """The first table of `text` whose header starts with `header_first`, as dicts by column name."""
    lines = [line for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        cols = line.split()
        if cols and cols[0] == header_first:
            body = []
            for row in lines[i + 1 :]:
                values = row.split()
                if len(values) != len(cols) or values[0] == header_first:  # its end, or the next table's header
                    break
                body.append(dict(zip(cols, values, strict=True)))
            return body
    raise AssertionError(f"no table headed {header_first!r} in:\n{text}")


#: `host:port  (node id)`, as kafka-consumer-groups prints a group's coordinator
_COORDINATOR = re.compile(r"\S+:\d+ +\(-?\d+\) *")
#: lines of the JVM or of the tools' logging that say nothing about the outcome
_NOISE = re.compile(r"^(SLF4J|WARNING: |\[\d{4}-\d\d-\d\d )")


def normalise(text: str, replace: Sequence[tuple[str, str]] = ()) -> str:
    """What a tool printed, with what legitimately differs between two brokers replaced.

    Coordinators (host, port, node id) become ``<coordinator>``; `replace`
    gives further (old, new) substitutions, e.g. consumer ids.
    """
    lines = []
    for line in text.splitlines():
        if _NOISE.match(line):
            continue
        line = _COORDINATOR.sub("<coordinator> ", line)
        for old, new in replace:
            line = line.replace(old, new)
        lines.append(line)
    return "\n".join(lines)


def create_topic(bootstrap: str, topic: str, partitions: int, replication_factor: int = 1) -> None:
    """Create `topic` with another client (librdkafka's admin), to spare a JVM start."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the answer
    admin.create_topics([NewTopic(topic, partitions, replication_factor)])[topic].result(30)
