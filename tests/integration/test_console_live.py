"""The console's live feed (GET /v1/events, Server-Sent Events) and its record browser, against real clients.

The feed is read as a browser would (a long-lived GET, messages split on
blank lines): a kafka-python produce shows up in a pushed picture, and its
rates (messages and bytes in, bytes out once consumed); a page that
stops reading neither blocks the brokers nor the other pages (its pictures
are coalesced); a page that goes away is forgotten; the events log has the
control plane's actions and the elections they caused. Records are browsed
from an offset, a page at a time, compressed or not, with keys, values and
headers cut to the size asked.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from kstub import Cluster
from kstub.console_live import hub_for

from multibroker import create_topic
from support.console import press

DEADLINE = 20.0


class EventStream:
    """A raw HTTP/1.0 GET of /v1/events (no chunking: the body runs until the close), read as SSE."""

    def __init__(self, admin_url: str, headers: dict[str, str] | None = None, rcvbuf: int | None = None) -> None:
        host, port = admin_url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, int(port)))
        self.sock.settimeout(DEADLINE)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET /v1/events HTTP/1.0\r\nHost: {host}:{port}\r\n{extra}\r\n".encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode("latin-1")

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the stream closed")
            self.buffer += data
        item, self.buffer = self.buffer.split(marker, 1)
        return item

    def next_picture(self) -> dict[str, Any]:
        """The next ``event: state`` message's JSON (comments and other fields skipped)."""
        while True:
            block = self._until(b"\n\n").decode()
            lines = [line for line in block.split("\n") if line and not line.startswith(":")]
            fields = dict(line.split(": ", 1) for line in lines if ": " in line)
            if fields.get("event") == "state":
                return json.loads(fields["data"])

    def picture_where(self, condition: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            picture = self.next_picture()
            if condition(picture):
                return picture
        raise AssertionError("no pushed picture met the condition in time")

    def close(self) -> None:
        self.sock.close()


def hw(picture: dict[str, Any], topic: str, partition: int = 0) -> int:
    (p,) = [p for p in picture["partitions"] if (p["topic"], p["partition"]) == (topic, partition)]
    return p["high_watermark"]


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_produce_is_pushed_to_the_page():
    with Cluster(admin_port=0) as cluster:
        cluster.create_topic("pushed", 1, 1)
        stream = EventStream(cluster.admin_url)
        try:
            assert stream.status == 200 and "text/event-stream" in stream.head
            first = stream.next_picture()
            assert hw(first, "pushed") == 0 and [b["state"] for b in first["brokers"]] == ["running"]
            producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks=1)
            for i in range(7):
                producer.send("pushed", value=b"v%d" % i)
            producer.flush()
            producer.close()
            picture = stream.picture_where(lambda p: hw(p, "pushed") == 7)
            (topic,) = [t for t in picture["topics"] if t["name"] == "pushed"]
            assert topic["high_watermarks"] == [7] and topic["log_start_offsets"] == [0]
            assert picture["generation"] > first["generation"]
            # the rates for the sparklines: 7 messages in, seen in the samples of the last minute
            rated = stream.picture_where(lambda p: sum(p["rates"]["topics"].get("pushed", {}).get("messages_in", [])))
            assert sum(rated["rates"]["topics"]["pushed"]["messages_in"]) > 0
            assert sum(rated["rates"]["topics"]["pushed"]["bytes_in"]) > 0
            # a consumer reads them: bytes out of the topic
            consumer = KafkaConsumer(
                "pushed", bootstrap_servers=cluster.bootstrap_servers, auto_offset_reset="earliest"
            )
            try:
                got, deadline = 0, time.monotonic() + DEADLINE
                while got < 7 and time.monotonic() < deadline:
                    got += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
                assert got == 7
            finally:
                consumer.close()
            stream.picture_where(lambda p: sum(p["rates"]["topics"].get("pushed", {}).get("bytes_out", [])))
        finally:
            stream.close()
        # the page went away: its task ends, and with the last page the watchers stop
        hub = cluster.call(lambda: hub_for(cluster.cluster))
        deadline = time.monotonic() + DEADLINE
        while cluster.call(lambda: hub.streams) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cluster.call(lambda: (hub.streams, hub._watching)) == (0, None)


def test_a_page_that_stops_reading_slows_neither_the_brokers_nor_other_pages():
    with Cluster(admin_port=0) as cluster:
        cluster.create_topic("busy", 1, 1)
        stuck = EventStream(cluster.admin_url, rcvbuf=4096)  # reads its head, then never again
        reading = EventStream(cluster.admin_url)
        try:
            producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks=1, linger_ms=0)
            # many small acknowledged produces: hundreds of changes, each a picture of several KiB
            for i in range(300):
                producer.send("busy", value=b"x" * 10, key=b"%d" % i).get(timeout=DEADLINE)
            producer.close()
            assert hw(reading.picture_where(lambda p: hw(p, "busy") == 300), "busy") == 300
            status, state = get_json(cluster.admin_url + "/v1/state")
            assert status == 200 and hw(state, "busy") == 300
            hub = cluster.call(lambda: hub_for(cluster.cluster))
            pages = cluster.call(lambda: [(p.pictures, p.skipped) for p in hub.pages])
            assert len(pages) == 2
            # 300 high-watermark moves, folded into the pictures each page could take (at most 10 a second)
            generation = cluster.call(lambda: hub.generation)
            assert all(0 < pictures < 300 and pictures + skipped <= generation + 1 for pictures, skipped in pages), (
                pages
            )
        finally:
            stuck.close()
            reading.close()


def test_too_many_pages_are_refused_and_the_token_is_required():
    with Cluster(admin_port=0, admin_token="s3cret") as cluster:
        refused = EventStream(cluster.admin_url)
        assert refused.status == 401
        refused.close()
        ok = EventStream(cluster.admin_url, {"Authorization": "Bearer s3cret"})
        assert ok.status == 200 and ok.next_picture()["brokers"][0]["id"] == 0
        ok.close()


@pytest.mark.kstub(brokers=3, admin_port=0, config={"broker.session.timeout.ms": "1000"})
def test_the_events_log_has_actions_elections_and_isr_changes(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "logged", 2, 3)
    stream = EventStream(kc.admin_url)
    try:
        before = stream.next_picture()
        leaders = {p["partition"]: p["leader"] for p in before["partitions"] if p["topic"] == "logged"}
        victim = leaders[0]
        press(kc.admin_url, f"/v1/brokers/{victim}/kill")
        killed = stream.picture_where(lambda p: p["brokers"][victim]["state"] == "killed")
        assert any(e["kind"] == "action" and e["text"] == f"kill-broker broker={victim}" for e in killed["events"])

        def moved(p: dict[str, Any]) -> bool:
            parts = [x for x in p["partitions"] if x["topic"] == "logged"]
            return all(x["leader"] != victim and victim not in x["isr"] for x in parts)

        after = stream.picture_where(moved)
        texts = [e["text"] for e in after["events"]]
        assert f"logged-0: leader {after['partitions'][0]['leader']} (was {victim})" in " ".join(texts) or any(
            t.startswith("logged-0: leader ") and f"(was {victim})" in t for t in texts
        ), texts
        assert any(e["kind"] == "broker" and f"broker {victim} left" in e["text"] for e in after["events"]), texts
    finally:
        stream.close()


def test_records_are_browsed_a_page_at_a_time():
    with Cluster(admin_port=0) as cluster:
        cluster.create_topic("browsed", 2, 1)
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks=1, compression_type="gzip")
        for i in range(10):
            producer.send(
                "browsed",
                key=b"k%d" % i,
                value=f"välue {i} ".encode() + b"z" * 2000,
                headers=[("h", b"\xff\x00")],
                partition=0,
            )
        producer.send("browsed", key=b"gone", value=None, partition=0)  # a tombstone
        producer.flush()
        producer.close()
        url = cluster.admin_url + "/v1/topics/browsed/partitions/0/records"

        status, page = get_json(url + "?offset=3&limit=4&max_bytes=10")
        assert status == 200, page
        assert [r["offset"] for r in page["records"]] == [3, 4, 5, 6]
        assert (page["next_offset"], page["high_watermark"], page["log_start_offset"]) == (7, 11, 0)
        r3 = page["records"][0]
        assert r3["key"] == {"size": 2, "truncated": False, "text": "k3"}
        assert r3["value"]["text"] == "välue 3 z" and r3["value"]["truncated"] and r3["value"]["size"] == 2009
        assert r3["headers"] == [["h", {"size": 2, "truncated": False, "base64": "/wA="}]]
        assert r3["timestamp"] > 0

        # a character cut in two at the end is left out, not shown as bytes
        assert get_json(url + "?offset=3&limit=1&max_bytes=2")[1]["records"][0]["value"]["text"] == "v"

        status, rest = get_json(url + f"?offset={page['next_offset']}")
        assert [r["offset"] for r in rest["records"]] == [7, 8, 9, 10]
        assert rest["records"][-1]["value"] is None and rest["next_offset"] == 11
        assert get_json(url + "?offset=11")[1]["records"] == []
        assert [r["offset"] for r in get_json(url + "?limit=2")[1]["records"]] == [0, 1]  # from the log start

        assert get_json(cluster.admin_url + "/v1/topics/browsed/partitions/1/records")[1]["records"] == []
        assert get_json(cluster.admin_url + "/v1/topics/browsed/partitions/2/records")[0] == 404
        assert get_json(cluster.admin_url + "/v1/topics/nope/partitions/0/records")[0] == 404
        assert get_json(url + "?offset=x")[0] == 400
        assert get_json(url + "?limit=0")[0] == 400
        assert get_json(url + "?limit=100000")[0] == 400
        assert get_json(url + "?max_bytes=-1")[0] == 400


def test_an_open_page_does_not_keep_the_cluster_from_stopping():
    cluster = Cluster(admin_port=0)
    with cluster:
        stream = EventStream(cluster.admin_url)
        stream.next_picture()
        status, _ = get_json(cluster.admin_url + "/v1/state")
        assert status == 200
    try:  # the stream ends with the server: the page sees the end and reconnects later
        with pytest.raises((EOFError, ConnectionError)):
            while True:
                stream.next_picture()
    finally:
        stream.close()


def test_head_and_other_methods_on_the_stream():
    with Cluster(admin_port=0) as cluster:
        req = urllib.request.Request(cluster.admin_url + "/v1/events", method="HEAD")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
            assert resp.read() == b""
        req = urllib.request.Request(
            cluster.admin_url + "/v1/events", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert refused.value.code == 405
