"""Sealed message parts: their encoding is made once per message version and written again after that.

A handler's cached part of an answer (Metadata's partition bodies) is a `Sealed` dict: the compiled
encoders keep its bytes per version. What is checked: the bytes are those of the same part as a plain
dict, at every version (a part first encoded at one version is not written at another with that
version's bytes), and the kept bytes are what is written the next time.
"""

from __future__ import annotations

import uuid

from kstub.protocol import ApiKey
from kstub.protocol.constructs import Sealed
from kstub.protocol.messages import ALL


def _partition(index: int, leader: int) -> dict:
    return {
        "error_code": 0,
        "partition_index": index,
        "leader_id": leader,
        "leader_epoch": 3,
        "replica_nodes": [1, 2, 3],
        "isr_nodes": [1, 2],
        "offline_replicas": [3],
    }


def _response(partitions: list[dict]) -> dict:
    return {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": 1, "host": "h", "port": 9092, "rack": None}],
        "cluster_id": "c",
        "controller_id": 1,
        "topics": [
            {
                "error_code": 0,
                "name": "t",
                "topic_id": uuid.UUID(int=7),
                "is_internal": False,
                "partitions": partitions,
                "topic_authorized_operations": -2147483648,
            }
        ],
        "cluster_authorized_operations": -2147483648,
    }


def test_a_sealed_part_encodes_as_the_plain_dict_at_every_version() -> None:
    api = ALL[ApiKey.METADATA]
    sealed = [Sealed(_partition(i, 1 + i % 3)) for i in range(50)]
    # newest first, then the oldest: a part encoded at one version keeps other versions' bytes apart
    versions = sorted(range(api.min_version, api.max_version + 1), reverse=True)
    versions += list(range(api.min_version, api.max_version + 1))
    for version in versions:
        codec = api.response_codec(version)
        for _ in range(3):  # the constructs at first, the compiled encoder from the second use
            plain = codec.encode(_response([_partition(i, 1 + i % 3) for i in range(50)]))
            assert codec.encode(_response(sealed)) == plain, version
    assert all(s.encoded for s in sealed)  # the compiled encoders kept their bytes


def test_the_kept_bytes_are_what_is_written_again() -> None:
    codec = ALL[ApiKey.METADATA].response_codec(12)
    part = Sealed(_partition(0, 1))
    for _ in range(3):
        first = codec.encode(_response([part]))
    [(key, kept)] = part.encoded.items()
    part.encoded[key] = kept.replace(b"\x00\x00\x00\x01", b"\x00\x00\x00\x09", 1)  # leader 1 -> 9
    # a sealed part is never changed: what was kept is written, not the dict's values
    assert codec.encode(_response([part])) == first.replace(kept, part.encoded[key])
    assert codec.decode(codec.encode(_response([part]))).topics[0].partitions[0].leader_id == 9
