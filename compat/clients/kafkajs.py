"""kafkajs 2.2.4 on Node.js, through compat/js/driver.js (one process per operation).

kafkajs has no way to read partitions outside a consumer group (no assign()),
so its `consume` joins a fresh group and seeks: on a cluster without groups it
cannot consume at all. Only gzip is built in; the other codecs need packages
that are not part of the pinned set.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from ..model import CapabilityMissing, ClientError, Record, Unsupported
from .base import Client, Member
from .json_ops import JsonOps, _record
from .process import ProcessMember, _tail, run

JS_DIR = Path(__file__).resolve().parent.parent / "js"
DRIVER = JS_DIR / "driver.js"


class KafkaJS(JsonOps, Client):
    idempotent_default = False  # the driver takes a boolean
    name = "kafkajs"
    codecs = ("gzip",)
    node = shutil.which("node")

    @classmethod
    def unavailable(cls) -> str | None:
        if cls.node is None:
            return "node is not installed (kafkajs needs Node.js)"
        if not (JS_DIR / "node_modules" / "kafkajs" / "package.json").exists():
            return f"kafkajs is not installed (npm ci --prefix {JS_DIR})"
        return None

    @classmethod
    def version(cls) -> str:
        pkg = json.loads((JS_DIR / "node_modules" / "kafkajs" / "package.json").read_text())
        assert cls.node
        node = subprocess.run([cls.node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{pkg['version']} (node {node})"

    def _argv(self, operation: str, args: dict[str, Any]) -> list[str]:
        assert self.node
        payload = {"bootstrap": self.bootstrap, "timeoutMs": int(self.timeout * 1000), **args}
        return [self.node, str(DRIVER), operation, json.dumps(payload)]

    def _call(self, operation: str, **args: Any) -> Any:
        proc = run(self._argv(operation, args), timeout=self.timeout * 3 + 15)
        lines = [line for line in proc.stdout.decode(errors="replace").splitlines() if line.startswith("{")]
        if not lines:
            raise ClientError(
                "ERROR", f"driver {operation} printed no result (status {proc.returncode}): {_tail(proc.stderr)}"
            )
        answer = json.loads(lines[-1])
        if answer["ok"]:
            return answer["result"]
        kind, message = answer["error"]["kind"], answer["error"]["message"].splitlines()[0]
        if kind == "UNSUPPORTED":
            raise Unsupported(message)
        raise ClientError(kind, message)

    def _needs_groups(self) -> None:
        if "groups" not in self.caps:
            raise CapabilityMissing("kafkajs reads only through consumer groups, which the cluster lacks")

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        self._needs_groups()
        group = f"compat-kafkajs-assign-{uuid.uuid4().hex[:8]}"
        answer = self._call("consume", topic=topic, starts=starts, count=count, group=group)
        return [_record(r) for r in answer]

    def group_member(self, group: str, topic: str) -> Member:
        def on_line(stream: str, line: str, member: ProcessMember) -> None:
            if stream != "stdout" or not line.startswith("{"):
                return
            event = json.loads(line)
            if event["event"] == "assigned":
                member.set_assignment(frozenset(event["partitions"]))
            elif event["event"] == "records":
                member.add_records([_record(r) for r in event["records"]])
            elif event["event"] == "error":
                member.set_error(event["message"])

        def stop(proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdin
            proc.stdin.close()

        argv = self._argv("member", {"group": group, "topic": topic})
        return ProcessMember(argv, on_line, stop)
