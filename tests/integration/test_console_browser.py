"""The console in a real browser: Playwright driving Debian's Chromium (headless) against a live cluster.

Three brokers, a topic with three partitions replicated three times, a
two-member kafka-python group: the page must draw what the cluster holds
(three brokers, each partition's leader where the cluster says, the group's
two members and its lag), its kill button must kill the broker (Metadata
then leaves it out, the page shows it down, the new leaders and the shrunken
ISRs), a produce must show up (high watermarks, the lag), and the record
browser must show the records. A second test draws a classic group beside a
consumer group of the new protocol (KIP-848) and a transaction under way.
Screenshots of each step are saved as test artifacts in test-results/console/
at the top of the checkout, or in the folder $KSTUB_ARTIFACTS names (their
paths are printed).

Needs the ``playwright`` Python package and a Chromium (``chromium`` on the
PATH, Debian's package): skipped when absent, failed under CI.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer
from modern_group import BROKER_CONFIG, ModernMember, stop

from multibroker import create_topic, wait_until
from support.external import require_programs, unavailable

#: how the page marks a replica behind its leader (a minus sign, U+2212)
BEHIND = "\u2212"
#: how long the page may take to show a change (a deadline for the assertion, not a measurement)
SHOWN = 10_000


def _chromium() -> str:
    require_programs("chromium")
    path = shutil.which("chromium")
    assert path is not None
    return path


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install playwright)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


class Member(threading.Thread):
    """A consumer polling in its own thread (heartbeats with it), committing what it read while asked to."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id="watchers",
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=30000,
            heartbeat_interval_ms=300,
        )
        # The topic's metadata before joining: a group leader that assigns without it (kafka-python's range
        # assignor: "No partition metadata") leaves every partition unassigned, and need not rejoin.
        assert self.consumer.partitions_for_topic("orders") == {0, 1, 2}
        self.consumer.subscribe(["orders"])
        self.commit = True
        self.running = True
        self.read = 0

    def run(self) -> None:
        uncommitted = False
        while self.running:
            got = self.consumer.poll(timeout_ms=100)
            self.read += sum(len(records) for records in got.values())
            uncommitted = uncommitted or bool(got)
            if self.commit and uncommitted:
                try:
                    self.consumer.commit()
                    uncommitted = False
                except Exception:  # a rebalance in progress: tried again after the next poll
                    pass
        self.consumer.close()


#: where each step's screenshot goes unless $KSTUB_ARTIFACTS names a folder (ignored by git; CI uploads either)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results" / "console"


def shot(page: Any, tmp_path: Path, name: str) -> None:
    """A screenshot of the whole page, as a test artifact: test-results/console/ (or $KSTUB_ARTIFACTS)."""
    folder = Path(os.environ.get("KSTUB_ARTIFACTS") or ARTIFACTS)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only checkout: with the test's temporary files
        folder = tmp_path
    path = folder / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


@pytest.mark.kstub(brokers=3, admin_port=0, config={"broker.session.timeout.ms": "1500"})
def test_the_console_draws_the_cluster_and_drives_it(kstub_cluster, page, tmp_path):
    from playwright.sync_api import expect

    kc = kstub_cluster
    create_topic(kc, "orders", 3, 3)
    producer = KafkaProducer(bootstrap_servers=kc.bootstrap_servers, acks="all", retries=10)
    for i in range(30):
        producer.send("orders", key=b"k%d" % i, value=b"order %d" % i, partition=i % 3)
    producer.flush()
    members = [Member(kc.bootstrap_servers, f"member-{i}") for i in (1, 2)]
    for m in members:
        m.start()
    try:

        def settled() -> bool:
            group = kc.cluster.groups.groups.get("watchers")
            return (
                group is not None
                and group.state.value == "Stable"
                and len(group.members) == 2
                and sum(o.offset for o in group.offsets.values()) == 30
            )

        wait_until(kc, settled, 60, "a stable two-member group that committed all 30 records")

        # 1. What is drawn is what the cluster holds.
        page.goto(kc.admin_url + "/")
        expect(page.locator("#status")).to_contain_text("live", timeout=SHOWN)
        expect(page.locator("div.broker")).to_have_count(3)
        for index in range(3):
            leader = kc.call(lambda i=index: kc.cluster.partition("orders", i).leader)
            drawn = page.locator(f'div.broker[data-broker="{leader}"] g[data-replica="orders-{index}"]')
            expect(drawn).to_have_attribute("data-role", "leader")
            expect(page.locator(f'g[data-replica="orders-{index}"][data-role="follower"]')).to_have_count(2)
            expect(page.locator(f'tr[data-partition="orders-{index}"]')).to_have_attribute("data-leader", str(leader))
        group = page.locator('div.group[data-group="watchers"]')
        expect(group).to_have_attribute("data-state", "Stable", timeout=SHOWN)
        expect(group.locator("tr[data-member]")).to_have_count(2)
        expect(group.locator('tr[data-member="member-1"]')).to_contain_text("orders-")
        expect(group).to_have_attribute("data-lag", "0", timeout=SHOWN)
        shot(page, tmp_path, "1-cluster")

        # 2. The kill button kills the broker: down on the page, gone from Metadata, leaders moved, ISRs shrunk.
        victim = kc.call(lambda: kc.cluster.partition("orders", 0).leader)
        page.locator(f'div.broker[data-broker="{victim}"] button[data-action="kill"]').click()
        card = page.locator(f'div.broker[data-broker="{victim}"]')
        expect(card).to_have_attribute("data-state", "killed", timeout=SHOWN)
        for index in range(3):
            row = page.locator(f'tr[data-partition="orders-{index}"]')
            expect(row).not_to_have_attribute("data-leader", str(victim), timeout=SHOWN)
            expect(row).not_to_have_attribute("data-isr", re.compile(rf"(^|,){victim}(,|$)"), timeout=SHOWN)
            isr = row.get_attribute("data-isr")
            assert isr is not None and str(victim) not in isr.split(",") and len(isr.split(",")) == 2
        # Metadata (librdkafka's, as any client asks) no longer lists it
        metadata = AdminClient({"bootstrap.servers": kc.bootstrap_servers}).list_topics(timeout=30)
        brokers = set(metadata.brokers)
        assert brokers == {0, 1, 2} - {victim}
        # the dead broker's replicas are drawn out of sync (grey: it is down)
        expect(card.locator('g[data-role="out-of-sync"]')).to_have_count(3, timeout=SHOWN)
        expect(page.locator("#events")).to_contain_text(f"kill-broker broker={victim}")
        expect(page.locator("#events")).to_contain_text(f"(was {victim})")
        shot(page, tmp_path, "2-killed")

        # 3. A produce shows up: the high watermark, and the group's lag (the members stop committing).
        for m in members:
            m.commit = False
        hw_before = int(page.locator('tr[data-partition="orders-1"] td').nth(6).inner_text())
        for i in range(5):
            producer.send("orders", key=b"late", value=b"late order %d" % i, partition=1)
        producer.flush()
        expect(page.locator('tr[data-partition="orders-1"] td').nth(6)).to_have_text(str(hw_before + 5), timeout=SHOWN)
        expect(group).to_have_attribute("data-lag", "5", timeout=SHOWN)
        expect(group.locator('tr[data-offset="orders-1"] td.lag')).to_have_text("5")
        # the dead broker's replica is 5 behind its leader now
        expect(page.locator('tr[data-partition="orders-1"] td').nth(7)).to_have_text(f"{victim}: {BEHIND}5")
        shot(page, tmp_path, "3-lag")

        # 4. The records of a partition, from an offset.
        page.select_option("#rec-topic", "orders")
        page.fill("#rec-partition", "1")
        page.fill("#rec-offset", str(hw_before))
        page.click("#rec-read")
        records = page.locator('table[data-records="orders-1"] tr[data-record]')
        expect(records).to_have_count(5, timeout=SHOWN)
        expect(records.first).to_contain_text("late order 0")
        expect(records.first).to_contain_text(str(hw_before))
        shot(page, tmp_path, "4-records")

        # 5. A fault from the page: the control plane has it.
        page.select_option("#fault-type", "delay")
        page.fill("#fault-api", "CreateTopics")
        page.fill("#fault-ms", "50")
        page.fill("#fault-count", "3")
        page.click("#fault-add")
        expect(page.locator("tr[data-fault]")).to_have_count(1, timeout=SHOWN)
        faults = kc.call(kc.cluster.control.describe_faults)
        assert [(f["type"], f["api"], f["ms"]) for f in faults] == [("delay", "CreateTopics", 50)]

        # 6. A network partition from the page, and its end.
        other = next(b for b in range(3) if b != victim)
        card = page.locator(f'div.broker[data-broker="{other}"]')
        card.locator('button[data-action="isolate"]').click()
        expect(card).to_contain_text("isolated", timeout=SHOWN)
        assert kc.call(lambda: kc.cluster.brokers[other].replication.isolated)
        card.locator('button[data-action="heal"]').click()
        expect(card).not_to_contain_text("isolated", timeout=SHOWN)
        assert not kc.call(lambda: kc.cluster.brokers[other].replication.isolated)

        # 7. Replication lag as it grows: a follower's replication paused from the page, records produced
        # (acks=1: the leader answers alone), the follower drawn behind; resumed, it catches up.
        leader0 = kc.call(lambda: kc.cluster.partition("orders", 0).leader)
        follower = next(b for b in range(3) if b not in (victim, leader0))
        card = page.locator(f'div.broker[data-broker="{follower}"]')
        card.locator('button[data-action="pause-replication"]').click()
        expect(card).to_contain_text("replication paused", timeout=SHOWN)
        fast = KafkaProducer(bootstrap_servers=kc.bootstrap_servers, acks=1)
        for i in range(4):
            fast.send("orders", value=b"unreplicated %d" % i, partition=0)
        fast.flush()
        fast.close()
        replica = card.locator('g[data-replica="orders-0"]')
        expect(replica).to_contain_text(f"{BEHIND}4", timeout=SHOWN)
        shot(page, tmp_path, "7-replication-lag")
        card.locator('button[data-action="resume-replication"]').click()
        expect(card).not_to_contain_text("replication paused", timeout=SHOWN)
        expect(replica).not_to_contain_text(BEHIND, timeout=SHOWN)

        # 8. A replication delay typed on the page, then the leader of a partition moved from the page.
        card.locator(f'input[data-delay="{follower}"]').fill("40")
        card.locator('button[data-action="replication-delay"]').click()
        expect(card).to_contain_text("replication +40 ms", timeout=SHOWN)
        assert kc.call(lambda: kc.cluster.brokers[follower].replication.delay_ms) == 40
        wait_until(kc, lambda: len(kc.cluster.partition("orders", 2).isr) == 2, 30, "both live brokers in the ISR")
        leader2, isr2 = kc.call(
            lambda: (kc.cluster.partition("orders", 2).leader, kc.cluster.partition("orders", 2).isr)
        )
        target = next(b for b in isr2 if b != leader2)
        page.select_option('select[data-move="orders-2"]', str(target))
        page.locator('tr[data-partition="orders-2"] button').click()
        expect(page.locator('tr[data-partition="orders-2"]')).to_have_attribute(
            "data-leader", str(target), timeout=SHOWN
        )
        assert kc.call(lambda: kc.cluster.partition("orders", 2).leader) == target
        expect(page.locator("#events")).to_contain_text(f"orders-2: leader {target} (was {leader2})")
        shot(page, tmp_path, "8-leader-moved")
    finally:
        for m in members:
            m.running = False
        for m in members:
            m.join(30)
        producer.close()


def test_with_a_token_the_page_streams_with_it(page):
    from playwright.sync_api import expect

    from kstub import Cluster

    with Cluster(admin_port=0, admin_token="t0ken") as cluster:
        page.goto(cluster.admin_url + "/?token=t0ken")
        expect(page.locator("#status")).to_contain_text("live", timeout=SHOWN)
        expect(page.locator('div.broker[data-broker="0"]')).to_have_attribute("data-state", "running")
        page.goto(cluster.admin_url + "/?token=wrong")
        expect(page.locator("body")).to_contain_text("needs its token")


@pytest.mark.kstub(admin_port=0, config=BROKER_CONFIG)
def test_the_console_draws_consumer_groups_beside_classic_ones_and_transactions(kstub_cluster, page, tmp_path):
    """A classic group (kafka-python) and a consumer group of the new protocol (KIP-848: confluent-kafka with
    group.protocol=consumer) side by side, each as the model holds it; a member leaving hands its partitions
    over (a new group epoch, drawn); a transaction under way is listed until it commits."""
    from confluent_kafka import Producer
    from playwright.sync_api import expect

    kc = kstub_cluster
    create_topic(kc, "flows", 4, 1)
    producer = Producer({"bootstrap.servers": kc.bootstrap_servers, "acks": "all"})
    for i in range(8):
        producer.produce("flows", b"flow %d" % i, partition=i % 4)
    producer.flush(30)
    classic = KafkaConsumer(
        "flows",
        bootstrap_servers=kc.bootstrap_servers,
        group_id="old-school",
        client_id="old-1",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    modern = [ModernMember(kc.bootstrap_servers, "modern", "flows", f"modern-{i}") for i in (1, 2)]
    for m in modern:
        m.start()
    try:
        read = 0
        for _ in range(60):
            read += sum(len(r) for r in classic.poll(timeout_ms=200).values())
            if read >= 8:
                break
        classic.commit()

        def held() -> dict[str, tuple[int, str]] | None:
            cgroup = kc.cluster.groups.consumer.groups.get("modern")
            if cgroup is None or cgroup.state.value != "Stable" or len(cgroup.members) != len(modern):
                return None
            names = {t.topic_id: n for n, t in kc.cluster.topics.items()}
            return {
                m.client_id: (
                    m.member_epoch,
                    ",".join(f"{names[t]}-{p}" for t, ps in sorted(m.owned().items()) for p in sorted(ps)),
                )
                for m in cgroup.members.values()
            }

        wait_until(kc, held, 60, "a stable two-member consumer group")
        page.goto(kc.admin_url + "/")
        expect(page.locator("#status")).to_contain_text("live", timeout=SHOWN)
        old = page.locator('div.group[data-group="old-school"]')
        expect(old).to_have_attribute("data-type", "classic", timeout=SHOWN)
        expect(old).to_contain_text("classic")
        expect(old.locator('tr[data-member="old-1"]')).to_contain_text("flows-0, flows-1, flows-2, flows-3")
        new = page.locator('div.group[data-group="modern"]')
        expect(new).to_have_attribute("data-type", "consumer", timeout=SHOWN)
        expect(new).to_have_attribute("data-state", "Stable")
        epoch = kc.call(lambda: kc.cluster.groups.consumer.groups["modern"].group_epoch)
        expect(new).to_have_attribute("data-epoch", str(epoch))
        expect(new).to_contain_text(f"group epoch {epoch}")
        for client, (member_epoch, partitions) in kc.call(held).items():
            row = new.locator(f'tr[data-member="{client}"]')
            expect(row).to_have_attribute("data-epoch", str(member_epoch))
            expect(row).to_have_attribute("data-partitions", partitions)

        # A transaction under way, then committed.
        txn = Producer({"bootstrap.servers": kc.bootstrap_servers, "transactional.id": "drawn-txn"})
        txn.init_transactions(30)
        txn.begin_transaction()
        txn.produce("flows", b"in a transaction", partition=2)
        txn.flush(30)
        drawn = page.locator('tr[data-txn="drawn-txn"]')
        expect(drawn).to_have_attribute("data-state", "Ongoing", timeout=SHOWN)
        expect(drawn).to_contain_text("flows-2")
        shot(page, tmp_path, "5-groups-and-transaction")
        txn.commit_transaction(30)
        expect(drawn).to_have_count(0, timeout=SHOWN)

        # A member leaves: the other one takes its partitions over, in a new group epoch.
        leaving = modern.pop()
        stop([leaving])
        wait_until(kc, held, 60, "the remaining member holding every partition")
        (member_epoch, partitions) = kc.call(held)["modern-1"]
        assert partitions == "flows-0,flows-1,flows-2,flows-3"
        expect(new.locator("tr[data-member]")).to_have_count(1, timeout=SHOWN)
        remaining = new.locator('tr[data-member="modern-1"]')
        expect(remaining).to_have_attribute("data-partitions", partitions, timeout=SHOWN)
        expect(remaining).to_have_attribute("data-epoch", str(member_epoch))
        expect(page.locator("#events")).to_contain_text("consumer group modern: Stable, epoch")
        shot(page, tmp_path, "6-handed-over")
    finally:
        stop(modern)
        classic.close()
