"""The controller: broker membership, leader elections, and the cluster's hooks.

One broker is the controller (reported in Metadata): the lowest-numbered live
broker, re-chosen whenever it goes away. It reacts to brokers leaving and
returning as Kafka's controller does:

- A broker leaves by a controlled shutdown (`stop`) or, after a crash
  (`kill`), when its session expires (broker.session.timeout.ms). It is
  removed from every ISR (never leaving one empty), and each partition it led
  gets the first live ISR member in replica order as leader, in a new leader
  epoch. With no ISR member left the partition has no leader (-1) and keeps
  its last ISR member, unless unclean.leader.election.enable lets an
  out-of-sync replica take over (losing what it lacks).
- A broker that returns reconciles its logs with the leaders (replication.py)
  and is let back into each ISR by the leader once caught up. It becomes
  leader at once only of partitions left without one whose ISR it is in (or
  any, under unclean election). Preferred leaders (each partition's first
  replica) come back by `elect_preferred` or auto.leader.rebalance.enable.
- Group coordinators are the leaders of the __consumer_offsets partitions
  (kstub/cluster/coordinator.py): they follow the same rules, through the
  broker_stopped / broker_started hooks and the preferred elections here.

State changes are synchronous and run on the Trio thread; the hooks let other
parts of kstub (the group coordinator) follow them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kstub.protocol import ErrorCode

if TYPE_CHECKING:
    from .model import ClusterState, Partition

log = logging.getLogger("kstub.controller")


class ClusterHooks:
    """Callbacks on cluster changes, called synchronously on the Trio thread after the change.

    - ``broker_started(broker_id)``: a broker is back (after its partitions' elections)
    - ``broker_stopped(broker_id)``: a broker left (after its leaderships moved)
    - ``leader_changed(partition, old_leader, new_leader)``: a new leader epoch (new_leader -1: none)
    - ``controller_changed(old_id, new_id)``

    A callback that raises is logged and does not stop the others.
    """

    def __init__(self) -> None:
        self.broker_started: list[Callable[[int], Any]] = []
        self.broker_stopped: list[Callable[[int], Any]] = []
        self.leader_changed: list[Callable[[Partition, int, int], Any]] = []
        self.controller_changed: list[Callable[[int, int], Any]] = []

    def fire(self, name: str, *args: Any) -> None:
        for callback in list(getattr(self, name)):
            try:
                callback(*args)
            except Exception:
                log.exception("hook %s %r failed", name, callback)


class ElectionError(Exception):
    """A leadership move the controller refuses, with Kafka's error code for it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Controller:
    def __init__(self, cluster: ClusterState) -> None:
        self.cluster = cluster

    # --- helpers ------------------------------------------------------------

    def _alive(self, broker_id: int) -> bool:
        broker = self.cluster.brokers.get(broker_id)
        return broker is not None and broker.alive

    def _partitions_of(self, broker_id: int) -> Iterable[Partition]:
        return [p for p in self.cluster.iter_partitions() if broker_id in p.replicas]

    def set_leader(self, p: Partition, leader: int, isr: list[int], why: str) -> None:
        """Give `p` a new leader epoch with `leader` (-1: none) and `isr`; wake everyone concerned."""
        old = p.leader
        p.become_leader(leader, isr, self.cluster.now_ms())
        log.info("%s: leader %d -> %d, epoch %d, ISR %s (%s)", p.name, old, leader, p.leader_epoch, p.isr, why)
        brokers = self.cluster.brokers
        for r in p.replicas:
            brokers[r].replication.wake(p)
        if leader >= 0:
            brokers[leader].replication.wake_isr_check()
        self.cluster.hooks.fire("leader_changed", p, old, leader)

    def elect_controller(self) -> None:
        """Keep the controller if it is alive, else hand the role to the lowest live broker (-1: none)."""
        current = self.cluster.controller_id
        if self._alive(current):
            return
        live = self.cluster.live_brokers()
        new = live[0].node_id if live else -1
        if new != current:
            self.cluster.controller_id = new
            log.info("controller: broker %d -> %d", current, new)
            self.cluster.hooks.fire("controller_changed", current, new)

    # --- brokers leaving and returning ------------------------------------------

    def broker_left(self, broker_id: int, why: str) -> None:
        """Fence `broker_id`: out of every ISR, new leaders for what it led."""
        broker = self.cluster.brokers[broker_id]
        if not broker.alive:
            return
        broker.alive = False
        log.info("controller: broker %d leaves the cluster (%s)", broker_id, why)
        for p in self._partitions_of(broker_id):
            if p.leader == broker_id:
                self._elect_without(p, broker_id, why)
            elif broker_id in p.isr and len(p.isr) > 1:
                p.shrink_isr(broker_id)
                log.info("%s: broker %d removed from the ISR, now %s", p.name, broker_id, p.isr)
        self.elect_controller()
        self.cluster.hooks.fire("broker_stopped", broker_id)

    def broker_returned(self, broker_id: int) -> None:
        """`broker_id` is back: it must reconcile every log, and may lead leaderless partitions."""
        broker = self.cluster.brokers[broker_id]
        broker.alive = True
        log.info("controller: broker %d joins the cluster", broker_id)
        for p in self._partitions_of(broker_id):
            if p.leader != broker_id:
                p.states[broker_id].synced_epoch = -1
            if p.leader < 0:
                if broker_id in p.isr:
                    self.set_leader(p, broker_id, p.isr, f"ISR member {broker_id} returned")
                elif self._unclean(p):
                    log.warning("%s: unclean election of out-of-sync broker %d: data may be lost", p.name, broker_id)
                    self.set_leader(p, broker_id, [broker_id], "unclean election")
        broker.replication.wake(None)
        self.elect_controller()
        self.cluster.hooks.fire("broker_started", broker_id)

    def _unclean(self, p: Partition) -> bool:
        return p.settings.get_bool("unclean.leader.election.enable")

    def _elect_without(self, p: Partition, gone: int, why: str) -> None:
        remaining = [r for r in p.isr if r != gone]
        candidates = [r for r in p.replicas if r in remaining and self._alive(r)]
        if candidates:
            self.set_leader(p, candidates[0], remaining, f"leader {gone} left: {why}")
            return
        if self._unclean(p):
            others = [r for r in p.replicas if r != gone and self._alive(r)]
            if others:
                log.warning("%s: unclean election of out-of-sync broker %d: data may be lost", p.name, others[0])
                self.set_leader(p, others[0], [others[0]], f"unclean election after {gone} left")
                return
        # No one to take over: no leader, and the ISR keeps its last member (Kafka never empties it).
        self.set_leader(p, -1, remaining or [gone], f"leader {gone} left and no ISR member is available: {why}")

    # --- ISR and leadership moves -----------------------------------------------

    def shrink_isr(self, p: Partition, replica: int, why: str) -> None:
        p.shrink_isr(replica)
        log.info("%s: broker %d removed from the ISR (%s), now %s", p.name, replica, why, p.isr)

    def move_leader(self, p: Partition, target: int) -> None:
        """Make `target` the leader of `p` (it must be a live ISR member), in a new epoch."""
        if target not in p.replicas:
            raise ElectionError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"broker {target} is not a replica of {p.name}")
        if not self._alive(target):
            raise ElectionError(ErrorCode.BROKER_NOT_AVAILABLE, f"broker {target} is not available")
        if target not in p.isr:
            raise ElectionError(
                ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, f"broker {target} is not in the ISR {p.isr} of {p.name}"
            )
        if p.leader == target:
            raise ElectionError(ErrorCode.ELECTION_NOT_NEEDED, f"broker {target} already leads {p.name}")
        self.set_leader(p, target, p.isr, "leadership moved")

    def elect_preferred(self, partitions: Iterable[Partition] | None = None) -> list[Partition]:
        """Preferred replica election: each partition back to its first replica where it is a live ISR member.

        An election of every partition (`partitions` None) includes the offsets
        partitions, which moves group coordinators back (not in the list returned)."""
        if partitions is None:
            self.cluster.groups.elect_preferred()
            self.cluster.transactions.elect_preferred()
        moved = []
        for p in list(self.cluster.iter_partitions()) if partitions is None else partitions:
            preferred = p.replicas[0]
            if p.leader != preferred and preferred in p.isr and self._alive(preferred):
                self.set_leader(p, preferred, p.isr, "preferred leader election")
                moved.append(p)
        return moved

    def rebalance_if_imbalanced(self) -> list[Partition]:
        """Kafka's auto leader rebalance: for each broker whose share of preferred partitions it does
        not lead exceeds leader.imbalance.per.broker.percentage, elect it preferred leader where possible."""
        threshold = self.cluster.config["leader.imbalance.per.broker.percentage"] / 100
        by_preferred: dict[int, list[Partition]] = {}
        for p in self.cluster.iter_partitions():
            by_preferred.setdefault(p.replicas[0], []).append(p)
        moved: list[Partition] = []
        for partitions in by_preferred.values():
            not_led = [p for p in partitions if p.leader != p.replicas[0]]
            if not_led and len(not_led) / len(partitions) > threshold:
                moved += self.elect_preferred(not_led)
        self.cluster.groups.rebalance_if_imbalanced(threshold)
        self.cluster.transactions.rebalance_if_imbalanced(threshold)
        return moved
