"""Decode request frames that real clients actually sent (``golden/*.bin``).

Every file in ``golden/`` is one request frame without its 4-byte size
prefix, named ``<client>_<api>_v<N>[.<label>].bin`` (see
``capture_golden.py``, which wrote the first ones). Each file found is tested
automatically:

* the name is well formed and agrees with the api key and version in the
  header;
* the header decodes with the header version kstub would pick for that
  request (v2 for flexible versions, v1 otherwise) and re-encodes to the same
  bytes;
* if kstub implements that version, the body decodes *exactly* (no trailing
  bytes) and the whole frame re-encodes byte for byte.

`EXPECTED` adds the concrete values seen in a capture. To add a golden:
drop the file in ``golden/``; add an `EXPECTED` entry with what the client
is known to have sent.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kstub.protocol.headers import read_request_header, request_header_codec
from kstub.protocol.messages import ALL

GOLDEN = Path(__file__).resolve().parent / "golden"
NAME = re.compile(
    r"^(?P<client>[a-z0-9][a-z0-9-]*)_(?P<api>[a-z][a-z_]*?)_v(?P<version>\d+)(?:\.(?P<label>[A-Za-z0-9-]+))?\.bin$"
)
FILES = sorted(GOLDEN.glob("*.bin"))


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


API_BY_NAME = {snake(api.name): api for api in ALL.values()}


@dataclass(frozen=True)
class Expect:
    """What a capture is known to contain."""

    header: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    #: for a version kstub does not implement: decode the body as this
    #: (implemented) version, whose layout it shares
    body_as: int | None = None
    #: for API keys kstub does not declare: which request header version
    header_version: int | None = None


#: file stem -> expected values
EXPECTED: dict[str, Expect] = {
    # kafka-python 3.0.12 probes with ApiVersions v4, above kstub's max (v3):
    # the "too new" case; the broker answers it with a v0 error body.
    # ApiVersionsRequest v4 has the same fields as v3.
    "kafka-python-producer_api_versions_v4": Expect(
        header={"correlation_id": 1, "client_id": "kafka-python-producer-1"},
        body={"client_software_name": "kafka-python", "client_software_version": "3.0.12"},
        body_as=3,
    ),
    "kafka-python-admin_api_versions_v4": Expect(
        header={"correlation_id": 1, "client_id": "kafka-python-3.0.12"},
        body={"client_software_name": "kafka-python", "client_software_version": "3.0.12"},
        body_as=3,
    ),
    # librdkafka 2.16.0 inside confluent-kafka 2.16.1
    "confluent-kafka_api_versions_v3": Expect(
        header={"correlation_id": 1, "client_id": "rdkafka"},
        body={"client_software_name": "confluent-kafka-python", "client_software_version": "2.16.1-rdkafka-2.16.0"},
    ),
    # kcat 1.7.1 on librdkafka 2.0.2
    "kcat_api_versions_v3": Expect(
        header={"correlation_id": 1, "client_id": "rdkafka"},
        body={"client_software_name": "librdkafka", "client_software_version": "2.0.2"},
    ),
    # aiokafka 0.14.0 always starts with ApiVersions v0 (empty body)
    "aiokafka_api_versions_v0": Expect(header={"correlation_id": 1, "client_id": "aiokafka-producer-1"}),
}


def test_golden_files_exist() -> None:
    assert GOLDEN.is_dir(), f"{GOLDEN} missing: run tests/protocol/capture_golden.py"
    stems = {p.stem for p in FILES}
    missing = set(EXPECTED) - stems
    assert not missing, f"EXPECTED names captures that are not in {GOLDEN}: {sorted(missing)}"
    # the first request of each client examined
    for client in ("kafka-python-producer", "confluent-kafka", "kcat", "aiokafka"):
        assert any(s.startswith(f"{client}_api_versions_v") for s in stems), client


def _name(path: Path) -> re.Match[str]:
    m = NAME.match(path.name)
    assert m, f"{path.name} is not <client>_<api>_v<N>[.<label>].bin"
    return m


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_golden_frame(path: Path) -> None:
    m = _name(path)
    raw = path.read_bytes()
    expect = EXPECTED.get(path.stem, Expect())
    key = int.from_bytes(raw[0:2], "big", signed=True)
    version = int.from_bytes(raw[2:4], "big", signed=True)
    assert version == int(m["version"]), "file name and header disagree on the version"
    api = ALL.get(key)
    if api is not None:
        assert m["api"] == snake(api.name), f"api key {key} is {api.name}, file says {m['api']}"
        header_version = api.request_header_version(version)
    else:
        assert m["api"] not in API_BY_NAME, f"{m['api']} is api key {API_BY_NAME[m['api']].key}, header says {key}"
        header_version = expect.header_version or 1

    # header
    stream = io.BytesIO(raw)
    header = read_request_header(stream, header_version)
    header_end = stream.tell()
    assert header.request_api_key == key
    assert header.request_api_version == version
    assert isinstance(header.correlation_id, int)
    assert header.client_id is None or isinstance(header.client_id, str)
    for name, value in expect.header.items():
        assert header[name] == value, f"header {name}"
    assert request_header_codec(header_version).encode(header) == raw[:header_end]

    # body
    if api is None:
        assert not expect.body, f"api key {key} is not declared: cannot check the body"
        return
    if api.supports(version):
        assert expect.body_as is None, f"v{version} is implemented: body_as is not needed"
        body_version = version
    else:
        assert version > api.max_version, f"v{version} below kstub's minimum v{api.min_version}"
        if expect.body_as is None:
            return  # a too-new request: the header is all a broker reads
        body_version = expect.body_as
    codec = api.request_codec(body_version)
    body = codec.decode(raw[header_end:], exact=True)
    for name, value in expect.body.items():
        assert body[name] == value, f"body {name}"
    assert request_header_codec(header_version).encode(header) + codec.encode(body) == raw


def test_too_new_api_versions_header_is_still_readable() -> None:
    """A v4 ApiVersions probe: kstub lacks v4, yet reads its header (v2, classic client_id)."""
    path = GOLDEN / "kafka-python-producer_api_versions_v4.bin"
    raw = path.read_bytes()
    api = ALL[18]
    assert not api.supports(4)
    assert api.request_header_version(4) == 2
    assert api.response_header_version(4) == 0
    header = read_request_header(io.BytesIO(raw), 2)
    assert (header.request_api_key, header.request_api_version) == (18, 4)
    # the client_id is an int16-length string even in header v2
    assert raw[8:10] == len("kafka-python-producer-1").to_bytes(2, "big")


def test_librdkafka_v3_body_bytes() -> None:
    """The compact strings and the empty tag sections, spelled out."""
    raw = (GOLDEN / "kcat_api_versions_v3.bin").read_bytes()
    assert raw == (
        bytes.fromhex("0012 0003 00000001")  # key 18, v3, correlation id 1
        + b"\x00\x07rdkafka"  # classic client_id
        + b"\x00"  # header tags
        + b"\x0blibrdkafka"  # compact string: length + 1
        + b"\x062.0.2"
        + b"\x00"  # body tags
    )
