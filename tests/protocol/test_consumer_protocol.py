"""The consumer protocol's embedded messages: declared like the APIs, checked against Kafka's JSON.

`ConsumerProtocolSubscription` and `ConsumerProtocolAssignment` are Kafka
"data" schemas (no api key, never flexible); each field of each version must
match Kafka's, and bytes written by another client (aiokafka's own structs)
must decode.
"""

from __future__ import annotations

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

from kstub.protocol import DecodeError
from kstub.protocol.consumer_protocol import (
    ASSIGNMENT,
    HIGHEST_VERSION,
    SUBSCRIPTION,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

from support.schemas import compare_fields, load, vrange


@pytest.mark.parametrize("message", [SUBSCRIPTION, ASSIGNMENT], ids=lambda m: m.name)
@pytest.mark.parametrize("version", range(HIGHEST_VERSION + 1))
def test_fields_match_kafka(message, version):
    schema = load(message.name)
    assert schema["type"] == "data" and schema["flexibleVersions"] == "none"
    assert version in vrange(schema["validVersions"])
    errors: list[str] = []
    compare_fields(message.fields, schema["fields"], version, False, f"{message.name} v{version}", {}, errors)
    assert not errors, "\n".join(errors)


def test_decodes_what_aiokafka_writes():
    metadata = ConsumerProtocolMemberMetadata(0, ["a", "b"], b"ud").encode()
    sub = decode_subscription(metadata)
    assert (sub.version, sub.topics, sub.user_data, sub.owned_partitions) == (0, ["a", "b"], b"ud", [])
    assignment = ConsumerProtocolMemberAssignment(0, [("a", [0, 2]), ("b", [1])], b"").encode()
    got = decode_assignment(assignment)
    assert [(t.topic, t.partitions) for t in got.assigned_partitions] == [("a", [0, 2]), ("b", [1])]


def test_round_trip_and_newer_versions_read_as_the_highest():
    sub = {"topics": ["t"], "owned_partitions": [{"topic": "t", "partitions": [3]}], "generation_id": 7, "rack_id": "r"}
    data = encode_subscription(sub)
    got = decode_subscription(data)
    assert (got.topics, got.owned_partitions[0].partitions, got.generation_id, got.rack_id) == (["t"], [3], 7, "r")
    newer = (HIGHEST_VERSION + 1).to_bytes(2, "big") + data[2:] + b"\x00\x01future"
    assert decode_subscription(newer).generation_id == 7
    assert decode_assignment(encode_assignment({"assigned_partitions": []}, 0)).assigned_partitions == []


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xff", b"\x00\x00\x00\x00\x00\x05ab"])
def test_garbage_is_a_decode_error(data):
    with pytest.raises(DecodeError):
        decode_subscription(data)
