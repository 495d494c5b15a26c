"""Prepare a data set once: find it, read it, resize it, cache it, and draw what is in it.

The result is a folder in the user cache holding ``data.safetensors`` (images as one uint8
tensor, labels as one int64 tensor), ``meta.json`` (source, split, size, channels, class
names and counts) and the exploration pictures of seed 003: per-pixel mean / std / min /
max images, per-channel histograms, class counts and a sample grid. Training reads only
the tensor files. Folders and tar shards are read one image at a time into shards instead
(``train-00000.safetensors``, ...: :mod:`zoo.pipelines.streamed_prep`), whatever their size;
a folder's photos at their own sizes (``--size full``) one photo at a time into the usual
files (:mod:`zoo.pipelines.streamed_photos`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from filelock import FileLock, Timeout
from rich.console import Console
from rich.markup import escape

from zoo.config import parse_json
from zoo.data import sources
from zoo.data.images import convert_channels, to_float
from zoo.data.mapped import in_memory_bytes
from zoo.data.memory import PREPARED_FORMAT, SPLIT_FILES, TARGET_PHOTOS, Photos, PreparedData, load_prepared
from zoo.data.sources import DataSource, RawData, Reading, pairs, parse_classes
from zoo.data.sources.named import download, fingerprint
from zoo.display import figures
from zoo.display.console import make_console
from zoo.errors import UsageError, ZooError
from zoo.pipelines import captioned, streamed_photos, streamed_prep
from zoo.records import files
from zoo.records.paths import prepared_dir

HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 0
HOLDOUT_MIN = 200
"""Sets with a single split hold out a part only from this many images on."""
HOLDOUT_MIN_PHOTOS = 10
"""Full-size photos (``--size full``) hold out a part from this many on: each is many crops."""
CAPTION_SHEET = 12
"""Images shown with their captions in a captioned data set's ``captions.png``."""
FULL = (0, 0)
"""``--size full``: photos kept at their own sizes (:class:`zoo.data.memory.Photos`)."""


def prepare(data: str, *, size: int | str | None = None, channels: int | None = None,
            data_dir: Path | None = None, classes: str | None = None, subset: str | None = None,
            direction: str | None = None, force: bool = False, console: Console | None = None,
            split: str = "train") -> PreparedData:
    """The prepared form of ``data`` (a data set name or ``folder:PATH``), made if needed.

    ``subset`` ("START:STOP", Python slice rules) keeps part of the data set in its order;
    ``classes`` ("7" or "sneaker,sandal") keeps only those classes, relabelled 0..k-1;
    ``direction`` "BtoA" swaps the domains of two-domain data (None or "AtoB": as stored).
    Each selection is cached on its own. ``split="heldout"`` gives the images held out for
    evaluation instead (see :func:`hold_out`)."""
    console = console or make_console(stderr=True)
    direction = pairs.check_direction(data, direction)
    span = parse_subset(subset)
    dims = parse_size(size)
    if channels not in (None, 1, 3):
        raise UsageError(f"--channels must be 1 or 3, got {channels}")
    if data_dir is not None and not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")
    streamed_prep.shard_bytes()  # $ZOO_SHARD_MB and $ZOO_IN_MEMORY_MB: refused before anything is written
    in_memory_bytes()

    source = sources.find(data)
    if dims == FULL and source.fitted_size(data) is None:
        dims = None  # a named set's images already share their one native size
    elif dims == FULL and data.startswith(sources.shards.PREFIX):
        raise UsageError(f"--size full keeps photos at their own sizes, for folder: data; give {data} a --size")
    elif dims == FULL and pairs.is_two_domain(data) and not (pairs.pairing_of(data) == "paired"
                                                             and pairs.folder_of(data) is not None):
        raise UsageError(f"--size full keeps photos at their own sizes, for folder: and paired:PATH data; "
                         f"give {data} a --size (like 64)")
    reading = Reading(dims, channels, data_dir, console)
    named = source.made_of(data)
    if named is not None and fingerprint(named, data_dir, reading.env_dir) is None:
        download(named, data_dir, reading.env_dir, reading.say)  # first: the cache key names the files
    folder = _cache_folder(data, source, reading, classes, subset, direction)
    with _one_at_a_time(folder, data, console):
        if not force:
            cached = _cached(folder, split, console)
            if cached is not None:
                return cached
        return _build(data, folder, source, reading, dims, channels, span, classes, subset, direction, split,
                      console)


def _cached(folder: Path, split: str, console: Console) -> PreparedData | None:
    """The cache in ``folder`` if it is whole and of this zoo's format; None to build it
    (again: a damaged cache is said and rebuilt, never trained on)."""
    try:
        meta = parse_json((folder / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != PREPARED_FORMAT:
        return None
    for leftover in [*folder.glob("*.raw"), folder / streamed_prep.PROGRESS]:  # a photo prep killed as it ended
        leftover.unlink(missing_ok=True)
    try:
        return load_prepared(folder, split)  # the split asked for is checked; the other when it is read
    except files.Damaged as exc:
        console.print(f"[yellow]{escape(exc.problem)}[/]: preparing it again")
        return None


@contextlib.contextmanager
def _one_at_a_time(folder: Path, data: str, console: Console) -> Iterator[None]:
    """Hold the lock on ``folder``'s cache while it is checked and built: a second prep of
    the same data waits for the first and then reads its result. The lock is the operating
    system's (filelock's: ``flock`` on POSIX, ``msvcrt`` on Windows), let go when its process
    dies, so a killed prep never blocks the next one; what a killed prep left half-written is
    cleared here."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder.with_name(f".{folder.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        console.print(f"waiting for another process preparing {data} ...")
        lock.acquire()
    try:
        for kind in ("tmp", "old"):
            for leftover in folder.parent.glob(f"{glob.escape(folder.name)}.{kind}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        yield
    finally:
        lock.release()


def _build(data: str, folder: Path, source: DataSource, reading: Reading, dims: tuple[int, int] | None,
           channels: int | None, span: slice | None, classes: str | None,
           subset: str | None, direction: str | None, split: str, console: Console) -> PreparedData:
    _clear_abandoned(folder, console)
    as_stored = direction in (None, "AtoB")  # BtoA swaps what is read whole
    streamed = source.stream(data, reading) if source.stream is not None and as_stored else None
    if streamed is not None and dims == FULL:  # photos (or pairs of them) at their own sizes, one at a time
        prepared = streamed_photos.build(data, folder, streamed, channels, span, classes,
                                         {"classes": classes, "subset": subset, "direction": direction}, console)
        return prepared if split == "train" else load_prepared(folder, split)
    if streamed is not None:  # read one image at a time into shards: memory bounded at any size
        prepared = streamed_prep.build(data, folder, streamed, dims or (source.fitted_size(data) or 0,) * 2, channels,
                                       span, classes, subset, console)
        return prepared if split == "train" else load_prepared(folder, split)
    started = time.perf_counter()
    raw = pairs.directed(source.read(data, reading), direction)
    raw = _select(hold_out(raw), span, classes, data)

    def shaped(raw: RawData) -> RawData:
        images, targets = raw.images, raw.targets
        if dims and dims != FULL:
            images = _resize(images, dims)
            targets = _resize(targets, dims) if targets is not None else None
        photos, target_photos = raw.photos, raw.target_photos
        if channels:
            images = convert_channels(images, channels)
            targets = convert_channels(targets, channels) if targets is not None else None
            photos = photos.map(lambda im: convert_channels(im, channels)) if photos is not None else None
            target_photos = (target_photos.map(lambda im: convert_channels(im, channels))
                             if target_photos is not None else None)
        return dataclasses.replace(raw, images=images, targets=targets, photos=photos, target_photos=target_photos)

    raw = raw.map(shaped)
    images, targets = raw.images, raw.targets
    if images.shape[0] == 0 or (targets is not None and targets.shape[0] == 0):
        raise ZooError(f"{data} holds no images")
    captions = captioned.encode_captions(raw, console) if raw.captions is not None else None
    _write(folder, data, raw, {"classes": classes, "subset": subset, "direction": direction}, captions)
    prepared = load_prepared(folder)
    figures.explore_data(prepared.images, prepared.labels, prepared.meta["class_names"], folder,
                         title=data)
    if prepared.tokens is not None:
        shown = range(min(CAPTION_SHEET, len(prepared)))
        figures.save_caption_sheet(prepared.images[list(shown)],
                                   [_own_captions(prepared, i) for i in shown], folder / "captions.png")
    shape = f"{images.shape[1]}x{images.shape[2]}x{images.shape[3]}"
    if prepared.targets is not None:
        a, b = raw.domains
        figures.save_grid(_pair_rows(prepared), folder / "pairs.png", scale=2,
                          row_labels=[f"A: {a}", f"B: {b}"] if a != "A" or b != "B" else ["A", "B"])
        t = prepared.targets
        count = (f"{len(prepared):,} pairs ({a} -> {b})" if raw.pairing == "paired"
                 else f"{len(prepared):,} {a} and {len(t):,} {b} images")
        shape += f" -> {t.shape[1]}x{t.shape[2]}x{t.shape[3]}"
        if prepared.photos is not None and prepared.target_photos is not None:
            shape = f"{_photo_shapes(prepared.photos)} -> {_photo_shapes(prepared.target_photos)}"
    elif prepared.photos is not None:
        count = f"{len(prepared):,} photos"
        shape = _photo_shapes(prepared.photos)
    else:
        count = f"{len(prepared):,} images"
    held = f" (+ {raw.heldout.images.shape[0]:,} held out for evaluation)" if raw.heldout is not None else ""
    console.print(f"prepared {data}: {count}{held} of {shape} in {time.perf_counter() - started:.1f}s -> {folder}")
    return prepared if split == "train" else load_prepared(folder, split)


def _own_captions(prepared: PreparedData, i: int) -> list[str]:
    """Image ``i``'s different captions (the file cycles them to a common count)."""
    assert prepared.tokens is not None
    return list(dict.fromkeys(prepared.caption(i, k) for k in range(prepared.tokens.shape[1])))


def _pair_rows(prepared: PreparedData, n: int = 8) -> torch.Tensor:
    """Domain A's first images over domain B's (each pair in a column, for paired data)."""
    assert prepared.targets is not None
    a, b = prepared.images[:n], prepared.targets[:n]
    k = min(len(a), len(b))
    a, b = figures.thumbnails(convert_channels(a[:k], 3)), figures.thumbnails(convert_channels(b[:k], 3))
    if a.shape[-2:] != b.shape[-2:]:  # low- beside high-resolution photos: A's pixels shown larger
        a = F.interpolate(a, size=b.shape[-2:], mode="nearest")
    return to_float(torch.stack([a, b]))


def parse_size(size: int | str | None) -> tuple[int, int] | None:
    """--size: 64 (square) or HEIGHTxWIDTH (64x128) -> (height, width), each 8 to 1024 px;
    ``full`` -> :data:`FULL` (photos at their own sizes)."""
    if size is None:
        return None
    text = str(size).strip().lower()
    if text == "full":
        return FULL
    try:
        parts = [int(p) for p in text.split("x")]
        if len(parts) not in (1, 2):
            raise ValueError
    except ValueError:
        raise UsageError(f"--size takes SIZE, HEIGHTxWIDTH or full (like 64, 64x128 or full), got {size!r}") from None
    height, width = parts if len(parts) == 2 else parts * 2
    if not (8 <= height <= 1024 and 8 <= width <= 1024):
        raise UsageError(f"--size must be between 8 and 1024 pixels a side, got {size}")
    return height, width


def _dims_name(dims: tuple[int, int]) -> str:
    if dims == FULL:
        return "full"
    return str(dims[0]) if dims[0] == dims[1] else f"{dims[0]}x{dims[1]}"


def parse_subset(subset: str | None) -> slice | None:
    """"START:STOP" or "START:STOP:STEP" -> a slice, by Python's rules: either end may be left
    out ("8000:", ":5000"), and "0::2" keeps every other image (a split that mixes MNIST's two
    writer groups, where "0:5000" takes one group's)."""
    if subset is None:
        return None
    parts = subset.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        start, stop, step = (int(p) if p.strip() else None for p in (parts + [""])[:3])
        if step is not None and step < 1:
            raise ValueError
    except ValueError:
        raise UsageError(f"--subset takes START:STOP or START:STOP:STEP with a positive step "
                         f"(like 0:8000, 8000: or 0::2), got {subset!r}") from None
    return slice(start, stop, step)


def subset_text(span: slice, separator: str = ":") -> str:
    """A slice as "START:STOP[:STEP]" with the ends left out as given (``separator`` ":"),
    or a form fit for a folder name (``separator`` "_")."""
    parts = [span.start, span.stop] + ([span.step] if span.step is not None else [])
    return separator.join("" if p is None else str(p) for p in parts)


def _select(raw: RawData, span: slice | None, classes: str | None, data: str) -> RawData:
    """``--subset`` keeps part of the training images (the held-out part stays whole, so
    evaluation is comparable across subsets); ``--classes`` keeps classes in both."""
    if raw.pairing and classes is not None:
        raise UsageError(f"--classes does not apply to {data}; two classes of a labelled set make "
                         "two domains with unpaired:DATASET:CLASS_A,CLASS_B")
    if span is not None:
        kept = raw.take(torch.arange(len(raw.images))[span])
        raw = dataclasses.replace(
            kept, targets=raw.targets[span] if raw.targets is not None else None,
            notes=[*raw.notes, f"subset [{subset_text(span)}] of {len(raw.images):,} "
                               f"{'images' if raw.photos is None else 'photos'}"])
    if classes is not None:
        keep = parse_classes(classes, raw.class_names, data)

        def only(raw: RawData) -> RawData:
            assert raw.labels is not None
            mask = torch.isin(raw.labels, torch.tensor(keep))
            remap = torch.full((len(raw.class_names),), -1, dtype=torch.int64)
            remap[torch.tensor(keep)] = torch.arange(len(keep))
            names = [raw.class_names[i] for i in keep]
            return dataclasses.replace(raw.take(mask), labels=remap[raw.labels[mask]],
                                       class_names=names, notes=[*raw.notes, f"classes {', '.join(names)} only"])

        raw = raw.map(only)
    if len(raw.images) == 0 or (raw.targets is not None and len(raw.targets) == 0):
        raise UsageError(f"the selection left no images of {data}; check --subset and --classes")
    return raw


def hold_out(raw: RawData, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED) -> RawData:
    """The data with a held-out part for evaluation: its own test split where it has one,
    else a seeded ``fraction`` of its only split (the offline MNIST's 10k, a folder), chosen
    at random so both parts mix all writers and sources; none for sets under
    :data:`HOLDOUT_MIN` images (:data:`HOLDOUT_MIN_PHOTOS` full-size photos). For unpaired data
    each domain gives its own share."""
    if raw.heldout is not None:
        return raw
    least = HOLDOUT_MIN if raw.photos is None else HOLDOUT_MIN_PHOTOS
    if len(raw.images) < least:
        what = "images" if raw.photos is None else "photos"
        return dataclasses.replace(raw, notes=[*raw.notes, f"no held-out part: fewer than {least} {what}"])

    keep, held = held_out_index(len(raw.images), fraction, seed)
    keep_b, held_b = (keep, held) if raw.pairing != "unpaired" or raw.targets is None \
        else held_out_index(len(raw.targets), fraction, seed + 1)

    def part(index: torch.Tensor, index_b: torch.Tensor, split_name: str) -> RawData:
        return dataclasses.replace(raw.take(index), targets=raw.targets[index_b] if raw.targets is not None else None,
                                   split=split_name)

    what = "images" if raw.photos is None else "photos"
    note = f"held out {len(held):,} of {len(raw.images):,} {what} ({fraction:.0%}, seed {seed}) for evaluation"
    train = part(keep, keep_b, raw.split)
    return dataclasses.replace(train, notes=[*raw.notes, note], heldout=part(held, held_b, "heldout"))


def held_out_index(count: int, fraction: float = HOLDOUT_FRACTION,
                   seed: int = HOLDOUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out): a seeded random ``fraction`` of ``count`` images held out, both in order."""
    held = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:max(1, round(fraction * count))]
    kept = torch.ones(count, dtype=torch.bool)
    kept[held] = False
    return kept.nonzero().view(-1), held.sort().values


def _photo_shapes(photos: Photos) -> str:
    """"3 x 300x451 to 1411x1411 (full size)": the channels, the smallest and largest photo."""
    shapes = photos.shapes
    areas = shapes[:, 1] * shapes[:, 2]
    small, large = shapes[int(areas.argmin())].tolist(), shapes[int(areas.argmax())].tolist()
    return f"{small[0]} x {small[1]}x{small[2]} to {large[1]}x{large[2]} (full size)"


# -- shaping ------------------------------------------------------------------------------------

def _resize(images: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
    """Centre-crop to the aspect ratio of ``dims`` (height, width), then resize to it."""
    height, width = dims
    if images.shape[2] == height and images.shape[3] == width:
        return images
    h, w = images.shape[2], images.shape[3]
    if h * width != w * height:  # crop the longer side to the wanted aspect ratio
        crop_h, crop_w = (h, round(h * width / height)) if w * height > h * width else (round(w * height / width), w)
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        images = images[:, :, top:top + crop_h, left:left + crop_w]
    out = []
    for chunk in images.split(4096):
        resized = F.interpolate(chunk.float(), size=(height, width), mode="bilinear",
                                antialias=True, align_corners=False)
        out.append(resized.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


# -- the cache ------------------------------------------------------------------------------------

def _clear_abandoned(folder: Path, console: Console) -> None:
    """Work folders that killed preps left and nothing will resume, said in one line."""
    removed, freed = files.clear_abandoned(folder.parent, keep=folder.with_name(folder.name + ".partial"))
    if removed:
        console.print(f"removed {removed} unfinished prep folder(s) untouched for {files.ABANDONED_DAYS:.0f} days "
                      f"({freed / 1e6:,.1f} MB) from {folder.parent}")


def _cache_folder(data: str, source: DataSource, reading: Reading, classes: str | None = None,
                  subset: str | None = None, direction: str | None = None) -> Path:
    """The prepared data's folder: named by the source (and the files it is built from), the
    shape and the selection, so each is cached on its own."""
    dims, channels = reading.dims, reading.channels
    fitted = source.fitted_size(data)
    if fitted is None:
        shape = f"{_dims_name(dims) if dims else 'native'}px-{channels or 'native'}ch"
    else:
        shape = f"{_dims_name(dims or (fitted, fitted))}px-{channels or 'auto'}ch"
    selection = ""
    if subset is not None:
        span = parse_subset(subset)
        assert span is not None
        selection += f"-subset{subset_text(span, '_')}"
    if classes is not None:
        wanted = ",".join(sorted(part.strip().lower() for part in classes.split(",")))
        safe = "".join(c if c.isalnum() or c in "-," else "_" for c in wanted).replace(",", "+")
        selection += f"-classes-{safe[:40]}-{hashlib.sha256(wanted.encode()).hexdigest()[:6]}"
    if direction == "BtoA":  # AtoB is the data as stored, and keeps the folder it always had
        selection += "-BtoA"
    return prepared_dir() / f"{source.key(data, reading)}-{shape}{selection}"


def _write(folder: Path, data: str, raw: RawData, selection: dict,
           captions: captioned.Captioned | None = None) -> None:
    """Write the prepared files (the training part, and the held-out part beside it, and for
    captioned data the text encoder) into a fresh folder, then swap it in whole: a crash
    or a full disk meanwhile leaves the previous cache (or none) and no half-written one."""
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_files(tmp, data, raw, selection, captions)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = files.disk_full(exc, folder, "prepared data", existed=(folder / "meta.json").exists())
        if full is not None:
            raise full from None
        raise
    files.swap_in(tmp, folder)


def _write_files(tmp: Path, data: str, raw: RawData, selection: dict, captions: captioned.Captioned | None) -> None:
    counts: list[int] = []
    if raw.labels is not None and raw.class_names:
        counts = torch.bincount(raw.labels, minlength=len(raw.class_names)).tolist()
    files.save_tensors(tmp / SPLIT_FILES["train"], {**_tensors(raw), **(captions.train if captions else {})},
                       what="prepared data")
    held = raw.heldout
    if held is not None:
        files.save_tensors(tmp / SPLIT_FILES["heldout"], {**_tensors(held), **(captions.heldout if captions else {})},
                           what="prepared data")
    if captions is not None:
        captioned.save_encoder(captions, tmp)
    images, targets = raw.images, raw.targets
    meta = {
        "format": PREPARED_FORMAT,
        "name": data,
        "origin": raw.origin,
        "split": raw.split,
        "count": int(images.shape[0]),
        "channels": int(images.shape[1]),
        "height": int(images.shape[2]),
        "width": int(images.shape[3]),
        "class_names": raw.class_names,
        "class_counts": counts,
        "selection": selection,
        "pairing": raw.pairing,
        "domains": list(raw.domains),
        "target_count": int(targets.shape[0]) if targets is not None else 0,
        "full_size": raw.photos is not None,
        "heldout": None if held is None else {
            "count": int(held.images.shape[0]), "split": held.split, "origin": held.origin,
            "target_count": int(held.targets.shape[0]) if held.targets is not None else 0},
        "notes": raw.notes,
        **({"text": captions.meta} if captions is not None else {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    files.write_atomically(tmp / "meta.json",
                           lambda path: path.write_text(json.dumps(meta, indent=2), encoding="utf-8"), "prepared data")


def _tensors(raw: RawData) -> dict[str, torch.Tensor]:
    tensors = {"images": raw.images.contiguous()}
    if raw.targets is not None:
        tensors["targets"] = raw.targets.contiguous()
    if raw.labels is not None and raw.class_names:
        tensors["labels"] = raw.labels.contiguous()
    if raw.photos is not None:
        tensors.update(raw.photos.tensors())
    if raw.target_photos is not None:
        tensors.update(raw.target_photos.tensors(TARGET_PHOTOS))
    return tensors
