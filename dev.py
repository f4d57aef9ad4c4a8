#!/usr/bin/env python3
"""Set-up and run kstub from a fresh checkout with nothing but python3.

    python3 dev.py serve [kstub serve options]   # a cluster on localhost:9092
    python3 dev.py test [pytest options]         # the whole test suite
    python3 dev.py kafka [--brokers 1|3] [--port P] [-c key=value ...]
                                                 # real Apache Kafka (needs java; Maven fetches it)
    python3 dev.py kafka --prepare               # only fetch real Kafka's jars
    python3 dev.py kafka-tool NAME [ARGS ...]    # Kafka's own CLI tools (kafka-topics, ...)
    python3 dev.py fuzz --minutes N              # a deep fuzz run (docs/fuzzing.md)
    python3 dev.py bench [--quick] [--targets kstub,mock,kafka]
                                                 # the benchmark set, side by side (docs/benchmarks.md)

Both create ./.venv on first use and install kstub into it (``serve`` the
package alone, ``test`` with its test extras: real Kafka clients, pytest).
Later runs reuse it, reinstalling only when pyproject.toml changes. Only the
standard library is used here. On a Debian python3 without ensurepip (no
python3-venv package), the venv is made without pip and pip is installed into
it from its wheel on PyPI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def _say(msg: str) -> None:
    print(f"dev.py: {msg}", file=sys.stderr, flush=True)


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True)


def _bootstrap_pip() -> None:
    """Install pip into a venv made --without-pip, from pip's wheel on PyPI."""
    with urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=60) as resp:
        urls = json.load(resp)["urls"]
    wheel = next(u for u in urls if u["filename"].endswith(".whl"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=120) as resp:
            path.write_bytes(resp.read())
        _run(PY, path / "pip", "install", "--quiet", path)


def _ensure_venv() -> None:
    if PY.exists():
        return
    _say(f"creating {VENV}")
    try:
        venv.EnvBuilder(with_pip=True).create(VENV)
    except (subprocess.CalledProcessError, OSError):
        _say("no ensurepip here; creating the venv without pip and fetching pip from PyPI")
        venv.EnvBuilder(with_pip=False, clear=True).create(VENV)
        _bootstrap_pip()


def _ensure_installed(extras: str) -> None:
    _ensure_venv()
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".kstub-installed{extras}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    _say(f"installing kstub{extras} into {VENV}")
    _run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{ROOT}{extras}")
    stamp.write_text(digest)


def _fuzz(rest: list[str]) -> int:
    _ensure_installed("[test]")
    os.chdir(ROOT)
    os.execv(PY, [str(PY), str(ROOT / "tests" / "fuzz" / "deep.py"), *rest])
    return 0


def _bench(rest: list[str]) -> int:
    _ensure_installed("[test]")
    os.chdir(ROOT)
    os.execv(PY, [str(PY), str(ROOT / "bench" / "suite.py"), *rest])
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["fuzz"]:
        return _fuzz(argv[1:])
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    if not argv or argv[0] not in ("serve", "test", "install", "kafka", "kafka-tool"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        _ensure_installed("")
        os.execv(PY, [str(PY), "-m", "kstub", "serve", *rest])
    if command in ("kafka", "kafka-tool"):
        _ensure_installed("")
        if command == "kafka-tool":
            action = ["tool", *rest]
        else:
            action = ["prepare"] if rest == ["--prepare"] else ["serve", *rest]
        os.execv(PY, [str(PY), "-m", "kstub.compat.realkafka", *action])
    _ensure_installed("[test]")
    if command == "install":
        return 0
    os.chdir(ROOT)
    os.execv(PY, [str(PY), "-m", "pytest", *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
