"""InitProducerId (22): producer ids and epochs for idempotent producers.

kafka-python enables idempotence by default, so every kafka-python producer
sends this before its first Produce. A v3+ request that names its current id
and epoch gets the epoch bumped (KIP-360). Transactions are not implemented:
a transactional id gets an id too, but the transaction APIs are not advertised.
"""

from __future__ import annotations

from construct import Container

from kstub.protocol import ApiKey

from .base import Body, Context, handles


@handles(ApiKey.INIT_PRODUCER_ID)
async def init_producer_id(ctx: Context, req: Container) -> Body:
    error, pid, epoch = ctx.cluster.producer_ids.init(req.transactional_id, req.producer_id, req.producer_epoch)
    if not error:
        ctx.cluster.store.save_producer_ids(ctx.cluster)
    return {"throttle_time_ms": 0, "error_code": error, "producer_id": pid, "producer_epoch": epoch}
