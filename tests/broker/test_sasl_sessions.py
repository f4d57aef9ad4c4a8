"""SASL sessions in memory under Trio's MockClock: re-authentication (KIP-368) and expiry.

A cluster whose one listener is SASL_PLAINTEXT serves its in-memory
connections with SASL too; ``connections.max.reauth.ms`` gives sessions a
lifetime, announced in SaslAuthenticate, after which a connection that has
not re-authenticated is closed at its next request. Virtual time: no waiting.
"""

from __future__ import annotations

import pytest
import trio

from kstub.protocol import ApiKey, ErrorCode

from support.memory import MemoryClient, memory_cluster

CONFIG = {
    "listeners": "SASL_PLAINTEXT://127.0.0.1:9092",
    "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
    "kstub.sasl.users": "alice:a-pw,bob:b-pw",
    "connections.max.reauth.ms": 1000,
}


async def _login(client: MemoryClient, user: str, password: str, version: int = 2):
    handshake = await client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    assert handshake.error_code == ErrorCode.NONE
    return await client.request(ApiKey.SASL_AUTHENTICATE, version, {"auth_bytes": f"\0{user}\0{password}".encode()})


async def test_session_lifetime_is_announced_and_enforced(autojump_clock) -> None:
    async with memory_cluster(config=CONFIG) as mc, mc.connect() as client:
        answer = await _login(client, "alice", "a-pw")
        assert (answer.error_code, answer.session_lifetime_ms) == (ErrorCode.NONE, 1000)
        assert (await client.request(ApiKey.METADATA, 1, {"topics": []})).brokers
        await trio.sleep(1.5)
        await client.send(ApiKey.METADATA, 1, {"topics": []})
        assert await client.closed_by_broker()


async def test_reauthentication_extends_the_session(autojump_clock) -> None:
    async with memory_cluster(config=CONFIG) as mc, mc.connect() as client:
        assert (await _login(client, "alice", "a-pw")).error_code == ErrorCode.NONE
        for _ in range(3):
            await trio.sleep(0.8)
            again = await _login(client, "alice", "a-pw")
            assert (again.error_code, again.session_lifetime_ms) == (ErrorCode.NONE, 1000)
        await trio.sleep(0.8)  # 3.2 s after the first login, 0.8 s after the last
        assert (await client.request(ApiKey.METADATA, 1, {"topics": []})).brokers


async def test_reauthentication_cannot_change_the_principal(autojump_clock) -> None:
    async with memory_cluster(config=CONFIG) as mc, mc.connect() as client:
        assert (await _login(client, "alice", "a-pw")).error_code == ErrorCode.NONE
        answer = await _login(client, "bob", "b-pw")
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert answer.error_message == "Cannot change principals during re-authentication from User:alice: User:bob"
        assert await client.closed_by_broker()


async def test_failed_reauthentication_closes(autojump_clock) -> None:
    async with memory_cluster(config=CONFIG) as mc, mc.connect() as client:
        assert (await _login(client, "alice", "a-pw")).error_code == ErrorCode.NONE
        answer = await _login(client, "alice", "wrong")
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert await client.closed_by_broker()


@pytest.mark.parametrize("reauth_ms", [0, None])
async def test_without_reauthentication_a_second_handshake_is_illegal(autojump_clock, reauth_ms) -> None:
    config = {**CONFIG, "connections.max.reauth.ms": reauth_ms} if reauth_ms is not None else dict(CONFIG)
    if reauth_ms is None:
        del config["connections.max.reauth.ms"]
    async with memory_cluster(config=config) as mc, mc.connect() as client:
        answer = await _login(client, "alice", "a-pw")
        assert (answer.error_code, answer.session_lifetime_ms) == (ErrorCode.NONE, 0)
        again = await client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert again.error_code == ErrorCode.ILLEGAL_SASL_STATE
        await trio.sleep(300)  # long past any session, within connections.max.idle.ms
        assert (await client.request(ApiKey.METADATA, 1, {"topics": []})).brokers


async def test_requests_before_authentication_close(autojump_clock) -> None:
    async with memory_cluster(config=CONFIG) as mc:
        async with mc.connect() as client:
            await client.send(ApiKey.METADATA, 1, {"topics": []})
            assert await client.closed_by_broker()
        async with mc.connect() as client:
            assert (await client.request(ApiKey.API_VERSIONS, 0, {})).error_code == ErrorCode.NONE
            answer = await client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-512"})
            assert answer.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
            assert list(answer.mechanisms) == ["PLAIN", "SCRAM-SHA-256"]
            assert await client.closed_by_broker()
