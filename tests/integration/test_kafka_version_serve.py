"""`kstub serve --kafka-version`: the command line, and kstub's own client negotiating with a posed broker."""

from __future__ import annotations

import subprocess

import pytest

import kstub
from kstub.kafka_client import AdminClient, Connection

from support.served import Served, free_ports, serve_command


def test_serve_poses_as_the_version_asked() -> None:
    port = free_ports(1)
    served = Served("--port", str(port), "--kafka-version", "2.8.2")
    try:
        assert served.proc.stderr is not None
        served.lines.append(served.proc.stderr.readline())
        assert served.find(r"posing as Apache Kafka 2\.8 \(as 2\.8\.2 advertised it\)"), served.lines
        conn = Connection(("127.0.0.1", port))
        answer = conn.request(18, 3, {"client_software_name": "t", "client_software_version": "1"})
        ranges = {k.api_key: (k.min_version, k.max_version) for k in answer.api_keys}
        assert ranges[3] == (0, 11) and ranges[18] == (0, 3)
        conn.close()
    finally:
        served.close()


def test_an_unknown_version_is_refused_with_the_known_ones() -> None:
    result = subprocess.run(
        serve_command("--port", "0", "--kafka-version", "1.0"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown Kafka version '1.0'" in result.stderr and "2.8, 3.0" in result.stderr


def test_kstubs_own_client_negotiates_down() -> None:
    """An ApiVersions v5 the posed broker refuses is retried at its v3, with the client's software name."""
    with kstub.Cluster(kafka_version="2.8") as cluster:
        admin = AdminClient(cluster.bootstrap_servers, client_id="t", timeout=10)
        assert admin._bootstrap.version(3) == 11  # Metadata: 2.8's v11, not kstub's v13
        admin.close()


@pytest.mark.kafka_cluster(kafka_version="3.6")
def test_the_pytest_marker_takes_the_version(kafka_cluster: kstub.Cluster) -> None:
    conn = Connection(kafka_cluster.bootstrap_servers)
    answer = conn.request(18, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert 68 not in {k.api_key for k in answer.api_keys}  # KIP-848's heartbeat came with 3.7
    assert [(f.name, f.max_version_level) for f in answer.finalized_features] == [("metadata.version", 14)]
    conn.close()
