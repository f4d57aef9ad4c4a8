"""What the fuzz tests and ``python3 dev.py fuzz`` share: seeds, frame makers, checks, a live server.

A *frame* here is one request without its 4-byte size prefix, as in
``tests/protocol/golden/`` and ``tests/fuzz/corpus/``. Frames come from three
makers, all driven by a `random.Random` (so a hypothesis test draws the
`Random` and a deep run uses its own, seeded and printed):

* `generate`: a header and a body built from an API's declaration at one
  version, with values biased towards edges (-1, 0, maxima, null where
  nullable, empty and long strings, names of topics that exist);
* `mutate`: a seed frame with bytes flipped, set, cut, inserted, duplicated,
  int16/int32 fields overwritten with edge values, its api key or version
  changed, or spliced with another seed;
* `mutate_records`: the record batches of a seed Produce frame mutated, with
  their CRC recomputed half of the time so that the batch checks get past it.

`check_decode` is the property every frame must meet in-process: the
server-side decoder (`ServerConnection`, then for Produce the record-batch
validation the handler runs) either accepts the frame or raises the codec's
own `ProtocolError`, never anything else.

`LiveServer` runs ``kstub serve`` in a subprocess under an address-space
limit; `campaign` throws frames at it over many concurrent connections, and
`LiveServer.check` then asserts it is alive, its RSS bounded, a fresh
connection answered, and no traceback in its log.
"""

from __future__ import annotations

import random
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from kstub.protocol.connection import NEED_DATA, ClientConnection, ServerConnection
from kstub.protocol.errors import ProtocolError
from kstub.protocol.headers import encode_request_header
from kstub.protocol.messages import ALL
from kstub.protocol.records import RecordBatch, iter_records, read_produce_data
from kstub.protocol.schema import Api, Field, Struct

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
CORPUS_DIRS = (CORPUS, ROOT / "tests" / "protocol" / "golden")

#: topics the live campaigns create first, so that generated requests hit existing topics too
TOPICS = ("fuzz-a", "fuzz-b", "fuzz-c")
#: a topic no generated request names (a campaign may delete the others): the watcher's and `check`'s
WATCHED = "fuzz-watched"
PRODUCE = 0
METADATA = 3
CREATE_TOPICS = 19
CREATE_PARTITIONS = 37

# --- seeds -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    name: str
    frame: bytes

    @property
    def api_key(self) -> int:
        return struct.unpack_from(">h", self.frame)[0]

    @property
    def api_version(self) -> int:
        return struct.unpack_from(">h", self.frame, 2)[0]


def load_seeds() -> list[Seed]:
    """Every captured frame: ``tests/fuzz/corpus/`` (this harness's captures) and the protocol goldens."""
    seeds = []
    for directory in CORPUS_DIRS:
        for path in sorted(directory.glob("*.bin")):
            seeds.append(Seed(f"{directory.name}/{path.name}", path.read_bytes()))
    return seeds


def seed_coverage(seeds: Sequence[Seed]) -> dict[int, set[int]]:
    """Versions seeded, by api key (only those kstub declares and implements)."""
    out: dict[int, set[int]] = {}
    for seed in seeds:
        api = ALL.get(seed.api_key)
        if api is not None and api.supports(seed.api_version):
            out.setdefault(seed.api_key, set()).add(seed.api_version)
    return out


# --- generated frames --------------------------------------------------------------------------------------------

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
}


def _int(rnd: random.Random, type_: str) -> int:
    lo, hi = _INT_RANGES[type_]
    roll = rnd.random()
    if roll < 0.3:
        return rnd.choice([v for v in (lo, hi, -1, 0, 1, 2, hi // 2 + 1) if lo <= v <= hi])
    if roll < 0.8:
        return max(lo, min(hi, rnd.randint(-2, 8)))
    return rnd.randint(lo, hi)


def _text(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.35:
        return rnd.choice(TOPICS)
    if roll < 0.5:
        return ""
    if roll < 0.55:
        return "x" * rnd.choice([249, 250, 300, 2000])
    if roll < 0.65:
        return rnd.choice(["__consumer_offsets", ".", "..", "a/b", "naïve", "\x00", "bad topic", "g", "range"])
    return "".join(rnd.choice("abcdefghij-_.0123") for _ in range(rnd.randint(1, 12)))


def _bytes(rnd: random.Random, records: bool) -> bytes:
    if records and rnd.random() < 0.5:
        return _batch(rnd)
    return rnd.randbytes(rnd.choice([0, 1, 4, 12, 61, rnd.randint(0, 200)]))


def _batch(rnd: random.Random) -> bytes:
    """A magic-2 record batch, valid in structure, its header fields sometimes odd; CRC right or wrong."""
    records = bytearray()
    count = rnd.randint(1, 3)
    for i in range(count):
        body = b"\x00" + _zigzag(i) + _zigzag(i)  # attributes, timestamp delta, offset delta
        key = rnd.choice([None, b"k", b"key-%d" % i])
        body += _zigzag(-1) if key is None else _zigzag(len(key)) + key
        value = rnd.randbytes(rnd.randint(0, 20))
        body += _zigzag(len(value)) + value + _zigzag(0)
        records += _zigzag(len(body)) + body
    pid = rnd.choice([-1, -1, 0, 1000])
    header = struct.pack(
        ">hiqqqhi",
        0,  # attributes (no compression, CreateTime)
        count - 1 if rnd.random() < 0.9 else _int(rnd, "int32"),
        1_700_000_000_000,
        1_700_000_000_000 + count,
        pid,
        0 if pid >= 0 else -1,
        0 if pid >= 0 else -1,
    )
    tail = header + struct.pack(">i", count) + records
    batch_length = 4 + 1 + 4 + len(tail)  # partition leader epoch, magic, crc, the rest
    out = bytearray(struct.pack(">qiib", 0, batch_length, -1, 2) + b"\0\0\0\0" + tail)
    if rnd.random() < 0.9:
        b = RecordBatch(out)
        struct.pack_into(">I", out, 17, b.compute_crc())
    return bytes(out)


def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _value(f: Field, version: int, rnd: random.Random, depth: int) -> Any:
    nullable = f.nullable_range is not None and version in f.nullable_range
    if nullable and rnd.random() < 0.15:
        return None
    if isinstance(f.type, Struct):
        return _struct(f.type.fields, version, rnd, depth + 1)
    if isinstance(f.type, str):
        if f.type.startswith("[]"):
            return [_scalar(f.type[2:], rnd) for _ in range(_count(rnd, depth))]
        return _scalar(f.type, rnd)
    return [_struct(f.type, version, rnd, depth + 1) for _ in range(_count(rnd, depth))]


def _count(rnd: random.Random, depth: int) -> int:
    if depth > 3:
        return 0
    return rnd.choice([0, 1, 1, 1, 2, 3, rnd.randint(0, 20)])


def _scalar(type_: str, rnd: random.Random) -> Any:
    if type_ in _INT_RANGES:
        return _int(rnd, type_)
    if type_ == "bool":
        return rnd.random() < 0.5
    if type_ == "float64":
        return rnd.choice([0.0, -1.0, 1e300, float("inf"), float("nan"), rnd.random()])
    if type_ == "string":
        return _text(rnd)
    if type_ in ("bytes", "records"):
        return _bytes(rnd, type_ == "records")
    if type_ == "uuid":
        return uuid.UUID(int=rnd.choice([0, 1, rnd.getrandbits(128)]))
    raise AssertionError(type_)


def _struct(fields: Sequence[Field], version: int, rnd: random.Random, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f.version_range is None or version not in f.version_range:
            continue
        if f.tag is not None and rnd.random() < 0.5:
            continue
        out[f.name] = _value(f, version, rnd, depth)
    return out


def generate(api: Api, version: int, rnd: random.Random) -> bytes:
    """A request of `api` at `version` built from its declaration (no size prefix)."""
    body = api.request_codec(version).encode(_struct(api.request, version, rnd))
    client_id = rnd.choice(["fuzz", None, "", "c" * 300])
    correlation_id = rnd.randint(0, 2**31 - 1)
    header = encode_request_header(api.request_header_version(version), api.key, version, correlation_id, client_id)
    return header + body


def random_api_version(rnd: random.Random) -> tuple[Api, int]:
    api = rnd.choice(list(ALL.values()))
    return api, rnd.randint(api.min_version, api.max_version)


# --- mutated frames ----------------------------------------------------------------------------------------------

_EDGE16 = (0, 1, -1, 0x7FFF, -0x8000, 0x100)
_EDGE32 = (0, 1, -1, 2, 0x7FFFFFFF, -0x80000000, 0x10000, 0x100000)
_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE)


def mutate(frame: bytes, rnd: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """`frame` with 1-4 random mutations."""
    out = bytearray(frame)
    for _ in range(rnd.choice([1, 1, 2, 3, 4])):
        kind = rnd.randrange(11)
        at = rnd.randrange(len(out)) if out else 0
        if kind == 0 and out:
            out[at] ^= 1 << rnd.randrange(8)
        elif kind == 1 and out:
            out[at] = rnd.choice(_BYTES)
        elif kind == 2:
            del out[at:]
        elif kind == 3:
            out[at:at] = rnd.randbytes(rnd.randint(1, 8))
        elif kind == 4 and out:
            end = min(len(out), at + rnd.randint(1, 32))
            out[at:at] = out[at:end] * rnd.randint(1, 4)
        elif kind == 5 and len(out) >= 2:
            at = min(at, len(out) - 2)
            out[at : at + 2] = struct.pack(">h", rnd.choice(_EDGE16))
        elif kind == 6 and len(out) >= 4:
            at = min(at, len(out) - 4)
            out[at : at + 4] = struct.pack(">i", rnd.choice(_EDGE32))
        elif kind == 7 and len(out) >= 4:  # another version of the same api, supported or not
            out[2:4] = struct.pack(">h", rnd.choice([rnd.randint(-1, 20), rnd.choice(_EDGE16)]))
        elif kind == 8 and len(out) >= 4:  # another api, the same body
            key = rnd.choice([*ALL, rnd.randint(-1, 100)])
            out[0:2] = struct.pack(">h", key)
        elif kind == 9 and others:  # splice with another seed
            other = rnd.choice(others)
            cut = rnd.randrange(len(other)) if other else 0
            out[at:] = other[cut:]
        elif kind == 10 and out:
            del out[at : at + rnd.randint(1, 16)]
    return bytes(out)


def mutate_records(frame: bytes, rnd: random.Random) -> bytes | None:
    """A Produce frame whose record data is mutated (CRC recomputed or not); None if `frame` is no Produce."""
    try:
        request = ServerConnection().decode_request(frame)
    except ProtocolError:
        return None
    if request.api_key != PRODUCE or request.unsupported_version:
        return None
    body = request.body
    for topic in body.topic_data:
        for partition in topic.partition_data:
            if not partition.records:
                continue
            data = bytearray(mutate(partition.records, rnd))
            if rnd.random() < 0.5 and len(data) >= RecordBatch.HEADER_SIZE and data[16] == 2:
                try:
                    struct.pack_into(">I", data, 17, RecordBatch(data).compute_crc())
                except (ProtocolError, struct.error, ValueError):
                    pass
            partition.records = bytes(data)
    api = request.api
    header = encode_request_header(
        api.request_header_version(request.api_version),
        api.key,
        request.api_version,
        request.correlation_id,
        request.client_id,
    )
    return header + api.request_codec(request.api_version).encode(body)


def make_frame(rnd: random.Random, seeds: Sequence[Seed]) -> bytes:
    """One frame from any maker: generated, mutated seed, mutated records, or a seed as it is."""
    roll = rnd.random()
    if roll < 0.35 or not seeds:
        api, version = random_api_version(rnd)
        frame = generate(api, version, rnd)
        return mutate(frame, rnd) if rnd.random() < 0.3 else frame
    seed = rnd.choice(seeds).frame
    if roll < 0.85:
        return mutate(seed, rnd, [s.frame for s in seeds])
    if roll < 0.95:
        return mutate_records(seed, rnd) or seed
    return seed


# --- the in-process property ---------------------------------------------------------------------------------------


def check_decode(frame: bytes) -> str:
    """Decode `frame` as the server does; returns what happened. Any exception other than the codec's is a bug.

    After the header and body, a Produce request's record data goes through the
    validation the handler runs (`read_produce_data`, then every record decoded
    as a compacted topic's key check does), which may only raise `BatchError`.
    """
    conn = ServerConnection(max_frame=1 << 20)
    conn.receive_data(struct.pack(">i", len(frame)) + frame)
    try:
        request = conn.next_request()
    except ProtocolError as exc:
        return f"rejected: {type(exc).__name__}"
    assert request is not NEED_DATA
    assert conn.buffered == 0
    if request.unsupported_version:
        return "unsupported version"
    assert request.body is not None
    if request.api_key == PRODUCE:
        for topic in request.body.topic_data or ():
            for partition in topic.partition_data or ():
                try:
                    batches = read_produce_data(partition.records, request.api_version, max_message_bytes=1 << 20)
                    for batch in batches:
                        for _ in iter_records(batch.data):
                            pass
                except ProtocolError:
                    continue
    return f"decoded: {request.api.name} v{request.api_version}"


# --- the live server ---------------------------------------------------------------------------------------------

#: requests a live campaign does not send, because each is a known way to take kstub down that is not fixed yet
#: (see docs/fuzzing.md); `known_issue` names it. None today: add an entry when the harness finds one, remove it
#: once its fix is merged.
KNOWN_ISSUES: dict[str, object] = {}


def known_issue(frame: bytes) -> str | None:
    for name, matches in KNOWN_ISSUES.items():
        if matches(frame):  # type: ignore[operator]
            return name
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size of `pid`, in KiB (VmRSS, VmHWM)."""
    text = Path(f"/proc/{pid}/status").read_text()
    current = int(re.search(r"VmRSS:\s+(\d+)", text)[1])  # type: ignore[index]
    peak = int(re.search(r"VmHWM:\s+(\d+)", text)[1])  # type: ignore[index]
    return current, peak


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|internal error")


@dataclass
class LiveServer:
    """``kstub serve`` in a subprocess, its address space capped at `memory_limit` bytes."""

    memory_limit: int = 2 << 30
    config: Sequence[str] = ()
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="kstub-fuzz-", suffix=".log")[1]))
    _log_offset: int = 0

    def start(self) -> LiveServer:
        self.port = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "kstub",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "WARNING",
            "-c",
            "auto.create.topics.enable=true",
            *(arg for pair in self.config for arg in ("-c", pair)),
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=lambda: _limit_memory(self.memory_limit),
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kstub serve exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # waiting for the listener of another process: nothing to wait on but time
        self.create_topics()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, api_key: int, version: int, body: dict[str, Any], timeout: float = 10.0) -> Any:
        """One request on a fresh connection; the decoded response body."""
        client = ClientConnection("fuzz-check")
        with socket.create_connection(self.address, timeout=timeout) as sock:
            sock.sendall(client.send_request(api_key, version, body))
            while True:
                response = client.next_response()
                if response is not NEED_DATA:
                    return response.body
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError(f"kstub closed the connection instead of answering api {api_key} v{version}")
                client.receive_data(data)

    def create_topics(self) -> None:
        topics = [{"name": t, "num_partitions": 3, "replication_factor": 1} for t in (*TOPICS, WATCHED)]
        self.request(CREATE_TOPICS, 4, {"topics": topics, "timeout_ms": 10000})

    def check(self, max_rss_kib: int) -> dict[str, int]:
        """The campaign's aftermath: alive, RSS bounded, a fresh connection answered, no traceback logged."""
        assert self.proc is not None
        assert self.proc.poll() is None, f"kstub died (exit {self.proc.returncode}):\n{self.log_text()[-5000:]}"
        current, peak = rss_kib(self.proc.pid)
        assert peak <= max_rss_kib, f"peak RSS {peak} KiB above {max_rss_kib} KiB"
        versions = self.request(18, 3, {"client_software_name": "fuzz", "client_software_version": "1"})
        assert versions.error_code == 0
        metadata = self.request(METADATA, 12, {"topics": [{"name": WATCHED}]})
        assert [(t.name, t.error_code, len(t.partitions)) for t in metadata.topics] == [(WATCHED, 0, 3)]
        assert [b.port for b in metadata.brokers] == [self.port]
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            new = log.read().decode(errors="replace")
            self._log_offset = log.tell()
        bad = [line for line in new.splitlines() if TRACEBACK.search(line)]
        assert not bad, "traceback or internal error in kstub's log:\n" + _context(new, bad[0])
        return {"rss_kib": current, "peak_rss_kib": peak}


def _context(text: str, line: str, around: int = 40) -> str:
    lines = text.splitlines()
    i = lines.index(line)
    return "\n".join(lines[max(0, i - 5) : i + around])


# --- a campaign against a live server ----------------------------------------------------------------------------


#: how long the watcher waits for a Metadata answer before calling the server frozen (generous: CI machines are busy)
WATCH_TIMEOUT = 60.0


@dataclass
class CampaignStats:
    frames: int = 0
    connections: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    closed_by_server: int = 0
    watch_requests: int = 0


async def campaign(
    server: LiveServer,
    frames: Iterator[bytes],
    *,
    concurrency: int = 16,
    stats: CampaignStats | None = None,
    seed: int = 0,
    lies: bool = True,
) -> CampaignStats:
    """Send `frames` over many connections, `concurrency` at a time, while a watcher keeps asking Metadata.

    Each connection takes 1-8 frames: written whole, pipelined, or dribbled in
    small pieces, the last one's size prefix sometimes a lie (unless not
    `lies`); then the worker reads what comes back until the responses are
    in, the server closes, or a short while passes (Produce with acks=0 is
    never answered), or leaves at once without reading. The watcher's
    connection must be answered throughout: a frame that freezes the server or
    kills it fails the campaign there.
    """
    stats = stats or CampaignStats()
    rnd = random.Random(seed)
    source = iter(frames)
    done = trio.Event()

    def take() -> bytes | None:
        for frame in source:
            issue = known_issue(frame)
            if issue is None:
                return frame
            stats.skipped[issue] = stats.skipped.get(issue, 0) + 1
        return None

    async def worker(wrnd: random.Random) -> None:
        while True:
            batch = [f for f in (take() for _ in range(wrnd.choice([1, 1, 1, 2, 3, 8]))) if f is not None]
            if not batch:
                return
            await one_connection(batch, wrnd)

    async def one_connection(batch: list[bytes], wrnd: random.Random) -> None:
        stats.connections += 1
        stats.frames += len(batch)
        data = b"".join(struct.pack(">i", len(f)) + f for f in batch)
        if lies and wrnd.random() < 0.03:  # a size prefix that lies: negative, above the maximum, more than sent
            lie = wrnd.choice(
                [-1, -(2**31), 2**31 - 1, 104_857_601, 104_857_600, len(batch[-1]) + wrnd.randint(1, 999)]
            )
            data = data[: -len(batch[-1]) - 4] + struct.pack(">i", lie) + batch[-1]
        try:
            stream = await trio.open_tcp_stream(*server.address)
        except OSError as exc:
            raise AssertionError(f"kstub refused a connection: {exc}") from exc
        async with stream:
            try:
                if wrnd.random() < 0.15:
                    pos = 0
                    while pos < len(data):
                        step = wrnd.randint(1, 64)
                        await stream.send_all(data[pos : pos + step])
                        pos += step
                        await trio.sleep(0)
                else:
                    await stream.send_all(data)
                if wrnd.random() < 0.2:
                    return  # gone without reading
                with trio.move_on_after(0.5):
                    await _read_responses(stream, len(batch), stats)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                stats.closed_by_server += 1

    async def watcher() -> None:
        client = ClientConnection("fuzz-watch")
        stream = await trio.open_tcp_stream(*server.address)
        async with stream:
            while not done.is_set():
                await stream.send_all(client.send_request(METADATA, 9, {"topics": [{"name": WATCHED}]}))
                with trio.fail_after(WATCH_TIMEOUT):
                    while (response := client.next_response()) is NEED_DATA:
                        data = await stream.receive_some(65536)
                        assert data, "kstub closed the watcher's connection"
                        client.receive_data(data)
                assert [(t.name, t.error_code) for t in response.body.topics] == [(WATCHED, 0)]
                stats.watch_requests += 1
                with trio.move_on_after(0.2):
                    await done.wait()

    async with trio.open_nursery() as outer:
        outer.start_soon(watcher)
        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(worker, random.Random(rnd.getrandbits(64) + i))
        done.set()
    return stats


async def _read_responses(stream: trio.SocketStream, expected: int, stats: CampaignStats) -> None:
    buf = bytearray()
    got = 0
    while got < expected:
        data = await stream.receive_some(65536)
        if not data:
            stats.closed_by_server += 1
            return
        buf += data
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from(">i", buf)[0]:
            del buf[: 4 + struct.unpack_from(">i", buf)[0]]
            got += 1
            stats.answered += 1


def frame_stream(rnd: random.Random, seeds: Sequence[Seed], count: int | None = None) -> Iterator[bytes]:
    n = 0
    while count is None or n < count:
        yield make_frame(rnd, seeds)
        n += 1


__all__ = [
    "CampaignStats",
    "LiveServer",
    "Seed",
    "campaign",
    "check_decode",
    "frame_stream",
    "generate",
    "known_issue",
    "load_seeds",
    "make_frame",
    "mutate",
    "mutate_records",
    "rss_kib",
    "seed_coverage",
]
