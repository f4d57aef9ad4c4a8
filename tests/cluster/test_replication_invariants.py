"""Replication's promises under random faults (fixed seeds, Trio's MockClock).

Random sequences of appends, controlled shutdowns, crashes, restarts, paused
replication, leadership moves and passing time run against a three-broker
cluster; after every step:

- a committed batch (once below a leader's high watermark) is never lost: it
  stays at its offset, byte for byte, in every ISR member's log (elections
  are clean);
- the leader is an ISR member, and its high watermark is within its log;
- a partition's leader epoch never goes back, and each change bumps it;
- with every broker back and healed, all replicas converge on the same log and
  the ISR is complete again.
"""

from __future__ import annotations

import random

import pytest
import trio

from kstub.cluster.model import ClusterState, Partition
from kstub.server import ClusterServer

from replication_harness import append, served, settle

BROKERS = (0, 1, 2)


def chunk_map(p: Partition, broker: int, below: int) -> dict[int, bytes]:
    log = p.logs[broker]
    return {c.base_offset: bytes(c.data) for c in log.read(log.log_start_offset) if c.last_offset < below}


def check(cluster: ClusterState, committed: dict[str, dict[int, bytes]], epochs: dict[str, int]) -> None:
    for p in cluster.iter_partitions():
        assert p.leader_epoch >= epochs.get(p.name, 0), "leader epochs never go back"
        epochs[p.name] = p.leader_epoch
        if p.leader < 0:
            assert p.isr, "the ISR is never empty"
            continue
        assert p.leader in p.isr
        assert p.log_start_offset <= p.high_watermark <= p.log_end_offset
        for r in p.isr:
            have = chunk_map(p, r, p.log_end_offset if r == p.leader else 1 << 62)
            for offset, data in committed[p.name].items():
                assert have.get(offset) == data, f"{p.name}: committed batch at {offset} lost on ISR member {r}"
        committed[p.name].update(chunk_map(p, p.leader, p.high_watermark))


async def run_scenario(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    async with served(3, min_insync_replicas="1") as (cluster, server):
        for i in range(2):
            cluster.create_topic(f"t{i}", 2, 3)
        committed: dict[str, dict[int, bytes]] = {p.name: {} for p in cluster.iter_partitions()}
        epochs: dict[str, int] = {}
        for _ in range(steps):
            await step(rng, cluster, server)
            await settle()
            check(cluster, committed, epochs)
        # Heal everything: every replica converges and the ISRs fill up.
        for b in BROKERS:
            if server.state(b) != "running":
                await cluster.control.start_broker(b)
            cluster.control.resume_replication(b)
        await trio.sleep(2)
        await settle()
        check(cluster, committed, epochs)
        for p in cluster.iter_partitions():
            assert p.leader >= 0 and p.isr == p.replicas, p
            logs = {r: chunk_map(p, r, 1 << 62) for r in p.replicas}
            assert logs[0] == logs[1] == logs[2]
            assert p.high_watermark == p.log_end_offset
        assert sum(len(c) for c in committed.values()) > 0, "the scenario committed something"


async def step(rng: random.Random, cluster: ClusterState, server: ClusterServer) -> None:
    running = [b for b in BROKERS if server.state(b) == "running"]
    down = [b for b in BROKERS if server.state(b) in ("stopped", "killed")]
    action = rng.choices(
        ["append", "stop", "kill", "start", "pause", "resume", "move", "sleep"],
        weights=[8, 1, 1, 2, 1, 2, 1, 3],
    )[0]
    if action == "append":
        p = rng.choice(list(cluster.iter_partitions()))
        if p.leader >= 0 and cluster.brokers[p.leader].running:
            append(p, rng.randint(1, 3))
    elif action == "stop" and len(running) > 1:
        await cluster.control.stop_broker(rng.choice(running))
    elif action == "kill" and len(running) > 1:
        await cluster.control.kill_broker(rng.choice(running))
    elif action == "start" and down:
        await cluster.control.start_broker(rng.choice(down))
    elif action == "pause":
        cluster.control.pause_replication(rng.choice(BROKERS))
    elif action == "resume":
        cluster.control.resume_replication(rng.choice(BROKERS))
    elif action == "move":
        p = rng.choice(list(cluster.iter_partitions()))
        candidates = [r for r in p.isr if r != p.leader and cluster.brokers[r].alive]
        if p.leader >= 0 and candidates:
            cluster.controller.move_leader(p, rng.choice(candidates))
    elif action == "sleep":
        await trio.sleep(rng.choice([0.1, 0.6, 1.2, 2.5]))


@pytest.mark.parametrize("seed", range(12))
async def test_committed_data_survives_random_faults(autojump_clock, seed):
    await run_scenario(seed, steps=120)
