"""Read an offline W&B run file (``run-ID.wandb``) without a W&B account or server.

The file is W&B's documented record log: a 7-byte header (":W&B", magic, version), then
leveldb-log blocks of 32 KiB whose records (CRC, length, type) carry protobuf ``Record``s.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # the rest of a block too small for a header is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        body = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind in (FULL, FIRST):
            pending = body
        else:
            pending += body
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def finished_records(path: Path, patience: float = 60.0) -> list:
    """The records of a run once W&B's service has written its ``exit`` record: the service
    writes the file from its own process, so a run just finished may not be on disk yet."""
    deadline = time.monotonic() + patience
    while True:
        records = read_records(path)
        if any(record.WhichOneof("record_type") == "exit" for record in records):
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record after {patience:.0f} s"
        time.sleep(0.2)


def summarise(path: Path) -> dict:
    """History keys, config keys, summary keys and logged artifacts of a finished run file."""
    history, config, artifacts, summary = set(), {}, [], set()
    for record in finished_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.update(item.key or item.nested_key[0] for item in record.history.item)
        elif kind in ("run", "config"):
            updates = record.run.config.update if kind == "run" else record.config.update
            config.update({item.key: json.loads(item.value_json) for item in updates})
        elif kind == "summary":
            summary.update(item.key or "/".join(item.nested_key) for item in record.summary.update)
        elif kind == "artifact":
            artifacts.append((record.artifact.type, [c.path for c in record.artifact.manifest.contents]))
    return {"history": history, "config": config, "artifacts": artifacts, "summary": summary}
