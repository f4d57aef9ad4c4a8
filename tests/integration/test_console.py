"""The live console: the page at / and the snapshot it draws (/v1/state), against a real group.

The page is fetched as a browser would (its headers keep it out of other
sites' frames and away from other origins); the snapshot must say what the
cluster holds: brokers, each partition's leader and ISR, a kafka-python
group's member with its partitions, committed offsets and lag; after the
page's "kill" action, the broker killed.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from modern_group import BROKER_CONFIG, settled_group, wait_for

from kstub import Cluster

from multibroker import create_topic
from support.console import press
from support.external import require_programs


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def state(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, _, body = get(f"{url}/v1/state", headers)
    assert status == 200, body
    return json.loads(body)


def test_the_page_is_self_contained_and_framed_by_no_one():
    with Cluster(admin_port=0) as cluster:
        status, headers, body = get(cluster.admin_url + "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    page = body.decode()
    assert "/v1/events" in page and "/v1/brokers/" in page and "/records" in page
    for outside in ("http://", "https://", "<link", "src="):  # nothing loaded from anywhere
        assert outside not in page.replace('"http://www.w3.org/2000/svg"', ""), outside


@pytest.mark.kstub(brokers=3, admin_port=0)
def test_the_snapshot_shows_brokers_partitions_and_a_group(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "shown", 2, 3)
    producer = KafkaProducer(bootstrap_servers=kc.bootstrap_servers, acks="all")
    for i in range(10):
        producer.send("shown", value=b"%d" % i, partition=i % 2)
    producer.flush()
    consumer = KafkaConsumer(
        "shown",
        bootstrap_servers=kc.bootstrap_servers,
        group_id="viewers",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        got, deadline = 0, time.monotonic() + 30
        while got < 10 and time.monotonic() < deadline:
            got += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
        assert got == 10
        consumer.commit()
        for _ in range(4):
            producer.send("shown", value=b"more", partition=0)
        producer.flush()

        snap = state(url)
        assert [(b["id"], b["state"], b["controller"]) for b in snap["brokers"]] == [
            (0, "running", True),
            (1, "running", False),
            (2, "running", False),
        ]
        shown = [p for p in snap["partitions"] if p["topic"] == "shown"]
        for p in shown:
            model = kc.cluster.partition("shown", p["partition"])
            assert (p["leader"], p["isr"], p["high_watermark"]) == (model.leader, model.isr, model.high_watermark)
        assert [t for t in snap["topics"] if t["name"] == "shown"] == [
            {
                "name": "shown",
                "partitions": 2,
                "replication_factor": 3,
                "internal": False,
                "configs": {},
                "log_start_offsets": [0, 0],
                "high_watermarks": [9, 5],
            }
        ]
        (group,) = snap["groups"]
        assert (group["id"], group["state"], group["protocol_type"], len(group["members"])) == (
            "viewers",
            "Stable",
            "consumer",
            1,
        )
        (member,) = group["members"]
        assert member["leader"] and sorted(member["partitions"]) == [["shown", 0], ["shown", 1]]
        assert [(o["partition"], o["committed"], o["high_watermark"], o["lag"]) for o in group["offsets"]] == [
            (0, 5, 9, 4),
            (1, 5, 5, 0),
        ]
        assert group["lag"] == 4
        coordinator = group["coordinator"]
        assert [b["coordinates"] for b in snap["brokers"] if b["id"] == coordinator] == [["viewers"]]
    finally:
        consumer.close()
        producer.close()

    # What the page's "kill" button sends (same origin, JSON), then what it draws next.
    press(url, "/v1/brokers/1/kill")
    snap = state(url)
    assert [b["state"] for b in snap["brokers"]] == ["running", "killed", "running"]
    assert snap["actions"][-1]["action"] == "kill-broker"


def test_with_a_token_the_page_takes_it_from_its_url():
    with Cluster(admin_port=0, admin_token="t0ken") as cluster:
        url = cluster.admin_url
        assert get(url + "/")[0] == 401
        assert get(url + "/?token=wrong")[0] == 401
        assert get(url + "/?token=t0ken")[0] == 200
        assert get(url + "/v1/state?token=t0ken")[0] == 401, "only the page itself takes the token from its URL"
        assert state(url, {"Authorization": "Bearer t0ken"})["brokers"][0]["state"] == "running"


#: the killed broker stays registered and in the ISR however long Chromium takes (9 s and 30 s by default:
#: a CI run once drew it fenced, out of sync, after its leadership had moved)
UNFENCED = {"broker.session.timeout.ms": "3600000", "replica.lag.time.max.ms": "3600000"}


@pytest.mark.kstub(brokers=3, admin_port=0, config=UNFENCED)
def test_chromium_draws_the_cluster(kstub_cluster, tmp_path):
    """Headless Chromium runs the page's script against the live API; the DOM it builds is the picture."""
    require_programs("chromium")
    kc = kstub_cluster
    create_topic(kc, "drawn", 2, 3)
    kc.control.kill_broker(2)

    def browse(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
        cmd += ["--virtual-time-budget=5000", *args, kc.admin_url + "/"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    dom = browse("--dump-dom").stdout
    brokers = re.findall(r'<div class="broker[^"]*" data-broker="(\d)" data-state="(\w+)"', dom)
    assert brokers == [("0", "running"), ("1", "running"), ("2", "killed")], dom[-2000:]
    for index in (0, 1):
        roles = sorted(re.findall(rf'data-replica="drawn-{index}" data-role="([\w-]+)"', dom))
        assert roles == ["follower", "follower", "leader"], roles
    assert "controller" in dom and "updated" in dom
    # A screenshot for people to look at (kept with the test's temporary files).
    browse(f"--screenshot={tmp_path / 'console.png'}", "--window-size=1400,900")
    assert (tmp_path / "console.png").stat().st_size > 10_000


@pytest.mark.kstub(brokers=3, admin_port=0, config=BROKER_CONFIG)
def test_the_snapshot_shows_a_consumer_group_beside_a_classic_one_and_an_open_transaction(kstub_cluster):
    """A KIP-848 group (confluent-kafka, group.protocol=consumer) as the model holds it: type, state, group
    epoch, each member's epoch and partitions, its committed offsets and lag; a transaction while it runs."""
    from confluent_kafka import Producer

    kc = kstub_cluster
    url = kc.admin_url
    with settled_group(kc) as producer:
        producer.produce("flows", b"late", partition=2)
        producer.flush(30)

        snap = state(url)
        (group,) = [g for g in snap["groups"] if g["id"] == "modern"]
        assert [g["id"] for g in snap["groups"]] == ["modern"], "the offsets' keeper is not a group of its own"

        def model() -> tuple[int, int, dict[str, tuple[int, list[list[Any]]]]]:
            cgroup = kc.cluster.groups.consumer.groups["modern"]
            names = {t.topic_id: n for n, t in kc.cluster.topics.items()}
            held = {
                m.client_id: (m.member_epoch, sorted([names[t], p] for t, ps in m.owned().items() for p in ps))
                for m in cgroup.members.values()
            }
            return cgroup.group_epoch, cgroup.assignment_epoch, held

        epoch, assignment_epoch, held = kc.call(model)
        assert (group["type"], group["state"], group["generation"], group["assignment_epoch"]) == (
            "consumer",
            "Stable",
            epoch,
            assignment_epoch,
        )
        assert {m["client_id"]: (m["epoch"], m["partitions"]) for m in group["members"]} == held
        owned = sorted(tp for m in group["members"] for tp in m["partitions"])
        assert owned == [["flows", p] for p in range(4)], "each partition owned once"
        assert all(m["revoking"] == [] and m["state"] == "stable" for m in group["members"])
        assert [(o["partition"], o["committed"], o["lag"]) for o in group["offsets"]] == [
            (0, 2, 0),
            (1, 2, 0),
            (2, 2, 1),
            (3, 2, 0),
        ]
        assert group["lag"] == 1
        coordinator = kc.call(lambda: kc.cluster.groups.coordinator_for("modern").node_id)
        assert group["coordinator"] == coordinator
        assert [b["coordinates"] for b in snap["brokers"] if b["id"] == coordinator] == [["modern"]]

    # A transaction under way is shown with its partitions, and no longer once committed.
    txn = Producer({"bootstrap.servers": kc.bootstrap_servers, "transactional.id": "shown-txn"})
    txn.init_transactions(30)
    assert state(url)["transactions"] == []  # an id with no transaction begun is not under way
    txn.begin_transaction()
    txn.produce("flows", b"in a transaction", partition=1)
    txn.flush(30)
    (shown,) = state(url)["transactions"]
    pid = kc.call(lambda: kc.cluster.transactions.txns["shown-txn"].producer_id)
    assert (shown["id"], shown["state"], shown["producer_id"], shown["partitions"]) == (
        "shown-txn",
        "Ongoing",
        pid,
        [["flows", 1]],
    )
    txn.commit_transaction(30)
    # EndTxn is answered once PrepareCommit is written; the markers follow, then CompleteCommit: not under way
    wait_for(lambda: state(url)["transactions"] == [], 30, "the transaction completed")
    assert kc.call(lambda: kc.cluster.transactions.txns["shown-txn"].state.value) == "CompleteCommit"
