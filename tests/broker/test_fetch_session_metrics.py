"""Fetch sessions seen from the broker: the counters and the Prometheus metrics that expose them."""

from __future__ import annotations

from kstub.metrics import gather

from support.memory import memory_cluster
from support.raw_requests import batch, create_req, fetch_req, produce_req


async def test_sessions_are_counted_and_exposed(autojump_clock) -> None:
    async with memory_cluster(1) as mc, mc.connect(0) as c:
        for req in (create_req("s"), produce_req("s", batch(3))):
            await c.request(req.api_key, req.version, req.body)
        full = fetch_req("s", 0)
        opened = await c.request(1, 12, {**full.body, "session_id": 0, "session_epoch": 0})
        assert opened.session_id != 0 and len(opened.responses) == 1
        body = {**full.body, "topics": [], "session_id": opened.session_id, "session_epoch": 1}
        again = await c.request(1, 12, body)
        assert again.session_id == opened.session_id and again.responses[0].partitions[0].records  # offset 0 again
        (broker,) = mc.model.brokers.values()
        assert (len(broker.fetch_sessions), broker.fetch_sessions.incremental_fetches) == (1, 1)
        samples = gather(mc.model)
        assert samples["kstub_broker_fetch_sessions"] == [(("0",), 1)]
        assert samples["kstub_broker_incremental_fetches"] == [(("0",), 1)]
