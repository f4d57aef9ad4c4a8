"""DescribeCluster v2 (KIP-1073): a stopped broker is fenced; listed, as fenced, only when the request asks."""

from __future__ import annotations

from support.memory import memory_cluster


async def test_fenced_brokers_listed_when_asked(autojump_clock) -> None:
    async with memory_cluster(3) as mc:
        await mc.control.stop_broker(2)
        async with mc.connect(0) as c:
            for include, expected in ((False, [(0, False), (1, False)]), (True, [(0, False), (1, False), (2, True)])):
                body = {"include_cluster_authorized_operations": False, "include_fenced_brokers": include}
                answer = await c.request(60, 2, body)
                assert [(b.broker_id, b.is_fenced) for b in answer.brokers] == expected
            older = await c.request(60, 1, {"include_cluster_authorized_operations": False})
            assert [b.broker_id for b in older.brokers] == [0, 1]
