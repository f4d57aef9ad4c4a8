"""Replication inside one process, step by step: fetchers, ISR, high watermark, epochs, controller.

The whole server runs (ClusterServer: listeners, replica fetchers, ISR
expiration, controller timers) under Trio's MockClock with autojump, and the
cluster's clock is Trio's, so "replica.lag.time.max.ms later" is exact and
costs no real time. Data is appended through the model, as the Produce
handler does; the wire is tested in tests/integration.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from kstub.protocol import ErrorCode

from replication_harness import LAG_MS, append, leos, served, settle, topic

# --- fetchers and the high watermark ----------------------------------------------------


async def test_followers_copy_the_leader_and_the_high_watermark_follows(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        assert (p.leader, p.isr, p.leader_epoch) == (0, [0, 1, 2], 0)
        append(p, 3)
        # Nothing is copied until the followers' fetchers run: replication takes time.
        assert leos(p) == {0: 3, 1: 0, 2: 0} and p.high_watermark == 0
        await settle()
        assert leos(p) == {0: 3, 1: 3, 2: 3} and p.high_watermark == 3
        assert p.states[1].hw == p.states[2].hw == 3, "followers learn the high watermark"
        # The followers hold the leader's batches, bytes and epochs.
        assert [bytes(c.data) for c in p.logs[2].read(0)] == [bytes(c.data) for c in p.leader_log.read(0)]


async def test_single_replica_commits_on_append(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster, rf=1)
        append(p, 2)
        assert p.high_watermark == 2, "RF=1: nothing to wait for"


async def test_replication_delay_slows_each_round(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        cluster.control.set_replication_delay(1, 100)
        append(p)
        await trio.sleep(0.09)
        assert leos(p) == {0: 1, 1: 0, 2: 1} and p.high_watermark == 0
        await trio.sleep(0.02)
        assert leos(p)[1] == 1 and p.high_watermark == 1


async def test_clearing_a_replication_delay_cuts_short_the_round_waiting_it_out(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        cluster.control.set_replication_delay(1, 3_600_000)
        cluster.control.set_replication_delay(2, 3_600_000)
        append(p)
        await trio.sleep(1)
        assert leos(p) == {0: 1, 1: 0, 2: 0}, "both followers are waiting out an hour"
        start = trio.current_time()
        cluster.control.set_replication_delay(1, 0)
        await trio.testing.wait_all_tasks_blocked()
        assert leos(p)[1] == 1 and trio.current_time() == start, "copied at once, not an hour later"
        assert leos(p)[2] == 0
        cluster.control.clear()
        await trio.testing.wait_all_tasks_blocked()
        assert leos(p) == {0: 1, 1: 1, 2: 1} and trio.current_time() == start
        assert p.high_watermark == 1


async def test_shortening_a_replication_delay_re_times_the_waiting_round(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        cluster.control.set_replication_delay(1, 3_600_000)
        append(p)
        start = trio.current_time()
        await trio.sleep(1)
        cluster.control.set_replication_delay(1, 5_000)
        await trio.sleep(3.9)
        assert leos(p)[1] == 0, "the round started 4.9 s ago waits the new 5 s"
        await trio.sleep(0.2)
        assert leos(p)[1] == 1 and trio.current_time() - start < 6


async def test_fetch_max_bytes_splits_catching_up_into_rounds(autojump_clock):
    async with served(**{"replica_fetch_max_bytes": 1}) as (cluster, _):
        p = topic(cluster)
        for _ in range(5):
            append(p)
        await settle()
        assert leos(p) == {0: 5, 1: 5, 2: 5} and p.high_watermark == 5


# --- the ISR ---------------------------------------------------------------------------


async def test_a_paused_follower_holds_the_high_watermark_then_leaves_the_isr(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        cluster.control.pause_replication(2)
        append(p, 2)
        await settle()
        assert leos(p) == {0: 2, 1: 2, 2: 0} and p.high_watermark == 0, "the ISR member without the data holds it"
        await trio.sleep(LAG_MS / 1000 - 0.01)
        assert 2 in p.isr and p.high_watermark == 0, "still in sync until replica.lag.time.max.ms passed"
        await trio.sleep(0.02)
        assert p.isr == [0, 1] and p.high_watermark == 2
        # Back: it catches up and rejoins.
        cluster.control.resume_replication(2)
        await settle()
        assert p.isr == [0, 1, 2] and leos(p)[2] == 2


async def test_an_idle_caught_up_follower_stays_in_sync(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        append(p)
        await settle()
        cluster.control.pause_replication(2)
        await trio.sleep(10 * LAG_MS / 1000)
        assert p.isr == [0, 1, 2], "nothing to copy: it is not behind"
        append(p)
        await trio.sleep(LAG_MS / 1000 + 0.01)
        assert p.isr == [0, 1], "behind since the append, for longer than the lag limit"


async def test_an_isolated_leader_shrinks_its_isr_to_itself(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster, min_insync_replicas="2")
        cluster.control.isolate(0)
        end = append(p)
        await settle()
        assert leos(p) == {0: 1, 1: 0, 2: 0}
        assert p.commit_status(end, 0, 0) is None, "acks=all waits"
        await trio.sleep(LAG_MS / 1000 + 0.01)
        assert p.isr == [0] and p.high_watermark == 1
        assert p.commit_status(end, 0, 0) == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        cluster.control.heal(0)
        await settle()
        assert p.isr == [0, 1, 2]
        assert p.commit_status(end, 0, 0) == ErrorCode.NONE


# --- brokers leaving and returning ------------------------------------------------------


async def test_stop_moves_leadership_at_once_and_start_rejoins(autojump_clock):
    async with served() as (cluster, server):
        p = topic(cluster)
        append(p, 2)
        await settle()
        await cluster.control.stop_broker(0)
        assert (p.leader, p.leader_epoch, p.isr) == (1, 1, [1, 2])
        assert not cluster.brokers[0].alive and cluster.controller_id == 1
        assert server.state(0) == "stopped"
        assert p.leader_log.epochs == [(0, 0), (1, 2)], "the new leader recorded where its epoch starts"
        append(p)
        await settle()
        assert p.high_watermark == 3 and leos(p) == {0: 2, 1: 3, 2: 3}
        stamped = p.leader_log.read(2)[0]
        assert int.from_bytes(stamped.data[12:16], "big") == 1, "batches carry the new leader epoch"
        await cluster.control.start_broker(0)
        await settle()
        assert (p.leader, p.leader_epoch, p.isr) == (1, 1, [0, 1, 2]) and leos(p)[0] == 3
        assert cluster.brokers[0].alive and cluster.controller_id == 1, "the controller role does not move back"


async def test_kill_is_noticed_when_the_session_expires(autojump_clock):
    async with served() as (cluster, server):
        p = topic(cluster)
        await cluster.control.kill_broker(0)
        assert server.state(0) == "killed" and not cluster.brokers[0].running
        assert (p.leader, p.isr) == (0, [0, 1, 2]) and cluster.brokers[0].alive, "the controller does not know yet"
        await trio.sleep(0.49)
        assert p.leader == 0
        await trio.sleep(0.02)
        assert (p.leader, p.leader_epoch, p.isr) == (1, 1, [1, 2]) and not cluster.brokers[0].alive


async def test_a_killed_broker_restarted_before_its_session_expired_is_fenced_first(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        await cluster.control.kill_broker(0)
        await cluster.control.start_broker(0)
        await settle()
        assert (p.leader, p.leader_epoch) == (1, 1), "the old incarnation lost its leadership"
        assert p.isr == [0, 1, 2]
        await trio.sleep(1)
        assert p.leader_epoch == 1, "no second failover when the old session timer would have fired"


async def test_no_isr_member_left_means_no_leader_until_one_returns(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster)
        for follower in (1, 2):
            cluster.control.pause_replication(follower)
        append(p)
        await trio.sleep(LAG_MS / 1000 + 0.01)
        assert p.isr == [0]
        await cluster.control.stop_broker(0)
        assert (p.leader, p.leader_epoch, p.isr) == (-1, 1, [0]), "unclean election is off: no leader"
        cluster.control.resume_replication(1)
        await settle()
        assert p.leader == -1
        await cluster.control.start_broker(0)
        await settle()
        assert (p.leader, p.leader_epoch) == (0, 2), "the last ISR member leads again, with its data"
        assert p.high_watermark == 1
        assert p.isr == [0, 1] and leos(p) == {0: 1, 1: 1, 2: 0}, "follower 1 caught up from it; 2 is paused"


async def test_unclean_election_takes_an_out_of_sync_replica_and_loses_data(autojump_clock):
    async with served() as (cluster, _):
        p = topic(cluster, unclean_leader_election_enable="true")
        for follower in (1, 2):
            cluster.control.pause_replication(follower)
        append(p, 4)
        await trio.sleep(LAG_MS / 1000 + 0.01)
        assert p.isr == [0] and p.high_watermark == 4
        await cluster.control.stop_broker(0)
        assert (p.leader, p.leader_epoch, p.isr) == (1, 1, [1])
        assert p.high_watermark == 0, "committed data is gone"
        cluster.control.resume_replication(1)
        cluster.control.resume_replication(2)
        await cluster.control.start_broker(0)
        await settle()
        assert leos(p) == {0: 0, 1: 0, 2: 0} and p.isr == [0, 1, 2]


async def test_the_controller_role_moves_and_hooks_fire(autojump_clock):
    async with served() as (cluster, _):
        events: list[tuple[Any, ...]] = []
        hooks = cluster.hooks
        hooks.broker_stopped.append(lambda b: events.append(("stopped", b)))
        hooks.broker_started.append(lambda b: events.append(("started", b)))
        hooks.leader_changed.append(lambda part, old, new: events.append(("leader", part.name, old, new)))
        hooks.controller_changed.append(lambda old, new: events.append(("controller", old, new)))
        hooks.leader_changed.append(lambda *_: 1 / 0)  # a failing hook does not stop the others
        topic(cluster)
        assert cluster.controller_id == 0
        await cluster.control.stop_broker(0)
        assert events == [("leader", "t-0", 0, 1), ("controller", 0, 1), ("stopped", 0)]
        events.clear()
        await cluster.control.stop_broker(1)
        await cluster.control.stop_broker(2)
        assert cluster.controller_id == -1
        assert events[-2:] == [("controller", 2, -1), ("stopped", 2)]
        events.clear()
        await cluster.control.start_broker(2)
        assert cluster.controller_id == 2
        assert events == [("leader", "t-0", -1, 2), ("controller", -1, 2), ("started", 2)]


async def test_leadership_moves_and_preferred_leaders(autojump_clock):
    async with served(**{"auto_leader_rebalance_enable": "false"}) as (cluster, _):
        p = topic(cluster)
        append(p)
        await settle()
        cluster.control.move_leader("t", 0, 2)
        assert (p.leader, p.leader_epoch) == (2, 1)
        for bad, code in ((2, "ELECTION_NOT_NEEDED"), (7, "INVALID_REPLICA_ASSIGNMENT")):
            try:
                cluster.control.move_leader("t", 0, bad)
            except Exception as exc:
                assert code in str(exc)
            else:
                raise AssertionError("refused")
        assert cluster.control.elect_preferred_leaders() == ["t-0"]
        assert (p.leader, p.leader_epoch) == (0, 2)
        assert cluster.control.elect_preferred_leaders() == []


async def test_auto_leader_rebalance_restores_preferred_leaders(autojump_clock):
    async with served(**{"leader_imbalance_check_interval_seconds": "5"}) as (cluster, _):
        p = topic(cluster)
        await cluster.control.stop_broker(0)
        await cluster.control.start_broker(0)
        await settle()
        assert p.leader == 1
        await trio.sleep(5.01)
        assert (p.leader, p.leader_epoch) == (0, 2)
