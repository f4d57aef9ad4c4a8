"""Committed group offsets in a data directory: one append-only file of JSON lines.

``meta/group-offsets.log`` gets a line per commit (and per deleted group),
compacted when it is mostly superseded lines; a torn last line is skipped.
A part of `DiskStore` (kstub/cluster/disk_store.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import trio

from .log_files import _write_all, write_atomically
from .storage import GroupOffsets

log = logging.getLogger("kstub.storage")


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskGroupOffsets:
    """The group-offsets file of a `DiskStore`: save, delete, load (and compact), sync."""

    # kept by `DiskStore`, as is its _open()
    meta_dir: Path
    fsync_on_ack: bool
    _offsets_fd: int | None
    _offsets_dirty: bool

    def _offsets_file(self) -> int:
        if self._offsets_fd is None:
            self._open()
            self._offsets_fd = os.open(
                self.meta_dir / "group-offsets.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        return self._offsets_fd

    def save_offsets(self, group: str, offsets: Mapping[tuple[str, int], tuple[int, int, str | None] | None]) -> None:
        entries = [
            [topic, partition, None, None, None] if value is None else [topic, partition, *value]
            for (topic, partition), value in offsets.items()
        ]
        line = json.dumps({"group": group, "offsets": entries}, separators=(",", ":")) + "\n"
        _write_all(self._offsets_file(), line.encode())
        self._offsets_dirty = True

    def delete_group(self, group: str) -> None:
        line = json.dumps({"group": group, "deleted": True}, separators=(",", ":")) + "\n"
        _write_all(self._offsets_file(), line.encode())
        self._offsets_dirty = True

    def load_offsets(self) -> dict[str, GroupOffsets]:
        self._open()
        path = self.meta_dir / "group-offsets.log"
        groups: dict[str, GroupOffsets] = {}
        lines = 0
        try:
            text = path.read_text()
        except FileNotFoundError:
            return groups
        for raw in text.split("\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                log.warning("%s: skipping a torn line", path)
                continue
            lines += 1
            group = record["group"]
            if record.get("deleted"):
                groups.pop(group, None)
                continue
            offsets = groups.setdefault(group, {})
            for topic, partition, offset, epoch, metadata in record["offsets"]:
                if offset is None:
                    offsets.pop((topic, partition), None)
                else:
                    offsets[(topic, partition)] = (offset, epoch, metadata)
        live = sum(len(o) for o in groups.values())
        if lines > 2 * len(groups) + 100 and lines > 2 * live:
            self._compact_offsets(groups)
        return groups

    def _compact_offsets(self, groups: dict[str, GroupOffsets]) -> None:
        if self._offsets_fd is not None:
            os.close(self._offsets_fd)
            self._offsets_fd = None
        text = "".join(
            json.dumps({"group": g, "offsets": [[t, p, *v] for (t, p), v in offsets.items()]}, separators=(",", ":"))
            + "\n"
            for g, offsets in groups.items()
        )
        write_atomically(self.meta_dir / "group-offsets.log", text.encode())

    async def sync_offsets(self) -> None:
        if self.fsync_on_ack and self._offsets_dirty and self._offsets_fd is not None:
            self._offsets_dirty = False
            fd = os.dup(self._offsets_fd)
            await trio.to_thread.run_sync(_fsync_close, fd)
