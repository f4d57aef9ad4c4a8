"""Clients that run as separate processes (kcat, the kafkajs driver): running them and reading their output."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

from ..model import ClientError
from .base import RecordingMember


def run(argv: list[str], *, stdin: bytes | None = None, timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ClientError(
            "TIMEOUT", f"{argv[0]} did not finish within {timeout}s; stderr: {_tail(exc.stderr)}"
        ) from exc


def _tail(data: bytes | str | None, lines: int = 5) -> str:
    if not data:
        return ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return " | ".join(text.strip().splitlines()[-lines:])


class ProcessMember(RecordingMember):
    """A group member living in a child process that reports on its stdout and stderr, line by line.

    `on_line(stream, line, member)` turns each line into assignment changes
    and records. `close` asks the process to leave (`stop`, e.g. SIGTERM or
    closing stdin), and waits for it to exit.
    """

    def __init__(
        self,
        argv: list[str],
        on_line: Callable[[str, str, ProcessMember], None],
        stop: Callable[[subprocess.Popen[bytes]], None],
    ) -> None:
        super().__init__()
        self._stderr: list[str] = []
        self._stop = stop
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream, on_line), daemon=True)
            for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))
        ]
        for t in self._readers:
            t.start()

    def _read(self, name: str, stream, on_line: Callable[[str, str, ProcessMember], None]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            if name == "stderr":
                self._stderr.append(line)
            try:
                on_line(name, line, self)
            except Exception as exc:
                self.set_error(f"cannot read {name} line {line!r}: {exc}")

    def error(self) -> str | None:
        if self._error is None and self.proc.poll() not in (None, 0):
            return f"exited with status {self.proc.returncode}: {_tail(chr(10).join(self._stderr))}"
        return self._error

    def close(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self._stop(self.proc)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TimeoutError(f"group member process did not exit within {timeout}s") from None
        for t in self._readers:
            t.join(5)
        if self.proc.returncode not in (0, -15):
            raise ClientError("EXIT", f"exited with status {self.proc.returncode}: {_tail(chr(10).join(self._stderr))}")
