"""The README's SASL_SSL quick start works when pasted.

The blocks between ``<!-- sasl-ssl-quickstart:begin -->`` and
``<!-- sasl-ssl-quickstart:end -->`` in README.md run in order, as written,
in an empty directory: `kstub serve` (on free ports instead of 9092-9094;
``.venv/bin/`` is this checkout's Python), the confluent-kafka script, the
``client.properties`` file and the Java console producer and consumer through
``python3 dev.py kafka-tool``. The consumer must read what both clients wrote.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.served import free_ports

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BEGIN, END = "<!-- sasl-ssl-quickstart:begin -->", "<!-- sasl-ssl-quickstart:end -->"


def blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{README} needs one {BEGIN} ... {END} region"
    region = text[text.index(BEGIN) : text.index(END)]
    return re.findall(r"```(\w+)\n(.*?)```", region, re.S)


def _sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=180)


def test_sasl_ssl_quick_start_works_as_written(tmp_path: Path) -> None:
    from kstub.compat.realkafka import RealKafkaUnavailable, ensure_jars

    from support.external import unavailable

    try:
        ensure_jars()
    except RealKafkaUnavailable as exc:
        unavailable(f"the Java client is unavailable: {exc}")
    (serve_kind, serve), (script_kind, script), (props_kind, props), (java_kind, java) = blocks()
    assert (serve_kind, script_kind, props_kind, java_kind) == ("sh", "sh", "properties", "sh")
    base = free_ports(3)

    def adapt(command: str) -> str:
        command = re.sub(r"\b9092\b", str(base), command)
        venv = {".venv/bin/kstub ": f"{sys.executable} -m kstub ", ".venv/bin/python ": f"{sys.executable} "}
        command = re.sub(r"(?<![\w/])\.venv/bin/(kstub|python) ", lambda m: venv[m[0]], command)
        return command.replace("python3 dev.py ", f"{sys.executable} {ROOT / 'dev.py'} ")

    serve_line = serve.strip()
    assert serve_line.startswith(".venv/bin/kstub serve --brokers 3 --security-protocol SASL_SSL")
    # the shell replaced by kstub (exec): terminating the shell alone left kstub running after the test
    server = subprocess.Popen(
        "exec " + adapt(serve_line) + f" --port {base}", shell=True, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "kstub ready" in line:
                break
        assert any("kstub ready" in line for line in seen), seen
        assert (tmp_path / "tls" / "ca.pem").exists()

        # the confluent-kafka script (confluent-kafka is installed with the test extras: no pip here)
        script_lines = [line for line in script.splitlines() if not line.startswith(".venv/bin/pip ")]
        ran = _sh(adapt("\n".join(script_lines)), tmp_path)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "b'hello over SASL_SSL'", ran.stdout + ran.stderr

        (tmp_path / "client.properties").write_text(props)
        producer, consumer = [line for line in java.splitlines() if line.strip()]
        produced = _sh(adapt(producer), tmp_path)
        assert produced.returncode == 0, produced.stderr
        consumed = _sh(adapt(consumer), tmp_path)
        assert consumed.returncode == 0, consumed.stderr
        assert consumed.stdout.splitlines()[-2:] == ["hello over SASL_SSL", "hello from Java"], consumed.stdout
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail("kstub serve did not stop")
