#!/usr/bin/env python3
"""How long four consumers take from subscribe() to all four having partitions.

    python bench/group_assignment.py [--client confluent-kafka|kafka-python] [--rounds 5] [--heartbeat-ms N]
                                     [--protocol both|classic|consumer] [--broker kstub|kafka]

Starts `python -m kstub serve -c group.initial.rebalance.delay.ms=0` on a free
loopback port in a subprocess, creates a 4-partition topic, and per round
starts 4 consumers of a fresh group at once (each polling on its own thread),
timing until their assignments are disjoint, non-empty and cover the 4
partitions. Prints each round and the median, for each protocol asked for
(both by default: the classic protocol, then KIP-848's with confluent-kafka).
--broker kafka times the same against real Apache Kafka 4.4 (one node,
kstub.compat.realkafka, also with group.initial.rebalance.delay.ms=0), for
comparison.

The figure is dominated by the clients: once the first member has formed the
group, the others' arrival is announced to members through Heartbeat
responses, so it scales with heartbeat.interval.ms (3000 ms by default in
both clients). --heartbeat-ms sets it. With --protocol consumer (KIP-848,
confluent-kafka only) the broker assigns and tells the interval: --heartbeat-ms
then sets the broker's group.consumer.heartbeat.interval.ms (5000 ms by
default), and a new target is computed at most once per
group.consumer.assignment.interval.ms (1 s). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import free_port, wait_ready

PARTITIONS = 4
CONSUMERS = 4


class Poller(threading.Thread):
    """One consumer polling until told to stop; `assignment` follows its rebalance callbacks."""

    def __init__(
        self, client: str, bootstrap: str, group: str, topic: str, heartbeat_ms: int | None, protocol: str = "classic"
    ) -> None:
        super().__init__(daemon=True)
        self.client, self.bootstrap, self.group, self.topic = client, bootstrap, group, topic
        self.heartbeat_ms = heartbeat_ms
        self.protocol = protocol
        self.assignment: frozenset[int] = frozenset()
        self.stop = threading.Event()

    def run(self) -> None:
        if self.client == "confluent-kafka":
            self._run_confluent()
        else:
            self._run_kafka_python()

    def _run_confluent(self) -> None:
        from confluent_kafka import Consumer

        conf = {"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False}
        if self.protocol == "consumer":
            conf["group.protocol"] = "consumer"  # the heartbeat interval is the broker's
        elif self.heartbeat_ms is not None:
            conf["heartbeat.interval.ms"] = self.heartbeat_ms
        consumer = Consumer(conf)

        # incremental callbacks (the consumer protocol); the eager ones revoke everything first
        def assigned(_c, parts) -> None:
            self.assignment = self.assignment | frozenset(p.partition for p in parts)

        def revoked(_c, parts) -> None:
            self.assignment = self.assignment - frozenset(p.partition for p in parts)

        consumer.subscribe([self.topic], on_assign=assigned, on_revoke=revoked)
        while not self.stop.is_set():
            consumer.poll(0.01)
        consumer.close()

    def _run_kafka_python(self) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        poller = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked) -> None:
                poller.assignment = frozenset()

            def on_partitions_assigned(self, assigned) -> None:
                poller.assignment = frozenset(tp.partition for tp in assigned)

        kwargs = {} if self.heartbeat_ms is None else {"heartbeat_interval_ms": self.heartbeat_ms}
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group, **kwargs)
        consumer.subscribe([self.topic], listener=Listener())
        while not self.stop.is_set():
            consumer.poll(timeout_ms=1000)
        consumer.close()


def one_round(
    client: str, bootstrap: str, topic: str, heartbeat_ms: int | None, protocol: str = "classic", timeout: float = 60.0
) -> float:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    pollers = [Poller(client, bootstrap, group, topic, heartbeat_ms, protocol) for _ in range(CONSUMERS)]
    start = time.perf_counter()
    for p in pollers:
        p.start()
    try:
        while True:
            sets = [p.assignment for p in pollers]
            if all(sets) and sum(map(len, sets)) == PARTITIONS and frozenset().union(*sets) == set(range(PARTITIONS)):
                return time.perf_counter() - start
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"no complete assignment within {timeout} s")
            time.sleep(0.001)
    finally:
        for p in pollers:
            p.stop.set()
        for p in pollers:
            p.join(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=["confluent-kafka", "kafka-python"], default="confluent-kafka")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heartbeat-ms", type=int, default=None, help="the consumers' heartbeat interval")
    parser.add_argument(
        "--protocol", choices=["both", "classic", "consumer"], default="both", help="group.protocol (default: both)"
    )
    parser.add_argument("--broker", choices=["kstub", "kafka"], default="kstub", help="the broker timed")
    args = parser.parse_args()
    protocols = ["classic", "consumer"] if args.protocol == "both" else [args.protocol]
    if "consumer" in protocols and args.client != "confluent-kafka":
        if args.protocol == "consumer":
            parser.error("--protocol consumer needs --client confluent-kafka")
        protocols = ["classic"]  # kafka-python speaks only the classic protocol
    broker = ["-c", "group.initial.rebalance.delay.ms=0"]
    if "consumer" in protocols and args.heartbeat_ms is not None:
        broker += ["-c", f"group.consumer.heartbeat.interval.ms={args.heartbeat_ms}",
                   "-c", f"group.consumer.min.heartbeat.interval.ms={args.heartbeat_ms}"]  # fmt: skip

    with contextlib.ExitStack() as stack:
        if args.broker == "kafka":
            from kstub.compat.realkafka import RealKafka

            config = dict(kv.split("=", 1) for kv in broker[1::2])
            bootstrap = stack.enter_context(RealKafka(1, config=config)).bootstrap_servers
        else:
            port = free_port()
            bootstrap = f"127.0.0.1:{port}"
            server = subprocess.Popen(
                [sys.executable, "-m", "kstub", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level",
                 "WARNING", *broker],
            )  # fmt: skip
            stack.callback(server.wait, 10)
            stack.callback(server.terminate)
            wait_ready(bootstrap)
        run(args, protocols, bootstrap)


def run(args: argparse.Namespace, protocols: list[str], bootstrap: str) -> None:
    """Each protocol's rounds on one topic of `bootstrap`, and the medians side by side."""
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    summary = []
    for protocol in protocols:
        default = "client default" if protocol == "classic" else "broker default"
        heartbeat = default if args.heartbeat_ms is None else f"{args.heartbeat_ms} ms"
        print(
            f"{args.broker}: {args.client}, group.protocol={protocol}, {CONSUMERS} consumers, {PARTITIONS} partitions, "
            f"heartbeat interval {heartbeat}"
        )
        times = []
        for i in range(args.rounds):
            t = one_round(args.client, bootstrap, topic, args.heartbeat_ms, protocol)
            times.append(t)
            print(f"  round {i + 1}: {t * 1000:.0f} ms from subscribe to all {CONSUMERS} assigned")
        ms = [t * 1000 for t in times]
        line = f"median {statistics.median(ms):.0f} ms (min {min(ms):.0f}, max {max(ms):.0f})"
        print(line)
        summary.append(f"  {protocol:<8} {line}")
    if len(summary) > 1:
        print("subscribe to assigned, 4 consumers:")
        print("\n".join(summary))


if __name__ == "__main__":
    main()
