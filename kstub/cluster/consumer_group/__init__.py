"""The consumer group protocol (KIP-848): the second membership unit beside the classic one.

- model.py: consumer groups and their members as data (epochs, states, assignments);
- assignors.py: the server-side assignors (``uniform``, ``range``: ``group.consumer.assignors``);
- reconcile.py: a member's way from its current assignment to its target, one step per heartbeat;
- membership.py: ConsumerGroupHeartbeat's rules, fencing, timers, describe and offset checks.

The coordinator (kstub/cluster/coordinator.py) owns an instance of
`ConsumerMembership` and hands it the consumer-group requests.
"""

from .membership import ConsumerMembership, HeartbeatRequest, HeartbeatResult
from .model import ConsumerGroup, ConsumerGroupState, ConsumerMember, MemberState

__all__ = [
    "ConsumerGroup",
    "ConsumerGroupState",
    "ConsumerMember",
    "ConsumerMembership",
    "HeartbeatRequest",
    "HeartbeatResult",
    "MemberState",
]
