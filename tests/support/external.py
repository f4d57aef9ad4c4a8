"""Tests that need a program kstub does not ship (kcat, java, mvn, go, node).

Where the program is missing, such a test skips and says why; under CI (the
``CI`` environment variable set, as ``.ci/run`` runs), ``.ci/run`` installs
every such program, so a skip there would hide a broken install: it fails
instead.
"""

from __future__ import annotations

import os
import shutil

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the running test for `reason`, or fail it under CI."""
    if on_ci():
        pytest.fail(f"{reason} (CI must run this test: .ci/run installs what it needs)", pytrace=False)
    pytest.skip(reason)


def require_programs(*names: str) -> None:
    """Skip (fail under CI) unless every program in `names` is on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        unavailable(f"needs {', '.join(missing)} on PATH")
