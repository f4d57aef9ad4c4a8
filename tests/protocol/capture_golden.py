"""Capture the first request frame real Kafka clients send, as golden files.

Run by hand from the repository root (the tests never run it)::

    python tests/protocol/capture_golden.py            # every client
    python tests/protocol/capture_golden.py kcat aiokafka   # some of them

For each client it listens on 127.0.0.1, port 0, with a plain blocking
socket (no broker, no kstub code involved), starts the client in a
subprocess with ``bootstrap = 127.0.0.1:PORT``, accepts the client's first
connection, reads one size-prefixed frame, closes the connection and kills
the client. The frame *without* its 4-byte size prefix is written to::

    tests/protocol/golden/<client>_<api>_v<N>.bin

where ``<api>`` is the snake_case API name and ``<N>`` the request version,
both read from the request header itself. ``test_golden.py`` picks up every
``*.bin`` file in that folder automatically; its ``EXPECTED`` table adds the
concrete values seen in a capture.

The first request every client sends is ApiVersions: kafka-python v4 (newer
than kstub's maximum, v3: the "too new" case), librdkafka (confluent-kafka
and kcat) v3, aiokafka v0. Goldens of later requests (Metadata, Produce,
Fetch...) are captured through the running broker by ``capture_session.py``
and follow the same naming; several captures of the same request can be told apart with a
``.<label>`` before ``.bin`` (e.g. ``kcat_metadata_v4.topics.bin``).

Clients used (all installed in the dev environment): kafka-python
(KafkaProducer and KafkaAdminClient), confluent-kafka (Producer), aiokafka
(AIOKafkaProducer) and kcat (``kcat -L -b``).
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"

#: Kafka's API names by key, for naming files (only the ones a client may
#: send first or early; unknown keys are named ``api<key>``).
API_NAMES = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    18: "ApiVersions",
    19: "CreateTopics",
    20: "DeleteTopics",
    22: "InitProducerId",
    23: "OffsetForLeaderEpoch",
}

_PY = sys.executable

#: client name -> command line, with {port} to fill in.
CLIENTS: dict[str, list[str]] = {
    "kafka-python-producer": [
        _PY,
        "-c",
        "from kafka import KafkaProducer\n"
        "KafkaProducer(bootstrap_servers='127.0.0.1:{port}', request_timeout_ms=3000,"
        " bootstrap_timeout_ms=3000)\n",
    ],
    "kafka-python-admin": [
        _PY,
        "-c",
        "from kafka import KafkaAdminClient\n"
        "KafkaAdminClient(bootstrap_servers='127.0.0.1:{port}', request_timeout_ms=3000,"
        " bootstrap_timeout_ms=3000)\n",
    ],
    "confluent-kafka": [
        _PY,
        "-c",
        "from confluent_kafka import Producer\np = Producer({{'bootstrap.servers': '127.0.0.1:{port}'}})\np.poll(5)\n",
    ],
    "aiokafka": [
        _PY,
        "-c",
        "import asyncio\n"
        "from aiokafka import AIOKafkaProducer\n"
        "async def main():\n"
        "    p = AIOKafkaProducer(bootstrap_servers='127.0.0.1:{port}', request_timeout_ms=3000)\n"
        "    await p.start()\n"
        "asyncio.run(main())\n",
    ],
    "kcat": ["kcat", "-L", "-b", "127.0.0.1:{port}", "-m", "3"],
}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _read_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"client closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def capture(client: str, timeout: float = 10.0) -> Path:
    """Capture `client`'s first request frame; return the file written."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(timeout)
        port = listener.getsockname()[1]
        argv = [arg.format(port=port) for arg in CLIENTS[client]]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(timeout)
                (size,) = struct.unpack(">i", _read_exact(conn, 4))
                frame = _read_exact(conn, size)
        finally:
            proc.kill()  # only the client this function started
            proc.wait()
    api_key, api_version = struct.unpack(">hh", frame[:4])
    api = snake(API_NAMES.get(api_key, f"Api{api_key}"))
    GOLDEN.mkdir(exist_ok=True)
    path = GOLDEN / f"{client}_{api}_v{api_version}.bin"
    path.write_bytes(frame)
    return path


def main(argv: list[str]) -> int:
    clients = argv or list(CLIENTS)
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        print(f"unknown clients {unknown}; known: {list(CLIENTS)}", file=sys.stderr)
        return 2
    failed = 0
    for client in clients:
        start = time.monotonic()
        try:
            path = capture(client)
        except (OSError, ConnectionError) as exc:
            print(f"{client}: FAILED: {exc!r}", file=sys.stderr)
            failed += 1
            continue
        took = time.monotonic() - start
        print(f"{client}: {path.relative_to(GOLDEN.parent)} ({path.stat().st_size} bytes, {took:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
