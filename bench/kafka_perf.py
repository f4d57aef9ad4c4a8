#!/usr/bin/env python3
"""Kafka's own perf tools against kstub and against real Apache Kafka, in the same run.

    python bench/kafka_perf.py [--records 1000000] [--record-size 100] [--kstub-brokers 1,3] [--no-kafka] [--json]

For each broker under test (``kstub serve`` in a subprocess with 1 broker,
then 3; real Kafka from the pinned jars, one KRaft node):

- start-up: seconds from spawning the server to its first Metadata answer
  (for real Kafka: `RealKafka.start`, which also formats the storage with
  ``kafka-storage``, a JVM run of its own, before starting the broker);
- idle RSS: the resident memory of the server processes, summed, from /proc,
  a second after start-up;
- ``kafka-producer-perf-test`` with --records records of --record-size bytes,
  acks=all then acks=1 (each into its own topic of 3 partitions, replication
  factor = broker count), unthrottled: its closing line;
- ``kafka-consumer-perf-test`` reading each of these topics back: its figures.

Needs java, and the Kafka jars (Maven fetches them the first time). The tools
run with the heap `kstub.compat.realkafka` gives them (256 MB). Linux only
(/proc). On a shared machine the figures move with the load: run it twice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from startup import READY, child_env, metadata, rss_mb, serve_command

from kstub.compat.realkafka import RealKafka, run_tool


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def idle_rss_mb(pids: list[int]) -> float:
    time.sleep(1.0)  # let start-up allocations settle
    return sum(rss_mb(p) for pid in pids for p in _descendants(pid))


@contextmanager
def kstub_server(brokers: int) -> Iterator[dict[str, Any]]:
    command = [*serve_command(), "serve", "--host", "127.0.0.1", "--port", "0", "--brokers", str(brokers)]
    command += ["-c", "group.initial.rebalance.delay.ms=0"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=child_env())
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if READY in line:
                bootstrap = line.split(READY, 1)[1].strip()
                break
        else:
            raise RuntimeError(f"kstub serve exited with {proc.wait()} before it was ready")
        metadata(bootstrap.split(",")[0])
        ready = time.perf_counter() - start
        yield {"bootstrap": bootstrap, "startup_s": ready, "idle_rss_mb": idle_rss_mb([proc.pid]), "brokers": brokers}
    finally:
        proc.terminate()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@contextmanager
def kafka_server(brokers: int) -> Iterator[dict[str, Any]]:
    with RealKafka(brokers=brokers) as kafka:
        yield {
            "bootstrap": kafka.bootstrap_servers,
            "startup_s": kafka.ready_seconds,
            "idle_rss_mb": idle_rss_mb(kafka.pids),
            "brokers": brokers,
        }


def _tool(name: str, args: list[str]) -> str:
    result = run_tool(name, args, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def producer_perf(bootstrap: str, topic: str, records: int, size: int, acks: str) -> dict[str, Any]:
    out = _tool(
        "kafka-producer-perf-test",
        ["--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={bootstrap}", f"acks={acks}"],
    )  # fmt: skip
    line = [x for x in out.splitlines() if "records sent" in x][-1]
    fields = line.split(", ")
    return {
        "line": line,
        "records_per_s": float(fields[1].split()[0]),
        "mb_per_s": float(fields[1].split("(")[1].split()[0]),
        "avg_latency_ms": float(fields[2].split()[0]),
    }


def consumer_perf(bootstrap: str, topic: str, records: int) -> dict[str, Any]:
    out = _tool(
        "kafka-consumer-perf-test",
        ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records), "--timeout", "120000"],
    )
    lines = [x for x in out.splitlines() if x.strip()]
    header, values = [h.strip() for h in lines[-2].split(",")], [v.strip() for v in lines[-1].split(",")]
    row = dict(zip(header, values, strict=True))
    return {
        "line": lines[-1],
        "records_per_s": float(row["nMsg.sec"]),
        "mb_per_s": float(row["MB.sec"]),
        "consumed": int(row["data.consumed.in.nMsg"]),
    }


def run_one(server: dict[str, Any], records: int, size: int) -> dict[str, Any]:
    bootstrap, rf = server["bootstrap"], str(server["brokers"])
    result = dict(server)
    for acks in ("all", "1"):
        topic = f"perf-acks-{acks}"
        _tool("kafka-topics", ["--bootstrap-server", bootstrap, "--create", "--topic", topic, "--partitions", "3",
                               "--replication-factor", rf])  # fmt: skip
        result[f"produce_acks_{acks}"] = producer_perf(bootstrap, topic, records, size, acks)
        result[f"consume_acks_{acks}"] = consumed = consumer_perf(bootstrap, topic, records)
        if consumed["consumed"] != records:
            raise RuntimeError(f"{topic}: {consumed['consumed']} of {records} records consumed")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-size", type=int, default=100)
    parser.add_argument("--kstub-brokers", default="1,3", help="kstub cluster sizes to run, comma-separated")
    parser.add_argument("--no-kafka", action="store_true", help="skip real Kafka")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    runs: list[tuple[str, Any]] = [(f"kstub ({n} broker{'s' * (int(n) > 1)})", kstub_server(int(n)))
                                   for n in args.kstub_brokers.split(",") if n]  # fmt: skip
    if not args.no_kafka:
        runs.append(("Kafka 4.4 (1 node)", kafka_server(1)))
    results = {}
    for name, server in runs:
        print(f"--- {name}", file=sys.stderr, flush=True)
        with server as info:
            results[name] = run_one(info, args.records, args.record_size)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.records} records x {args.record_size} B, 3 partitions; load average {os.getloadavg()[0]:.1f}")
    print(f"{'broker':22} {'start-up':>9} {'idle RSS':>9}  {'phase':16} {'records/s':>10} {'MB/s':>7}")
    for name, r in results.items():
        first = True
        for phase in ("produce_acks_all", "produce_acks_1", "consume_acks_all", "consume_acks_1"):
            p = r[phase]
            head = f"{name:22} {r['startup_s']:8.2f}s {r['idle_rss_mb']:7.0f}MB" if first else " " * 42
            print(f"{head}  {phase:16} {p['records_per_s']:10.0f} {p['mb_per_s']:7.2f}")
            first = False
    print("\nthe tools' own lines:")
    for name, r in results.items():
        for phase in ("produce_acks_all", "produce_acks_1", "consume_acks_all", "consume_acks_1"):
            print(f"{name} {phase}: {r[phase]['line']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
