"""FindCoordinator (10): which broker coordinates a group or transactional id.

Until the group coordinator lands, every key is coordinated by the broker that
was asked. v0-3 carry one key; v4 batches keys and answers per key.
"""

from __future__ import annotations

from construct import Container

from kstub.protocol import ErrorCode

from .base import Body, Context, handles


@handles(10)
async def find_coordinator(ctx: Context, req: Container) -> Body:
    b = ctx.broker
    node = {"node_id": b.node_id, "host": b.advertised_host, "port": b.port}
    if ctx.api_version >= 4:
        return {
            "throttle_time_ms": 0,
            "coordinators": [
                {"key": key, "error_code": ErrorCode.NONE, "error_message": None, **node}
                for key in req.coordinator_keys
            ],
        }
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, **node}
