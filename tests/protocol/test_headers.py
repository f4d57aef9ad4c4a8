"""Request and response headers, and which header version each API version uses.

Request header v1: api_key int16, api_version int16, correlation_id int32,
client_id nullable int16-length string. v2 adds a tagged-field section but
keeps client_id classic, so a broker can read any request's header. Response
header v0: correlation_id; v1 adds tags. ApiVersions responses always use
header v0 (KIP-511).
"""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstub.protocol.errors import DecodeError
from kstub.protocol.headers import (
    encode_request_header,
    encode_response_header,
    read_request_header,
    request_header_codec,
    response_header_codec,
)
from kstub.protocol.messages import ALL
from kstub.protocol.schema import Api

SETTINGS = settings(max_examples=200, deadline=None)

int16s = st.integers(-(2**15), 2**15 - 1)
int32s = st.integers(-(2**31), 2**31 - 1)
client_ids = st.none() | st.text(max_size=40)


def classic_string(s: str | None) -> bytes:
    if s is None:
        return b"\xff\xff"
    data = s.encode()
    return struct.pack(">h", len(data)) + data


@SETTINGS
@given(version=st.sampled_from([1, 2]), key=int16s, api_version=int16s, corr=int32s, client_id=client_ids)
def test_request_header_roundtrip(version: int, key: int, api_version: int, corr: int, client_id: str | None) -> None:
    raw = encode_request_header(version, key, api_version, corr, client_id)
    fixed = struct.pack(">hhi", key, api_version, corr) + classic_string(client_id)
    # v2 = v1 + an (empty) tagged-field section; client_id stays int16-length
    assert raw == (fixed + b"\x00" if version == 2 else fixed)
    stream = io.BytesIO(raw + b"body")
    header = read_request_header(stream, version)
    assert header.request_api_key == key
    assert header.request_api_version == api_version
    assert header.correlation_id == corr
    assert header.client_id == client_id
    assert stream.read() == b"body"  # the header consumed exactly its bytes
    assert request_header_codec(version).encode(header) == raw


def test_request_header_v2_client_id_is_classic() -> None:
    raw = encode_request_header(2, 18, 3, 7, "rdkafka")
    assert raw == bytes.fromhex("0012 0003 00000007 0007") + b"rdkafka" + b"\x00"
    # a compact string would have been 08 'rdkafka'; a null client id is ffff, not 00
    assert encode_request_header(2, 18, 3, 7, None) == bytes.fromhex("0012 0003 00000007 ffff 00")
    assert request_header_codec(2).flexible
    assert not request_header_codec(1).flexible


def test_request_header_v2_unknown_tags_are_skipped_and_kept() -> None:
    tags = b"\x02" + b"\x01\x02ab" + b"\x05\x00"  # tag 1 = "ab", tag 5 = ""
    raw = bytes.fromhex("0003 000c 00000001 0001") + b"c" + tags
    stream = io.BytesIO(raw + b"\x99")
    header = read_request_header(stream, 2)
    assert header.client_id == "c"
    assert header["_unknown_tags"] == {1: b"ab", 5: b""}
    assert stream.read() == b"\x99"
    assert request_header_codec(2).encode(header) == raw


def test_request_header_v1_has_no_tags() -> None:
    raw = encode_request_header(1, 3, 8, 42, "x")
    stream = io.BytesIO(raw + b"\x00rest")
    assert read_request_header(stream, 1).client_id == "x"
    assert stream.read() == b"\x00rest"  # the 00 belongs to the body


def test_request_header_v0_has_no_client_id() -> None:
    raw = request_header_codec(0).encode({"request_api_key": 7, "request_api_version": 0, "correlation_id": 3})
    assert raw == struct.pack(">hhi", 7, 0, 3)
    assert read_request_header(io.BytesIO(raw), 0).client_id is None


@pytest.mark.parametrize("version", [1, 2])
@SETTINGS
@given(data=st.data())
def test_request_header_short_stream_is_decode_error(version: int, data: st.DataObject) -> None:
    raw = encode_request_header(version, 1, 2, 3, data.draw(client_ids))
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError) as info:
        read_request_header(io.BytesIO(raw[:cut]), version)
    assert info.value.path.startswith(f"RequestHeader v{version}")


def test_request_header_bad_client_id_length() -> None:
    with pytest.raises(DecodeError, match="length -2") as info:
        read_request_header(io.BytesIO(bytes.fromhex("0000 0000 00000000 fffe")), 1)
    assert info.value.path == "RequestHeader v1.client_id"


@SETTINGS
@given(version=st.sampled_from([0, 1]), corr=int32s)
def test_response_header_roundtrip(version: int, corr: int) -> None:
    raw = encode_response_header(version, corr)
    assert raw == struct.pack(">i", corr) + (b"\x00" if version == 1 else b"")
    codec = response_header_codec(version)
    assert codec.flexible == (version == 1)
    assert codec.decode(raw, exact=True).correlation_id == corr
    assert codec.encode(codec.decode(raw)) == raw


def test_response_header_v1_unknown_tags() -> None:
    raw = struct.pack(">i", 9) + b"\x01\x03\x01z"
    header = response_header_codec(1).decode(raw, exact=True)
    assert header.correlation_id == 9
    assert header["_unknown_tags"] == {3: b"z"}


def _all_versions(api: Api) -> range:
    return range(api.min_version, api.max_version + 1)


@pytest.mark.parametrize("version", range(0, 8))
def test_api_versions_response_always_uses_header_v0(version: int) -> None:
    # also for versions above our max: the UNSUPPORTED_VERSION reply to a v4 probe
    assert ALL[18].response_header_version(version) == 0


def test_api_versions_v3_request_is_flexible_with_header_v2() -> None:
    api = ALL[18]
    assert api.is_flexible(3)
    assert api.request_header_version(3) == 2
    assert api.response_header_version(3) == 0
    assert [api.request_header_version(v) for v in range(3)] == [1, 1, 1]


@pytest.mark.parametrize("api", list(ALL.values()), ids=lambda a: f"{a.key}-{a.name}")
def test_header_versions_follow_flexibility(api: Api) -> None:
    # an API is flexible from some version it implements on, or never (OffsetDelete)
    assert api.flexible_from is None or api.supports(api.flexible_from)
    for v in _all_versions(api):
        flexible = api.is_flexible(v)
        assert flexible == (api.flexible_from is not None and v >= api.flexible_from)
        assert api.request_header_version(v) == (2 if flexible else 1), f"v{v}"
        if api.key != 18:
            assert api.response_header_version(v) == (1 if flexible else 0), f"v{v}"
        # the body codec agrees with the header choice
        assert api.request_codec(v).flexible == flexible
        assert api.response_codec(v).flexible == flexible


def test_a_full_request_frame_parses_header_then_body() -> None:
    """What a server does: header by the header version of (key, version), then the body."""
    api = ALL[3]
    for v in (1, 9, 12):
        body = api.request_codec(v).encode({"topics": [{"name": "t"}], "allow_auto_topic_creation": False})
        frame = encode_request_header(api.request_header_version(v), 3, v, 77, "cli") + body
        stream = io.BytesIO(frame)
        header = read_request_header(stream, api.request_header_version(v))
        assert (header.request_api_key, header.request_api_version, header.correlation_id) == (3, v, 77)
        request = api.request_codec(v).read(stream)
        assert stream.tell() == len(frame)
        assert request.topics[0].name == "t"
        assert request.allow_auto_topic_creation is (v < 4)  # absent before v4: default True
