"""`kstub groups` run as a user runs it, and its tables read back (test_groups_tool.py and the KIP-848 tests)."""

from __future__ import annotations

import subprocess
import sys


def kstub_groups(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kstub", "groups", *args, "--bootstrap-server", bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
    )


def tables(text: str) -> list[list[dict[str, str]]]:
    """Each blank-line-separated table of the output, as rows keyed by column name."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        if len(lines) < 2 or not lines[0].startswith("GROUP"):
            continue
        header = lines[0].replace("COORDINATOR (ID)", "COORDINATOR").split()
        rows = []
        for line in lines[1:]:
            cells = line.replace(" (", "(").split()
            rows.append(dict(zip(header, cells, strict=True)))
        out.append(rows)
    return out
