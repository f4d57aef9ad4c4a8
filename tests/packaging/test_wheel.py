"""kstub as users will install it: a wheel and an sdist, installed into a clean venv.

The wheel is built from this checkout (``python -m build``), checked with
``twine check``, installed with nothing else into a new virtualenv, and then
used as a user would: ``kstub serve`` answers Metadata, a legacy snappy and an
lz4 message set (as kafka-go and old clients send) are accepted, and the
README's pytest-plugin example passes with only ``pytest`` and
``kafka-python`` added.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(*cmd: str | Path, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT)
    return out


@pytest.fixture(scope="module")
def clean_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv holding the wheel and what it depends on, nothing of this checkout."""
    where = tmp_path_factory.mktemp("venv") / "v"
    venv.EnvBuilder(with_pip=True).create(where)
    (wheel,) = dist.glob("kstub-*.whl")
    _run(where / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    return where


def test_twine_accepts_the_wheel_and_the_sdist(dist: Path) -> None:
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"]
    done = _run(sys.executable, "-m", "twine", "check", "--strict", *files)
    assert done.stdout.count("PASSED") == 2
    (wheel,) = dist.glob("kstub-*.whl")
    with zipfile.ZipFile(wheel) as shipped:
        names = set(shipped.namelist())
    assert {"kstub/console.html", "kstub/kafka_versions.json"} <= names  # package data serving reads


def test_the_installed_kstub_serves_and_takes_legacy_compressed_produce(clean_venv: Path, tmp_path: Path) -> None:
    python = clean_venv / "bin" / "python"
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    # run outside the checkout so nothing of it is importable
    done = _run(python, script, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.stdout.split() == ["metadata-ok", "snappy=NONE", "lz4=NONE"], done.stdout + done.stderr


def test_the_readme_plugin_example_passes_in_the_clean_venv(clean_venv: Path, tmp_path: Path) -> None:
    python = clean_venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pytest", "kafka-python")
    readme = (ROOT / "README.md").read_text()
    example = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def test_order_round_trip" in b)
    (tmp_path / "test_orders.py").write_text(example)
    done = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_orders.py", cwd=tmp_path)
    assert "1 passed" in done.stdout


# Run by the clean venv's python: `kstub serve` as a user starts it, then Metadata and two
# legacy compressed produce requests with kstub's own codec as the client.
CHECK = r"""
import subprocess, sys, struct, zlib
from kstub.kafka_client import AdminClient
from kstub.protocol.records.compression import compress  # the codecs the installed package ships with

server = subprocess.Popen([sys.executable, "-m", "kstub", "serve", "--port", "0", "--host", "127.0.0.1"],
                          stderr=subprocess.PIPE, text=True)
try:
    bootstrap = None
    for line in server.stderr:
        if "kstub ready: bootstrap servers" in line:
            bootstrap = line.rsplit(" ", 1)[1].strip()
            break
    with AdminClient(bootstrap) as admin:
        assert len(admin.brokers) == 1
        print("metadata-ok")
        conn = admin._bootstrap
        conn.request(19, {"topics": [{"name": "legacy", "num_partitions": 1, "replication_factor": 1,
                                      "assignments": [], "configs": []}], "timeout_ms": 5000}, version=1)

        def message(value, attributes=0, offset=0):
            body = struct.pack(">bbq", 1, attributes, 1_700_000_000_000) + struct.pack(">i", -1)
            body += struct.pack(">i", len(value)) + value
            crc = zlib.crc32(body) & 0xFFFFFFFF
            msg = struct.pack(">I", crc) + body
            return struct.pack(">qi", offset, len(msg)) + msg

        inner = message(b"hello") + message(b"world", offset=1)
        for name, codec in (("snappy", 2), ("lz4", 3)):
            wrapper = message(compress(codec, inner), attributes=codec, offset=1)
            answer = conn.request(0, {"acks": -1, "timeout_ms": 5000, "topic_data": [
                {"name": "legacy", "partition_data": [{"index": 0, "records": wrapper}]}]}, version=2)
            code = answer.responses[0].partition_responses[0].error_code
            print(f"{name}={'NONE' if code == 0 else code}")
finally:
    server.terminate()
    server.wait(timeout=30)
"""
