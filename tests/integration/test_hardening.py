"""Hostile or careless input: each gets Kafka's answer, and the server keeps serving everyone.

Partition counts, Metadata with null topic names, Fetch sizes, idle and
half-sent connections, connection limits. Where a request used to make the
server allocate without bound, the test runs kstub as a subprocess under an
address-space cap (so a regression fails the test instead of exhausting the
machine) and reads its RSS from /proc.
"""

from __future__ import annotations

import json
import re
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.embedded import EmbeddedCluster
from kstub.protocol import ErrorCode
from kstub.protocol.primitives import ZERO_UUID

from support.raw import RawClient

#: a cap on the subprocess' address space: a runaway allocation fails there, not on the machine
MEMORY_CAP = 2 << 30
#: how long a request may take before the test calls the server stuck (generous: a shared machine)
ANSWER_TIMEOUT = 20.0


def _rss(pid: int) -> int:
    """Resident set size of a process, in bytes (Linux /proc)."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match, "no VmRSS"
    return int(match[1]) * 1024


class ServedProcess:
    """`kstub serve` in a subprocess on an ephemeral port, under MEMORY_CAP."""

    def __init__(self, tmp: Path, *config: str, nofile: int | None = None) -> None:
        self.log = tmp / "kstub.log"

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kstub", "serve", "--host", "127.0.0.1", "--port", "0"]
                + [arg for kv in config for arg in ("-c", kv)],
                stdout=out,
                stderr=out,
                preexec_fn=limits,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"kstub ready: bootstrap servers (\S+)", self.log.read_text())
            if found:
                self.bootstrap = found[1]
                return
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.02)
        raise AssertionError("kstub did not start")

    @property
    def rss(self) -> int:
        return _rss(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedProcess]:
    server = ServedProcess(tmp_path)
    try:
        yield server
    finally:
        server.close()


def _create(c: RawClient, topics: list[tuple[str, int]], *, validate_only: bool = False) -> list:
    body = c.request(
        19,
        7,
        {
            "topics": [{"name": n, "num_partitions": p, "replication_factor": 1} for n, p in topics],
            "timeout_ms": 5000,
            "validate_only": validate_only,
        },
    )
    return list(body.topics)


def _grow(c: RawClient, topics: list[tuple[str, int]]) -> list:
    body = c.request(
        37, 3, {"topics": [{"name": n, "count": k, "assignments": None} for n, k in topics], "timeout_ms": 5000}
    )
    return sorted(body.results, key=lambda r: r.name)


# --- 1. partition counts -----------------------------------------------------------------

TOO_MANY = "Excessively large number of partitions per request."
TOO_MANY_NEW = "Excessively large number of additional partitions per request."


def test_huge_partition_counts_are_refused_at_once_with_kafkas_answer(served):
    with RawClient(served.bootstrap, timeout=ANSWER_TIMEOUT) as c:
        _create(c, [("warm", 1)])  # the server's own first allocations
        before = served.rss
        for validate_only in (True, False):
            (t,) = _create(c, [("huge", 2**31 - 1)], validate_only=validate_only)
            assert (t.name, t.error_code, t.error_message) == ("huge", ErrorCode.POLICY_VIOLATION, TOO_MANY)
        # Kafka counts the whole request: two topics of 6,000 are refused together.
        both = _create(c, [("half-a", 6000), ("half-b", 6000)])
        assert [(t.error_code, t.error_message) for t in both] == [(ErrorCode.POLICY_VIOLATION, TOO_MANY)] * 2
        assert _grow(c, [("warm", 2**31 - 1)])[0].error_message == TOO_MANY_NEW
        grown = _grow(c, [("warm", 10_002), ("half-a", 1), ("other", 5000)])
        assert [(r.name, r.error_code) for r in grown] == [
            ("half-a", ErrorCode.POLICY_VIOLATION),  # unknown topics add nothing, but share the refusal
            ("other", ErrorCode.POLICY_VIOLATION),
            ("warm", ErrorCode.POLICY_VIOLATION),
        ]
        assert served.rss - before < 64 << 20, "the refusal allocated nothing to speak of"
        # The server still answers, on this connection and a new one; nothing was created.
        body = c.request(3, 12, {"topics": None})
        assert sorted(t.name for t in body.topics) == ["warm"]
        assert len(body.topics[0].partitions) == 1
    with RawClient(served.bootstrap) as other:
        assert _create(other, [("fine", 3)])[0].error_code == ErrorCode.NONE


def test_partition_count_and_replication_factor_errors_are_kafkas(bootstrap):
    with RawClient(bootstrap) as c:
        (t,) = _create(c, [("rf", 1)])
        assert t.error_code == ErrorCode.NONE
        body = c.request(
            19,
            7,
            {
                "topics": [
                    {"name": "rf5", "num_partitions": 1, "replication_factor": 5},
                    {"name": "rf0", "num_partitions": 1, "replication_factor": 0},
                    {"name": "p0", "num_partitions": 0, "replication_factor": 1},
                    {"name": "pneg", "num_partitions": -5, "replication_factor": 1},
                ],
                "timeout_ms": 5000,
            },
        )
        assert [(t.name, t.error_code, t.error_message) for t in body.topics] == [
            (
                "rf5",
                ErrorCode.INVALID_REPLICATION_FACTOR,
                "Unable to replicate the partition 5 time(s): The target replication factor of 5 cannot be "
                "reached because only 1 broker(s) are registered or some brokers have all their log "
                "directories cordoned.",
            ),
            (
                "rf0",
                ErrorCode.INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ),
            ("p0", ErrorCode.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value."),
            ("pneg", ErrorCode.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value."),
        ]
        # 10,000 new partitions in one request is still allowed (Kafka's limit is "more than").
        assert _grow(c, [("rf", 10_001)])[0].error_code == ErrorCode.NONE


# --- 3. Metadata v10+ with null topic names ----------------------------------------------


def _meta(c: RawClient, version: int, topics: list[dict]) -> object:
    return c.request(3, version, {"topics": topics, "allow_auto_topic_creation": False})


def test_metadata_with_null_topic_names_gets_kafkas_errors_on_an_open_connection(raw_bootstrap_topic):
    bootstrap, topic_id = raw_bootstrap_topic
    unknown = uuid.uuid4()
    with RawClient(bootstrap) as c:
        for version in (10, 11):
            for entries in (
                [{"name": None, "topic_id": ZERO_UUID}],
                [{"name": None, "topic_id": topic_id}],
                [{"name": "known", "topic_id": ZERO_UUID}, {"name": None, "topic_id": unknown}],
            ):
                body = _meta(c, version, entries)
                # Kafka serves ids only from v12: the whole request is INVALID_REQUEST.
                assert body.brokers == [] and body.controller_id == -1
                assert [(t.name, t.topic_id, t.error_code) for t in body.topics] == [
                    (e["name"] or "", e["topic_id"], ErrorCode.INVALID_REQUEST) for e in entries
                ]
        # v12: a null name with no id fails the whole request, as in Kafka 4.x.
        body = _meta(c, 12, [{"name": "known", "topic_id": ZERO_UUID}, {"name": None, "topic_id": ZERO_UUID}])
        assert [(t.name, t.error_code) for t in body.topics] == [
            ("known", ErrorCode.UNKNOWN_SERVER_ERROR),
            ("", ErrorCode.UNKNOWN_SERVER_ERROR),
        ]
        # With ids, v12 answers by id alone, each id once.
        body = _meta(
            c,
            12,
            [
                {"name": None, "topic_id": ZERO_UUID},
                {"name": None, "topic_id": unknown},
                {"name": None, "topic_id": topic_id},
                {"name": None, "topic_id": unknown},
            ],
        )
        assert [(t.name, t.topic_id, t.error_code) for t in body.topics] == [
            (None, unknown, ErrorCode.UNKNOWN_TOPIC_ID),
            ("known", topic_id, ErrorCode.NONE),
        ]
        assert [b.node_id for b in body.brokers] == [0]
        # The connection is still open and serves names as before.
        body = _meta(c, 12, [{"name": "known", "topic_id": ZERO_UUID}])
        assert [(t.name, t.error_code, len(t.partitions)) for t in body.topics] == [("known", ErrorCode.NONE, 1)]


@pytest.fixture
def raw_bootstrap_topic(bootstrap):
    with RawClient(bootstrap) as c:
        (t,) = _create(c, [("known", 1)])
        assert t.error_code == ErrorCode.NONE
        return bootstrap, t.topic_id


# --- 5. the admin HTTP API ---------------------------------------------------------------


def _http(url: str, data: bytes) -> tuple[int, dict]:
    """Send raw bytes (half-closing after them), read the answer: status and JSON body."""
    host, port = re.match(r"http://(.*):(\d+)", url).groups()
    with socket.create_connection((host, int(port)), timeout=ANSWER_TIMEOUT) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _post(path: str, body: bytes, *, length: bytes | None = None) -> bytes:
    length = str(len(body)).encode() if length is None else length
    head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: " + length + b"\r\n\r\n" + body


@pytest.mark.kstub(admin_port=0)
def test_admin_api_answers_hostile_bodies_with_400_and_carries_on(kstub_cluster):
    url = kstub_cluster.admin_url
    delay = "/v1/brokers/0/replication-delay"
    cases = [
        # nested deeper than Python's recursion limit: a 400, not a 500
        (_post(delay, b"[" * 100_000 + b"]" * 100_000), "nested too deeply"),
        (_post(delay, b'{"ms": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"), "nested too deeply"),
        (_post(delay, b'{"ms": ' + b"9" * 5000 + b"}"), "not JSON"),  # more digits than Python converts
        (_post(delay, b'{"ms": ' + b"9" * 40 + b"}"), "out of range"),  # a float would overflow
        (_post("/v1/faults", b'{"type": "delay", "ms": 1' + b"0" * 400 + b"}"), "out of range"),
        (_post(delay, b'{"ms": NaN}'), "integer"),
        (_post(delay, b"{}", length="²".encode("latin-1")), "bad Content-Length"),  # isdigit() but not int()
        (_post(delay, b"{}", length=b"+2"), "bad Content-Length"),
        (_post(delay, b"{}", length=b"9" * 30), "bad Content-Length"),
        (_post(delay, b"{}").replace(b"Host: 127.0.0.1", b"Content-Length: 1"), "more than one Content-Length"),
        (_post(delay, b'{"ms": 1}', length=b"100"), "closed before the request was complete"),
    ]
    for data, message in cases:
        status, body = _http(url, data)
        assert status == 400 and message in body["error"], (data[:80], status, body)
    status, body = _http(url, _post(delay, b"{}", length=str(2 << 20).encode()))
    assert status == 413 and body["error"] == "body too large"
    # The control plane and the brokers carry on; the delay was never changed.
    status, body = _http(url, b"GET /v1/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 200 and body["brokers"][0]["replication"]["delay_ms"] == 0
    with RawClient(kstub_cluster.bootstrap_servers) as c:
        assert [b.node_id for b in c.request(3, 12, {"topics": None}).brokers] == [0]


# --- 6. the broker's fetch cap -----------------------------------------------------------

FETCH_CAP = 3000


def _batch(value_size: int, base: int = 0) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    builder.append(0, timestamp=1_700_000_000_000 + base, key=None, value=b"v" * value_size, headers=[])
    return bytes(builder.build())


def _fetch(c: RawClient, parts: list[tuple[str, int, int]], *, max_bytes: int, part_max: int, version: int = 12):
    """Fetch (topic, partition, offset)s; the record bytes each partition got, in order."""
    body = c.request(
        1,
        version,
        {
            "max_wait_ms": 0,
            "min_bytes": 1,
            "max_bytes": max_bytes,
            "isolation_level": 0,
            "topics": [
                {"topic": t, "partitions": [{"partition": p, "fetch_offset": o, "partition_max_bytes": part_max}]}
                for t, p, o in parts
            ],
        },
    )
    out = []
    for topic in body.responses:
        for p in topic.partitions:
            assert p.error_code == ErrorCode.NONE
            records = p.records if isinstance(p.records, (bytes, bytearray)) else b"".join(p.records or [])
            out.append(len(records))
    return out


@pytest.mark.kstub(config={"fetch.max.bytes": str(FETCH_CAP)})
def test_fetch_responses_never_exceed_the_brokers_fetch_max_bytes(bootstrap):
    small = _batch(900)
    big = _batch(5 * FETCH_CAP)
    with RawClient(bootstrap) as c:
        _create(c, [("capped", 2)])
        for partition in (0, 1):
            for i in range(10):
                body = c.request(
                    0,
                    9,
                    {
                        "acks": -1,
                        "timeout_ms": 5000,
                        "topic_data": [
                            {"name": "capped", "partition_data": [{"index": partition, "records": _batch(900, i)}]}
                        ],
                    },
                )
                assert body.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        body = c.request(
            0,
            9,
            {
                "acks": -1,
                "timeout_ms": 5000,
                "topic_data": [{"name": "capped", "partition_data": [{"index": 0, "records": big}]}],
            },
        )
        assert body.responses[0].partition_responses[0].base_offset == 10
        unlimited = 2**31 - 1
        both = [("capped", 0, 0), ("capped", 1, 0)]
        for version in (4, 12):
            got = _fetch(c, both, max_bytes=unlimited, part_max=unlimited, version=version)
            # a byte range, as Kafka reads: whole batches, then the first bytes of the next up to the cap
            assert sum(got) == FETCH_CAP and got[0] == FETCH_CAP, got
        # v0-v2 have no max_bytes: the broker's cap applies all the same
        assert 0 < sum(_fetch(c, both, max_bytes=unlimited, part_max=unlimited, version=2)) <= FETCH_CAP
        # a smaller max_bytes asked for still wins
        assert _fetch(c, both, max_bytes=len(small) + 1, part_max=unlimited) == [len(small) + 1, 0]
        # a first batch larger than the cap comes whole, alone, as in Kafka
        assert _fetch(c, [("capped", 0, 10), ("capped", 1, 0)], max_bytes=unlimited, part_max=unlimited) == [
            len(big),
            0,
        ]


# --- 7. connections: idle, half-sent, limits, out of file descriptors --------------------


def _connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=ANSWER_TIMEOUT)


def _closed_by_broker(sock: socket.socket) -> bool:
    """Wait (up to ANSWER_TIMEOUT) for the broker to close the connection: True if it did."""
    sock.settimeout(ANSWER_TIMEOUT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _answers(c: RawClient) -> bool:
    return [b.node_id for b in c.request(3, 12, {"topics": None}).brokers] == [0]


def _sessions(kc) -> int:
    """The connections broker 0 holds (its sessions: accepted and not yet ended)."""
    return kc.call(lambda: len(kc.cluster.control._runtime.brokers[0]._sessions))


IDLE_MS = 300


def _metadata_frame(c: RawClient) -> bytes:
    return c.conn.send_request(3, 12, {"topics": None})


def test_idle_and_half_sent_connections_are_closed_after_connections_max_idle_ms():
    with (
        EmbeddedCluster(config={"connections.max.idle.ms": str(IDLE_MS)}) as short,
        EmbeddedCluster() as default,
    ):
        patient = RawClient(default.bootstrap_servers)
        assert _answers(patient)
        patient_half = RawClient(default.bootstrap_servers)
        frame = _metadata_frame(patient_half)
        patient_half.sock.sendall(frame[:6])
        with RawClient(short.bootstrap_servers) as idle, _connect(short.bootstrap_servers) as half:
            assert _answers(idle), "served while active"
            half.sendall(_metadata_frame(idle)[:6])
            assert _closed_by_broker(idle.sock), "an idle connection is closed"
            assert _closed_by_broker(half), "so is one stopped in the middle of a request"
        # The same wait closed nothing on the broker with Kafka's default (10 minutes).
        assert _answers(patient)
        patient_half.sock.sendall(frame[6:])
        assert [b.node_id for b in patient_half.receive().brokers] == [0]
        patient.close()
        patient_half.close()
        # and the short broker still serves new connections
        with RawClient(short.bootstrap_servers) as fresh:
            assert _answers(fresh)


@pytest.mark.kstub(config={"kstub.request.receive.timeout.ms": str(IDLE_MS)})
def test_a_request_trickling_in_is_cut_off_after_the_receive_timeout(bootstrap):
    """One byte at a time keeps connections.max.idle.ms from firing; the request's own bound does."""
    with _connect(bootstrap) as slow, RawClient(bootstrap) as bystander:
        slow.sendall(b"\x00\x00\x10\x00")  # a 4 KiB frame, sent a byte every 20 ms: 80 s if allowed
        slow.setblocking(False)
        closed = False
        for _ in range(int(ANSWER_TIMEOUT / 0.02)):
            try:
                if slow.recv(1) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed = True
                break
            try:
                slow.send(b"\x00")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.02)
        assert closed, "the trickling request was cut off"
        assert _answers(bystander), "others are served meanwhile and after"


@pytest.mark.kstub(config={"max.connections.per.ip": "2"})
def test_max_connections_per_ip_refuses_the_next_connection(kstub_cluster):
    bootstrap = kstub_cluster.bootstrap_servers
    first, second = RawClient(bootstrap), RawClient(bootstrap)
    assert _answers(first) and _answers(second)
    with _connect(bootstrap) as third:
        assert _closed_by_broker(third), "a third connection from 127.0.0.1 is closed at once"
    assert _answers(first) and _sessions(kstub_cluster) == 2
    first.close()
    # Once one closes, a new connection is served (the broker notices the close asynchronously).
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while True:
        try:
            with RawClient(bootstrap) as again:
                assert _answers(again)
                break
        except ConnectionError:
            assert time.monotonic() < deadline, "a freed slot is never given again"
    second.close()


@pytest.mark.kstub(config={"max.connections.per.ip": "1", "max.connections.per.ip.overrides": "127.0.0.1:3"})
def test_max_connections_per_ip_overrides(kstub_cluster):
    bootstrap = kstub_cluster.bootstrap_servers
    clients = [RawClient(bootstrap) for _ in range(3)]
    assert all(_answers(c) for c in clients)
    with _connect(bootstrap) as fourth:
        assert _closed_by_broker(fourth)
    for c in clients:
        c.close()


@pytest.mark.kstub(config={"max.connections": "2"})
def test_max_connections_holds_the_next_connection_until_one_ends(kstub_cluster):
    bootstrap = kstub_cluster.bootstrap_servers
    first, second = RawClient(bootstrap), RawClient(bootstrap)
    assert _answers(first) and _answers(second)
    third = RawClient(bootstrap)  # connected by the kernel, in the listen backlog
    third.send(3, 12, {"topics": None})
    assert _sessions(kstub_cluster) == 2, "not accepted while two are open"
    first.close()
    assert [b.node_id for b in third.receive().brokers] == [0], "accepted and answered once one ended"
    assert _sessions(kstub_cluster) == 2
    second.close()
    third.close()


def test_out_of_file_descriptors_backs_off_quietly_and_recovers(tmp_path):
    server = ServedProcess(tmp_path, nofile=48)
    held: list[socket.socket] = []
    try:
        # More connections than the server has descriptors for: some wait in the backlog.
        for _ in range(60):
            held.append(_connect(server.bootstrap))
        with RawClient(server.bootstrap) as probe:
            probe.send(3, 12, {"topics": None})
            # The accept loop hits EMFILE; then give it time to retry (it logged a traceback every 0.1 s).
            deadline = time.monotonic() + ANSWER_TIMEOUT
            while "EMFILE" not in server.log.read_text():
                assert time.monotonic() < deadline, "the server never ran out of descriptors"
                time.sleep(0.05)
            time.sleep(1.5)
            log = server.log.read_text()
            assert "Traceback" not in log, log[-3000:]
            assert log.count("EMFILE") == 1, "said once, not at every retry"
            for s in held:
                s.close()
            held.clear()
            # Descriptors come back as the held connections end: the waiting request is answered.
            assert [b.node_id for b in probe.receive().brokers] == [0]
        assert "accepting connections again" in server.log.read_text()
        with RawClient(server.bootstrap) as fresh:
            assert _answers(fresh)
        assert server.proc.poll() is None
    finally:
        for s in held:
            s.close()
        server.close()
