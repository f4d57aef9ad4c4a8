"""Exactly-once end to end, with real applications in real processes, on 3 brokers (RF=3).

- A Kafka Streams word count (tests/integration/streams_app/WordCount.java, the pinned Kafka Streams,
  processing.guarantee=exactly_once_v2) runs against kstub while the broker coordinating its transactions
  is killed, is SIGKILLed mid-stream and replaced by an instance restoring its state from the changelog,
  and the same (but the broker) against real Kafka: a read_committed reader of its output sees, for every
  word, exactly the counts 1, 2, ..., n on both (the record cache is off, so each input word makes one
  update; a duplicate or a lost update shows).
- Consume-transform-produce with send_offsets_to_transaction (confluent-kafka: txn_copier.py; Kafka's Java
  clients: streams_app/TxnCopier.java) is SIGKILLed with a transaction open, restarted, SIGKILLed again
  mid-stream, and restarted, and then the broker coordinating its transactions is killed: read_committed
  sees each input record's output exactly once.
- The transaction coordinator's broker is killed while transactions are open and while one is committing:
  no committed record is lost, no aborted one reaches read_committed, the producers carry on. And a commit
  whose answer is lost, its coordinator's broker killed before the client retries (confluent-kafka with
  transactions v1, the Java client with v2): the retry at the new coordinator succeeds.
- Partition leaders killed under a transactional producer mid-transaction: sequences stay exact on the new
  leaders, read_committed sees each committed record once, in order.

Without java, javac or mvn the Java tests skip, saying so (fail under CI).
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from multibroker import create_topic, wait_until

HERE = Path(__file__).parent
STREAMS_APP = HERE / "streams_app"
FAILOVER = {"replica.lag.time.max.ms": "2000", "broker.session.timeout.ms": "1500"}
DEADLINE = 180.0


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def java_apps(tmp_path_factory: pytest.TempPathFactory) -> str:
    """WordCount and TxnCopier compiled against the pinned Kafka Streams; the class path to run them."""
    from support.external import require_programs

    require_programs("java", "javac", "mvn")
    out = tmp_path_factory.mktemp("java-apps")
    classpath_file = out / "classpath.txt"
    resolve = subprocess.run(
        [
            "mvn",
            "-q",
            "-f",
            str(STREAMS_APP / "pom.xml"),
            "dependency:build-classpath",
            f"-Dmdep.outputFile={classpath_file}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resolve.returncode == 0, resolve.stdout[-2000:] + resolve.stderr[-2000:]
    classpath = classpath_file.read_text().strip()
    sources = [str(STREAMS_APP / "WordCount.java"), str(STREAMS_APP / "TxnCopier.java")]
    build = subprocess.run(
        ["javac", "-d", str(out), "-cp", classpath, *sources], capture_output=True, text=True, timeout=300
    )
    assert build.returncode == 0, build.stderr[-2000:]
    return f"{out}{os.pathsep}{classpath}"


class App:
    """A program under test in its own process; its stdout lines are read by a thread into a queue."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, condition: Callable[[str], bool], timeout: float = DEADLINE) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line in {timeout} s; saw {self.seen[-5:]}; {self.tail()}") from None
            if line is None:
                raise AssertionError(f"the program ended ({self.proc.wait()}); saw {self.seen[-5:]}; {self.tail()}")
            self.seen.append(line)
            if condition(line):
                return line

    def drain(self) -> list[str]:
        """Every line the program has printed so far (those no wait_line read as well), for diagnostics."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.seen
            if line is None:
                self.lines.put(None)
                return self.seen
            self.seen.append(line)

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def java_app(classpath: str, main: str, args: list[str], log: Path) -> App:
    jvm = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", classpath, main]
    return App(jvm + args, log)


class Tail:
    """Every record of a topic's partitions from the beginning, read with one isolation level."""

    def __init__(self, bootstrap: str, topic: str, isolation: str, partitions: int = 3) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"tail-{uuid.uuid4().hex[:8]}",
                "isolation.level": isolation,
                "enable.auto.commit": False,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        #: (partition, offset, key, value) in each partition's order
        self.records: list[tuple[int, int, bytes | None, bytes | None]] = []

    def until(self, condition: Callable[[list], bool], what: str, timeout: float = DEADLINE) -> list:
        deadline = time.monotonic() + timeout
        while not condition(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {len(self.records)} records")
            for m in self.consumer.consume(1000, 0.2):
                if not m.error():
                    self.records.append((m.partition(), m.offset(), m.key(), m.value()))
        return self.records

    def close(self) -> None:
        self.consumer.close()


def create_topics(bootstrap: str, names: list[str], rf: int, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, partitions, rf) for n in names]).values():
        future.result(60)


# --- Kafka Streams, exactly_once_v2 ----------------------------------------------------------------

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]


def _lines() -> list[str]:
    rng = random.Random(12)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(300)]


def _word_count(
    classpath: str, bootstrap: str, rf: int, tmp: Path, during: Callable[[str], None] | None = None
) -> dict[str, list[int]]:
    """Run WordCount over `_lines()` in four parts and answer each word's counts in the order a read_committed
    reader sees them. Right after the second part is produced, `during(app_id)` is called; once the output of
    the third part has begun to show, the application is SIGKILLed (its open transaction, if any, is aborted
    when it times out) and a new instance with an empty state directory takes over: it restores the counts
    from their changelog (read_committed: without what aborted transactions wrote) and goes on."""
    lines = _lines()
    parts = [lines[k * 75 : (k + 1) * 75] for k in range(4)]
    words_after = [sum(len(line.split()) for line in lines[: 75 * (k + 1)]) for k in range(4)]
    app_id = f"wc-{uuid.uuid4().hex[:8]}"
    source, sink = f"{app_id}-lines", f"{app_id}-counts"
    create_topics(bootstrap, [source, sink], rf)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    tail = Tail(bootstrap, sink, "read_committed")

    def start(instance: int) -> App:
        state = str(tmp / f"{app_id}-{instance}")
        return java_app(classpath, "WordCount", [bootstrap, source, sink, app_id, state, str(rf)],
                        tmp / f"{app_id}-{instance}.log")  # fmt: skip

    apps = [start(1)]
    try:
        for k, part in enumerate(parts):
            for i, line in enumerate(part):
                producer.produce(source, line.encode(), key=f"{k}-{i}".encode())
            assert producer.flush(60) == 0
            if k == 1 and during is not None:
                during(app_id)
            try:
                if k == 2:
                    tail.until(lambda got: len(got) > words_after[1], "the third part's first counts")
                    apps[0].kill()
                    apps.append(start(2))
                tail.until(lambda got, n=words_after[k]: len(got) >= n, f"{words_after[k]} counts")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{apps[-1].tail()}") from None
        records = tail.records
    finally:
        for app in apps:
            app.kill(signal.SIGTERM)
        tail.close()
    counts: dict[str, list[int]] = {}
    for _, _, key, value in records:
        assert key is not None and value is not None
        counts.setdefault(key.decode(), []).append(int.from_bytes(value, "big"))
    return counts


@pytest.mark.kstub(brokers=3, config=FAILOVER)
def test_kafka_streams_exactly_once_word_count_survives_a_killed_broker_and_process(
    kstub_cluster, real_kafka, java_apps, tmp_path
):
    kc = kstub_cluster
    expected = {w: list(range(1, n + 1)) for w, n in Counter(" ".join(_lines()).split()).items()}
    killed: list[tuple[int, str]] = []

    def kill_the_coordinator(app_id: str) -> None:
        """As soon as one of the application's transactions is open (input was just produced for it), kill the
        broker coordinating it: on the cluster's thread, so that it is still open when the broker dies."""

        async def kill_when_open() -> tuple[int, str]:
            with trio.fail_after(60):
                while not (open_ := [t for t, m in kc.cluster.transactions.txns.items() if t.startswith(app_id)
                                     and m.state.value == "Ongoing"]):  # fmt: skip
                    await trio.sleep(0.001)
            node = kc.cluster.transactions.coordinator_for(open_[0]).node_id
            await kc.cluster.control.kill_broker(node)
            return node, open_[0]

        killed.append(kc.call_async(kill_when_open))

    on_kstub = _word_count(java_apps, kc.bootstrap_servers, 3, tmp_path, during=kill_the_coordinator)
    ((node, tid),) = killed
    # the killed broker's transaction was completed (aborted or committed) by its successor
    wait_until(kc, lambda: kc.cluster.transactions.coordinator_for(tid).node_id != node, what="a new coordinator")
    on_kafka = _word_count(java_apps, real_kafka.bootstrap_servers, 1, tmp_path)
    assert on_kafka == expected  # the reference: each word counted once per occurrence
    assert on_kstub == on_kafka


# --- consume-transform-produce, SIGKILLed -----------------------------------------------------------


def _copier(client: str, classpath: str | None, args: list[str], log: Path) -> App:
    if client == "java":
        assert classpath is not None
        return java_app(classpath, "TxnCopier", args, log)
    return App([sys.executable, str(HERE / "txn_copier.py"), *args], log)


@pytest.mark.kstub(brokers=3, config=FAILOVER)
@pytest.mark.parametrize("client", ["confluent-kafka", "java"])
def test_consume_transform_produce_killed_and_restarted_outputs_each_input_once(
    kstub_cluster, client, request, tmp_path
):
    classpath = request.getfixturevalue("java_apps") if client == "java" else None
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    name = uuid.uuid4().hex[:8]
    source, sink, group, tid = f"in-{name}", f"out-{name}", f"g-{name}", f"tid-{name}"
    create_topic(kc, source, partitions=3, rf=3)
    create_topic(kc, sink, partitions=3, rf=3)
    total = 300
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(total):
        plain.produce(source, f"m{i}".encode(), partition=i % 3)
    assert plain.flush(30) == 0
    inputs = {f"{i % 3}:{i // 3}": f"M{i}".encode() for i in range(total)}
    args = [bootstrap, source, sink, group, tid]

    # 1. killed with a transaction open: its records written, not committed
    first = _copier(client, classpath, [*args, "20"], tmp_path / "first.log")
    try:
        first.wait_line(lambda line: line == "open")
    finally:
        first.kill()
    # 2. killed mid-stream, wherever it is once it has committed something
    second = _copier(client, classpath, [*args, "-1"], tmp_path / "second.log")
    try:
        second.wait_line(lambda line: line.startswith("committed ") and int(line.split()[1]) >= 30)
    finally:
        second.kill()
    # 3. runs to the end, while the broker coordinating its transactions is killed once it has committed one
    third = _copier(client, classpath, [*args, "-1"], tmp_path / "third.log")
    committed = Tail(bootstrap, sink, "read_committed")
    try:
        third.wait_line(lambda line: line.startswith("committed "))
        kc.control.kill_broker(kc.call(lambda: kc.cluster.transactions.coordinator_for(tid).node_id))
        committed.until(lambda got: len(got) >= total, f"{total} outputs")
        wait_until(
            kc,
            lambda: sum(o.offset for o in kc.cluster.groups.committed(group).values()) == total,
            timeout=60,
            what="the group's offsets at the end of the input",
        )
        got = committed.until(lambda got: True, "")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_diagnose(kc, tid, group, third)}") from None
    finally:
        third.kill()
        committed.close()
    keys = [key.decode() for _, _, key, _ in got]
    assert sorted(keys) == sorted(inputs), Counter(keys).most_common(3)
    assert all(value == inputs[key.decode()] for _, _, key, value in got)
    # the first run's open transaction left its records in the log (aborted since): read_uncommitted has them
    everything = Tail(bootstrap, sink, "read_uncommitted")
    try:
        everything.until(lambda got: len(got) > total, "the aborted transaction's records too")
    finally:
        everything.close()
    # in each partition, the outputs are in input order
    for p in range(3):
        offsets = [int(key.decode().split(":")[1]) for part, _, key, _ in got if part == p]
        assert offsets == sorted(offsets), p


def _diagnose(kc, tid: str, group: str, app: App) -> str:
    """What kstub and the program were at when a wait timed out: for the failure's message."""

    def snapshot() -> str:
        txn = kc.cluster.transactions.get(tid)
        g = kc.cluster.groups.groups.get(group)
        return (
            f"transaction: {txn!r}\n"
            f"group: state={getattr(g, 'state', None)!r} members={list(getattr(g, 'members', {}) or {})!r} "
            f"pending={getattr(g, 'pending_txn_offsets', None)!r}\n"
            f"committed: {kc.cluster.groups.committed(group)!r}"
        )

    return f"{kc.call(snapshot)}\nprogram said: {app.drain()[-5:]}, exit {app.proc.poll()}\n{app.tail()}"


# --- the coordinator's broker killed ---------------------------------------------------------------


def _ids_on(kc, node: int, prefix: str, count: int) -> Iterator[str]:
    """`count` transactional ids the broker `node` coordinates."""
    found = 0
    k = 0
    while found < count:
        tid = f"{prefix}-{k}"
        k += 1
        if kc.call(lambda t=tid: kc.cluster.transactions.coordinator_for(t).node_id) == node:
            found += 1
            yield tid


def _txn_producer(bootstrap: str, tid: str) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    return p


@pytest.mark.kstub(brokers=3, config=FAILOVER)
def test_killing_the_coordinator_with_transactions_open_and_one_committing(kstub_cluster):
    """Five producers whose ids one broker coordinates: A committed, B aborted, C and D open, E committing
    (its commit cannot complete: one of its partitions has no live replica) when that broker is killed.
    Afterwards C commits, D aborts, A commits again, E's commit completes once its partition is back:
    read_committed sees exactly A's, C's and E's records, in order; read_uncommitted sees all."""
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    name = uuid.uuid4().hex[:8]
    topic, stuck = f"txn-{name}", f"stuck-{name}"
    coordinator = kc.call(lambda: kc.cluster.transactions.coordinator_for(f"probe-{name}").node_id)
    elsewhere = next(b.node_id for b in kc.brokers if b.node_id != coordinator)
    create_topic(kc, topic, partitions=3, rf=3)
    kc.call(lambda: kc.cluster.create_topic(stuck, configs={}, assignments={0: [elsewhere]}))
    tids = list(_ids_on(kc, coordinator, f"tid-{name}", 5))
    a, b, c, d, e = (_txn_producer(bootstrap, tid) for tid in tids)
    e_id = tids[4]
    committed: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    everything: list[bytes] = []

    def write(p: Producer, label: str, *, keep: bool, partitions: range = range(3)) -> None:
        p.begin_transaction()
        for i in partitions:
            p.produce(topic, f"{label}{i}".encode(), partition=i)
            everything.append(f"{label}{i}".encode())
            if keep:
                committed[i].append(f"{label}{i}".encode())
        assert p.flush(30) == 0

    write(a, "A", keep=True)
    a.commit_transaction(30)
    write(b, "B", keep=False)
    b.abort_transaction(30)
    write(c, "C", keep=True)
    write(d, "D", keep=False)
    write(e, "E", keep=True)
    e.produce(stuck, b"E-stuck", partition=0)
    assert e.flush(30) == 0
    kc.control.stop_broker(elsewhere)  # the stuck partition's only replica
    e.commit_transaction(30)  # answered once PrepareCommit is recorded; its markers wait for `elsewhere`
    assert kc.call(lambda: kc.cluster.transactions.get(e_id).state.value) == "PrepareCommit"
    assert kc.call(lambda: kc.cluster.transactions.coordinator_for(e_id).node_id) == coordinator

    kc.control.kill_broker(coordinator)
    wait_until(
        kc,
        lambda: kc.cluster.transactions.coordinator_for(e_id).node_id not in (coordinator, None),
        what="a new coordinator",
    )
    kc.control.start_broker(elsewhere)
    c.commit_transaction(60)
    d.abort_transaction(60)
    write(a, "A'", keep=True)
    a.commit_transaction(60)
    wait_until(
        kc, lambda: kc.cluster.transactions.get(e_id).state.value == "CompleteCommit", what="E's commit", timeout=60
    )

    reader = Tail(bootstrap, topic, "read_committed")
    try:
        got = reader.until(lambda got: len(got) >= 12, "the committed records")
    finally:
        reader.close()
    by_partition: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for partition, _, _, value in got:
        by_partition[partition].append(value)
    assert by_partition == committed
    stuck_reader = Tail(bootstrap, stuck, "read_committed", partitions=1)
    try:
        assert [v for *_, v in stuck_reader.until(lambda got: len(got) >= 1, "E's stuck record")] == [b"E-stuck"]
    finally:
        stuck_reader.close()
    raw = Tail(bootstrap, topic, "read_uncommitted")
    try:
        assert sorted(v for *_, v in raw.until(lambda got: len(got) >= len(everything), "every record")) == sorted(
            everything
        )
    finally:
        raw.close()


def _drop_end_txn_answer_then_kill_the_coordinator(kc, tid: str, commit: Callable[[], None]) -> int:
    """The id's EndTxn is handled but its answer dropped; once it has been, the coordinator's broker is killed.
    `commit` starts the client's commit (it must not wait for it). Answers the killed broker."""
    node = kc.call(lambda: kc.cluster.transactions.coordinator_for(tid).node_id)
    fault = kc.control.drop_response(26, 1, node)
    commit()
    wait_until(kc, lambda: fault.fired == 1, timeout=60, what="the EndTxn answer dropped")
    kc.control.kill_broker(node)
    return node


def _committed_values(bootstrap: str, topic: str, expected: int) -> dict[int, list[bytes]]:
    reader = Tail(bootstrap, topic, "read_committed")
    try:
        got = reader.until(lambda got: len(got) >= expected, f"{expected} committed records")
    finally:
        reader.close()
    out: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for partition, _, _, value in got:
        out[partition].append(value)
    return out


@pytest.mark.kstub(brokers=3, config=FAILOVER)
def test_a_lost_commit_answer_and_a_killed_coordinator_confluent_kafka(kstub_cluster):
    """librdkafka (transactions v1) retries EndTxn at the new coordinator: the commit completed there counts."""
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    topic, tid = f"lost-{uuid.uuid4().hex[:8]}", f"tid-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    p = _txn_producer(bootstrap, tid)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"c{i}".encode(), partition=i)
    assert p.flush(30) == 0
    errors: list[BaseException] = []

    def commit() -> None:
        try:
            p.commit_transaction(60)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=commit)
    _drop_end_txn_answer_then_kill_the_coordinator(kc, tid, thread.start)
    thread.join(90)
    assert not thread.is_alive() and errors == []
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"d{i}".encode(), partition=i)
    p.commit_transaction(60)
    assert _committed_values(bootstrap, topic, 6) == {i: [f"c{i}".encode(), f"d{i}".encode()] for i in range(3)}


@pytest.mark.kstub(brokers=3, config=FAILOVER)
def test_a_lost_commit_answer_and_a_killed_coordinator_java(kstub_cluster, tmp_path):
    """The Java client (transactions v2: the EndTxn bumped the epoch) retries EndTxn with its old epoch at the
    new coordinator, which answers it as the commit already done."""
    from kstub.compat.realkafka import RealKafkaUnavailable, ensure_jars

    from support.external import require_programs, unavailable

    require_programs("java")
    try:
        lib = ensure_jars()
    except RealKafkaUnavailable as exc:
        unavailable(str(exc))
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    topic, tid = f"lost-{uuid.uuid4().hex[:8]}", f"tid-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    program = HERE / "java" / "TxnLostCommit.java"
    proc = subprocess.Popen(
        ["java", "-cp", f"{lib}/*", str(program), bootstrap, topic, tid],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "java.log").open("w"),
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready", (tmp_path / "java.log").read_text()[-3000:]

        def commit() -> None:
            proc.stdin.write("go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

        _drop_end_txn_answer_then_kill_the_coordinator(kc, tid, commit)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.split() == ["committed", "done"], (tmp_path / "java.log").read_text()[-3000:]
    assert kc.call(lambda: kc.cluster.transactions.get(tid).client_version) == 2
    assert _committed_values(bootstrap, topic, 6) == {i: [f"c{i}".encode(), f"d{i}".encode()] for i in range(3)}


@pytest.mark.kstub(brokers=3, config=FAILOVER)
def test_partition_leaders_killed_under_a_transactional_producer(kstub_cluster):
    """A transactional producer (idempotent: sequence numbers per partition) commits and aborts while the
    leaders of its partitions are killed mid-transaction, one after the other (the first one back before the
    second goes): the new leaders know its producer state, so sequences stay exact (no OutOfOrderSequence),
    and read_committed sees each committed record once, in order, and no aborted one."""
    kc = kstub_cluster
    bootstrap = kc.bootstrap_servers
    topic, tid = f"lead-{uuid.uuid4().hex[:8]}", f"tid-{uuid.uuid4().hex[:8]}"
    create_topic(kc, topic, partitions=3, rf=3)
    p = _txn_producer(bootstrap, tid)
    expected: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    killed: list[int] = []

    def leader(partition: int) -> int:
        return kc.call(lambda: kc.cluster.topics[topic].partitions[partition].leader)

    for t in range(24):
        keep = t % 5 != 3
        p.begin_transaction()
        for half in range(2):
            for i in range(10):
                value = f"t{t}-{half}-{i}".encode()
                p.produce(topic, value, partition=i % 3)
                if keep:
                    expected[i % 3].append(value)
            if half == 0 and t in (6, 14):  # mid-transaction: part written, the partition's leader killed
                assert p.flush(30) == 0
                if killed:
                    kc.control.start_broker(killed[-1])
                victim = leader(t // 7)
                kc.control.kill_broker(victim)
                killed.append(victim)
                wait_until(kc, lambda v=victim, k=t // 7: leader(k) not in (v, -1), what="a new leader")
        if keep:
            p.commit_transaction(60)
        else:
            assert p.flush(60) == 0
            p.abort_transaction(60)
    assert len(killed) == 2
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    total = sum(map(len, expected.values()))
    for partition, _, _, value in _read_all(bootstrap, topic, "read_committed", total):
        got[partition].append(value)
    assert got == expected


def _read_all(bootstrap: str, topic: str, isolation: str, expected: int) -> list:
    reader = Tail(bootstrap, topic, isolation)
    try:
        return list(reader.until(lambda got: len(got) >= expected, f"{expected} records"))
    finally:
        reader.close()
