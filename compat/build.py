"""Building the compiled clients' drivers: the Java client's (Maven) and franz-go's (go build).

    python3 -m compat.build [java] [franz-go]      (both when none is named)

Each is built on first use by its adapter (compat/clients/java.py,
compat/clients/franz_go.py) into a folder ignored by git, and again when one of
its sources is newer than what was built; this command does the same ahead of
time (.ci/run uses it), and exits 1 with the build's output when a build fails,
2 when the tools are missing. It needs nothing but the standard library.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

JAVA_DIR = HERE / "java"
JAVA_POM = JAVA_DIR / "pom.xml"
JAVA_JAR = JAVA_DIR / "target" / "kstub-compat-java.jar"
JAVA_LIB = JAVA_DIR / "target" / "lib"

GO_DIR = HERE / "go"
GO_BIN = GO_DIR / "bin" / "franz-go-driver"


class BuildError(Exception):
    """A driver could not be built (the message has the tool's output)."""


class ToolMissing(BuildError):
    """A program the build or the driver needs is not on PATH."""


@dataclass
class Target:
    name: str
    output: Path
    folder: Path
    sources: Callable[[], Iterable[Path]]
    command: Callable[[], list[str]]
    needs_to_run: tuple[str, ...]  # programs the built driver needs
    needs_to_build: tuple[str, ...]

    def unavailable(self) -> str | None:
        """Why this driver cannot run here (None when it can, building it first if needed)."""
        for program in self.needs_to_run:
            if shutil.which(program) is None:
                return f"`{program}` is not on PATH (the {self.name} driver runs on it)"
        if self.stale():
            for program in self.needs_to_build:
                if shutil.which(program) is None:
                    return f"`{program}` is not on PATH (it builds the {self.name} driver in {self.folder})"
        return None

    def stale(self) -> bool:
        if not self.output.exists():
            return True
        built = self.output.stat().st_mtime
        return any(p.stat().st_mtime > built for p in self.sources())


def _java_sources() -> Iterable[Path]:
    yield JAVA_POM
    yield from (JAVA_DIR / "src").rglob("*.java")


def _go_sources() -> Iterable[Path]:
    yield from (GO_DIR / name for name in ("go.mod", "go.sum"))
    yield from GO_DIR.glob("*.go")


JAVA = Target(
    "Java client",
    JAVA_JAR,
    JAVA_DIR,
    _java_sources,
    lambda: ["mvn", "-q", "-B", "-f", str(JAVA_POM), "package"],
    ("java",),
    ("mvn",),
)
FRANZ_GO = Target(
    "franz-go",
    GO_BIN,
    GO_DIR,
    _go_sources,
    lambda: ["go", "build", "-buildvcs=false", "-o", str(GO_BIN), "."],
    (),
    ("go",),
)
TARGETS = {"java": JAVA, "franz-go": FRANZ_GO}

_lock = threading.Lock()
_failed: dict[str, str] = {}  # a failed build is not tried again by this process


def ensure(target: Target) -> Path:
    """The built driver, building it first when missing or older than its sources."""
    reason = target.unavailable()
    if reason:
        raise ToolMissing(reason)
    with _lock:
        if target.name in _failed:
            raise BuildError(_failed[target.name])
        if not target.stale():
            return target.output
        target.output.parent.mkdir(parents=True, exist_ok=True)
        lock_path = target.output.parent / ".build-lock"  # in the ignored output folder
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it too
            try:
                if target.stale():
                    print(f"compat: building the {target.name} driver in {target.folder}", file=sys.stderr, flush=True)
                    _run(target)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return target.output


def _run(target: Target) -> None:
    env = dict(os.environ)
    try:
        result = subprocess.run(
            target.command(), cwd=target.folder, capture_output=True, text=True, timeout=900, env=env
        )
    except subprocess.TimeoutExpired as exc:
        _failed[target.name] = f"building the {target.name} driver took more than {exc.timeout:.0f}s"
        raise BuildError(_failed[target.name]) from exc
    if result.returncode != 0 or not target.output.exists():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        _failed[target.name] = f"building the {target.name} driver failed ({' '.join(target.command())}):\n{tail}"
        raise BuildError(_failed[target.name])
    target.output.touch()  # newer than every source, even when the tool left it as it was


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        print(f"compat.build: unknown driver {', '.join(unknown)} (known: {', '.join(TARGETS)})", file=sys.stderr)
        return 2
    code = 0
    for name in names:
        try:
            print(f"{name}: {ensure(TARGETS[name])}")
        except ToolMissing as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            code = max(code, 2)
        except BuildError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            code = max(code, 1)
    return code


if __name__ == "__main__":
    sys.exit(main())
