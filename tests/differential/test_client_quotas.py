"""DescribeClientQuotas / AlterClientQuotas: Kafka's validation, per entry, and the filters.

The real Kafka is shared by the whole run: quotas are set only on this test's
own client ids and users, default entities only with validate_only, and the
descriptions compared are restricted to this test's entities.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from kstub.kafka_client import BrokerConnection

from support.batches import batch
from support.diff_requests import create, fetch_body, produce_body
from support.differential import Pair

Body = dict[str, Any]


def alter_body(
    entity: list[tuple[str, str | None]], ops: list[tuple[str, float, bool]], validate_only: bool = False
) -> Body:
    return {
        "entries": [
            {
                "entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
                "ops": [{"key": k, "value": v, "remove": r} for k, v, r in ops],
            }
        ],
        "validate_only": validate_only,
    }


def describe_body(components: list[tuple[str, int, str | None]], strict: bool = False) -> Body:
    return {"components": [{"entity_type": t, "match_type": m, "match": n} for t, m, n in components], "strict": strict}


def ours(pair: Pair) -> Any:
    """A view of a DescribeClientQuotas answer keeping only this test's entities."""

    def view(answer: Any) -> Any:
        entries = answer.get("entries")
        if entries is None:
            return answer
        kept = [e for e in entries if all((p["entity_name"] or "").startswith(pair.prefix) for p in e["entity"])]
        return {**answer, "entries": kept}

    return view


UNORDERED = ("entries", "entity", "values")


def settle(pair: Pair, entity: list[tuple[str, str]], key: str, present: bool = True) -> None:
    """Until both brokers describe `entity` with (or without) `key`: Kafka's brokers learn an alteration
    from the controller a moment after answering it (polls: there is no event to wait on)."""
    body = describe_body([(t, 0, n) for t, n in entity], strict=True)
    deadline = time.monotonic() + 15
    for side in pair.sides:
        while True:
            entries = side.conn.request(48, body).entries or []
            if any(v.key == key for e in entries for v in e["values"]) == present:
                break
            assert time.monotonic() < deadline, (side.name, entity, key, entries)
            time.sleep(0.05)


@pytest.mark.parametrize(
    ("entity", "ops"),
    [
        ([("client-id", "{c}")], [("producer_byte_rate", 1024.0, False)]),
        ([("client-id", "{c}")], [("producer_byte_rate", 1024.5, False)]),
        ([("client-id", "{c}")], [("producer_byte_rate", -5.0, False)]),
        ([("client-id", "{c}")], [("consumer_byte_rate", 0.0, False)]),
        ([("client-id", "{c}")], [("request_percentage", 12.5, False)]),
        ([("client-id", "{c}")], [("request_percentage", 0.0, False)]),
        ([("client-id", "{c}")], [("controller_mutation_rate", 1.5, False)]),
        ([("client-id", "{c}")], [("producer_byte_rate", 1e20, False)]),
        ([("client-id", "{c}")], [("bogus", 1.0, False)]),
        ([("client-id", "{c}")], [("connection_creation_rate", 1.0, False)]),
        ([("client-id", "{c}")], [("producer_byte_rate", 1.0, False), ("producer_byte_rate", 2.0, False)]),
        ([("client-id", "{c}")], [("producer_byte_rate", 1.0, True)]),
        ([("ip", "10.1.2.3")], [("connection_creation_rate", 3.0, False)]),
        ([("ip", "10.1.2.3")], [("producer_byte_rate", 3.0, False)]),
        ([("ip", "not an ip")], [("connection_creation_rate", 3.0, False)]),
        ([("bogus", "x")], [("producer_byte_rate", 3.0, False)]),
        ([], [("producer_byte_rate", 3.0, False)]),
        ([("user", "{u}"), ("client-id", "{c}")], [("consumer_byte_rate", 3.0, False)]),
        ([("user", "{u}"), ("ip", "10.1.2.3")], [("connection_creation_rate", 3.0, False)]),
        ([("client-id", "")], [("consumer_byte_rate", 7.0, False)]),
        ([("user", "")], [("consumer_byte_rate", 7.0, False)]),
        ([("user", None)], [("consumer_byte_rate", 7.0, False)]),
        ([("client-id", None)], [("consumer_byte_rate", 7.0, False)]),
        ([("ip", None)], [("connection_creation_rate", 3.0, False)]),
    ],
)
def test_alter_validation(pair: Pair, entity: list, ops: list) -> None:
    names = {"c": pair.name("client"), "u": pair.name("user")}
    real = [(t, n.format(**names) if n else n) for t, n in entity]
    # only validate: nothing is set on the shared Kafka (ip quotas and defaults would reach other tests)
    pair.compare(49, alter_body(real, ops, validate_only=True))


def test_set_describe_and_remove(pair: Pair) -> None:
    client, other, user = pair.name("client"), pair.name("client"), pair.name("user")
    view = ours(pair)
    pair.compare(49, alter_body([("client-id", client)], [("producer_byte_rate", 1 << 30, False)]))
    pair.compare(49, alter_body([("client-id", other)], [("consumer_byte_rate", 1 << 30, False)]))
    body = alter_body([("user", user), ("client-id", client)], [("request_percentage", 200.0, False)])
    pair.compare(49, body)
    settle(pair, [("client-id", client)], "producer_byte_rate")
    settle(pair, [("client-id", other)], "consumer_byte_rate")
    settle(pair, [("user", user), ("client-id", client)], "request_percentage")
    for components, strict in [
        ([], False),
        ([("client-id", 0, client)], False),
        ([("client-id", 0, client)], True),
        ([("client-id", 2, None)], False),
        ([("client-id", 2, None)], True),
        ([("user", 2, None)], False),
        ([("user", 0, user), ("client-id", 2, None)], True),
        ([("client-id", 1, None)], False),
        ([("ip", 2, None)], False),
        ([("bogus", 2, None)], False),
        ([("client-id", 5, None)], False),
        ([("client-id", 0, None)], False),
        ([("client-id", 1, "x")], False),
        ([("client-id", 2, None), ("client-id", 2, None)], False),
    ]:
        pair.compare(48, describe_body(components, strict), unordered=UNORDERED, view=view)
    # removing every value removes the entity; validate_only changes nothing
    pair.compare(49, alter_body([("client-id", other)], [("consumer_byte_rate", 0.0, True)]))
    settle(pair, [("client-id", other)], "consumer_byte_rate", present=False)
    pair.compare(49, alter_body([("client-id", client)], [("producer_byte_rate", 5.0, False)], validate_only=True))
    answer, _ = pair.compare(48, describe_body([("client-id", 2, None)]), unordered=UNORDERED, view=view)
    assert [v["value"] for e in answer["entries"] for v in e["values"] if v["key"] == "producer_byte_rate"] == [1 << 30]
    for version in (0, 1):
        pair.compare(48, describe_body([("client-id", 0, client)]), version=version, unordered=UNORDERED, view=view)


def test_byte_rate_throttling(pair: Pair) -> None:
    """A burst far above a client's byte-rate quota is throttled on both brokers for about as long (kstub counts
    the record bytes, Kafka the whole request or response: a little more); a throttled fetch answers empty. Each
    request goes on a connection of its own with this test's client id (Kafka mutes a throttled connection)."""
    topic = create(pair)
    producer, consumer = pair.name("producer"), pair.name("consumer")
    pair.compare(49, alter_body([("client-id", producer)], [("producer_byte_rate", 1000.0, False)]))
    pair.compare(49, alter_body([("client-id", consumer)], [("consumer_byte_rate", 1000.0, False)]))
    settle(pair, [("client-id", producer)], "producer_byte_rate")
    settle(pair, [("client-id", consumer)], "consumer_byte_rate")
    seen: dict[str, list[Any]] = {}
    for side in pair.sides:
        host, _, port = side.conn.address.rpartition(":")
        found = seen.setdefault(side.name, [])
        for client, api_key, body in [
            (producer, 0, produce_body(topic, batch(50, value_size=2000))),
            (consumer, 1, fetch_body(topic, 0)),
            (consumer, 1, fetch_body(topic, 0)),
        ]:
            conn = BrokerConnection(host, int(port), client, 30.0)
            try:
                v = pair.version(api_key)
                answer = conn.request(api_key, side.with_topic_ids(api_key, v, body), version=v)
            finally:
                conn.close()
            records = sum(len(p.records or b"") for t in answer.responses for p in t.get("partitions", []))
            found.append((answer.throttle_time_ms, len(answer.responses), records > 0))
    ours, theirs = seen["kstub"], seen["kafka"]
    assert [a[1:] for a in ours] == [a[1:] for a in theirs], seen
    for (mine, _, _), (kafkas, _, _) in zip(ours, theirs, strict=True):
        assert abs(mine - kafkas) <= 0.03 * kafkas, seen
