"""Browsing a partition's records for the console: ``GET /v1/topics/T/partitions/P/records?offset=N``.

As a consumer would see them (below the high watermark, from the leader's
log), a page at a time and bounded whatever the data: at most `MAX_READ`
stored bytes are read (at least one batch, as a fetch), at most ``limit``
records are decoded (compressed batches are inflated a chunk at a time by
kstub's record readers and never past the last record shown), keys, values
and header values are cut to ``max_bytes`` each (their full size is given),
and the decoding runs in a worker thread so that the brokers keep serving.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from kstub.cluster.segments import batch_header
from kstub.control import ControlError
from kstub.protocol.records import iter_records
from kstub.protocol.records.control import read_marker

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterState

#: stored bytes read for one page (more only if a single batch is larger: it is read whole, as a fetch would)
MAX_READ = 1024 * 1024
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
DEFAULT_MAX_BYTES = 1024
MAX_MAX_BYTES = 64 * 1024


@dataclass
class Page:
    topic: str
    partition: int
    offset: int
    log_start_offset: int
    high_watermark: int
    leader: int
    chunks: list[bytes]
    max_record_bytes: int


def _shown(data: bytes | None, max_bytes: int) -> dict[str, Any] | None:
    """A key, value or header value: as text if it is UTF-8, else base64; cut to `max_bytes`."""
    if data is None:
        return None
    cut = data[:max_bytes]
    out: dict[str, Any] = {"size": len(data), "truncated": len(data) > max_bytes}
    try:
        out["text"] = cut.decode("utf-8")
    except UnicodeDecodeError as exc:
        if out["truncated"] and exc.start >= len(cut) - 3:  # a character cut in two at the end
            out["text"] = cut[: exc.start].decode("utf-8")
        else:
            out["base64"] = base64.b64encode(cut).decode("ascii")
    return out


def read_page(cluster: ClusterState, topic: str, partition: int, offset: int | None) -> Page:
    """The stored batches from `offset` (None: the log start), copied on the Trio thread."""
    p = cluster.partition(topic, partition)
    if p is None:
        raise ControlError(f"no partition {topic}-{partition}", 404)
    if p.leader < 0:
        raise ControlError(f"{topic}-{partition} has no leader", 409)
    leader_log = p.leader_log
    start, hw = leader_log.log_start_offset, p.high_watermark
    at = start if offset is None else max(offset, start)
    chunks = [] if at >= hw else leader_log.read(at, MAX_READ, hw)
    data = [bytes(c.data) for c in chunks]
    return Page(topic, partition, at, start, hw, p.leader, data, leader_log.max_record_bytes())


def decode_page(page: Page, limit: int, max_bytes: int) -> dict[str, Any]:
    """The page's records from its offset, at most `limit` (thread-safe: touches no model)."""
    records: list[dict[str, Any]] = []
    next_offset = page.offset
    for data in page.chunks:
        batch = batch_header(data)
        if batch is not None and batch.last_offset < page.offset:
            continue
        if batch is not None and batch.is_control:
            marker = read_marker(batch)
            records.append(
                {
                    "offset": batch.base_offset,
                    "control": "commit" if marker and marker.commit else "abort",
                    "producer_id": batch.producer_id,
                    "timestamp": batch.max_timestamp,
                }
            )
            next_offset = batch.last_offset + 1
        else:
            # decoded a record at a time (compressed data inflated a chunk at a time), none larger than
            # the topic's max.decompressed.message.bytes
            source = batch._walk(True, page.max_record_bytes) if batch is not None else iter_records(data)
            for r in source:
                if r.offset < page.offset:
                    continue
                if len(records) >= limit:
                    break
                records.append(
                    {
                        "offset": r.offset,
                        "timestamp": r.timestamp,
                        "key": _shown(r.key, max_bytes),
                        "value": _shown(r.value, max_bytes),
                        "headers": [[k, _shown(v, max_bytes)] for k, v in r.headers],
                    }
                )
                next_offset = r.offset + 1
            else:
                if batch is not None:
                    next_offset = max(next_offset, batch.last_offset + 1)
                continue
            break
        if len(records) >= limit:
            break
    return {
        "topic": page.topic,
        "partition": page.partition,
        "offset": page.offset,
        "log_start_offset": page.log_start_offset,
        "high_watermark": page.high_watermark,
        "leader": page.leader,
        "records": records,
        "next_offset": min(next_offset, page.high_watermark) if records else page.offset,
    }


async def browse(
    cluster: ClusterState,
    topic: str,
    partition: int,
    offset: int | None = None,
    limit: int = DEFAULT_LIMIT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ControlError(f"limit must be between 1 and {MAX_LIMIT}")
    if not 0 <= max_bytes <= MAX_MAX_BYTES:
        raise ControlError(f"max_bytes must be between 0 and {MAX_MAX_BYTES}")
    if offset is not None and offset < 0:
        raise ControlError("offset must be >= 0")
    page = read_page(cluster, topic, partition, offset)
    try:
        return await trio.to_thread.run_sync(decode_page, page, limit, max_bytes)
    except Exception as exc:  # BatchError: data that does not decode (a codec missing, corrupt bytes)
        raise ControlError(f"records at {topic}-{partition}@{page.offset} do not decode: {exc}", 422) from None
