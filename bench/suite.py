#!/usr/bin/env python3
"""The benchmark set, side by side in one run: kstub, librdkafka's mock cluster, real Apache Kafka.

    python3 dev.py bench [--targets kstub,mock,kafka] [--quick] [--json FILE]

Each target is a 3-broker cluster started here: ``kstub serve --brokers 3``;
librdkafka's mock (``test.mock.num.brokers=3``, held by a process of its own:
it does not replicate, and creates topics itself with 4 partitions); real
Kafka 4.4 from the pinned jars (3 KRaft nodes; needs java and Maven). The
brokers run on CPU 0, every client job in a process on CPU 1 (``taskset``,
when the machine has two CPUs or more), so a client never competes with the
broker it measures. The client is confluent-kafka (librdkafka).

Measured per target (topics of 4 partitions):

- produce 100 B and 1 KiB x acks 1/all x replication factor 1/3: messages
  per second, and the broker's and the client's CPU meanwhile (cores: user +
  system time over the wall time of the produce loop and its flush);
- consume of the 100 B and 1 KiB acks=all RF 3 topics: messages per second;
- acks=all latency, one message at a time, RF 1 and 3: p50 / p99;
- four consumers subscribing to one topic until all four hold partitions,
  with the broker's default ``group.initial.rebalance.delay.ms`` (3 s, as
  Kafka) and with 0 (a second start of the target);
- start to the first Metadata answer, idle RSS, RSS after producing 1 GB
  (``--rss-gb``) of 1 KiB messages;
- one Metadata request for all topics with 10,000 partitions (10 topics of
  1,000, RF 1; the mock cannot create them);
- produce 100 B acks=1 RF 3 with 1,000 idle client connections open, as a
  ratio of the same without them.

Prints one table: a column per target and the ratio kstub / each other
(throughputs: above 1 is kstub faster; latencies and times: below 1 is
kstub faster), then the floors of this machine under those figures: the
start of a bare interpreter and of one that imports Trio, and one request's
round trip to servers that do no work (a plain-Python and a Trio echo) beside
kstub's and the mock's (bench/request_floor.py). A benchmark, not a test: nothing is asserted but that every
message was delivered and read. Figures move with the load on the machine:
run it twice.

``KSTUB_BENCH_ARGS`` adds arguments to kstub's ``serve`` command, e.g.
``KSTUB_BENCH_ARGS="-c kstub.memory.budget.bytes=-1"`` keeps every batch in
memory as the mock does (by default kstub writes what passes its 128 MiB
budget to temporary files, which the full set's 1.4 GB of produced data does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from kafka_perf import _descendants as process_tree  # noqa: E402
from startup import child_env  # noqa: E402
from startup import rss_mb as process_rss_mb  # noqa: E402

READY = "kstub ready: bootstrap servers "
BROKER_CPU, CLIENT_CPU = "0", "1"
PARTITIONS = 4


def pinned(cpu: str) -> list[str]:
    """The `taskset` prefix that runs a command on `cpu`, if the machine can pin."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpu]
    return []


def descendants(pids: list[int]) -> list[int]:
    """`pids` and every process under them."""
    return [d for pid in pids for d in process_tree(pid)]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in descendants(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in descendants(pids):
        try:
            total += process_rss_mb(pid)
        except OSError:
            continue  # a process that ended meanwhile
    return total


# --- targets ----------------------------------------------------------------------


@dataclass
class Target:
    name: str
    bootstrap: str
    pids: list[int]
    startup_s: float | None
    creates_topics: bool = True
    rf_max: int = 3
    notes: list[str] = field(default_factory=list)


@contextmanager
def kstub_target(delay_ms: int | None) -> Iterator[Target]:
    command = [sys.executable, "-m", "kstub", "serve", "--brokers", "3", "--host", "127.0.0.1", "--port", "0"]
    command += os.environ.get("KSTUB_BENCH_ARGS", "").split()  # e.g. -c kstub.memory.budget.bytes=-1
    if delay_ms is not None:
        command += ["-c", f"group.initial.rebalance.delay.ms={delay_ms}"]
    # As an installed kstub runs: from byte code (an editable checkout under PYTHONDONTWRITEBYTECODE=1
    # would compile every module at each start), written next to the sources by a warm-up import.
    env = child_env()
    subprocess.run([sys.executable, "-c", "import kstub.cli, kstub.server"], env=env, check=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*pinned(BROKER_CPU), *command], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if READY in line:
                bootstrap = line.split(READY, 1)[1].strip()
                break
        else:
            raise RuntimeError(f"kstub serve exited with {proc.wait()} before it was ready")
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its log from blocking it
        metadata_ms(bootstrap.split(",")[0], rounds=1)
        yield Target("kstub", bootstrap, [proc.pid], time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait()


@contextmanager
def mock_target(delay_ms: int | None) -> Iterator[Target]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*pinned(BROKER_CPU), sys.executable, str(HERE), "--hold-mock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        bootstrap = proc.stdout.readline().strip()
        if not bootstrap:
            raise RuntimeError("the mock cluster did not start")
        yield Target("mock", bootstrap, [proc.pid], time.perf_counter() - start, creates_topics=False)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)


def hold_mock() -> None:
    """Run a librdkafka mock cluster of 3 brokers until stdin closes (its bootstrap on stdout)."""
    from confluent_kafka import Producer

    holder = Producer({"test.mock.num.brokers": 3, "log_level": 0})
    brokers = holder.list_topics(timeout=10).brokers.values()
    print(",".join(f"{b.host}:{b.port}" for b in brokers), flush=True)
    sys.stdin.read()


@contextmanager
def kafka_target(delay_ms: int | None) -> Iterator[Target]:
    from kstub.compat.realkafka import RealKafka

    config = {"group.initial.rebalance.delay.ms": str(3000 if delay_ms is None else delay_ms)}
    with RealKafka(brokers=3, config=config) as kafka:
        if pinned(BROKER_CPU):
            for pid in descendants(kafka.pids):
                subprocess.run(["taskset", "-a", "-p", "-c", BROKER_CPU, str(pid)], capture_output=True)
        yield Target("kafka", kafka.bootstrap_servers, kafka.pids, kafka.ready_seconds)


TARGETS: dict[str, Callable[[int | None], Any]] = {"kstub": kstub_target, "mock": mock_target, "kafka": kafka_target}


# --- client jobs (run in a pinned process of their own) ------------------------


def producer(bootstrap: str, acks: str, **extra: Any) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "log_level": 0,
            **extra,
        }
    )


def job_produce(
    bootstrap: str, topic: str, n: int, size: int, acks: str, idle: int = 0, broker_pids: tuple[int, ...] = ()
) -> dict:
    """Messages per second, and the cores the broker and this client used while producing (the window only:
    the job's start and its client's connection set-up are not in it)."""
    with idle_connections(bootstrap, idle):
        p = producer(bootstrap, acks)
        p.list_topics(topic, timeout=30)
        payload = os.urandom(size)
        # process time: every thread of the client
        start, cpu, broker_cpu = time.perf_counter(), time.process_time(), cpu_seconds(list(broker_pids))
        for i in range(n):
            while True:
                try:
                    p.produce(topic, value=payload, key=str(i % 1000).encode())
                    break
                except BufferError:
                    p.poll(0.005)
        if p.flush(600) != 0:
            raise SystemExit("not every message was delivered")
        seconds = time.perf_counter() - start
        client_cores = (time.process_time() - cpu) / seconds
        broker_cores = (cpu_seconds(list(broker_pids)) - broker_cpu) / seconds
    return {"rate": n / seconds, "seconds": seconds, "client_cores": client_cores, "broker_cores": broker_cores}


@contextmanager
def idle_connections(bootstrap: str, count: int) -> Iterator[None]:
    """`count` client connections that each said ApiVersions once, then stay idle, spread over the brokers.

    Held by a process of their own: in the producing client's process, their objects would slow
    its garbage collector, and the ratio would measure the client rather than the broker.
    """
    if not count:
        yield
        return
    holder = subprocess.Popen(
        [sys.executable, str(HERE), "--hold-idle", bootstrap, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        if holder.stdout.readline().strip() != "ready":
            raise RuntimeError("the idle connections could not be opened")
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)


def hold_idle(bootstrap: str, count: int) -> None:
    """Open `count` idle connections (see `idle_connections`), say ready, hold them until stdin closes."""
    from kstub.kafka_client import Connection
    from kstub.protocol import ApiKey

    addresses = bootstrap.split(",")
    held = []
    for i in range(count):
        conn = Connection(addresses[i % len(addresses)], client_id="idle")
        conn.request(ApiKey.API_VERSIONS, 0, {})
        held.append(conn)
    print("ready", flush=True)
    sys.stdin.read()
    for conn in held:
        conn.close()


def job_consume(bootstrap: str, topic: str, n: int) -> dict:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 50 * 1024 * 1024,
            # librdkafka pauses a partition's fetching for fetch.queue.backoff.ms (1 s) whenever its local
            # queue passes queued.min.messages (100,000) or queued.max.messages.kbytes (64 MiB): a broker
            # answering faster than this loop drains then measures a one-second pause, not its delivery.
            # Above the run's size, for every broker alike, the figure is the brokers' delivery.
            "queued.min.messages": 10_000_000,
            "queued.max.messages.kbytes": 1024 * 1024,
            "log_level": 0,
        }
    )
    # From each partition's start: the mock keeps only the last 100,000 batches or 5 MB of a partition
    # (librdkafka's mock log limits), so what there is to read is asked for, not assumed to be `n`.
    marks = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in range(PARTITIONS)]
    c.assign([TopicPartition(topic, p, low) for p, (low, _high) in enumerate(marks)])
    n = min(n, sum(high - low for low, high in marks))
    got = 0
    start = time.perf_counter()
    while got < n:
        for m in c.consume(10_000, timeout=0.1):
            if m.error():
                raise SystemExit(f"consumer error: {m.error()}")
            got += 1
        if time.perf_counter() - start > 600:
            raise SystemExit(f"consumed only {got} of {n}")
    seconds = time.perf_counter() - start
    c.close()
    return {"rate": n / seconds, "seconds": seconds, "messages": n}


def job_latency(bootstrap: str, topic: str, n: int) -> dict:
    p = producer(bootstrap, "all", **{"linger.ms": 0, "enable.idempotence": False})
    p.list_topics(topic, timeout=30)
    samples: list[float] = []
    for i in range(n + 50):
        started = time.perf_counter()
        p.produce(topic, value=b"x" * 100, partition=0)
        if p.flush(30) != 0:
            raise SystemExit("a message was not delivered")
        if i >= 50:  # warm-up: connections, metadata
            samples.append(time.perf_counter() - started)
    ms = sorted(s * 1000 for s in samples)
    return {"p50": ms[len(ms) // 2], "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))]}


def job_join(bootstrap: str, topic: str) -> dict:
    """Seconds from four consumers subscribing at once to all four holding partitions."""
    from confluent_kafka import Consumer

    group = f"bench-join-{uuid.uuid4().hex[:6]}"
    consumers = [Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0}) for _ in range(4)]
    assigned: list[set[int]] = [set() for _ in consumers]
    done = threading.Event()

    def run(i: int) -> None:
        c = consumers[i]

        def on_assign(_c: Any, parts: list[Any]) -> None:
            assigned[i] = {tp.partition for tp in c.assignment()}

        c.subscribe([topic], on_assign=on_assign)
        while not done.is_set():
            c.poll(0.05)
            assigned[i] = {tp.partition for tp in c.assignment()}

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while not all(assigned) or len(set().union(*assigned)) < PARTITIONS:
        if time.perf_counter() - start > 120:
            break
        time.sleep(0.005)
    seconds = time.perf_counter() - start
    done.set()
    for t in threads:
        t.join()
    for c in consumers:
        c.close()
    return {"seconds": seconds}


def metadata_ms(address: str, rounds: int = 5) -> float:
    from kstub.kafka_client import Connection
    from kstub.protocol import ApiKey

    times = []
    with Connection(address, client_id="bench") as conn:
        for _ in range(rounds):
            start = time.perf_counter()
            conn.request(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False})
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def job_metadata(bootstrap: str, partitions: int = 10_000) -> dict:
    """Milliseconds from sending one Metadata request for all topics to holding the whole answer.

    The broker's time: the answer is read as a frame and decoded only after the clock stops
    (decoding 10,000 partitions in Python, as kstub's own client does, would be the client's time).
    """
    import socket

    from kstub.protocol import ApiKey
    from kstub.protocol.connection import ClientConnection

    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    conn = ClientConnection("bench")
    times: list[float] = []
    waited = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while len(times) < 5:
            request = conn.send_request(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False})
            start = time.perf_counter()
            sock.sendall(request)
            frame = _read_frame(sock)
            elapsed = (time.perf_counter() - start) * 1000
            conn.receive_data(frame)
            body = conn.next_response().body
            got = sum(len(t.partitions) for t in body.topics)
            if got >= partitions:
                times.append(elapsed)
            elif time.perf_counter() - waited > 120:
                raise SystemExit(f"Metadata listed {got} partitions, expected at least {partitions}")
            else:  # Kafka's brokers learn of new topics from the controller a little later
                time.sleep(0.5)
    return {"ms": statistics.median(times)}


def _read_frame(sock: Any) -> bytes:
    """One size-prefixed frame, size included."""
    data = bytearray()
    need = 4
    while len(data) < need:
        chunk = sock.recv(max(need - len(data), 1 << 20))
        if not chunk:
            raise SystemExit("the broker closed the connection")
        data += chunk
        if need == 4 and len(data) >= 4:
            need = 4 + int.from_bytes(data[:4], "big")
    return bytes(data)


JOBS: dict[str, Callable[..., dict]] = {
    "produce": job_produce,
    "consume": job_consume,
    "latency": job_latency,
    "join": job_join,
    "metadata": job_metadata,
}


def run_job(target: Target, name: str, **kwargs: Any) -> dict:
    """Run a client job on the client CPU; the broker's CPU use meanwhile is added as `cores`."""
    spec = json.dumps({"job": name, "kwargs": {"bootstrap": target.bootstrap, **kwargs}})
    cpu0, t0 = cpu_seconds(target.pids), time.perf_counter()
    out = subprocess.run(
        [*pinned(CLIENT_CPU), sys.executable, str(HERE), "--job", spec], capture_output=True, text=True, timeout=1800
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"job {name} on {target.name} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cores"] = (cpu_seconds(target.pids) - cpu0) / wall
    return result


# --- the set ----------------------------------------------------------------------


def create_topics(target: Target, topics: dict[str, tuple[int, int]]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    if not target.creates_topics:
        # the mock creates a topic of 4 partitions when a producer first asks for it
        asker = producer(target.bootstrap, "1")
        for t in topics:
            asker.list_topics(t, timeout=30)
        return
    admin = AdminClient({"bootstrap.servers": target.bootstrap, "log_level": 0})
    futures = admin.create_topics(
        [NewTopic(t, partitions, min(rf, target.rf_max)) for t, (partitions, rf) in topics.items()],
        operation_timeout=120,
    )
    for f in futures.values():
        f.result(300)


def measure(target: Target, scale: float, rss_gb: float, row: Callable[[str, Any], None]) -> None:
    row("start to Metadata (s)", target.startup_s)
    time.sleep(1.0)
    row("idle RSS (MB)", rss_mb(target.pids))
    counts = {100: int(300_000 * scale), 1024: int(150_000 * scale)}
    topics = {
        f"p{size}-acks{acks}-rf{rf}": (PARTITIONS, rf) for size in counts for acks in ("1", "all") for rf in (1, 3)
    }
    topics |= {"latency-rf1": (1, 1), "latency-rf3": (1, 3), "join": (PARTITIONS, 3), "idle": (PARTITIONS, 3)}
    topics |= {"rss": (PARTITIONS, 1)}
    create_topics(target, topics)
    for size, n in counts.items():
        for acks in ("1", "all"):
            for rf in (1, 3):
                topic = f"p{size}-acks{acks}-rf{rf}"
                r = run_job(target, "produce", topic=topic, n=n, size=size, acks=acks, broker_pids=target.pids)
                label = f"produce {size} B acks={acks} RF {rf}"
                row(f"{label} (msgs/s)", r["rate"])
                row(f"{label}: broker cores", r["broker_cores"])
                row(f"{label}: client cores", r["client_cores"])
        r = run_job(target, "consume", topic=f"p{size}-acksall-rf3", n=n)
        row(f"consume {size} B (msgs/s)", r["rate"])
    for rf in (1, 3):
        r = run_job(target, "latency", topic=f"latency-rf{rf}", n=int(2000 * scale) or 100)
        row(f"acks=all latency RF {rf} p50 (ms)", r["p50"])
        row(f"acks=all latency RF {rf} p99 (ms)", r["p99"])
    row("4 consumers join, default delay (s)", run_job(target, "join", topic="join")["seconds"])
    base = run_job(target, "produce", topic="idle", n=counts[100], size=100, acks="1")["rate"]
    idle = run_job(target, "produce", topic="idle", n=counts[100], size=100, acks="1", idle=1000)["rate"]
    row("produce with 1,000 idle connections (ratio to none)", idle / base)
    n = int(rss_gb * 1024**3 / 1024)
    run_job(target, "produce", topic="rss", n=n, size=1024, acks="1")
    row(f"RSS after producing {rss_gb:g} GB (MB)", rss_mb(target.pids))
    if target.creates_topics:
        for i in range(10):  # a request each: Kafka refuses 10,000 partitions in one (POLICY_VIOLATION)
            create_topics(target, {f"many-{i}": (1000, 1)})
        row("Metadata, all topics, 10,000 partitions (ms)", run_job(target, "metadata")["ms"])


def machine_floors(requests: int) -> dict[str, float]:
    """What any Python server on Trio costs on this machine, printed under the table: the floor under
    kstub's start-up figure, and a request's round trip to a Trio server that does no work, beside the
    same request's to kstub and to the mock (bench/request_floor.py, one blocking client, no decoding)."""
    from request_floor import floors, report
    from startup import bare_interpreter

    figures: dict[str, float] = {}
    for code, label in (("pass", "python -c pass (s)"), ("import trio", "python -c 'import trio' (s)")):
        figures[label] = statistics.median(bare_interpreter(code) for _ in range(5))
    round_trips = floors(requests)
    figures |= {f"{name}: p50 (us)": p50 for name, (p50, _) in round_trips.items()}
    print("\nfloors on this machine (what any Python server on Trio pays, whatever it does):")
    for label in ("python -c pass (s)", "python -c 'import trio' (s)"):
        print(f"  start: {label:<40} {figures[label]:8.3f}")
    print(report(round_trips, requests))
    return figures


LOWER_IS_BETTER = ("(s)", "(ms)", "(MB)", "cores")


def table(results: dict[str, dict[str, float]], names: list[str]) -> str:
    rows = list(dict.fromkeys(label for r in results.values() for label in r))
    others = [n for n in names if n != "kstub" and n in results]
    head = f"{'measurement':58}" + "".join(f"{n:>12}" for n in names) + "".join(f"{'kstub/' + o:>14}" for o in others)
    lines = [head, "-" * len(head)]
    for label in rows:
        cells = []
        for n in names:
            v = results.get(n, {}).get(label)
            cells.append(
                f"{v:12,.2f}" if isinstance(v, float) and v < 100 else f"{v:12,.0f}" if v is not None else f"{'-':>12}"
            )
        ratios = []
        for o in others:
            a, b = results.get("kstub", {}).get(label), results[o].get(label)
            ratios.append(f"{a / b:14.2f}" if a is not None and b else f"{'-':>14}")
        lines.append(f"{label:58}" + "".join(cells) + "".join(ratios))
    lines.append("ratios: throughputs above 1 = kstub faster; times, latencies, memory, cores below 1 = kstub better")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="kstub,mock,kafka")
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages, 0.1 GB for RSS (a smoke run)")
    parser.add_argument("--rss-gb", type=float, default=None)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--hold-mock", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hold-idle", nargs=2, metavar=("BOOTSTRAP", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold_mock:
        hold_mock()
        return 0
    if args.hold_idle:
        hold_idle(args.hold_idle[0], int(args.hold_idle[1]))
        return 0
    if args.job:
        spec = json.loads(args.job)
        print(json.dumps(JOBS[spec["job"]](**spec["kwargs"])))
        return 0

    scale = 0.1 if args.quick else 1.0
    rss_gb = args.rss_gb if args.rss_gb is not None else (0.1 if args.quick else 1.0)
    names = [n for n in args.targets.split(",") if n]
    results: dict[str, dict[str, float]] = {}
    for name in names:
        print(f"--- {name}", file=sys.stderr, flush=True)
        results[name] = figures = {}

        def row(label: str, value: Any, figures: dict[str, float] = figures, name: str = name) -> None:
            if value is not None:
                figures[label] = float(value)
                print(f"  {name}: {label}: {float(value):,.3f}", file=sys.stderr, flush=True)

        try:
            with TARGETS[name](None) as target:
                measure(target, scale, rss_gb, row)
            with TARGETS[name](0) as target:
                create_topics(target, {"join0": (PARTITIONS, 3)})
                row("4 consumers join, delay 0 (s)", run_job(target, "join", topic="join0")["seconds"])
        except Exception as exc:  # a target that cannot run (no java, no mock) is reported, the rest goes on
            print(f"  {name}: stopped: {exc}", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    pin = "brokers on CPU 0, clients on CPU 1" if pinned(BROKER_CPU) else "not pinned (one CPU or no taskset)"
    print(f"\nkstub benchmark set: 3 brokers per target, {PARTITIONS} partitions; {pin}; load average {load:.1f}")
    print(table(results, names))
    floors = machine_floors(500 if args.quick else 3000)
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "floors": floors}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
