"""A consumer group of the new protocol (KIP-848) survives a restart of ``kstub serve --data-dir`` (SIGKILL).

Two confluent-kafka members (``group.protocol=consumer``) share a topic and
commit; a third came and went so the group epoch is past what a fresh group
would reach. The server is killed and started again on the same port and data
directory: the group comes back with its epoch, members and their epochs and
assignments (ConsumerGroupDescribe right after the restart), the members carry
on without rejoining, and every record is consumed, committed to the end.
"""

from __future__ import annotations

from group_members import Timeline, owners_never_overlap, wait_for
from test_consumer_protocol_clients import NewProtocolConfluentMember, produce
from test_durability import server_factory  # noqa: F401 (the fixture)

from clients import ConfluentClient, unique_topic
from support.raw import RawClient

PARTITIONS = 4
BROKER = [
    "-c", "group.consumer.heartbeat.interval.ms=300",
    "-c", "group.consumer.min.heartbeat.interval.ms=300",
    "-c", "group.consumer.session.timeout.ms=10000",
    "-c", "group.consumer.min.session.timeout.ms=1000",
]  # fmt: skip


def described(bootstrap: str, group: str):
    with RawClient(bootstrap) as c:
        return c.request(69, 1, {"group_ids": [group], "include_authorized_operations": False}).groups[0]


def snapshot(g) -> tuple[int, int, dict[str, tuple[int, list[int], list[int]]]]:
    def parts(a) -> list[int]:
        return sorted(p for t in a.topic_partitions for p in t.partitions)

    members = {m.member_id: (m.member_epoch, parts(m.assignment), parts(m.target_assignment)) for m in g.members}
    return g.group_epoch, g.assignment_epoch, members


def test_a_consumer_group_survives_a_sigkill_of_a_server_with_a_data_dir(server_factory) -> None:  # noqa: F811
    server = server_factory(*BROKER)
    server.start()
    bootstrap = server.bootstrap
    topic, group, timeline = unique_topic("cgkeep"), unique_topic("g"), Timeline()
    ConfluentClient(bootstrap).create_topic(topic, PARTITIONS)
    sent = set(produce(bootstrap, topic, 0, 200))
    members = [NewProtocolConfluentMember(f"m{i}", bootstrap, group, topic, timeline).start() for i in range(2)]
    consumed = lambda: {r.value for m in members for r in m.records}  # noqa: E731
    try:
        passing = NewProtocolConfluentMember("passing", bootstrap, group, topic, timeline).start()
        wait_for(lambda: len(described(bootstrap, group).members) == 3, "three members", [*members, passing])
        passing.stop()
        wait_for(lambda: sorted(len(m.assignment) for m in members) == [2, 2], "two partitions each", members)
        wait_for(lambda: described(bootstrap, group).group_state == "Stable", "a stable group", members)
        wait_for(lambda: consumed() >= sent, "every record", members)
        before = snapshot(described(bootstrap, group))
        assert before[0] >= 5  # joins and a leave: past the epochs a fresh group of two would have

        server.kill()
        server.start()
        after = described(bootstrap, group)
        assert after.error_code == 0, after
        # the same group: its epochs, members and their epochs and assignments (none had to rejoin)
        assert snapshot(after) == before
        assert "restored 1 consumer group(s)" in server.log(2)

        sent |= set(produce(bootstrap, topic, 200, 200))
        wait_for(lambda: consumed() >= sent, "every record, after the restart", members)
        wanted = [{"name": topic, "partitions": [{"partition_index": p, "timestamp": -1} for p in range(PARTITIONS)]}]
        fetch = [{"group_id": group, "topics": [{"name": topic, "partition_indexes": list(range(PARTITIONS))}]}]
        with RawClient(bootstrap) as c:
            answer = c.request(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": wanted})
            ends = {p.partition_index: p.offset for p in answer.topics[0].partitions}

            def committed() -> dict[int, int]:
                (g,) = c.request(9, 8, {"groups": fetch}).groups
                return {p.partition_index: p.committed_offset for t in g.topics for p in t.partitions}

            wait_for(lambda: committed() == ends, "commits up to the end of every partition", members)
        # the members carried on with the epochs they had: nobody was fenced and rejoined
        assert {m: e for m, (e, _, _) in snapshot(described(bootstrap, group))[2].items()} == {
            m: e for m, (e, _, _) in before[2].items()
        }
    finally:
        for m in members:
            if m._thread.is_alive():
                m.stop()
    owners_never_overlap(timeline.snapshot())
