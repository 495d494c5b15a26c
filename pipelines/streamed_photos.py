"""Full-size photos (``--size full``, super-resolution's data) prepared in bounded memory.

The files are those a prep that reads the photos whole writes (``data.safetensors`` and
``heldout.safetensors``: the photos' pixels end to end, their shapes, their centres cut to
the smallest photo's size, their labels), so everything that reads prepared photos reads
these. They are written one photo at a time, in two passes:

1. each photo is decoded, upright and in RGB, and its pixels appended to a plain file
   (``SPLIT.raw``) in the work folder, its shape and mode noted;
2. once every photo is read (the smallest size and whether all were gray are known then),
   the safetensors file is written: the header, then each tensor's bytes, read back photo
   by photo from the raw file, with the checksum :func:`zoo.records.files.checksum` gives
   computed as they are written and patched into the header at the end.

Memory holds one photo at a time, whatever the set's size; the disk holds the set twice
while the second pass runs. Training maps a file larger than
:data:`zoo.data.mapped.IN_MEMORY_MB` from disk (:func:`zoo.data.memory.load_prepared`).

The work is done in ``FOLDER.partial``; every :data:`SAVE_SECONDS` the first pass syncs its raw
file and records in ``progress.json`` how many photos it has read and what it learnt of them.
A prep killed at any moment starts again after the last photo recorded (the raw file cut
back to it), and gives the same files as one that ran through; the second pass, a rewrite of
what is on disk, is simply done again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from zoo.data.images import FORMATS, convert_channels
from zoo.data.memory import PREPARED_FORMAT, SPLIT_FILES, PreparedData, load_prepared
from zoo.data.sources.folder import skipped_note
from zoo.data.sources.streamed import Item, Streamed
from zoo.display import figures
from zoo.display.console import progress_bar
from zoo.errors import ZooError
from zoo.records import files

PLACEHOLDER = "0" * 64
"""The checksum's place in the header until the tensors are written (a sha256 is 64 hex digits)."""
SAVE_SECONDS = 2.0
"""How often the first pass records its progress: at most this much reading is done again
after a kill."""


@dataclass
class _Read:
    """What the first pass learnt of one split's photos, the first ``done`` of its items."""

    shapes: list[tuple[int, int, int]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    gray: bool = True
    skipped: list[str] = field(default_factory=list)
    done: int = 0

    def raw_bytes(self) -> int:
        return sum(c * h * w for c, h, w in self.shapes)


def build(data: str, folder: Path, streamed: Streamed, channels: int | None, span: slice | None,
          classes: str | None, subset: str | None, console: Console) -> PreparedData:
    """Prepare the photos of ``streamed`` at their own sizes into ``folder``, draw the
    exploration pictures, say what was made, and return the training part."""
    from zoo.pipelines import prep, streamed_prep

    started = time.perf_counter()
    splits, names, notes = streamed_prep._plan(data, streamed, span, classes, prep, photos=True)
    work = folder.with_name(folder.name + ".partial")
    plan_id = hashlib.sha256(json.dumps(["photos", data, streamed.key, [i.name for i in streamed.items], channels,
                                         subset, classes]).encode()).hexdigest()
    read = _resume(work, plan_id, console)
    try:
        for split, items in splits.items():
            _first_pass(work, split, streamed, items, data, read, plan_id, console)
        skipped = [s for r in read.values() for s in r.skipped]
        if skipped:
            notes.append(skipped_note(skipped, streamed.origin))
            console.print(f"[yellow]warning:[/] {notes[-1]}")
        if not read["train"].shapes:
            raise ZooError(f"none of the {len(streamed.items)} files in {streamed.origin} could be read as an "
                           f"image (e.g. {skipped[0] if skipped else '?'}); zoo reads {FORMATS} files")
        read = {split: r for split, r in read.items() if r.shapes}
        depth = channels or (1 if all(r.gray for r in read.values()) else 3)
        every = [shape for r in read.values() for shape in r.shapes]
        centre = (min(s[1] for s in every), min(s[2] for s in every))
        for split, r in read.items():
            _second_pass(work / f"{split}.raw", work / SPLIT_FILES[split], r, depth, centre, labelled=bool(names))
        _write_meta(work, data, streamed.origin, names, notes, read, depth, centre,
                    {"classes": classes, "subset": subset, "direction": None})
    except BaseException as exc:
        full = exc if isinstance(exc, files.DiskFull) else \
            files.disk_full(exc, folder, "prepared data", existed=(folder / "meta.json").exists())
        if full is not None or isinstance(exc, ZooError):  # the space back; or refused: nothing to resume
            shutil.rmtree(work, ignore_errors=True)
        if full is not None:
            raise full from None
        raise  # killed or stopped: the photos read so far stay for the next prep to resume from
    files.swap_in(work, folder)  # with the raw files and the record: a kill within it leaves them to resume from
    for split in splits:  # (a kill here leaves them in the cache folder: its next read removes them)
        (folder / f"{split}.raw").unlink(missing_ok=True)
    (folder / streamed_prep.PROGRESS).unlink(missing_ok=True)
    prepared = load_prepared(folder)
    figures.explore_data(prepared.images, prepared.labels, prepared.meta["class_names"], folder, title=data)
    held = prepared.meta["heldout"]
    held_text = f" (+ {held['count']:,} held out for evaluation)" if held else ""
    shape = prep._photo_shapes(prepared.photos) if prepared.photos is not None else "?"
    console.print(f"prepared {data}: {len(prepared):,} photos{held_text} of {shape}, read one at a time, in "
                  f"{time.perf_counter() - started:.1f}s -> {folder}")
    return prepared


def _resume(work: Path, plan_id: str, console: Console) -> dict[str, _Read]:
    """What a cut-short prep of the same plan had read, its raw files cut back to it; a
    fresh ``work`` folder otherwise."""
    from zoo.pipelines.streamed_prep import PROGRESS

    read: dict[str, _Read] = {}
    try:
        progress = json.loads((work / PROGRESS).read_text(encoding="utf-8"))
        if progress["plan"] != plan_id:
            raise ValueError("another plan")
        for split, record in progress["read"].items():
            read[split] = _Read(**{**record, "shapes": [tuple(s) for s in record["shapes"]]})
            if (work / f"{split}.raw").stat().st_size < read[split].raw_bytes():
                raise ValueError("a raw file shorter than its record")
    except (OSError, ValueError, KeyError, TypeError):
        read = {}
    if any(r.done for r in read.values()):
        kept = {PROGRESS} | {f"{split}.raw" for split in read}
        for path in work.iterdir():  # a half-written second pass, a temporary file
            if path.name not in kept:
                path.unlink()
        for split, r in read.items():
            os.truncate(work / f"{split}.raw", r.raw_bytes())  # a photo half-appended when it was killed
        console.print(f"resuming an interrupted prep: {sum(r.done for r in read.values()):,} photos read kept")
        return read
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return {}


def _first_pass(work: Path, split: str, streamed: Streamed, items: Sequence[Item], data: str,
                read: dict[str, _Read], plan_id: str, console: Console) -> None:
    """Decode each photo not yet read and append its RGB pixels to ``SPLIT.raw``, recording
    the progress every :data:`SAVE_SECONDS` and at the end."""
    r = read.setdefault(split, _Read())
    with (work / f"{split}.raw").open("ab") as out, \
            progress_bar(console, transient=True, disable=len(items) < 20) as bar:
        task = bar.add_task(f"reading {data} ({split}), one photo at a time", total=len(items), completed=r.done)
        saved = time.monotonic()
        for item in items[r.done:]:
            fitted = streamed.fitted(item, 0, 0)
            bar.advance(task)
            if isinstance(fitted, str):
                r.skipped.append(fitted)
            else:
                picture, gray = fitted
                out.write(picture.contiguous().numpy().tobytes())
                r.shapes.append(tuple(picture.shape))  # type: ignore[arg-type]
                r.labels.append(item.label)
                r.gray &= gray
            r.done += 1
            if time.monotonic() - saved >= SAVE_SECONDS:
                _record(work, out, read, plan_id)
                saved = time.monotonic()
        _record(work, out, read, plan_id)


def _record(work: Path, out: Any, read: dict[str, _Read], plan_id: str) -> None:
    """The raw file on disk first, then the record that counts on it."""
    from zoo.pipelines.streamed_prep import PROGRESS

    out.flush()
    os.fsync(out.fileno())
    text = json.dumps({"plan": plan_id, "read": {split: asdict(r) for split, r in read.items()}})
    files.write_atomically(work / PROGRESS, lambda path: path.write_text(text, encoding="utf-8"), "prepared data")


def _second_pass(raw: Path, path: Path, read: _Read, depth: int, centre: tuple[int, int], labelled: bool) -> None:
    """Write one split's safetensors file from its raw pixels: the same tensors, the same
    checksum, as :func:`zoo.records.files.save_tensors` of the photos read whole."""
    n = len(read.shapes)
    height, width = centre
    shapes = torch.tensor([(depth, h, w) for _, h, w in read.shapes], dtype=torch.int64)
    labels = torch.tensor(read.labels, dtype=torch.int64)
    small = {"labels": labels, "photos.shapes": shapes} if labelled else {"photos.shapes": shapes}
    sizes = {"images": (n, depth, height, width), "photos.pixels": (int(shapes.prod(1).sum()),)}
    order = [*small, *sizes]  # 8-byte values first: every tensor starts aligned
    header: dict[str, object] = {"__metadata__": {files.CHECKSUM: PLACEHOLDER}}
    offset = 0
    for name in order:
        shape = tuple(small[name].shape) if name in small else sizes[name]
        nbytes = int(np.prod(shape, dtype=np.int64)) * (8 if name in small else 1)
        header[name] = {"dtype": "I64" if name in small else "U8", "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    pixels = np.memmap(raw, dtype=np.uint8, mode="r") if raw.stat().st_size else np.empty(0, np.uint8)
    starts = np.cumsum([0] + [c * h * w for c, h, w in read.shapes])

    def photo(i: int) -> torch.Tensor:
        c, h, w = read.shapes[i]
        rgb = torch.from_numpy(np.array(pixels[starts[i]:starts[i + 1]])).view(1, c, h, w)  # one photo's copy
        return convert_channels(rgb, depth)[0]

    def centre_of(i: int) -> torch.Tensor:
        im = photo(i)
        top, left = (im.shape[1] - height) // 2, (im.shape[2] - width) // 2
        return im[:, top:top + height, left:left + width].contiguous()

    digest = hashlib.sha256(b"")  # files.checksum: each tensor by name, in name order

    def name_line(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        digest.update(f"{name}|{dtype}|{shape}|".encode())

    tmp = files.new_file_beside(path)
    try:
        with tmp.open("wb") as out:
            out.write(struct.pack("<Q", len(text)) + text)
            for name in small:
                out.write(small[name].numpy().tobytes())
            name_line("images", sizes["images"], torch.uint8)
            for i in range(n):
                _write(out, centre_of(i).numpy().tobytes(), digest)
            if labelled:
                name_line("labels", tuple(labels.shape), torch.int64)
                digest.update(labels.numpy().tobytes())
            name_line("photos.pixels", sizes["photos.pixels"], torch.uint8)
            for i in range(n):
                _write(out, photo(i).contiguous().numpy().tobytes(), digest)
            name_line("photos.shapes", tuple(shapes.shape), torch.int64)
            digest.update(shapes.numpy().tobytes())
            out.seek(8 + text.index(PLACEHOLDER.encode()))
            out.write(digest.hexdigest().encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write(out: Any, data: bytes, digest: Any) -> None:
    out.write(data)
    digest.update(data)


def _write_meta(work: Path, data: str, origin: str, names: list[str], notes: list[str], read: dict[str, _Read],
                depth: int, centre: tuple[int, int], selection: dict) -> None:
    train, held = read["train"], read.get("heldout")
    counts = torch.bincount(torch.tensor(train.labels), minlength=len(names)).tolist() if names else []
    meta = {
        "format": PREPARED_FORMAT, "name": data, "origin": origin, "split": "all", "count": len(train.shapes),
        "channels": depth, "height": centre[0], "width": centre[1], "class_names": names,
        "class_counts": counts, "selection": selection, "pairing": "", "domains": [], "target_count": 0,
        "full_size": True,
        "heldout": {"count": len(held.shapes), "split": "heldout", "origin": origin, "target_count": 0}
        if held is not None else None,
        "notes": notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    files.write_atomically(work / "meta.json", lambda path: path.write_text(json.dumps(meta, indent=2),
                                                                            encoding="utf-8"), "prepared data")
