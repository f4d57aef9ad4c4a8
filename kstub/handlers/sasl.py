"""SaslHandshake (17) and SaslAuthenticate (36) outside a SASL exchange.

Before authentication on a SASL listener, kstub/connection.py answers these
itself (kstub/security.py's `SaslServer`). They reach these handlers only on a
connection that needs no authentication (PLAINTEXT, SSL, in-memory) or has
already authenticated without a session lifetime (connections.max.reauth.ms 0,
the default; otherwise a SaslHandshake re-authenticates, see kstub/connection.py);
Kafka answers ILLEGAL_SASL_STATE there.
"""

from __future__ import annotations

from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, handles


@handles(ApiKey.SASL_HANDSHAKE)
async def sasl_handshake(ctx: Context, req: Container) -> Body:
    return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}


@handles(ApiKey.SASL_AUTHENTICATE)
async def sasl_authenticate(ctx: Context, req: Container) -> Body:
    return {
        "error_code": ErrorCode.ILLEGAL_SASL_STATE,
        "error_message": "SaslAuthenticate request received after successful authentication",
        "auth_bytes": b"",
        "session_lifetime_ms": 0,
    }
