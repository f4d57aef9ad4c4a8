"""`kstub serve` as a user runs it: what it says when it cannot do its job."""

from __future__ import annotations

import io
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
    assert f"127.0.0.1:{port}" in done.stderr  # which address was taken


def test_version_prints_the_package_version():
    import kstub

    done = subprocess.run([sys.executable, "-m", "kstub", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"kstub {kstub.__version__}"


def test_a_data_dir_in_use_is_refused_before_anything_listens(tmp_path):
    first = subprocess.Popen(
        [sys.executable, "-m", "kstub", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "kstub ready" in _line_with(first.stderr, "kstub ready")
        done = subprocess.run(
            [sys.executable, "-m", "kstub", "serve", "--port", "0", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        first.terminate()
        first.wait(timeout=30)
    assert done.returncode == 1
    assert "in use by another kstub process" in done.stderr
    assert "listening" not in done.stderr and "Traceback" not in done.stderr


def _line_with(stream, text: str) -> str:
    for line in stream:
        if text in line:
            return line
    return ""


def test_serve_with_a_bad_setting_exits_2():
    done = subprocess.run(
        [sys.executable, "-m", "kstub", "serve", "-c", "num.partitions=many"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "num.partitions" in done.stderr


def test_tool_output_cut_short_by_a_pipe_is_not_an_error(kstub_cluster, monkeypatch):
    """`kstub groups list | head`: the reader leaving early ends the tool with status 0, not a traceback."""
    from kstub.cli import main

    kstub_cluster.call(lambda: kstub_cluster.cluster.groups.create_group("g", 0.0))

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["groups", "list", "--bootstrap-server", kstub_cluster.bootstrap_servers]) == 0
