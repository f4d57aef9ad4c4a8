"""kstub/kafka_versions_data.py is what the releases' own jars say (compat/derive_kafka_versions.py --check).

Maven fetches each release's kafka-clients and kafka-server-common jars (once, into ~/.m2) and Java reads
their feature levels: skipped without mvn or java (a failure under CI).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.external import require_programs

ROOT = Path(__file__).resolve().parents[2]


def test_committed_table_matches_the_release_jars() -> None:
    require_programs("mvn", "java")
    result = subprocess.run(
        [sys.executable, str(ROOT / "compat" / "derive_kafka_versions.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
