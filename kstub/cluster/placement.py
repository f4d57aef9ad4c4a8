"""Where a group lives: the leaders of the ``__consumer_offsets`` partitions.

Which broker answers for a group is the leader of its ``__consumer_offsets``
partition (Kafka's hash of the group id onto ``offsets.topic.num.partitions``);
the handlers refuse requests sent elsewhere with NOT_COORDINATOR, so clients
really talk to "their" broker. The offsets topic is not a real topic here, but
its leaderships move as the controller moves a real topic's: `OffsetsPartitions`
elects them, and the group coordinator moves its groups when they change
(see kstub/cluster/coordinator.py, "Coordinator moves").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import ClusterState


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_abs(n: int) -> int:
    """Kafka's Utils.abs: the absolute value, 0 for Integer.MIN_VALUE (partitionFor of groups and transactional
    ids: not a mask of the sign bit, which places a negative hash elsewhere)."""
    return 0 if n == -(2**31) else abs(n)


class OffsetsPartitions:
    """The leaders of the __consumer_offsets partitions, elected as the controller elects any leader.

    Partition k's replicas are every broker, in node id order starting at
    k % brokers (the first is its preferred leader; the offsets topic has no
    log here, so every replica is always in sync). When its leader leaves,
    the first live replica takes over; a returning broker leads only
    partitions left without a leader; preferred leaders come back by
    preferred leader election. Methods that change leaders return the moves
    as {partition: new leader}.
    """

    def __init__(self, cluster: ClusterState, count_setting: str = "offsets.topic.num.partitions") -> None:
        self.cluster = cluster
        #: the setting that counts the partitions (``transaction.state.log.num.partitions`` for transactions)
        self.count_setting = count_setting
        self._leaders: dict[int, int] = {}
        self._brokers: tuple[int, ...] = ()

    def replicas(self, partition: int) -> list[int]:
        ids = sorted(self.cluster.brokers)
        start = partition % len(ids) if ids else 0
        return ids[start:] + ids[:start]

    def _alive(self, broker_id: int) -> bool:
        broker = self.cluster.brokers.get(broker_id)
        return broker is not None and broker.alive

    def _first_live(self, partition: int, also: int | None = None) -> int:
        return next((r for r in self.replicas(partition) if r == also or self._alive(r)), -1)

    def leaders(self, also_alive: int | None = None) -> dict[int, int]:
        """Every partition's leader; elected afresh when the set of brokers changes (at startup)."""
        ids = tuple(sorted(self.cluster.brokers))
        if ids != self._brokers:
            self._brokers = ids
            count = self.cluster.config[self.count_setting]
            self._leaders = {k: self._first_live(k, also_alive) for k in range(count)}
        return self._leaders

    def leader(self, partition: int) -> int:
        """The leader of `partition` (-1: none)."""
        leaders = self.leaders()
        leader = leaders.get(partition, -1)
        if leader < 0 or not self._alive(leader):
            # a broker marked down behind the controller's back (unit tests): elect as it would
            leader = leaders[partition] = self._first_live(partition)
        return leader

    def broker_left(self, broker_id: int) -> dict[int, int]:
        leaders = self.leaders(also_alive=broker_id)
        moved = {k: self._first_live(k) for k, leader in leaders.items() if leader == broker_id}
        leaders.update(moved)
        return moved

    def broker_returned(self, broker_id: int) -> dict[int, int]:
        """Leaderless partitions (every broker was down) take the first broker back: the offsets
        live in the cluster model, so no replica can be out of sync."""
        leaders = self.leaders()
        moved = {k: broker_id for k, leader in leaders.items() if leader < 0}
        leaders.update(moved)
        return moved

    def elect_preferred(self, partitions: Iterable[int] | None = None) -> dict[int, int]:
        leaders = self.leaders()
        moved = {}
        for k in leaders if partitions is None else partitions:
            preferred = self.replicas(k)[0]
            if leaders[k] != preferred and self._alive(preferred):
                moved[k] = preferred
        leaders.update(moved)
        return moved

    def rebalance_if_imbalanced(self, threshold: float) -> dict[int, int]:
        """Kafka's auto leader rebalance over the offsets partitions (see Controller.rebalance_if_imbalanced)."""
        by_preferred: dict[int, list[int]] = {}
        for k in self.leaders():
            by_preferred.setdefault(self.replicas(k)[0], []).append(k)
        moved: dict[int, int] = {}
        for partitions in by_preferred.values():
            not_led = [k for k in partitions if self._leaders[k] != self.replicas(k)[0]]
            if not_led and len(not_led) / len(partitions) > threshold:
                moved |= self.elect_preferred(not_led)
        return moved
