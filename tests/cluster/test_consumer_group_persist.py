"""A consumer group's saved form (``--data-dir``: kstub/cluster/consumer_group/persist.py) gives the same group
back: epochs, members (a classic one of a mixed group too), their assignments and targets, and which partition
each member holds."""

from __future__ import annotations

import json
import uuid

from kstub.cluster.consumer_group.model import ClassicProtocol, ConsumerGroup, ConsumerMember, MemberState
from kstub.cluster.consumer_group.persist import from_doc, group_doc


def test_a_mixed_group_round_trips_through_its_saved_form() -> None:
    t = uuid.uuid4()
    group = ConsumerGroup("g", group_epoch=7, assignment_epoch=7)
    group.subscription_metadata = {"t": (t, 4)}
    new = ConsumerMember("a", rack_id="r1", client_id="c", client_host="/127.0.0.1", rebalance_timeout_ms=30000,
                         subscribed_topic_names=("t",), server_assignor="range", state=MemberState.UNREVOKED_PARTITIONS,
                         member_epoch=6, previous_member_epoch=5, assigned={t: frozenset({0})},
                         pending_revocation={t: frozenset({1})})  # fmt: skip
    protocols = (("range", b"\x00\x01meta"), ("roundrobin", b""))
    classic = ConsumerMember("b", instance_id="i", subscribed_topic_names=("t",), member_epoch=7,
                             previous_member_epoch=6, assigned={t: frozenset({2, 3})},
                             classic=ClassicProtocol(10000, protocols))  # fmt: skip
    for m in (new, classic):
        group.put(m)
    group.target = {"a": {t: frozenset({0, 1})}, "b": {t: frozenset({2, 3})}}

    doc = json.loads(json.dumps(group_doc(group)))  # as written to and read from the file
    back = from_doc(doc)
    assert group_doc(back) == doc
    assert (back.group_epoch, back.assignment_epoch, back.state) == (7, 7, group.state)
    assert back.members["b"].classic == classic.classic
    assert back.static_member("i") is back.members["b"]
    assert back.partition_epochs == group.partition_epochs == {(t, 0): 6, (t, 1): 6, (t, 2): 7, (t, 3): 7}
    assert back.target == group.target
