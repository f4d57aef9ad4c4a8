"""Fuzzing the server-side request decoder of every API at every version, in-process.

The property (h11-style): whatever bytes arrive, `ServerConnection` either
returns a request or raises the codec's own `ProtocolError` (which closes
that one connection); a Produce request's records then either pass
`read_produce_data` or raise its `BatchError`. Any other exception is a bug.
Frames come from `fuzzlib`: generated from each declaration, mutated from the
seed corpus (requests captured from real clients), and Produce frames whose
record batches are mutated with their CRC fixed up. ``python3 dev.py fuzz``
runs the same makers for minutes instead of these bounded examples.
"""

from __future__ import annotations

import random
import struct

import pytest
from fuzzlib import (
    CORPUS,
    PRODUCE,
    check_decode,
    generate,
    load_seeds,
    make_frame,
    mutate,
    mutate_records,
    seed_coverage,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstub.handlers import served_apis
from kstub.protocol.connection import NEED_DATA, ServerConnection
from kstub.protocol.errors import ProtocolError
from kstub.protocol.messages import ALL
from kstub.protocol.schema import Api

BOUNDED = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
SEEDS = load_seeds()
RANDOMS = st.randoms(use_true_random=False)

API_VERSIONS = [
    pytest.param(api, v, id=f"{api.name}-v{v}")
    for api in ALL.values()
    for v in range(api.min_version, api.max_version + 1)
]


def test_every_served_api_has_seeds_from_real_clients() -> None:
    covered = seed_coverage(SEEDS)
    missing = sorted(api.name for key, api in served_apis().items() if key not in covered)
    assert not missing, f"no captured frame for {missing}: see tests/fuzz/capture_corpus.py"


@pytest.mark.parametrize("path", sorted(p.name for p in CORPUS.glob("*.bin")))
def test_corpus_frames_decode(path: str) -> None:
    """Each corpus file is a whole request frame that kstub decodes (else it seeds nothing useful)."""
    seed = next(s for s in SEEDS if s.name == f"corpus/{path}")
    outcome = check_decode(seed.frame)
    assert outcome.startswith("decoded: ") or outcome == "unsupported version", outcome


@pytest.mark.parametrize(("api", "version"), API_VERSIONS)
@BOUNDED
@given(rnd=RANDOMS)
def test_generated_and_mutated_frames(api: Api, version: int, rnd: random.Random) -> None:
    frame = generate(api, version, rnd)
    assert check_decode(frame) == f"decoded: {api.name} v{version}"
    for _ in range(20):
        check_decode(mutate(frame, rnd, [s.frame for s in SEEDS]))


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
@BOUNDED
@given(rnd=RANDOMS)
def test_mutated_seeds(seed, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    others = [s.frame for s in SEEDS]
    for _ in range(40):
        check_decode(mutate(seed.frame, rnd, others))


@pytest.mark.parametrize("seed", [s for s in SEEDS if s.api_key == PRODUCE], ids=lambda s: s.name)
@settings(BOUNDED, max_examples=30)
@given(rnd=RANDOMS)
def test_mutated_record_batches(seed, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    frame = mutate_records(seed.frame, rnd)
    assert frame is not None
    check_decode(frame)


@settings(BOUNDED, max_examples=60)
@given(rnd=RANDOMS)
def test_byte_stream_in_random_pieces(rnd: random.Random) -> None:
    """Frames back to back, fed in random pieces: the same requests, or the same error, as frame by frame."""
    frames = [make_frame(rnd, SEEDS) for _ in range(rnd.randint(1, 6))]
    expected = []
    for frame in frames:
        outcome = check_decode(frame)
        expected.append(outcome)
        if outcome.startswith("rejected"):
            break
    data = b"".join(struct.pack(">i", len(f)) + f for f in frames)
    conn = ServerConnection(max_frame=1 << 20)
    seen: list[str] = []
    pos = 0
    try:
        while pos < len(data):
            step = rnd.randint(1, 300)
            conn.receive_data(data[pos : pos + step])
            pos += step
            while (request := conn.next_request()) is not NEED_DATA:
                seen.append("unsupported version" if request.unsupported_version else "decoded")
    except ProtocolError as exc:
        seen.append(f"rejected: {type(exc).__name__}")
    assert seen == [e.split(":")[0] if e.startswith("decoded") else e for e in expected]


@settings(BOUNDED, max_examples=100)
@given(prefix=st.binary(min_size=4, max_size=4), tail=st.binary(max_size=64))
def test_size_prefixes(prefix: bytes, tail: bytes) -> None:
    """Any size prefix (negative, huge, short) is waited for or refused, never trusted past the maximum."""
    conn = ServerConnection(max_frame=1 << 16)
    conn.receive_data(prefix + tail)
    try:
        request = conn.next_request()
    except ProtocolError:
        return
    (size,) = struct.unpack(">i", prefix)
    assert 0 <= size <= 1 << 16
    if request is NEED_DATA:
        assert len(tail) < size
