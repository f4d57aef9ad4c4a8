"""`kstub serve` in a subprocess, as a user runs it, and free ports to give it."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time


def free_ports(n: int) -> int:
    """A base port with n consecutive free ports after it."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            held = []
            for i in range(n):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError("no consecutive free ports")


def serve_command(*args: str) -> list[str]:
    """The command line of ``kstub serve`` on the loopback interface with `args`, run by this Python."""
    return [sys.executable, "-m", "kstub", "serve", "--host", "127.0.0.1", *args]


class Served:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            serve_command(*args),
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 30
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if self.find("kstub ready") and ("--admin-port" not in args or self.find("admin API: http")):
                break
        assert any("kstub ready" in x for x in self.lines), self.lines

    def find(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in self.lines if (m := re.search(pattern, line))]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
