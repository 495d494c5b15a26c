"""Prepare a data set once: find it, read it, resize it, cache it, and draw what is in it.

The result is a folder in the user cache holding ``data.safetensors`` (images as one uint8
tensor, labels as one int64 tensor), ``meta.json`` (source, split, size, channels, class
names and counts) and the exploration pictures of seed 003: per-pixel mean / std / min /
max images, per-channel histograms, class counts and a sample grid. Training reads only
the tensor file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from safetensors.torch import save_file

from zoo import figures
from zoo.data import PREPARED_FORMAT, PreparedData, convert_channels, load_prepared, to_float
from zoo.errors import UsageError, ZooError
from zoo.paths import prepared_dir

from . import pairs
from .datasets import SOURCES, RawData, load_named, unknown_source

FOLDER_PREFIX = "folder:"
DEFAULT_FOLDER_SIZE = 64


def prepare(data: str, *, size: int | str | None = None, channels: int | None = None,
            data_dir: Path | None = None, classes: str | None = None, subset: str | None = None,
            direction: str | None = None, force: bool = False, console: Console | None = None) -> PreparedData:
    """The prepared form of ``data`` (a data set name or ``folder:PATH``), made if needed.

    ``subset`` ("START:STOP", Python slice rules) keeps part of the data set in its order;
    ``classes`` ("7" or "sneaker,sandal") keeps only those classes, relabelled 0..k-1;
    ``direction`` "BtoA" swaps the domains of two-domain data (None or "AtoB": as stored).
    Each selection is cached on its own."""
    console = console or Console(stderr=True)
    direction = pairs.check_direction(data, direction)
    span = parse_subset(subset)
    dims = parse_size(size)
    if channels not in (None, 1, 3):
        raise UsageError(f"--channels must be 1 or 3, got {channels}")
    if data_dir is not None and not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")

    folder = _cache_folder(data, dims, channels, data_dir, classes, subset, direction)
    if not force and (folder / "meta.json").exists():
        return load_prepared(folder)

    started = time.perf_counter()
    raw = _select(pairs.directed(_read(data, dims, channels, data_dir, console), direction), span, classes, data)
    images, targets = raw.images, raw.targets
    if dims:
        images = _resize(images, dims)
        targets = _resize(targets, dims) if targets is not None else None
    if channels:
        images = convert_channels(images, channels)
        targets = convert_channels(targets, channels) if targets is not None else None
    if images.shape[0] == 0 or (targets is not None and targets.shape[0] == 0):
        raise ZooError(f"{data} holds no images")
    _write(folder, data, images, targets, raw, {"classes": classes, "subset": subset, "direction": direction})
    prepared = load_prepared(folder)
    figures.explore_data(prepared.images, prepared.labels, prepared.meta["class_names"], folder,
                         title=data)
    shape = f"{images.shape[1]}x{images.shape[2]}x{images.shape[3]}"
    if prepared.targets is not None:
        figures.save_grid(_pair_rows(prepared), folder / "pairs.png", scale=2)
        a, b = raw.domains
        t = prepared.targets
        count = (f"{len(prepared):,} pairs ({a} -> {b})" if raw.pairing == "paired"
                 else f"{len(prepared):,} {a} and {len(t):,} {b} images")
        shape += f" -> {t.shape[1]}x{t.shape[2]}x{t.shape[3]}"
    else:
        count = f"{len(prepared):,} images"
    console.print(f"prepared {data}: {count} of {shape} in {time.perf_counter() - started:.1f}s -> {folder}")
    return prepared


def _pair_rows(prepared: PreparedData, n: int = 8) -> torch.Tensor:
    """Domain A's first images over domain B's (each pair in a column, for paired data)."""
    a, b = prepared.images[:n], prepared.targets[:n]
    k = min(len(a), len(b))
    a, b = convert_channels(a[:k], 3), convert_channels(b[:k], 3)
    return to_float(torch.stack([a, b]))


def parse_size(size: int | str | None) -> tuple[int, int] | None:
    """--size: 64 (square) or HEIGHTxWIDTH (64x128) -> (height, width), each 8 to 1024 px."""
    if size is None:
        return None
    text = str(size).strip().lower()
    try:
        parts = [int(p) for p in text.split("x")]
        if len(parts) not in (1, 2):
            raise ValueError
    except ValueError:
        raise UsageError(f"--size takes SIZE or HEIGHTxWIDTH (like 64 or 64x128), got {size!r}") from None
    height, width = parts if len(parts) == 2 else parts * 2
    if not (8 <= height <= 1024 and 8 <= width <= 1024):
        raise UsageError(f"--size must be between 8 and 1024 pixels a side, got {size}")
    return height, width


def _dims_name(dims: tuple[int, int]) -> str:
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


def parse_classes(classes: str, names: list[str], data: str) -> list[int]:
    """Class indices for "7" or "sneaker,sandal": names or indices of ``names``."""
    if not names:
        raise UsageError(f"--classes needs labelled data; {data} has no classes (for folder: data, "
                         "put each class's images in its own sub-folder)")
    lower = [n.lower() for n in names]
    picked = []
    for item in (part.strip() for part in classes.split(",")):
        if item.lower() in lower:
            picked.append(lower.index(item.lower()))
        elif item.isdigit() and int(item) < len(names):
            picked.append(int(item))
        else:
            raise UsageError(f"{data} has no class {item!r}; its classes are: "
                             + ", ".join(f"{i} {n}" if n != str(i) else n for i, n in enumerate(names)))
    return sorted(set(picked))


def _select(raw: RawData, span: slice | None, classes: str | None, data: str) -> RawData:
    notes = list(raw.notes)
    images, labels, names, targets = raw.images, raw.labels, raw.class_names, raw.targets
    if raw.pairing and classes is not None:
        raise UsageError(f"--classes does not apply to {data}; two classes of a labelled set make "
                         "two domains with unpaired:DATASET:CLASS_A,CLASS_B")
    if span is not None:
        images = images[span]
        labels = labels[span] if labels is not None else None
        targets = targets[span] if targets is not None else None
        notes.append(f"subset [{subset_text(span)}] of {len(raw.images):,} images")
    if classes is not None:
        keep = parse_classes(classes, names, data)
        mask = torch.isin(labels, torch.tensor(keep))
        remap = torch.full((len(names),), -1, dtype=torch.int64)
        remap[torch.tensor(keep)] = torch.arange(len(keep))
        images, labels = images[mask], remap[labels[mask]]
        names = [names[i] for i in keep]
        notes.append(f"classes {', '.join(names)} only")
    if len(images) == 0 or (targets is not None and len(targets) == 0):
        raise UsageError(f"the selection left no images of {data}; check --subset and --classes")
    return RawData(images, labels, names, raw.origin, raw.split, notes, targets, raw.pairing, raw.domains)


def describe(prepared: PreparedData) -> dict[str, object]:
    """The facts about a prepared data set, for ``zoo prep``'s summary table."""
    meta = prepared.meta
    return {
        "data": meta["name"],
        "images": f"{len(prepared):,}",
        "split": meta.get("split", "train"),
        "shape": f"{prepared.spec.channels} x {prepared.spec.height} x {prepared.spec.width}",
        "classes": ", ".join(f"{n} ({c})" for n, c in zip(meta["class_names"], meta["class_counts"]))
        or "unlabelled",
        **({"pairing": f"{meta['pairing']}: A = {meta['domains'][0]}, B = {meta['domains'][1]} "
                       f"({meta['target_count']:,} images, {prepared.spec.target_channels} channel(s))"}
           if meta.get("pairing") else {}),
        "from": meta["origin"],
        "folder": str(prepared.path),
    }


# -- reading ------------------------------------------------------------------------------------

def _read(data: str, dims: tuple[int, int] | None, channels: int | None, data_dir: Path | None,
          console: Console) -> RawData:
    say: Callable[[str], None] = lambda text: console.print(f"[cyan]note:[/] {text}")
    env = os.environ.get("ZOO_DATA_DIR")
    env_dir = Path(env).expanduser() if env else None
    if pairs.is_two_domain(data):
        return pairs.read(data, dims or (DEFAULT_FOLDER_SIZE,) * 2, channels, say, env_dir, data_dir, console)
    if data.startswith(FOLDER_PREFIX):
        return read_folder(Path(data[len(FOLDER_PREFIX):]).expanduser(), dims or (DEFAULT_FOLDER_SIZE,) * 2,
                           channels, console)
    if data not in SOURCES:
        raise unknown_source(data)
    return load_named(data, data_dir, env_dir, say)


def folder_layout(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sub-folder names, or none) and every file with its class index."""
    if not root.exists():
        raise UsageError(f"folder {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; folder: needs a folder of images")
    visible = [p for p in sorted(root.iterdir()) if not p.name.startswith(".")]
    subdirs = [p for p in visible if p.is_dir()]
    top_images = [p for p in visible if p.is_file() and p.suffix.lower() in figures.IMAGE_SUFFIXES]
    if subdirs and not top_images:
        classes = [d.name for d in subdirs]
        files = [(f, i) for i, d in enumerate(subdirs) for f in _files_under(d)]
    else:
        classes = []
        files = [(f, -1) for f in _files_under(root)]
    if not files:
        raise UsageError(f"folder {root} holds no files; put images in it (optionally in one "
                         "sub-folder per class)")
    return classes, files


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_folder(root: Path, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    """Every readable image under ``root``, fitted (resized and centre-cropped) to height x width."""
    from rich.progress import track

    classes, files = folder_layout(root)
    pictures, kept, gray, skipped = figures.read_images(
        [path for path, _ in files], *dims,
        lambda paths: track(paths, description=f"reading {root}", console=console,
                            disable=len(paths) < 200, transient=True))
    labels = [files[i][1] for i in kept]
    if not pictures:
        raise ZooError(f"none of the {len(files)} files in {root} could be read as an image "
                       f"(e.g. {skipped[0]})")
    notes = []
    if skipped:
        notes.append(f"skipped {len(skipped)} unreadable file(s) in {root}: {', '.join(skipped[:5])}"
                     + (" ..." if len(skipped) > 5 else ""))
        console.print(f"[yellow]warning:[/] {notes[-1]}")
    images = torch.stack(pictures)
    if channels is None and gray:
        channels = 1
    if channels == 1:
        images = convert_channels(images, 1)
    label_tensor = torch.tensor(labels, dtype=torch.int64) if classes else None
    return RawData(images, label_tensor, classes, str(root.resolve()), "all", notes)


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

def _cache_folder(data: str, dims: tuple[int, int] | None, channels: int | None, data_dir: Path | None,
                  classes: str | None = None, subset: str | None = None, direction: str | None = None) -> Path:
    shape = f"{_dims_name(dims) if dims else 'native'}px-{channels or 'native'}ch"
    root = pairs.folder_of(data)
    if data.startswith(FOLDER_PREFIX) or root is not None:
        kind = "folder"
        if root is None:
            root = Path(data[len(FOLDER_PREFIX):]).expanduser()
            files = folder_layout(root)[1]
        else:
            kind = data.split(":", 1)[0]
            files = [(p, 0) for p in _files_under(root)]
        fingerprint = hashlib.sha256(str(root.resolve()).encode())
        for path, label in files:
            stat = path.stat()
            fingerprint.update(f"{path.relative_to(root)}|{label}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        name = f"{kind}-{root.resolve().name}-{fingerprint.hexdigest()[:10]}"
        shape = f"{_dims_name(dims or (DEFAULT_FOLDER_SIZE,) * 2)}px-{channels or 'auto'}ch"
    elif pairs.is_two_domain(data):
        name = "".join(c if c.isalnum() or c in "-," else "_" for c in data.lower()).replace(",", "+")
        name += "-" + hashlib.sha256(data.lower().encode()).hexdigest()[:6]
        if data_dir is not None:
            name += "-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    elif data in SOURCES:
        name = data
        if data_dir is not None:  # an explicit source is its own data set, cached apart
            name += "-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    else:
        raise unknown_source(data)
    selection = ""
    if subset is not None:
        span = parse_subset(subset)
        selection += f"-subset{subset_text(span, '_')}"
    if classes is not None:
        wanted = ",".join(sorted(part.strip().lower() for part in classes.split(",")))
        safe = "".join(c if c.isalnum() or c in "-," else "_" for c in wanted).replace(",", "+")
        selection += f"-classes-{safe[:40]}-{hashlib.sha256(wanted.encode()).hexdigest()[:6]}"
    if direction == "BtoA":  # AtoB is the data as stored, and keeps the folder it always had
        selection += "-BtoA"
    return prepared_dir() / f"{name}-{shape}{selection}"


def _write(folder: Path, data: str, images: torch.Tensor, targets: torch.Tensor | None, raw: RawData,
           selection: dict) -> None:
    """Write the prepared files into a fresh folder, then swap it in whole."""
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {"images": images.contiguous()}
    if targets is not None:
        tensors["targets"] = targets.contiguous()
    counts: list[int] = []
    if raw.labels is not None and raw.class_names:
        tensors["labels"] = raw.labels.contiguous()
        counts = torch.bincount(raw.labels, minlength=len(raw.class_names)).tolist()
    save_file(tensors, str(tmp / "data.safetensors"))
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
        "notes": raw.notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
