"""W&B's offline run files read back with W&B's own record schema (`run-<id>.wandb`).

W&B 0.31 ships no Python reader. The file is LevelDB's log format after a 7-byte header
(`:W&B`, a 2-byte magic, a version byte): 32 KiB blocks of records, each a 7-byte header
(CRC-32C, 2-byte little-endian length, type: FULL 1, FIRST 2, MIDDLE 3, LAST 4) and its bytes;
a record too short for a block's tail continues in the next (a tail under 7 bytes is padding).
A whole record is a serialized `wandb.proto.wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

HEADER, BLOCK, RECORD_HEADER = 7, 32 * 1024, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of a `.wandb` file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pending, pos = [], b"", HEADER
    while pos + RECORD_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD_HEADER:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + RECORD_HEADER])
        chunk = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind == 0 and length == 0:  # zero fill at the end of a block
            continue
        if kind in (FULL, FIRST):
            pending = chunk
        else:
            pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def _value(item: Any) -> Any:
    return json.loads(item.value_json)


def _key(item: Any) -> str:
    """An item's key: `key`, or its `nested_key` path (what W&B 0.31 writes) joined by dots."""
    return item.key or ".".join(item.nested_key)


@dataclass
class Run:
    """What one offline run file holds: the run record, its config, its summary and history."""

    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False

    @classmethod
    def read(cls, path: Path) -> Run:
        """Read a `run-<id>.wandb` file."""
        run = cls(path)
        for record in records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                r = record.run
                run.run_id, run.name, run.group = r.run_id, r.display_name, r.run_group
                run.job_type, run.tags, run.resumed = r.job_type, list(r.tags), r.resumed
                run.config |= {_key(i): _value(i) for i in r.config.update}
            elif kind == "config":
                run.config |= {_key(i): _value(i) for i in record.config.update}
            elif kind == "summary":
                run.summary |= {_key(i): _value(i) for i in record.summary.update}
            elif kind == "history":
                run.history.append({_key(i): _value(i) for i in record.history.item})
        return run


def runs(root: Path) -> list[Run]:
    """Every offline run under `root` (`**/wandb/offline-run-*/run-*.wandb`), in path order."""
    return [Run.read(p) for p in sorted(root.rglob("offline-run-*/run-*.wandb"))]
