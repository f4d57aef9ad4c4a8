"""What each unit of the group coordinator reaches through it: the cluster, the groups, the clock, the timers.

Membership (kstub/cluster/membership.py), rebalances (rebalance.py) and
committed offsets (committed.py) are parts of one `GroupCoordinator`
(coordinator.py), which owns the groups, the clock and the timer task; each
part derives from `CoordinatorPart` for its ways to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .coordinator import GroupCoordinator
    from .groups import Group
    from .model import ClusterState


class CoordinatorPart:
    """A unit of the group coordinator: reaches the coordinator's cluster, groups, clock and timer task."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self._coordinator = coordinator

    @property
    def cluster(self) -> ClusterState:
        return self._coordinator.cluster

    @property
    def groups(self) -> dict[str, Group]:
        return self._coordinator.groups

    def _now(self) -> float:
        return self._coordinator.now()

    def _poke(self) -> None:
        """Wake the coordinator's timer task: a deadline moved."""
        self._coordinator.poke()

    def _config_ms(self, name: str) -> float:
        """A broker setting in milliseconds, as seconds."""
        return self.cluster.config[name] / 1000

    def _create_group(self, group_id: str, now: float) -> Group:
        return self._coordinator.create_group(group_id, now)
