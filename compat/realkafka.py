"""Real Apache Kafka beside kstub: the reference that kstub is checked against.

The pinned Kafka release lives in ``compat/kafka/pom.xml``; Maven copies its
broker, tools and client jars with their dependencies into
``compat/kafka/target/lib`` (ignored by git) the first time they are needed.

    python -m kstub.compat.realkafka serve [--brokers 1|3] [--port P] [-c key=value ...]
    python -m kstub.compat.realkafka tool NAME [ARGS ...]
    python -m kstub.compat.realkafka prepare

(``python3 dev.py kafka``, ``python3 dev.py kafka-tool`` and ``python3 dev.py
kafka --prepare`` in a checkout.) ``serve`` formats a KRaft cluster in a
temporary folder (one combined broker+controller node, or three of them with a
static controller quorum), waits until Metadata names every broker, prints
``kafka ready: bootstrap servers HOST:PORT,...`` and runs until interrupted.

From Python, `RealKafka` is the same cluster as a context manager; the test
suite's session-scoped ``real_kafka`` fixture uses it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "kafka"
POM = HERE / "pom.xml"
LIB = HERE / "target" / "lib"
KAFKA_VERSION = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text()).group(1)

#: Kafka's command-line tools by their script names, as main classes in the pinned jars.
TOOLS: Mapping[str, str] = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "kafka-verifiable-consumer": "org.apache.kafka.tools.VerifiableConsumer",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
    "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-storage": "kafka.tools.StorageTool",
}

#: Settings where a test cluster departs from Kafka's defaults, as a developer sets them for tests
#: (the replication factors of the internal topics are fitted to the broker count at start).
TEST_SETTINGS: Mapping[str, str] = {
    "group.initial.rebalance.delay.ms": "0",
    "num.partitions": "1",
    "auto.create.topics.enable": "true",
}

READY_TIMEOUT = 90.0


class RealKafkaUnavailable(Exception):
    """Real Kafka cannot run on this machine (no JVM, no Maven, Maven Central unreachable)."""


def unavailable_reason() -> str | None:
    """Why real Kafka cannot run here, or None when it can (jars present or Maven to fetch them)."""
    if shutil.which("java") is None:
        return "real Kafka needs `java` (a JDK 17+) on PATH"
    if not _jars_present() and shutil.which("mvn") is None:
        return "real Kafka's jars are not fetched yet and `mvn` (Maven) is not on PATH to fetch them"
    return None


def _jars_present() -> bool:
    return (LIB / f"kafka_2.13-{KAFKA_VERSION}.jar").exists() and (LIB / f"kafka-tools-{KAFKA_VERSION}.jar").exists()


def ensure_jars() -> Path:
    """The folder of Kafka's jars, fetching them with Maven first if needed."""
    reason = unavailable_reason()
    if reason:
        raise RealKafkaUnavailable(reason)
    if not _jars_present():
        print(f"realkafka: fetching Apache Kafka {KAFKA_VERSION} jars with Maven into {LIB}", file=sys.stderr)
        cmd = [
            "mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={LIB}", "-DincludeScope=runtime",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not _jars_present():
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise RealKafkaUnavailable("Maven could not fetch Apache Kafka's jars:\n" + "\n".join(tail))
    return LIB


def java_command(
    main_class: str, args: Sequence[str] = (), *, heap: str = "256m", log_config: str = "tools"
) -> list[str]:
    """The command line running `main_class` of the pinned Kafka jars."""
    ensure_jars()
    return [
        "java", f"-Xmx{heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={HERE / f'log4j2-{log_config}.properties'}",
        "-cp", f"{LIB}{os.sep}*", main_class, *args,
    ]  # fmt: skip


def tool_command(name: str, args: Sequence[str] = ()) -> list[str]:
    """The command line of Kafka's tool `name` (``kafka-topics`` or ``kafka-topics.sh``)."""
    name = name.removesuffix(".sh")
    if name not in TOOLS:
        raise KeyError(f"unknown Kafka tool {name!r} (known: {', '.join(sorted(TOOLS))})")
    return java_command(TOOLS[name], args)


def run_tool(
    name: str, args: Sequence[str] = (), *, timeout: float = 120.0, **kwargs: Any
) -> subprocess.CompletedProcess:
    """Run Kafka's tool `name` to completion, capturing its output as text."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(tool_command(name, args), timeout=timeout, **kwargs)


def _free_ports(host: str, count: int, avoid: set[int]) -> list[int]:
    """`count` distinct free ports, none in `avoid`.

    Each port's socket stays bound until all are picked: a port picked and released at once can be
    handed out again by the next pick (CI once saw PLAINTEXT and CONTROLLER get the same port).
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            held.append(sock)
            sock.bind((host, 0))
            port = sock.getsockname()[1]
            if port not in avoid:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


class RealKafka:
    """A real KRaft cluster of `brokers` combined broker+controller nodes, in a temporary folder.

    ``with RealKafka(brokers=3) as kafka: kafka.bootstrap_servers``. Each node's
    output goes to ``node-N.log`` in its folder (`log_tail` reads it).
    """

    def __init__(
        self,
        brokers: int = 1,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: Mapping[str, Any] | None = None,
        heap: str = "768m",
    ) -> None:
        if brokers < 1:
            raise ValueError("brokers must be at least 1")
        self.brokers = brokers
        self.host = host
        self.first_port = port
        self.config = {k: str(v) for k, v in (config or {}).items()}
        self.heap = heap
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen] = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.started_at = 0.0
        self.ready_seconds = 0.0

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{p}" for p in self.ports)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def node_dir(self, node: int) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name) / f"node-{node}"

    def log_tail(self, node: int = 1, lines: int = 40) -> str:
        path = self.node_dir(node) / f"node-{node}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _properties(self, node: int, controller_ports: list[int]) -> dict[str, str]:
        n = self.brokers
        voters = ",".join(f"{i + 1}@{self.host}:{p}" for i, p in enumerate(controller_ports))
        port, cport = self.ports[node - 1], controller_ports[node - 1]
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{self.host}:{port},CONTROLLER://{self.host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.node_dir(node) / "data"),
            "offsets.topic.replication.factor": str(min(n, 3)),
            "transaction.state.log.replication.factor": str(min(n, 3)),
            "transaction.state.log.min.isr": str(min(n, 2)),
            "share.coordinator.state.topic.replication.factor": str(min(n, 3)),
            "share.coordinator.state.topic.min.isr": str(min(n, 2)),
            **TEST_SETTINGS,
        }
        # "{port}" and "{controller_port}" in a setting stand for this node's ports (e.g. for extra listeners)
        props.update(
            {k: v.replace("{port}", str(port)).replace("{controller_port}", str(cport)) for k, v in self.config.items()}
        )
        return props

    def _pick_ports(self) -> list[int]:
        """Set each node's client port (`ports`) and return each node's controller port, all distinct
        and none a port the settings name themselves (for extra listeners)."""
        avoid = {int(p) for v in self.config.values() for p in re.findall(r":(\d{2,5})\b", v)}
        if self.first_port:
            self.ports = [self.first_port + i for i in range(self.brokers)]
            return _free_ports(self.host, self.brokers, avoid | set(self.ports))
        picked = _free_ports(self.host, 2 * self.brokers, avoid)
        self.ports = picked[: self.brokers]
        return picked[self.brokers :]

    def start(self) -> RealKafka:
        ensure_jars()
        self._tmp = tempfile.TemporaryDirectory(prefix="realkafka-")
        self.started_at = time.monotonic()
        controller_ports = self._pick_ports()
        cluster_id = _cluster_id()
        try:
            for node in range(1, self.brokers + 1):
                folder = self.node_dir(node)
                folder.mkdir(parents=True)
                props = folder / "server.properties"
                props.write_text("".join(f"{k}={v}\n" for k, v in self._properties(node, controller_ports).items()))
                fmt = subprocess.run(
                    java_command("kafka.tools.StorageTool", ["format", "-t", cluster_id, "-c", str(props)]),
                    capture_output=True,
                    text=True,
                )
                if fmt.returncode != 0:
                    raise RealKafkaUnavailable(f"kafka-storage format failed:\n{fmt.stdout}{fmt.stderr}")
            for node in range(1, self.brokers + 1):
                log = open(self.node_dir(node) / f"node-{node}.log", "wb")  # noqa: SIM115 (closed with the process)
                cmd = java_command(
                    "kafka.Kafka", [str(self.node_dir(node) / "server.properties")], heap=self.heap, log_config="broker"
                )
                with log:
                    self.processes.append(
                        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                    )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - self.started_at
        return self

    def _wait_ready(self) -> None:
        """Wait until Metadata from the first node names every broker (polling: a JVM has no event to wait on)."""
        from kstub.kafka_client import AdminClient, AdminError

        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            for node, proc in enumerate(self.processes, 1):
                if proc.poll() is not None:
                    raise RealKafkaUnavailable(
                        f"Kafka node {node} exited with {proc.returncode}:\n{self.log_tail(node)}"
                    )
            try:
                with AdminClient(self.bootstrap_servers, timeout=5.0) as admin:
                    if len(admin.brokers) == self.brokers:
                        return
                    last = f"{len(admin.brokers)} of {self.brokers} brokers registered"
            except (AdminError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RealKafkaUnavailable(f"Kafka not ready after {READY_TIMEOUT:.0f} s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()  # a throwaway cluster: no controlled shutdown to wait for
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        self.processes = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RealKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_id() -> str:
    """A random KRaft cluster id (a UUID in Kafka's URL-safe base64 form, as `kafka-storage random-uuid` prints)."""
    import base64

    while True:
        # as Kafka's Uuid.randomUuid: never one starting with "-", which a command line would take for an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _config_pair(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {value!r}")
    return key.strip(), val.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 dev.py kafka", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start a real Kafka cluster and run until interrupted")
    serve.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port", type=int, default=0, help="first broker's port (next brokers: +1, +2); 0 picks free ports"
    )
    serve.add_argument("-c", dest="config", type=_config_pair, action="append", default=[], metavar="key=value")
    tool = sub.add_parser("tool", help="run one of Kafka's command-line tools")
    tool.add_argument("name", help=", ".join(sorted(TOOLS)))
    tool.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("prepare", help="fetch the Kafka jars (Maven) and exit")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            print(f"Apache Kafka {KAFKA_VERSION} jars in {ensure_jars()}")
            return 0
        if args.command == "tool":
            if args.name.removesuffix(".sh") not in TOOLS:
                parser.error(f"unknown tool {args.name!r}; known: {', '.join(sorted(TOOLS))}")
            return subprocess.run(tool_command(args.name, args.args)).returncode
        kafka = RealKafka(args.brokers, host=args.host, port=args.port, config=dict(args.config))
        with kafka:
            print(f"kafka ready: bootstrap servers {kafka.bootstrap_servers}", flush=True)
            print(
                f"(Apache Kafka {KAFKA_VERSION}, started in {kafka.ready_seconds:.1f} s; Ctrl-C stops it)", flush=True
            )
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            with contextlib.suppress(KeyboardInterrupt):
                pid, _ = os.wait()  # until any node exits (or Ctrl-C)
                node = kafka.pids.index(pid) + 1 if pid in kafka.pids else 1
                print(f"Kafka node {node} exited:\n" + kafka.log_tail(node), file=sys.stderr)
                return 1
        return 0
    except RealKafkaUnavailable as exc:
        print(f"realkafka: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
