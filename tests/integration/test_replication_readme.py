"""The user guide's replication examples work when pasted.

They are the ``sh`` blocks of docs/replication.md between the
``<!-- replication-examples:begin -->`` and ``<!-- replication-examples:end -->``
comments. The first starts the cluster; every later command runs in order,
as written, except that the ports are free ones instead of 9092-9094 and
9644, and ``.venv/bin/kstub`` is this checkout's. curl and ``kstub ctl`` must answer
JSON that is not a refusal (``{"error": ...}`` alone).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from support.external import require_programs
from support.served import Served, free_ports

README = Path(__file__).resolve().parents[2] / "docs" / "replication.md"
BEGIN, END = "<!-- replication-examples:begin -->", "<!-- replication-examples:end -->"


def shell_blocks() -> list[list[str]]:
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{README} needs one {BEGIN} ... {END} region"
    region = text[text.index(BEGIN) : text.index(END)]
    blocks = re.findall(r"```sh\n(.*?)```", region, re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def test_readme_shell_examples_work_as_written():
    blocks = shell_blocks()
    commands = [line for block in blocks[1:] for line in block]
    require_programs(*sorted({"curl", "kcat"} & {word for c in commands for word in c.split()}))
    (serve,) = blocks[0]
    assert serve.startswith(".venv/bin/kstub serve --brokers 3 --admin-port 9644")
    base = free_ports(4)
    ports = {"9092": base, "9093": base + 1, "9094": base + 2, "9644": base + 3}

    def adapt(command: str) -> str:
        command = re.sub(r"\b(9092|9093|9094|9644)\b", lambda m: str(ports[m[1]]), command)
        return re.sub(r"^\.venv/bin/kstub ", f"{sys.executable} -m kstub ", command)

    args = adapt(serve).split()[4:]  # after "<python> -m kstub serve"
    served = Served(*args, "--port", str(base))
    assert (
        sum(c.startswith("curl") for c in commands) >= 20
        and sum(c.startswith(".venv/bin/kstub ctl") for c in commands) >= 10
    )
    try:
        for command in commands:
            done = subprocess.run(adapt(command), shell=True, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (command, done.stderr)
            if command.startswith(("curl", ".venv/bin/kstub ctl")):
                answer = json.loads(done.stdout)
                assert not (isinstance(answer, dict) and answer.keys() == {"error"}), (command, answer)
    finally:
        served.close()
