"""`kstub serve` as a user runs it: what it says when it cannot do its job."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_serve_on_a_port_in_use_says_so_and_exits_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "kstub", "serve", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "kstub: cannot listen:" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_a_bad_setting_exits_2():
    done = subprocess.run(
        [sys.executable, "-m", "kstub", "serve", "-c", "num.partitions=many"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "num.partitions" in done.stderr
