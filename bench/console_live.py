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
requests (how long the brokers' Trio thread is kept from serving). Then the
push latency: how long after a broker is stopped or started from the admin
API, or after a produce is acknowledged, an open page receives a picture
showing it. First, in
this process, the CPU time of one picture and of one fingerprint check for
models of that size and of 1,000 partitions.

Prints figures; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import statistics
import sys
import threading
import time
import urllib.request
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from serving import free_port, probe, produce, start_with_admin


class EventStream(threading.Thread):
    """A console page: GET /v1/events, each picture read and parsed (`picture`) until the stream ends."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))

    def run(self) -> None:
        self.sock.sendall(f"GET /v1/events HTTP/1.0\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
        buffer = b""
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return
                buffer += data
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"data: "):
                            self.picture(line, json.loads(line[6:]))
        except OSError:
            return

    def picture(self, line: bytes, picture: dict) -> None:
        raise NotImplementedError


class Page(EventStream):
    """A console page that counts the pictures and their bytes, until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.pictures = 0
        self.bytes = 0

    def picture(self, line: bytes, picture: dict) -> None:
        self.pictures += 1
        self.bytes += len(line)

    def stop(self) -> None:
        self.sock.close()


class Watcher(EventStream):
    """A console page that notes when each picture arrived, for the push latency."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.pictures: queue.Queue[tuple[float, dict]] = queue.Queue()

    def picture(self, line: bytes, picture: dict) -> None:
        self.pictures.put((time.perf_counter(), picture))

    def shown(self, since: float, condition) -> float:  # type: ignore[no-untyped-def]
        """Seconds from `since` to the first picture received after it that meets `condition`."""
        while True:
            at, picture = self.pictures.get(timeout=30)
            if at >= since and condition(picture):
                return at - since


def push_latency(port: int, bootstrap: str, topic: str, times: int) -> str:
    """How long after a change an open page has it: a broker stopped and started from the admin API (timed
    from the request), a produce acknowledged with acks=all (timed from the acknowledgement)."""
    watcher = Watcher(port)
    watcher.start()
    watcher.shown(0, lambda p: True)
    url = f"http://127.0.0.1:{port}/v1/brokers/2"
    actions, produced = [], []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    for _ in range(times):
        for action, want in (("stop", "stopped"), ("start", "running")):
            request = urllib.request.Request(
                f"{url}/{action}", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
            )
            t = time.perf_counter()
            urllib.request.urlopen(request, timeout=30).read()
            actions.append(watcher.shown(t, lambda p, w=want: p["brokers"][2]["state"] == w))
        acked: list[tuple[float, Any]] = []
        producer.produce(
            topic, b"x", partition=0, on_delivery=lambda err, msg, acked=acked: acked.append((time.perf_counter(), msg))
        )
        producer.flush(30)
        at, msg = acked[0]
        hw = msg.offset() + 1
        produced.append(
            watcher.shown(
                at,
                lambda p, hw=hw: any(
                    q["topic"] == topic and q["partition"] == 0 and q["high_watermark"] >= hw for q in p["partitions"]
                ),
            )
        )
    watcher.sock.close()

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        return f"median {statistics.median(values) * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"

    return (
        f"push latency over {times} rounds: broker stop/start shown {ms(actions)} after the request; "
        f"a produce shown {ms(produced)} after its acknowledgement"
    )


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe(times: list[float]) -> str:
    ordered = sorted(times)
    return (
        f"median {statistics.median(times) * 1000:.2f} ms, p99 {ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


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
    ap.add_argument("--latency", type=int, default=5, help="rounds of the push latency measurement")
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
        cpu_without, cpu_with = [], []  # kstub's CPU seconds per message: less blurred by the machine's other work
        for r in range(args.rounds):
            cpu = cpu_seconds(proc.pid)
            without.append(produce(bootstrap, names, args.partitions, args.messages))
            cpu_without.append((cpu_seconds(proc.pid) - cpu) / args.messages)
            pages = [Page(port) for _ in range(args.pages)]
            for page in pages:
                page.start()
            t = time.perf_counter()
            cpu = cpu_seconds(proc.pid)
            with_pages.append(produce(bootstrap, names, args.partitions, args.messages))
            cpu_with.append((cpu_seconds(proc.pid) - cpu) / args.messages)
            took = time.perf_counter() - t
            got = [p.pictures for p in pages]
            size = sum(p.bytes for p in pages) / max(1, sum(got))
            print(
                f"round {r + 1}: {without[-1]:,.0f} msg/s without pages, {with_pages[-1]:,.0f} msg/s with "
                f"{args.pages} pages ({min(got) / took:.1f}-{max(got) / took:.1f} pictures/s per page, "
                f"{size / 1024:.1f} KiB each); kstub CPU per message {cpu_without[-1] * 1e6:.0f} vs "
                f"{cpu_with[-1] * 1e6:.0f} us"
            )
            if r == args.rounds - 1:
                print(f"ApiVersions round trips, {args.pages} pages open: {describe(probe(bootstrap, args.probe))}")
            for page in pages:
                page.stop()
        a, b = statistics.median(without), statistics.median(with_pages)
        print(f"median: {a:,.0f} msg/s without, {b:,.0f} msg/s with pages open ({(b - a) / a * 100:+.1f}%)")
        c, d = statistics.median(cpu_without), statistics.median(cpu_with)
        print(
            f"median kstub CPU per message: {c * 1e6:.0f} us without, {d * 1e6:.0f} us with pages open "
            f"({(d - c) / c * 100:+.1f}%)"
        )
        print(push_latency(port, bootstrap, names[0], args.latency))
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
