"""kstub/kafka_versions.json is what the releases' own jars say (compat/derive_kafka_versions.py --check),
and what a real broker of an older release (3.7) advertises.

Maven fetches each release's kafka-clients and kafka-server-common jars (once, into ~/.m2) and Java reads
their feature levels: skipped without mvn or java (a failure under CI).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kstub.protocol import ErrorCode

from support.external import require_programs
from support.served import free_ports

ROOT = Path(__file__).resolve().parents[2]


def test_committed_table_matches_the_release_jars() -> None:
    require_programs("mvn", "java")
    result = subprocess.run(
        [sys.executable, str(ROOT / "compat" / "derive_kafka_versions.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr


OLD_RELEASE = "3.7.2"  # a 3.x release posed as KRaft, with KIP-848 advertised but not enabled by default


def _old_kafka_lib(version: str) -> Path:
    """Kafka `version`'s broker jars and their dependencies, fetched by Maven into compat/kafka/target."""
    target = ROOT / "compat" / "kafka" / "target" / f"kafka-{version}"
    lib = target / "lib"
    if (lib / f"kafka_2.13-{version}.jar").exists():
        return lib
    target.mkdir(parents=True, exist_ok=True)
    (target / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>kstub.test</groupId><artifactId>kafka-{version}</artifactId><version>1</version><dependencies>"
        f"<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}"
        "</version></dependency></dependencies></project>"
    )
    cmd = ["mvn", "-q", "-B", "-f", str(target / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={lib}", "-DincludeScope=runtime"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    return lib


def test_the_table_is_what_a_real_3_7_broker_advertises(tmp_path: Path) -> None:
    """The derivation's rule checked on a second real release: Kafka 3.7.2 in KRaft mode answers ApiVersions
    with exactly the table derived for 3.7, the same feature levels, and refuses ConsumerGroupHeartbeat."""
    require_programs("mvn", "java")
    from kstub.kafka_client import Connection
    from kstub.kafka_versions import RELEASES, resolve

    lib = _old_kafka_lib(OLD_RELEASE)
    port = free_ports(2)
    cport = port + 1
    props = tmp_path / "server.properties"
    props.write_text(
        "process.roles=broker,controller\nnode.id=1\n"
        f"controller.quorum.voters=1@127.0.0.1:{cport}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\ncontroller.listener.names=CONTROLLER\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
        f"log.dirs={tmp_path / 'data'}\noffsets.topic.replication.factor=1\n"
    )
    java = ["java", "-Xmx384m", "-XX:+UseSerialGC", "-cp", f"{lib}/*"]
    fmt = [*java, "kafka.tools.StorageTool", "format", "-t", "kstubTestClusterId0000", "-c", str(props)]
    subprocess.run(fmt, check=True, capture_output=True, timeout=120)
    broker = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                conn = Connection(("127.0.0.1", port))
                answer = conn.request(18, 3, {"client_software_name": "kstub-test", "client_software_version": "1"})
                break
            except OSError:
                assert broker.poll() is None, "Kafka 3.7 exited"
                assert time.monotonic() < deadline, "Kafka 3.7 did not start"
                time.sleep(0.5)
        real = {k.api_key: (k.min_version, k.max_version) for k in answer.api_keys}
        assert {int(k): tuple(v) for k, v in RELEASES["3.7"]["advertised"].items()} == real
        posed = resolve("3.7")
        assert [(f.name, f.min_version, f.max_version) for f in answer.supported_features] == [
            (f.name, f.min_version, f.max_version) for f in posed.features
        ]
        assert [(f.name, f.max_version_level) for f in answer.finalized_features] == [
            (f.name, f.level) for f in posed.features if f.level
        ]
        heartbeat = {
            "group_id": "g", "member_id": "", "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30000, "subscribed_topic_names": ["t"], "server_assignor": None,
            "topic_partitions": [],
        }  # fmt: skip
        assert conn.request(68, 0, heartbeat).error_code == ErrorCode.UNSUPPORTED_VERSION
        conn.close()
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
