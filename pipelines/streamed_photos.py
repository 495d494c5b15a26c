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

Pairs of photos (``paired:PATH``'s A/ and B/, low- and high-resolution photos for an upscaler)
go the same way, a pair at a time: B's pixels to ``SPLIT.target.raw``, and the files hold
``targets`` (B's centres, aligned over A's when every pair has one whole ratio) and
``target_photos`` beside A's tensors, as a whole read writes them. A pair with an unreadable
file is left out whole, so the pairs stay aligned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from zoo.data.images import FORMATS, GRAY_MODES, UNREADABLE, convert_channels, read_image
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
    target_shapes: list[tuple[int, int, int]] = field(default_factory=list)
    """Of pairs: the B photos' shapes (``shapes`` are A's)."""
    target_gray: bool = True
    lost: int = 0
    """Of pairs: how many were left out for an unreadable file."""

    def raw_bytes(self, target: bool = False) -> int:
        return sum(c * h * w for c, h, w in (self.target_shapes if target else self.shapes))


def _raw(work: Path, split: str, target: bool = False) -> Path:
    """The raw file of one split's photos (``target``: of the B photos of pairs)."""
    return work / f"{split}.target.raw" if target else work / f"{split}.raw"


@dataclass
class _Crops:
    """Where the one-size windows (``images``, and ``targets`` of pairs) are cut."""

    centre: tuple[int, int]
    """Height and width of every photo's centre window: the smallest photo's."""
    target: tuple[int, int] = (0, 0)
    """Of pairs: the B windows' height and width."""
    scale: int = 0
    """Of pairs: B's window sits this many times where A's does (0: B's own centre)."""


def build(data: str, folder: Path, streamed: Streamed, channels: int | None, span: slice | None,
          classes: str | None, selection: dict[str, Any], console: Console) -> PreparedData:
    """Prepare the photos of ``streamed`` (or its pairs of photos) at their own sizes into
    ``folder``, draw the exploration pictures, say what was made, and return the training part."""
    from zoo.pipelines import prep, streamed_prep

    started = time.perf_counter()
    splits, names, notes = streamed_prep._plan(data, streamed, span, classes, prep, photos=True)
    work = folder.with_name(folder.name + ".partial")
    plan_id = hashlib.sha256(json.dumps(["photos", data, streamed.key, [i.name for i in streamed.items], channels,
                                         selection, streamed.pairs]).encode()).hexdigest()
    read = _resume(work, plan_id, console)
    try:
        for split, items in splits.items():
            _first_pass(work, split, streamed, items, data, read, plan_id, console)
        skipped = [s for r in read.values() for s in r.skipped]
        if skipped:
            notes.append(_skipped_note(skipped, sum(r.lost for r in read.values()), streamed))
            console.print(f"[yellow]warning:[/] {notes[-1]}")
        if not read["train"].shapes:
            what = (f"pairs in {streamed.origin} has both files readable as an image" if streamed.pairs
                    else f"files in {streamed.origin} could be read as an image")
            raise ZooError(f"none of the {len(streamed.items)} {what} (e.g. {skipped[0] if skipped else '?'}); "
                           f"zoo reads {FORMATS} files")
        depth = channels or (1 if all(r.gray and r.target_gray for r in read.values()) else 3)  # every file read
        read = {split: r for split, r in read.items() if r.shapes}
        crops = _crops(list(read.values()), streamed.pairs)
        for split, r in read.items():
            _second_pass(work, split, r, depth, crops, labelled=bool(names), pairs=streamed.pairs)
        _write_meta(work, data, streamed, names, notes, read, depth, crops.centre, selection)
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
        _raw(folder, split).unlink(missing_ok=True)
        _raw(folder, split, target=True).unlink(missing_ok=True)
    (folder / streamed_prep.PROGRESS).unlink(missing_ok=True)
    prepared = load_prepared(folder)
    figures.explore_data(prepared.images, prepared.labels, prepared.meta["class_names"], folder, title=data)
    held = prepared.meta["heldout"]
    held_text = f" (+ {held['count']:,} held out for evaluation)" if held else ""
    shape = prep._photo_shapes(prepared.photos) if prepared.photos is not None else "?"
    if prepared.target_photos is not None:
        figures.save_grid(prep._pair_rows(prepared), folder / "pairs.png", scale=2, row_labels=["A", "B"])
        shape += f" -> {prep._photo_shapes(prepared.target_photos)}"
    count = f"{len(prepared):,} pairs (A -> B)" if streamed.pairs else f"{len(prepared):,} photos"
    console.print(f"prepared {data}: {count}{held_text} of {shape}, read one {'pair' if streamed.pairs else 'photo'} "
                  f"at a time, in {time.perf_counter() - started:.1f}s -> {folder}")
    return prepared


def _skipped_note(skipped: list[str], lost: int, streamed: Streamed) -> str:
    if not streamed.pairs:
        return skipped_note(skipped, streamed.origin)
    return (f"skipped {lost} pair(s) of {streamed.origin} with an unreadable file: {', '.join(skipped[:5])}"
            + (" ..." if len(skipped) > 5 else ""))


def _crops(read: list[_Read], pairs: bool) -> _Crops:
    """The windows of every split, from every photo's shape: A's centres at the smallest A's
    size; B's, for pairs, over A's when every pair has one whole ratio, else B's own centres at
    the smallest B's size (as :func:`zoo.data.sources.pairs._aligned_centres` cuts them)."""
    shapes = [s for r in read for s in r.shapes]
    centre = (min(s[1] for s in shapes), min(s[2] for s in shapes))
    if not pairs:
        return _Crops(centre)
    targets = [s for r in read for s in r.target_shapes]
    ratios = {(b[1] / a[1], b[2] / a[2]) for a, b in zip(shapes, targets, strict=True)}
    ratio = next(iter(ratios)) if len(ratios) == 1 else None
    if ratio is not None and ratio[0] == ratio[1] == int(ratio[0]):
        scale = int(ratio[0])
        return _Crops(centre, (centre[0] * scale, centre[1] * scale), scale)
    return _Crops(centre, (min(s[1] for s in targets), min(s[2] for s in targets)))


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
            read[split] = r = _Read(**{**record, "shapes": [tuple(s) for s in record["shapes"]],
                                       "target_shapes": [tuple(s) for s in record["target_shapes"]]})
            for target in (False, True):
                if r.raw_bytes(target) and _raw(work, split, target).stat().st_size < r.raw_bytes(target):
                    raise ValueError("a raw file shorter than its record")
    except (OSError, ValueError, KeyError, TypeError):
        read = {}
    if any(r.done for r in read.values()):
        kept = {PROGRESS} | {_raw(work, split, target).name for split in read for target in (False, True)}
        for path in work.iterdir():  # a half-written second pass, a temporary file
            if path.name not in kept:
                path.unlink()
        for split, r in read.items():
            for target in (False, True):  # a photo half-appended when it was killed
                if _raw(work, split, target).exists():
                    os.truncate(_raw(work, split, target), r.raw_bytes(target))
        console.print(f"resuming an interrupted prep: {sum(r.done for r in read.values()):,} photos read kept")
        return read
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return {}


def _first_pass(work: Path, split: str, streamed: Streamed, items: Sequence[Item], data: str,
                read: dict[str, _Read], plan_id: str, console: Console) -> None:
    """Decode each photo (or pair) not yet read and append its RGB pixels to ``SPLIT.raw`` (and
    B's to ``SPLIT.target.raw``), recording the progress every :data:`SAVE_SECONDS` and at the end."""
    r = read.setdefault(split, _Read())
    with contextlib.ExitStack() as stack, progress_bar(console, transient=True, disable=len(items) < 20) as bar:
        out = stack.enter_context(_raw(work, split).open("ab"))
        target = stack.enter_context(_raw(work, split, True).open("ab")) if streamed.pairs else None
        task = bar.add_task(f"reading {data} ({split}), one {'pair' if target else 'photo'} at a time",
                            total=len(items), completed=r.done)
        saved = time.monotonic()
        for item in items[r.done:]:
            bar.advance(task)
            if target is None:
                _one_photo(streamed, item, r, out)
            else:
                _one_pair(item, r, out, target)
            r.done += 1
            if time.monotonic() - saved >= SAVE_SECONDS:
                _record(work, (out, target), read, plan_id)
                saved = time.monotonic()
        _record(work, (out, target), read, plan_id)


def _one_photo(streamed: Streamed, item: Item, r: _Read, out: Any) -> None:
    fitted = streamed.fitted(item, 0, 0)
    if isinstance(fitted, str):
        r.skipped.append(fitted)
        return
    picture, gray = fitted
    out.write(picture.contiguous().numpy().tobytes())
    r.shapes.append(tuple(picture.shape))  # type: ignore[arg-type]
    r.labels.append(item.label)
    r.gray &= gray


def _one_pair(item: Item, r: _Read, out: Any, target: Any) -> None:
    """Both photos of a pair, or neither (a file of it unreadable): the pairs stay aligned. A
    readable file's mode counts towards gray either way, as a whole read counts it."""
    read = []
    for side, path in zip("AB", item.where, strict=True):
        try:
            picture, mode, _ = read_image(Path(path), 0, 0)
        except UNREADABLE as exc:
            r.skipped.append(f"{side}/{Path(path).name} ({type(exc).__name__})")
            continue
        read.append(picture)
        if side == "A":
            r.gray &= mode in GRAY_MODES
        else:
            r.target_gray &= mode in GRAY_MODES
    if len(read) < 2:
        r.lost += 1
        return
    low, high = read
    out.write(low.contiguous().numpy().tobytes())
    target.write(high.contiguous().numpy().tobytes())
    r.shapes.append(tuple(low.shape))  # type: ignore[arg-type]
    r.target_shapes.append(tuple(high.shape))  # type: ignore[arg-type]


def _record(work: Path, raws: tuple[Any, ...], read: dict[str, _Read], plan_id: str) -> None:
    """The raw files on disk first, then the record that counts on them."""
    from zoo.pipelines.streamed_prep import PROGRESS

    for out in raws:
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    text = json.dumps({"plan": plan_id, "read": {split: asdict(r) for split, r in read.items()}})
    files.write_atomically(work / PROGRESS, lambda path: path.write_text(text, encoding="utf-8"), "prepared data")


class _RawPhotos:
    """One side's photos as the first pass appended them, read back one at a time in ``depth``
    channels (memory holds one photo)."""

    def __init__(self, raw: Path, shapes: list[tuple[int, int, int]], depth: int) -> None:
        self.pixels = np.memmap(raw, dtype=np.uint8, mode="r") if raw.stat().st_size else np.empty(0, np.uint8)
        self.raw_shapes, self.depth = shapes, depth
        self.starts = np.cumsum([0] + [c * h * w for c, h, w in shapes])
        self.shapes = torch.tensor([(depth, h, w) for _, h, w in shapes], dtype=torch.int64).view(-1, 3)

    def photo(self, i: int) -> torch.Tensor:
        c, h, w = self.raw_shapes[i]
        rgb = torch.from_numpy(np.array(self.pixels[self.starts[i]:self.starts[i + 1]])).view(1, c, h, w)  # a copy
        return convert_channels(rgb, self.depth)[0]

    def window(self, i: int, size: tuple[int, int], corner: tuple[int, int] | None = None) -> bytes:
        """Photo ``i``'s ``size`` window at ``corner`` (top, left; default: its centre)."""
        im = self.photo(i)
        top, left = corner or ((im.shape[1] - size[0]) // 2, (im.shape[2] - size[1]) // 2)
        return im[:, top:top + size[0], left:left + size[1]].contiguous().numpy().tobytes()

    def all_pixels(self) -> Iterator[bytes]:
        return (self.photo(i).contiguous().numpy().tobytes() for i in range(len(self.raw_shapes)))


def _second_pass(work: Path, split: str, read: _Read, depth: int, crops: _Crops, labelled: bool,
                 pairs: bool) -> None:
    """Write one split's safetensors file from its raw pixels: the same tensors, the same
    checksum, as :func:`zoo.records.files.save_tensors` of the photos read whole."""
    n, (height, width) = len(read.shapes), crops.centre
    low = _RawPhotos(_raw(work, split), read.shapes, depth)
    small = {"photos.shapes": low.shapes, **({"labels": torch.tensor(read.labels, dtype=torch.int64)}
                                           if labelled else {})}
    large: dict[str, tuple[tuple[int, ...], Iterator[bytes]]] = {
        "images": ((n, depth, height, width), (low.window(i, crops.centre) for i in range(n))),
        "photos.pixels": ((int(low.shapes.prod(1).sum()),), low.all_pixels())}
    if pairs:
        high = _RawPhotos(_raw(work, split, True), read.target_shapes, depth)

        def corner(i: int) -> tuple[int, int] | None:  # over A's centre window, scale times as far in
            _, h, w = read.shapes[i]
            return ((h - height) // 2 * crops.scale, (w - width) // 2 * crops.scale) if crops.scale else None

        small["target_photos.shapes"] = high.shapes
        large["targets"] = ((n, depth, *crops.target), (high.window(i, crops.target, corner(i)) for i in range(n)))
        large["target_photos.pixels"] = ((int(high.shapes.prod(1).sum()),), high.all_pixels())
    _write_tensors(work / SPLIT_FILES[split], small, large)


def _write_tensors(path: Path, small: dict[str, torch.Tensor],
                   large: dict[str, tuple[tuple[int, ...], Iterator[bytes]]]) -> None:
    """A safetensors file of int64 ``small`` tensors (in memory) and uint8 ``large`` ones (a
    shape and their bytes, a piece at a time), with the header's checksum computed as they are
    written: the file :func:`zoo.records.files.save_tensors` writes of the same tensors."""
    order = [*sorted(small), *sorted(large)]  # 8-byte values first: every tensor starts aligned
    header: dict[str, object] = {"__metadata__": {files.CHECKSUM: PLACEHOLDER}}
    offset = 0
    for name in order:
        shape = tuple(small[name].shape) if name in small else large[name][0]
        nbytes = int(np.prod(shape, dtype=np.int64)) * (8 if name in small else 1)
        header[name] = {"dtype": "I64" if name in small else "U8", "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    digest = hashlib.sha256(b"")  # files.checksum: each tensor by name, in name order
    tmp = files.new_file_beside(path)
    try:
        with tmp.open("wb") as out:
            out.write(struct.pack("<Q", len(text)) + text)
            for name in sorted(small):
                out.write(small[name].numpy().tobytes())
            for name in sorted(order):  # the large ones in name order are also in file order
                if name in small:
                    digest.update(f"{name}|{torch.int64}|{tuple(small[name].shape)}|".encode())
                    digest.update(small[name].numpy().tobytes())
                    continue
                digest.update(f"{name}|{torch.uint8}|{large[name][0]}|".encode())
                for data in large[name][1]:
                    _write(out, data, digest)
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


def _write_meta(work: Path, data: str, streamed: Streamed, names: list[str], notes: list[str],
                read: dict[str, _Read], depth: int, centre: tuple[int, int], selection: dict) -> None:
    train, held = read["train"], read.get("heldout")
    counts = torch.bincount(torch.tensor(train.labels), minlength=len(names)).tolist() if names else []
    paired = streamed.pairs
    meta = {
        "format": PREPARED_FORMAT, "name": data, "origin": streamed.origin, "split": "train" if paired else "all",
        "count": len(train.shapes), "channels": depth, "height": centre[0], "width": centre[1],
        "class_names": names, "class_counts": counts, "selection": selection, "pairing": "paired" if paired else "",
        "domains": ["A", "B"] if paired else [], "target_count": len(train.target_shapes), "full_size": True,
        "heldout": {"count": len(held.shapes), "split": "heldout", "origin": streamed.origin,
                    "target_count": len(held.target_shapes)} if held is not None else None,
        "notes": notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    files.write_atomically(work / "meta.json", lambda path: path.write_text(json.dumps(meta, indent=2),
                                                                            encoding="utf-8"), "prepared data")
