#!/usr/bin/env python3
"""What open console pages cost producers: produce throughput with pages following /v1/events, and without.

    python bench/console_live.py [--topics 20] [--partitions 3] [--pages 3] [--messages 20000] [--rounds 3]

Starts `python -m kstub serve --brokers 3 --admin-port P` in a subprocess,
creates --topics topics of --partitions partitions (replication factor 3),
then measures confluent-kafka's produce throughput (acks=all, 100-byte
values) alone, then with --pages console pages open (each a thread reading
GET /v1/events as a browser does: every picture pushed, parsed as JSON),
turn about, --rounds rounds. While the pages are open it counts the pictures
each received and their size, and the round-trip time of ApiVersions
requests (how long the brokers' Trio thread is kept from serving). First, in
this process, the CPU time of one picture and of one fingerprint check for
models of that size and of 1,000 partitions.

Prints figures; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time

from confluent_kafka.admin import AdminClient, NewTopic
from serving import describe, free_port, probe, produce, start_with_admin


class Page(threading.Thread):
    """A console page: GET /v1/events, every picture read and parsed, until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.pictures = 0
        self.bytes = 0
        self.stopping = False
        self.sock = socket.create_connection(("127.0.0.1", port))

    def run(self) -> None:
        self.sock.sendall(f"GET /v1/events HTTP/1.0\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
        buffer = b""
        try:
            while not self.stopping:
                data = self.sock.recv(1 << 16)
                if not data:
                    return
                buffer += data
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"data: "):
                            json.loads(line[6:])
                            self.pictures += 1
                            self.bytes += len(line)
        except OSError:
            return

    def stop(self) -> None:
        self.stopping = True
        self.sock.close()


def picture_cost(topics: int, partitions: int) -> str:
    """CPU time of one picture (built on the brokers' thread, then its JSON), in this process, for a model
    of `topics` x `partitions` (RF 3): a figure that the machine's other work does not blur as much."""
    import trio

    from kstub.cluster.model import ClusterState
    from kstub.console_live import ConsoleHub

    async def measure() -> str:
        cluster = ClusterState()
        for node in range(3):
            cluster.add_broker(node, "127.0.0.1", 9092 + node)
        for t in range(topics):
            cluster.create_topic(f"t{t}", partitions, 3)
        hub = ConsoleHub(cluster)
        build, write, size = [], [], 0
        for _ in range(20):
            t0 = time.process_time()
            picture = hub.picture()
            t1 = time.process_time()
            body = json.dumps(picture)
            build.append(t1 - t0)
            write.append(time.process_time() - t1)
            size = len(body)
        fingerprint = time.process_time()
        for _ in range(20):
            hub.fingerprint()
        each = (time.process_time() - fingerprint) / 20
        return (
            f"{topics * partitions} partitions: a picture is {size / 1024:.0f} KiB, built in "
            f"{statistics.median(build) * 1000:.1f} ms, written in {statistics.median(write) * 1000:.1f} ms; "
            f"a fingerprint {each * 1000:.2f} ms"
        )

    return trio.run(measure)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--probe", type=float, default=3.0)
    args = ap.parse_args()

    for topics, partitions in ((args.topics, args.partitions), (100, 10)):
        print("CPU per picture, " + picture_cost(topics, partitions))

    port = free_port()
    proc, bootstrap = start_with_admin(port)
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        names = [f"bench-{i}" for i in range(args.topics)]
        for future in admin.create_topics([NewTopic(n, args.partitions, 3) for n in names]).values():
            future.result(60)
        produce(bootstrap, names, args.partitions, 2000)  # warm up
        print(f"kstub: 3 brokers, {args.topics} topics x {args.partitions} partitions (RF 3); {args.pages} pages")
        print(f"ApiVersions round trips, no page open: {describe(probe(bootstrap, args.probe))}")
        without, with_pages = [], []
        for r in range(args.rounds):
            without.append(produce(bootstrap, names, args.partitions, args.messages))
            pages = [Page(port) for _ in range(args.pages)]
            for page in pages:
                page.start()
            t = time.perf_counter()
            with_pages.append(produce(bootstrap, names, args.partitions, args.messages))
            took = time.perf_counter() - t
            got = [p.pictures for p in pages]
            size = sum(p.bytes for p in pages) / max(1, sum(got))
            print(
                f"round {r + 1}: {without[-1]:,.0f} msg/s without pages, {with_pages[-1]:,.0f} msg/s with "
                f"{args.pages} pages ({min(got) / took:.1f}-{max(got) / took:.1f} pictures/s per page, "
                f"{size / 1024:.1f} KiB each)"
            )
            if r == args.rounds - 1:
                print(f"ApiVersions round trips, {args.pages} pages open: {describe(probe(bootstrap, args.probe))}")
            for page in pages:
                page.stop()
        a, b = statistics.median(without), statistics.median(with_pages)
        print(f"median: {a:,.0f} msg/s without, {b:,.0f} msg/s with pages open ({(b - a) / a * 100:+.1f}%)")
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
