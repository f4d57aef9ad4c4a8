"""The codec is sans-IO: nothing under ``protocol/`` imports Trio or does I/O itself.

Every ``.py`` file under the repository's ``protocol/`` folder (whoever wrote
it) is parsed with `ast`; no ``import`` of trio, socket, asyncio, threading,
selectors or anyio is allowed anywhere in it, including inside functions and
``if TYPE_CHECKING`` blocks. A fresh interpreter importing ``kstub.protocol``
(and every submodule) must not end up with trio in ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = REPO / "protocol"
FORBIDDEN = {"trio", "socket", "asyncio", "threading", "selectors", "anyio", "_thread", "socketserver"}

SOURCES = sorted(PROTOCOL.rglob("*.py"))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every import in `path`; relative imports are ours."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def test_protocol_sources_found() -> None:
    names = {p.relative_to(PROTOCOL).as_posix() for p in SOURCES}
    assert {"__init__.py", "schema.py", "primitives.py", "headers.py", "messages/__init__.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(PROTOCOL).as_posix())
def test_no_io_imports(path: Path) -> None:
    bad = [(line, mod) for line, mod in imported_modules(path) if mod in FORBIDDEN]
    assert not bad, f"{path.relative_to(REPO)} imports {', '.join(f'{m} (line {n})' for n, m in bad)}"


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, trio.lowlevel\n"
        "from socket import socket\n"
        "from . import schema\n"
        "def f():\n"
        "    import asyncio\n"
        "    importlib.import_module('threading')\n"
    )
    mods = {m for _, m in imported_modules(sample)}
    assert mods == {"os", "trio", "socket", "asyncio", "threading"}


def test_importing_the_codec_does_not_import_trio() -> None:
    code = (
        "import sys, json, pkgutil, importlib\n"
        "import kstub.protocol\n"
        "for m in pkgutil.walk_packages(kstub.protocol.__path__, 'kstub.protocol.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    modules = set(json.loads(out.stdout))
    assert "kstub.protocol" in modules
    assert "kstub.protocol.schema" in modules
    leaked = {m for m in modules if m.split(".")[0] in {"trio", "anyio", "asyncio"}}
    assert not leaked, f"importing kstub.protocol pulled in {sorted(leaked)}"
