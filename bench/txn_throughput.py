#!/usr/bin/env python3
"""Transactional produce throughput next to plain idempotent produce, measured with confluent-kafka.

    python bench/txn_throughput.py [--records 20000] [--size 100] [--brokers 3] [--kafka]

Starts `python -m kstub serve --brokers N` on free loopback ports in a
subprocess (so the client and the brokers do not share a GIL), creates a topic
with 3 partitions (replication factor min(N, 3)), and produces --records
records of --size bytes: idempotently (acks=all), then in transactions of 100
records, then in transactions of 10,000 (each begin, produce, commit), after
a warm-up of 2,000 idempotent records. Prints
records/s and transactions/s for each. With --kafka the same runs against
Apache Kafka 4.4 (kstub.compat.realkafka, one node), for comparison. A
benchmark, not a test: it asserts only that every record was delivered.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from serving import free_base_port, send, serve_command, wait_ready


def run(bootstrap: str, records: int, size: int, rf: int) -> list[tuple[str, float, float]]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"bench-txn-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 3, rf)])[topic].result(60)
    payload = os.urandom(size)
    results = []
    failed: list[object] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(2000):  # warm-up: connections, metadata, the producer id (not measured)
        plain.produce(topic, payload, partition=i % 3, on_delivery=report)
    assert plain.flush(60) == 0
    start = time.perf_counter()
    for i in range(records):
        send(plain, topic, payload, partition=i % 3, on_delivery=report)
    assert plain.flush(120) == 0 and not failed, failed
    took = time.perf_counter() - start
    results.append(("idempotent, no transaction", records / took, 0.0))

    for per_txn in (100, 10_000):
        p = Producer(
            {"bootstrap.servers": bootstrap, "transactional.id": f"bench-{uuid.uuid4().hex[:8]}", "linger.ms": 5}
        )
        p.init_transactions(60)
        n = max(per_txn, records // per_txn * per_txn)
        start = time.perf_counter()
        for _ in range(n // per_txn):
            p.begin_transaction()
            for i in range(per_txn):
                send(p, topic, payload, partition=i % 3, on_delivery=report)
            p.commit_transaction(120)
        took = time.perf_counter() - start
        assert not failed, failed
        results.append((f"transactions of {per_txn}", n / took, (n // per_txn) / took))
    return results


def show(label: str, results: list[tuple[str, float, float]]) -> None:
    print(f"{label}:")
    for name, rps, tps in results:
        extra = f", {tps:,.1f} transactions/s" if tps else ""
        print(f"  {name:<28} {rps:>10,.0f} records/s{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--kafka", action="store_true", help="also against Apache Kafka 4.4 (one node)")
    args = parser.parse_args()
    base = free_base_port(args.brokers)
    proc = subprocess.Popen(
        serve_command(
            "--port",
            str(base),
            "--brokers",
            str(args.brokers),
            "--log-level",
            "WARNING",
        ),
    )
    try:
        wait_ready(f"127.0.0.1:{base}", 20.0)
        time.sleep(0.5)
        show(
            f"kstub, {args.brokers} broker(s)", run(f"127.0.0.1:{base}", args.records, args.size, min(args.brokers, 3))
        )
    finally:
        proc.terminate()
        proc.wait(30)
    if args.kafka:
        from kstub.compat.realkafka import RealKafka

        with RealKafka(brokers=1) as kafka:
            show("Apache Kafka 4.4, 1 broker", run(kafka.bootstrap_servers, args.records, args.size, 1))


if __name__ == "__main__":
    main()
