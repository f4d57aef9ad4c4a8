"""Round trips of every declared message at every version, derived from the declarations.

For each API in `ALL`, each side and each version kstub implements, a
hypothesis strategy is built from the declaration as it stands in that
version: integers within their width, text, bytes, UUIDs, arrays of structs,
null only where the field is nullable in that version, and tagged fields
sometimes absent. Each example is encoded, decoded with ``exact=True`` and
compared with what was encoded (fields the version does not carry, or tagged
fields not sent, come back as their defaults), and re-encoding the decoded
message must give the very same bytes.

Also: unknown tagged fields in any flexible struct survive decode → encode;
tags out of order are a `DecodeError`; and, h11-style, garbage or mutated
bytes fed to every decoder only ever raise `DecodeError` -- any other
exception is a bug.
"""

from __future__ import annotations

import io
import math
import struct
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstub.protocol.constructs import ConstructError
from kstub.protocol.errors import DecodeError, LocalProtocolError
from kstub.protocol.headers import read_request_header
from kstub.protocol.messages import ALL
from kstub.protocol.schema import Api, Field, MessageCodec, Struct

ROUNDTRIP = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
}


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# --- which fields a version carries (mirrors Kafka's rules) -------------------


def _in(f_range, v: int) -> bool:
    return f_range is not None and v in f_range


def is_tagged(f: Field, v: int, flexible: bool) -> bool:
    return f.tag is not None and flexible and _in(f.tagged_range, v) and _in(f.version_range, v)


def is_fixed(f: Field, v: int) -> bool:
    return f.tag is None and _in(f.version_range, v)


def known_tags(fields: Sequence[Field], v: int, flexible: bool) -> set[int]:
    return {f.tag for f in fields if is_tagged(f, v, flexible)}  # type: ignore[misc]


# --- strategies derived from a declaration ------------------------------------


def scalar_strategy(type_: str) -> st.SearchStrategy[Any]:
    if type_ in INT_RANGES:
        lo, hi = INT_RANGES[type_]
        return st.integers(lo, hi)
    if type_ == "float64":
        return st.floats(allow_nan=False)
    if type_ == "bool":
        return st.booleans()
    if type_ == "string":
        return st.text(max_size=8)
    if type_ in ("bytes", "records"):
        return st.binary(max_size=16)
    if type_ == "uuid":
        return st.integers(0, 2**128 - 1).map(lambda n: uuid.UUID(int=n))
    raise AssertionError(f"no strategy for {type_!r}")


def field_strategy(f: Field, v: int, flexible: bool, unknown: bool) -> st.SearchStrategy[Any]:
    if isinstance(f.type, Struct):
        base = struct_strategy(f.type.fields, v, flexible, unknown)
    elif isinstance(f.type, str) and f.type.startswith("[]"):
        base = st.lists(scalar_strategy(f.type[2:]), max_size=4)
    elif isinstance(f.type, str):
        base = scalar_strategy(f.type)
    else:
        base = st.lists(struct_strategy(f.type, v, flexible, unknown), max_size=3)
    if _in(f.nullable_range, v):
        return st.none() | base
    return base


_STRATEGIES: dict[tuple[Any, ...], st.SearchStrategy[dict[str, Any]]] = {}


def struct_strategy(
    fields: Sequence[Field], v: int, flexible: bool, unknown: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    # Fields hold lists, so they are not hashable: cache by identity (the
    # declarations live as long as the process).
    key = (tuple(map(id, fields)), v, flexible, unknown)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _struct_strategy(fields, v, flexible, unknown)
    return _STRATEGIES[key]


def _struct_strategy(
    fields: Sequence[Field], v: int, flexible: bool, unknown: bool
) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.name: field_strategy(f, v, flexible, unknown) for f in fields if is_fixed(f, v)}
    optional = {f.name: field_strategy(f, v, flexible, unknown) for f in fields if is_tagged(f, v, flexible)}
    if unknown and flexible:
        taken = known_tags(fields, v, flexible)
        optional["_unknown_tags"] = st.dictionaries(
            st.integers(0, 2**32 - 1).filter(lambda t: t not in taken), st.binary(max_size=8), min_size=1, max_size=3
        )
    return st.fixed_dictionaries(required, optional=optional)


# --- what a decoded message should look like ----------------------------------


def expected(fields: Sequence[Field], v: int, flexible: bool, value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` as the decoder returns it: every field, defaults for those not sent."""
    out: dict[str, Any] = {}
    for f in fields:
        sent = is_fixed(f, v) or (is_tagged(f, v, flexible) and f.name in value)
        out[f.name] = expected_value(f, v, flexible, value[f.name]) if sent else f.default_factory(v)()
    if value.get("_unknown_tags"):
        out["_unknown_tags"] = dict(value["_unknown_tags"])
    return out


def expected_value(f: Field, v: int, flexible: bool, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(f.type, Struct):
        return expected(f.type.fields, v, flexible, value)
    if f.is_struct_array:
        return [expected(f.type, v, flexible, item) for item in value]  # type: ignore[arg-type]
    return value


def plain(obj: Any) -> Any:
    """Containers to dicts (keeping ``_unknown_tags``, which Container.__eq__ ignores); a float64 NaN
    read from garbage as a marker (NaN is not equal to itself); records views as bytes."""
    if isinstance(obj, Mapping):
        return {k: plain(val) for k, val in obj.items()}
    if isinstance(obj, list):
        return [plain(x) for x in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return "NaN"
    if isinstance(obj, memoryview):
        return bytes(obj)
    return obj


# --- the cases ------------------------------------------------------------------


def _side(api: Api, side: str) -> tuple[Sequence[Field], MessageCodec]:
    return (api.request, api.request_codec) if side == "request" else (api.response, api.response_codec)  # type: ignore[return-value]


CASES = [
    pytest.param(api, side, v, id=f"{api.name}-{side}-v{v}")
    for api in ALL.values()
    for side in ("request", "response")
    for v in range(api.min_version, api.max_version + 1)
]
FLEXIBLE_CASES = [p for p in CASES if p.values[0].is_flexible(p.values[2])]


def constructs_encode(codec: MessageCodec, value: Mapping[str, Any]) -> bytes:
    """What the constructs alone encode (the compiled fast path left out)."""
    stream = io.BytesIO()
    codec.write(value, stream)
    return stream.getvalue()


def constructs_decode(codec: MessageCodec, raw: bytes) -> tuple[Any, int]:
    """What the constructs alone decode, and where they stop (DecodeError if they refuse)."""
    stream = io.BytesIO(raw)
    try:
        obj = codec._struct._parse(stream, None, codec._struct.path)
    except ConstructError as exc:
        raise DecodeError(str(exc), "") from None
    return obj, stream.tell()


def check_roundtrip(fields: Sequence[Field], codec: MessageCodec, v: int, value: dict[str, Any]) -> bytes:
    flexible = codec.flexible
    while codec._fast_encode is None:
        codec._compile_encoder()
    while codec._fast_decode is None:
        codec._compile_decoder()
    raw = codec.encode(value)
    assert raw == constructs_encode(codec, value)  # the compiled encoder writes what the constructs write
    decoded = codec.decode(raw, exact=True)
    assert plain(decoded) == expected(fields, v, flexible, value)
    assert plain(decoded) == plain(constructs_decode(codec, raw)[0])
    assert list(decoded) == list(constructs_decode(codec, raw)[0])  # the same keys in the same order
    assert codec.encode(decoded) == raw
    return raw


@pytest.mark.parametrize(("api", "side", "version"), CASES)
@ROUNDTRIP
@given(data=st.data())
def test_roundtrip(api: Api, side: str, version: int, data: st.DataObject) -> None:
    fields, make_codec = _side(api, side)
    codec = make_codec(version)
    assert codec.flexible == api.is_flexible(version)
    value = data.draw(struct_strategy(fields, version, codec.flexible))
    check_roundtrip(fields, codec, version, value)


@pytest.mark.parametrize(("api", "side", "version"), CASES)
def test_empty_message_roundtrip(api: Api, side: str, version: int) -> None:
    """Encoding an empty mapping gives every field its default, and decodes back to them."""
    fields, make_codec = _side(api, side)
    codec = make_codec(version)
    raw = codec.encode({})
    decoded = codec.decode(raw, exact=True)
    for f in fields:
        assert plain(decoded[f.name]) == plain(f.default_factory(version)()), f.name
    assert codec.encode(decoded) == raw


@pytest.mark.parametrize(("api", "side", "version"), FLEXIBLE_CASES)
@ROUNDTRIP
@given(data=st.data())
def test_unknown_tags_are_preserved(api: Api, side: str, version: int, data: st.DataObject) -> None:
    fields, make_codec = _side(api, side)
    codec = make_codec(version)
    value = data.draw(struct_strategy(fields, version, True, unknown=True))
    check_roundtrip(fields, codec, version, value)


# --- hand-written tagged-field sections -----------------------------------------

API_VERSIONS_V3 = ALL[18].request_codec(3)
API_VERSIONS_BODY = b"\x04abc\x021"  # compact "abc", compact "1"


def tag_section(*entries: tuple[int, bytes]) -> bytes:
    out = uvarint(len(entries))
    for tag, payload in entries:
        out += uvarint(tag) + uvarint(len(payload)) + payload
    return out


def test_unknown_tags_on_the_wire_are_kept() -> None:
    raw = API_VERSIONS_BODY + tag_section((0, b""), (7, b"\x01\x02"), (300, b"x" * 200))
    decoded = API_VERSIONS_V3.decode(raw, exact=True)
    assert decoded.client_software_name == "abc"
    assert decoded.client_software_version == "1"
    assert decoded["_unknown_tags"] == {0: b"", 7: b"\x01\x02", 300: b"x" * 200}
    assert API_VERSIONS_V3.encode(decoded) == raw


def test_known_and_unknown_tags_interleave() -> None:
    # FetchRequest v12: cluster_id is tag 0; tags 1 and 5 are unknown to kstub
    codec = ALL[1].request_codec(12)
    fixed = codec.encode({"max_wait_ms": 500, "rack_id": "r"})
    assert fixed.endswith(b"\x00")  # empty tag section
    cluster = b"\x04abc"  # compact nullable "abc"
    raw = fixed[:-1] + tag_section((0, cluster), (1, b"\x09"), (5, b""))
    decoded = codec.decode(raw, exact=True)
    assert decoded.cluster_id == "abc"
    assert decoded.max_wait_ms == 500
    assert decoded["_unknown_tags"] == {1: b"\x09", 5: b""}
    assert codec.encode(decoded) == raw


@pytest.mark.parametrize(
    "section",
    [
        tag_section((5, b""), (3, b"")),  # descending
        tag_section((4, b"a"), (4, b"b")),  # duplicate
        tag_section((0, b"\x01"), (9, b""), (2, b"")),
    ],
    ids=["descending", "duplicate", "late-low-tag"],
)
def test_tags_out_of_order_are_decode_errors(section: bytes) -> None:
    with pytest.raises(DecodeError, match="out of order") as info:
        API_VERSIONS_V3.decode(API_VERSIONS_BODY + section)
    assert "ApiVersionsRequest v3" in info.value.path


@pytest.mark.parametrize(
    "section",
    [
        uvarint(2) + uvarint(1) + uvarint(0),  # count says 2, one entry
        uvarint(1) + uvarint(1) + uvarint(10) + b"short",  # payload longer than the stream
        uvarint(1) + b"\xff\xff\xff\xff\xff\x01",  # tag is a 6-byte varint
        uvarint(2**32 - 1),  # huge count, nothing follows
    ],
    ids=["missing-entry", "short-payload", "long-varint", "huge-count"],
)
def test_broken_tag_sections_are_decode_errors(section: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        API_VERSIONS_V3.decode(API_VERSIONS_BODY + section)
    assert "<tagged fields>" in info.value.path


def test_known_tag_with_bad_payload_is_decode_error() -> None:
    # ApiVersionsResponse v3: finalized_features_epoch is tag 1, an int64
    codec = ALL[18].response_codec(3)
    fixed = codec.encode({})
    raw = fixed[:-1] + tag_section((1, b"\x00\x01"))
    with pytest.raises(DecodeError) as info:
        codec.decode(raw)
    assert info.value.path.endswith("finalized_features_epoch")
    good = fixed[:-1] + tag_section((1, struct.pack(">q", 42)))
    assert codec.decode(good, exact=True).finalized_features_epoch == 42


def test_tagged_field_holding_its_default_is_not_sent() -> None:
    codec = ALL[18].response_codec(3)
    assert codec.encode({"finalized_features_epoch": -1}) == codec.encode({})
    assert codec.encode({"finalized_features_epoch": 7}) != codec.encode({})
    assert codec.decode(codec.encode({})).finalized_features_epoch == -1


def test_tagged_fields_absent_in_classic_versions() -> None:
    # ApiVersionsResponse v2 is not flexible: its tagged fields do not exist
    codec = ALL[18].response_codec(2)
    raw = codec.encode({"error_code": 0, "api_keys": [], "throttle_time_ms": 0, "finalized_features_epoch": 5})
    assert raw == b"\x00\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
    decoded = codec.decode(raw, exact=True)
    assert decoded.finalized_features_epoch == -1
    assert decoded.supported_features is None


# --- garbage in, DecodeError out ----------------------------------------------------

DECODERS = [
    pytest.param(api, side, id=f"{api.name}-{side}") for api in ALL.values() for side in ("request", "response")
]


def _only_decode_errors(codec: MessageCodec, raw: bytes) -> None:
    # the compiled decoder accepts exactly what the constructs accept, and reads the same
    while codec._fast_decode is None:
        codec._compile_decoder()
    try:
        reference: tuple[Any, int] | None = constructs_decode(codec, raw)
    except DecodeError:
        reference = None
    try:
        fast: tuple[Any, int] | None = codec._fast_decode(raw, 0)
    except Exception:
        fast = None
    if reference is None or fast is None:
        assert reference is None and fast is None, (reference, fast)
    else:
        assert plain(fast[0]) == plain(reference[0]) and fast[1] == reference[1]
    for exact in (False, True):
        try:
            decoded = codec.decode(raw, exact=exact)
        except DecodeError as exc:
            assert isinstance(exc.path, str)
            continue
        # whatever decoded must encode again, and be stable from then on
        again = codec.encode(decoded)
        assert plain(codec.decode(again, exact=True)) == plain(decoded)


@pytest.mark.parametrize(("api", "side"), DECODERS)
@FUZZ
@given(data=st.data(), garbage=st.binary(max_size=300))
def test_garbage_only_raises_decode_error(api: Api, side: str, data: st.DataObject, garbage: bytes) -> None:
    version = data.draw(st.integers(api.min_version, api.max_version), label="version")
    _, make_codec = _side(api, side)
    _only_decode_errors(make_codec(version), garbage)


@pytest.mark.parametrize(("api", "side"), DECODERS)
@FUZZ
@given(data=st.data())
def test_mutated_messages_only_raise_decode_error(api: Api, side: str, data: st.DataObject) -> None:
    version = data.draw(st.integers(api.min_version, api.max_version), label="version")
    fields, make_codec = _side(api, side)
    codec = make_codec(version)
    raw = bytearray(codec.encode(data.draw(struct_strategy(fields, version, codec.flexible), label="value")))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]), label="kind")
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="at")
        if kind == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and raw:
            raw[at] = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif kind == "cut":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=6))
    _only_decode_errors(codec, bytes(raw))


@FUZZ
@given(version=st.integers(0, 2), garbage=st.binary(max_size=60))
def test_garbage_request_header_only_raises_decode_error(version: int, garbage: bytes) -> None:
    try:
        header = read_request_header(io.BytesIO(garbage), version)
    except DecodeError:
        return
    assert isinstance(header.correlation_id, int)


# --- encoding invalid values is our own fault -------------------------------------


def _checkable(fields: Sequence[Field], v: int) -> list[Field]:
    # (booleans are left out: the codec encodes any truthy object as true)
    return [f for f in fields if is_fixed(f, v) and f.type != "bool"]


@pytest.mark.parametrize(
    ("api", "side", "version"), [p for p in CASES if _checkable(_side(*p.values[:2])[0], p.values[2])]
)
def test_bad_values_are_local_protocol_errors(api: Api, side: str, version: int) -> None:
    fields, make_codec = _side(api, side)
    codec = make_codec(version)
    for f in _checkable(fields, version):
        wrong: Any = object()
        with pytest.raises(LocalProtocolError):
            codec.encode({f.name: wrong})
