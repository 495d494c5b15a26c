"""Prep in bounded memory: a streamed data set (a folder, tar shards) read, fitted and written
shard by shard, whatever its size.

Each split's images go into ``train-00000.safetensors``, ``train-00001.safetensors``, ...
(and ``heldout-...``) of at most :data:`SHARD_BYTES` of pixels each, with their labels; the
prep holds one shard in memory. It works in ``FOLDER.partial`` beside the cache folder and
records each finished shard (its file, its checksum, where in the list it ends) in
``progress.json`` there: a prep killed at any moment starts again after its last whole
shard, checked by its checksum, and gives the same files as one that ran through. The
folder is swapped in whole at the end. Training reads the shards through memory maps
(:mod:`zoo.data.mapped`), or whole when they are small (:func:`zoo.data.memory.load_prepared`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from zoo.data.images import FORMATS, convert_channels
from zoo.data.mapped import map_tensors
from zoo.data.memory import PREPARED_FORMAT, PreparedData, load_prepared
from zoo.data.sources import parse_classes
from zoo.data.sources.folder import skipped_note
from zoo.data.sources.streamed import Item, Streamed
from zoo.display import figures
from zoo.display.console import progress_bar
from zoo.errors import UsageError, ZooError
from zoo.records import files

SHARD_BYTES = 256 * 1024 * 1024
"""Pixels in one shard file at most (a shard's images are held in memory while it is filled);
``$ZOO_SHARD_MB`` sets another size."""
PROGRESS = "progress.json"
FIX = "run `zoo prep` again with --force"


def build(data: str, folder: Path, streamed: Streamed, dims: tuple[int, int], channels: int | None,
          span: slice | None, classes: str | None, subset: str | None, console: Console) -> PreparedData:
    """Prepare ``streamed`` into ``folder`` (resuming a prep of the same set that was cut
    short), draw its exploration pictures, say what was made, and return it."""
    from zoo.pipelines import prep

    started = time.perf_counter()
    splits, names, notes = _plan(data, streamed, span, classes, prep)
    work = folder.with_name(folder.name + ".partial")
    plan_id = hashlib.sha256(json.dumps([data, streamed.key, [i.name for i in streamed.items], dims, channels,
                                         subset, classes, shard_bytes()]).encode()).hexdigest()
    done = _resume(work, plan_id, console)
    try:
        for split, items in splits.items():
            _write_split(work, streamed, split, items, dims, channels, done, plan_id, data, console)
        skipped = [s for records in done.values() for r in records for s in r["skipped"]]
        if skipped:
            notes.append(skipped_note(skipped, streamed.origin))
            console.print(f"[yellow]warning:[/] {notes[-1]}")
        if not any(r["count"] for r in done["train"]):
            raise ZooError(f"none of the {len(streamed.items)} files in {streamed.origin} could be read as an image "
                           f"(e.g. {skipped[0] if skipped else '?'}); zoo reads {FORMATS} files")
        if channels is None and all(r["gray"] for records in done.values() for r in records if r["count"]):
            _to_gray(work, done)
        _write_meta(work, data, streamed, names, notes, done, {"classes": classes, "subset": subset,
                                                              "direction": None})
    except BaseException as exc:
        full = exc if isinstance(exc, files.DiskFull) else \
            files.disk_full(exc, folder, "prepared data", existed=(folder / "meta.json").exists())
        if full is not None:  # the space back, rather than shards kept for a resume
            shutil.rmtree(work, ignore_errors=True)
            raise full from None
        if isinstance(exc, ZooError):  # refused (nothing readable, ...): nothing worth resuming
            shutil.rmtree(work, ignore_errors=True)
        raise  # killed or stopped: the whole shards stay for the next prep to resume from
    files.swap_in(work, folder)
    (folder / PROGRESS).unlink()  # (a kill before this line leaves a whole folder: the next prep uses it)
    prepared = load_prepared(folder)
    figures.explore_data(prepared.images, prepared.labels, prepared.meta["class_names"], folder, title=data)
    held = prepared.meta["heldout"]
    held_text = f" (+ {held['count']:,} held out for evaluation)" if held else ""
    shards = sum(len(v) for v in prepared.meta["shards"].values())
    console.print(f"prepared {data}: {len(prepared):,} images{held_text} of {prepared.spec.channels}x"
                  f"{prepared.spec.height}x{prepared.spec.width} in {shards} shard(s), "
                  f"{time.perf_counter() - started:.1f}s -> {folder}")
    return prepared


def shard_bytes() -> int:
    text = os.environ.get("ZOO_SHARD_MB")
    if text is None:
        return SHARD_BYTES
    try:
        size = float(text)
        if not 0 < size <= 65536:
            raise ValueError
    except ValueError:
        raise UsageError(f"$ZOO_SHARD_MB must be a number of megabytes from 0 to 65,536, got {text!r}") from None
    return int(size * 1024 * 1024)


def _plan(data: str, streamed: Streamed, span: slice | None, classes: str | None,
          prep: Any, photos: bool = False) -> tuple[dict[str, list[Item]], list[str], list[str]]:
    """Which items go to training and which are held out (as :func:`prep.hold_out` and the
    selection choose them for data read whole), the class names and the notes. ``photos``:
    full-size photos, held out from :data:`prep.HOLDOUT_MIN_PHOTOS` on."""
    items, names, notes = list(streamed.items), list(streamed.class_names), list(streamed.notes)
    least, what = (prep.HOLDOUT_MIN_PHOTOS, "photos") if photos else (prep.HOLDOUT_MIN, "images")
    if len(items) < least:
        notes.append(f"no held-out part: fewer than {least} {what}")
        train, held = items, []
    else:
        keep, out = prep.held_out_index(len(items))
        train, held = [items[i] for i in keep.tolist()], [items[i] for i in out.tolist()]
        notes.append(f"held out {len(held):,} of {len(items):,} {what} ({prep.HOLDOUT_FRACTION:.0%}, seed "
                     f"{prep.HOLDOUT_SEED}) for evaluation")
    if span is not None:
        notes.append(f"subset [{prep.subset_text(span)}] of {len(train):,} {what}")
        train = train[span]
    if classes is not None:
        keep_classes = parse_classes(classes, names, data)
        relabel = {old: new for new, old in enumerate(keep_classes)}

        def only(part: list[Item]) -> list[Item]:
            return [Item(i.name, relabel[i.label], i.where) for i in part if i.label in relabel]

        train, held = only(train), only(held)
        names = [names[i] for i in keep_classes]
        notes.append(f"classes {', '.join(names)} only")
    if not train:
        raise UsageError(f"the selection left no images of {data}; check --subset and --classes")
    return {"train": train, "heldout": held} if held else {"train": train}, names, notes


def _resume(work: Path, plan_id: str, console: Console) -> dict[str, list[dict[str, Any]]]:
    """The shards a cut-short prep of the same plan finished and that are whole; a fresh
    ``work`` folder otherwise."""
    done: dict[str, list[dict[str, Any]]] = {"train": [], "heldout": []}
    try:
        progress = json.loads((work / PROGRESS).read_text(encoding="utf-8"))
        if progress["plan"] != plan_id:
            raise ValueError("another plan")
        for split in done:
            for record in progress["done"].get(split, []):
                map_tensors(work / record["file"], "prepared shard", FIX)  # its checksum, or Damaged
                done[split].append(record)
    except (OSError, ValueError, KeyError, TypeError, files.Damaged):
        pass
    kept = sum(len(v) for v in done.values())
    if kept:  # 11. what a kill left half-written, or shards past the last whole one, go
        listed = {r["file"] for records in done.values() for r in records} | {PROGRESS}
        for path in work.iterdir():
            if path.name not in listed:
                path.unlink()
        console.print(f"resuming an interrupted prep: {kept} whole shard(s) kept")
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    return done


def _write_split(work: Path, streamed: Streamed, split: str, items: Sequence[Item], dims: tuple[int, int],
                 channels: int | None, done: dict[str, list[dict[str, Any]]], plan_id: str, data: str,
                 console: Console) -> None:
    height, width = dims
    per_shard = max(1, shard_bytes() // (3 * height * width))
    records = done[split]
    start = records[-1]["end"] if records else 0
    with progress_bar(console, transient=True, disable=len(items) < 200) as bar:
        task = bar.add_task(f"preparing {data} ({split})", total=len(items), completed=start)
        while start < len(items):
            end = min(len(items), start + per_shard)
            buffer = torch.empty(end - start, 3, height, width, dtype=torch.uint8)
            labels, skipped, gray, count = [], [], True, 0
            for item in items[start:end]:
                fitted = streamed.fitted(item, height, width)
                bar.advance(task)
                if isinstance(fitted, str):
                    skipped.append(fitted)
                    continue
                buffer[count], count = fitted[0], count + 1
                gray &= fitted[1]
                labels.append(item.label)
            images = buffer[:count] if channels is None or not count else convert_channels(buffer[:count], channels)
            name = f"{split}-{len(records):05d}.safetensors"
            tensors = {"images": images.contiguous(), "labels": torch.tensor(labels, dtype=torch.int64)}
            files.save_tensors(work / name, tensors, what="prepared data")
            records.append({"file": name, "count": count, "end": end, "gray": gray and count > 0,
                            "skipped": skipped})
            files.write_atomically(work / PROGRESS, lambda path: path.write_text(
                json.dumps({"plan": plan_id, "done": done}), encoding="utf-8"), "prepared data")
            start = end


def _to_gray(work: Path, done: dict[str, list[dict[str, Any]]]) -> None:
    """Every image of the set was gray: each shard rewritten with one channel."""
    for record in (r for records in done.values() for r in records):
        tensors, _ = map_tensors(work / record["file"], "prepared shard", FIX)
        gray = {"images": convert_channels(tensors["images"], 1), "labels": tensors["labels"].clone()}
        del tensors
        files.save_tensors(work / record["file"], gray, what="prepared data")


def _write_meta(work: Path, data: str, streamed: Streamed, names: list[str], notes: list[str],
                done: dict[str, list[dict[str, Any]]], selection: dict) -> None:
    first, _ = map_tensors(work / done["train"][0]["file"], "prepared shard", FIX, verify=False)
    _, channels, height, width = first["images"].shape
    counts = [0] * len(names)
    for record in done["train"]:
        tensors, _ = map_tensors(work / record["file"], "prepared shard", FIX, verify=False)
        if names:
            for label, n in enumerate(torch.bincount(tensors["labels"], minlength=len(names)).tolist()):
                counts[label] += n
    count = sum(r["count"] for r in done["train"])
    held = sum(r["count"] for r in done["heldout"])
    meta = {
        "format": PREPARED_FORMAT, "name": data, "origin": streamed.origin, "split": "all", "count": count,
        "channels": int(channels), "height": int(height), "width": int(width), "class_names": names,
        "class_counts": counts, "selection": selection, "pairing": "", "domains": [], "target_count": 0,
        "full_size": False,
        "heldout": {"count": held, "split": "heldout", "origin": streamed.origin, "target_count": 0} if held else None,
        "notes": notes,
        "shards": {split: [r["file"] for r in records if r["count"]] for split, records in done.items() if records},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    files.write_atomically(work / "meta.json", lambda path: path.write_text(json.dumps(meta, indent=2),
                                                                            encoding="utf-8"), "prepared data")
