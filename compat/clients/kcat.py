"""kcat (librdkafka's command-line client), driven as a subprocess.

Produce reads messages from stdin (ASCII record separators between messages
and between key and value, so data may hold newlines); consume prints JSON
envelopes (`-J`). kcat applies headers, partition and the NULL flag (`-Z`) to
a whole run, so messages are sent in runs of equal settings, in order. It
reports deliveries only as log lines that do not say which message was
delivered, so `produce` returns None and scenarios check what was stored.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from itertools import groupby
from typing import Any

from ..model import ClientError, ClusterMeta, Msg, PartitionMeta, Record, Unsupported
from .base import Client, Member
from .process import ProcessMember, _tail, run

MSG_SEP, KEY_SEP = b"\x1e", b"\x1f"
_ASSIGN = re.compile(r"% Group \S+ rebalanced \(memberid [^)]*\): (assigned|revoked): ?(.*)")
_PART = re.compile(r"\[(\d+)\]")
_EOF = re.compile(r"% Reached end of topic (\S+) \[(\d+)\] at offset (\d+)")
_QUERY = re.compile(r"^(\S+) \[(\d+)\] offset (-?\d+)$")
# librdkafka's error strings (rd_kafka_err2str) for the errors scenarios look for.
_ERRORS = {
    "Unknown topic or partition": "UNKNOWN_TOPIC_OR_PARTITION",
    "Local: Unknown topic": "UNKNOWN_TOPIC_OR_PARTITION",
    "Message timed out": "TIMEOUT",
    "Topic already exists": "TOPIC_ALREADY_EXISTS",
}


def _kind(stderr: str) -> str:
    for text, kind in _ERRORS.items():
        if text in stderr:
            return kind
    return "ERROR"


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _record(env: dict[str, Any]) -> Record:
    flat = env.get("headers") or []
    headers = tuple((flat[i], flat[i + 1].encode()) for i in range(0, len(flat), 2))
    return Record(env["partition"], env["offset"], _b(env["key"]), _b(env["payload"]), headers, env.get("ts"))


class Kcat(Client):
    name = "kcat"
    unsupported = {
        "create-topic": "kcat has no admin API: it cannot create topics",
    }
    path = shutil.which("kcat") or shutil.which("kafkacat")

    @classmethod
    def unavailable(cls) -> str | None:
        if cls.path is None:
            return "kcat is not installed (apt-get install kcat)"
        return None

    @classmethod
    def version(cls) -> str:
        assert cls.path
        out = subprocess.run([cls.path, "-V"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"Version (\S+) .*librdkafka (\S+)", out)
        return f"{m.group(1)} (librdkafka {m.group(2)})" if m else out.strip()

    def _base(self, mode: str, *mode_args: str) -> list[str]:
        assert self.path
        return [self.path, "-b", self.bootstrap, "-m", str(int(self.timeout)), mode, *mode_args]

    def _check(self, proc: subprocess.CompletedProcess[bytes], what: str) -> str:
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise ClientError(_kind(stderr), f"kcat {what} exited with {proc.returncode}: {_tail(stderr)}")
        return stderr

    def metadata(self, topics: list[str]) -> ClusterMeta:
        proc = run([*self._base("-L"), "-J"], timeout=self.timeout + 5)
        self._check(proc, "-L")
        meta = json.loads(proc.stdout)
        brokers = {}
        for b in meta["brokers"]:
            host, port = b["name"].rsplit(":", 1)
            brokers[b["id"]] = (host, int(port))
        out = ClusterMeta(brokers)
        for t in meta["topics"]:
            if t["topic"] in topics and not t.get("error"):
                out.topics[t["topic"]] = {
                    p["partition"]: PartitionMeta(
                        p["leader"], tuple(r["id"] for r in p["replicas"]), tuple(r["id"] for r in p["isrs"])
                    )
                    for p in t["partitions"]
                }
        return out

    def produce(
        self,
        topic: str,
        msgs: list[Msg],
        *,
        acks: str = "all",
        compression: str | None = None,
        idempotent: bool | None = None,
        flush_each: bool = False,
    ) -> None:
        if any(m.timestamp is not None for m in msgs):
            raise Unsupported("kcat cannot set a message's timestamp")
        for m in msgs:
            if any(sep in (m.key or b"") + (m.value or b"") for sep in (MSG_SEP, KEY_SEP)):
                raise Unsupported("the data holds kcat's separators")
            if m.value is None and m.key == b"":
                raise Unsupported("kcat cannot send a null value with an empty key (-Z makes both NULL)")

        def settings(m: Msg) -> tuple[Any, ...]:
            # -Z turns every empty key or value of the run into NULL: runs with a null value use it,
            # runs with an empty key or value must not.
            return (m.partition, m.headers, m.value is None, m.key == b"" or m.value == b"")

        conf = [
            "-X", f"acks={acks}",
            "-X", f"message.timeout.ms={int(self.timeout * 1000)}",
            "-X", "topic.metadata.propagation.max.ms=2000",
        ]  # fmt: skip
        if compression:
            conf += ["-z", compression]
        if idempotent is not None:
            conf += ["-X", f"enable.idempotence={str(idempotent).lower()}"]
        if flush_each:
            conf += ["-X", "sticky.partitioning.linger.ms=0"]  # a partition per null-key message
        for (partition, headers, null_value, _), run_msgs in groupby(msgs, key=settings):
            argv = [*self._base("-P"), "-t", topic, "-D", r"\x1e", "-K", r"\x1f", *conf]
            if partition is not None:
                argv += ["-p", str(partition)]
            if null_value:
                argv.append("-Z")
            for k, v in headers:
                argv += ["-H", f"{k}={v.decode()}"]
            data = MSG_SEP.join(
                (m.value or b"") if m.key is None else m.key + KEY_SEP + (m.value or b"") for m in run_msgs
            )
            self._check(run(argv, stdin=data + MSG_SEP, timeout=self.timeout + 10), "-P")
        return None

    def _consume_json(self, argv: list[str]) -> list[Record]:
        proc = run([*argv, "-J", "-e"], timeout=self.timeout + 10)
        self._check(proc, "-C")
        return [_record(json.loads(line)) for line in proc.stdout.splitlines() if line.strip()]

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        got: list[Record] = []
        for p, offset in sorted(starts.items()):
            got += self._consume_json([*self._base("-C"), "-t", topic, "-p", str(p), "-o", str(offset)])
        return got[:count] if len(got) > count else got

    def group_consume(self, group: str, topic: str, count: int, *, reset: str = "earliest") -> list[Record]:
        # kcat -G commits the offsets of the messages it printed when it closes (enable.auto.commit).
        argv = [*self._base("-G", group), "-X", f"auto.offset.reset={reset}", "-c", str(count), topic]
        return self._consume_json(argv)

    def _member(self, group: str, topic: str, reset: str) -> ProcessMember:
        current: set[int] = set()

        def on_line(stream: str, line: str, member: ProcessMember) -> None:
            if stream == "stdout":
                if line.strip():
                    member.add_records([_record(json.loads(line))])
                return
            m = _ASSIGN.match(line)
            if m:
                parts = {int(p) for p in _PART.findall(m.group(2))}
                if m.group(1) == "assigned":
                    current.clear()
                    current.update(parts)
                else:
                    current.difference_update(parts)
                member.set_assignment(frozenset(current))
                return
            m = _EOF.match(line)
            if m:
                member.positions[int(m.group(2))] = int(m.group(3))

        argv = [
            *self._base("-G", group), "-J", "-u",
            "-X", f"auto.offset.reset={reset}",
            "-X", "auto.commit.interval.ms=100",
            "-X", "session.timeout.ms=10000",
            "-X", "heartbeat.interval.ms=500",
            topic,
        ]  # fmt: skip
        member = ProcessMember(argv, on_line, lambda proc: proc.send_signal(signal.SIGTERM))
        member.positions = {}  # type: ignore[attr-defined]
        return member

    def group_member(self, group: str, topic: str) -> Member:
        # kcat stores each printed message's offset and auto-commits every 100 ms; SIGTERM makes it
        # commit the rest, leave the group and exit.
        return self._member(group, topic, "earliest")

    def consume_new(self, group: str, topic: str, then_produce: list[Msg]) -> list[Record]:
        # kcat says "Reached end of topic T [p] at offset N" once the reset has positioned it at the end.
        member = self._member(group, topic, "latest")
        try:
            deadline = time.monotonic() + self.timeout
            while not (member.assignment() and set(member.assignment() or ()) <= set(member.positions)):  # type: ignore[attr-defined]
                if member.error() or time.monotonic() > deadline:
                    raise ClientError("TIMEOUT", member.error() or "kcat did not reach the end of its partitions")
                time.sleep(0.02)
            self.produce(topic, then_produce)
            while len(member.records()) < len(then_produce) and time.monotonic() < deadline + self.timeout:
                time.sleep(0.02)
            return member.records()
        finally:
            member.close()

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        argv = self._base("-Q")
        for p, ts in times.items():
            argv += ["-t", f"{topic}:{p}:{ts}"]
        proc = run(argv, timeout=self.timeout + 5)
        self._check(proc, "-Q")
        out: dict[int, int | None] = {}
        for line in proc.stdout.decode().splitlines():
            m = _QUERY.match(line.strip())
            if m and m.group(1) == topic:
                offset = int(m.group(3))
                out[int(m.group(2))] = offset if offset >= 0 else None
        return out
