#!/usr/bin/env python3
"""What a scrape of /metrics and a console refresh (/v1/state) cost, and what they cost producers.

    python bench/admin_scrape.py [--topics 100] [--partitions 3] [--groups 20] [--scrapes 20] [--messages 20000]

Starts `python -m kstub serve --brokers 3 --admin-port P` in a subprocess,
creates --topics topics of --partitions partitions with replication factor 3
and --groups consumer groups with committed offsets on every partition, then:

1. times --scrapes requests of GET /metrics and of GET /v1/state (each is
   computed from the cluster model when asked, on the brokers' Trio thread);
2. measures how long brokers stall meanwhile: the round-trip time of
   ApiVersions requests sent back to back for --probe seconds, without
   scrapes, then with /metrics scraped back to back (worst case);
3. measures confluent-kafka's produce throughput (acks=all, 100-byte values)
   alone, then with a scraper fetching /metrics and /v1/state every second
   (what Prometheus and an open console do), turn about, --rounds rounds.

Prints figures; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from serving import describe, free_port, probe, produce, start_with_admin


def timed_get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        size = len(resp.read())
    return time.perf_counter() - t, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--probe", type=float, default=5.0)
    args = ap.parse_args()

    port = free_port()
    proc, bootstrap = start_with_admin(port, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        names = [f"t{i}" for i in range(args.topics)]
        for future in admin.create_topics([NewTopic(n, args.partitions, 3) for n in [*names, "bench"]]).values():
            future.result(60)
        for g in range(args.groups):
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g{g}", "enable.auto.commit": False})
            offsets = [TopicPartition(n, p, 0) for n in names for p in range(args.partitions)]
            consumer.commit(offsets=offsets, asynchronous=False)
            consumer.close()
        partitions = args.topics * args.partitions
        print(f"{partitions} partitions (RF 3), {args.groups} groups with {partitions} committed offsets each")
        for path in ("/metrics", "/v1/state"):
            times, size = [], 0
            for _ in range(args.scrapes):
                elapsed, size = timed_get(url + path)
                times.append(elapsed)
            print(
                f"GET {path}: median {statistics.median(times) * 1000:.1f} ms, "
                f"max {max(times) * 1000:.1f} ms, {size / 1024:.0f} KiB"
            )

        print("ApiVersions round trips, no scrapes:", describe(probe(bootstrap, args.probe)))
        busy = threading.Event()

        def scrape_loop() -> None:
            while not busy.is_set():
                timed_get(url + "/metrics")

        thread = threading.Thread(target=scrape_loop, daemon=True)
        thread.start()
        print("ApiVersions round trips, /metrics scraped back to back:", describe(probe(bootstrap, args.probe)))
        busy.set()
        thread.join()

        stop = threading.Event()

        def scraper() -> None:
            while not stop.wait(1.0):
                timed_get(url + "/metrics")
                timed_get(url + "/v1/state")

        alone, watched = [], []
        for _ in range(args.rounds):
            alone.append(produce(bootstrap, ["bench"], 3, args.messages))
            stop.clear()
            thread = threading.Thread(target=scraper, daemon=True)
            thread.start()
            watched.append(produce(bootstrap, ["bench"], 3, args.messages))
            stop.set()
            thread.join()
        print(f"produce, acks=all: {statistics.median(alone):,.0f} msg/s alone")
        print(f"produce, acks=all: {statistics.median(watched):,.0f} msg/s with /metrics and /v1/state every second")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
