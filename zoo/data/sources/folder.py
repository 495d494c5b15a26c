"""``folder:PATH``: every image under a folder, with a class per sub-folder when it has them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from rich.console import Console

from zoo.data.images import FORMATS, IMAGE_SUFFIXES, convert_channels, read_images, read_stack
from zoo.data.memory import Photos
from zoo.data.sources.raw import RawData
from zoo.data.sources.streamed import Item, Streamed
from zoo.errors import UsageError, ZooError

PREFIX = "folder:"
DEFAULT_SIZE = 64
"""Folders of photos come in every size: they are fitted to this unless --size says otherwise."""


def folder_layout(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sub-folder names, or none) and every file with its class index."""
    if not root.exists():
        raise UsageError(f"folder {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; folder: needs a folder of images")
    visible = [p for p in sorted(root.iterdir()) if not p.name.startswith(".")]
    subdirs = [p for p in visible if p.is_dir()]
    top_images = [p for p in visible if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if subdirs and not top_images:
        classes = [d.name for d in subdirs]
        files = [(f, i) for i, d in enumerate(subdirs) for f in files_under(d, root)]
    else:
        classes = []
        files = [(f, -1) for f in files_under(root)]
    if not files:
        raise UsageError(f"folder {root} holds no files; put images in it ({FORMATS}; optionally in one "
                         "sub-folder per class)")
    return classes, files


def files_under(folder: Path, root: Path | None = None) -> list[Path]:
    """Every visible file under ``folder``, sorted; links that lead out of ``root`` (the
    data's folder) are left out: a data set is what its folder holds."""
    inside = (root or folder).resolve()
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                  and (not p.is_symlink() and not folder.is_symlink() or p.resolve().is_relative_to(inside)))


def links_out(root: Path) -> list[Path]:
    """The files under ``root`` that :func:`files_under` leaves out as links leading out of it."""
    inside = root.resolve()
    return sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                  p.relative_to(root).parts) and (p.is_symlink() or any(a.is_symlink() for a in p.parents
                  if a.is_relative_to(root) and a != root)) and not p.resolve().is_relative_to(inside))


def hidden(root: Path) -> list[Path]:
    """What zoo leaves out of a data folder as hidden: files and folders under ``root`` whose
    names start with "." (``.ipynb_checkpoints``, ``.DS_Store``, ``.git``); hidden folders are
    not looked into."""
    found = []
    for folder, folders, names in os.walk(root):
        found += [Path(folder) / name for name in sorted(folders + names) if name.startswith(".")]
        folders[:] = [name for name in folders if not name.startswith(".")]
    return found


def read_folder(root: Path, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    """Every readable image under ``root``, fitted (resized and centre-cropped) to height x width;
    kept at its own size as :class:`~zoo.data.memory.Photos` for 0 x 0 (``--size full``)."""
    from zoo.display.console import track

    classes, files = folder_layout(root)
    paths = [path for path, _ in files]

    def progress(paths: Sequence[Path]) -> Iterable[Path]:
        return track(paths, description=f"reading {root}", console=console, disable=len(paths) < 200,
                     transient=True)

    if dims == (0, 0):  # each at its own size
        pictures, kept, gray, skipped = read_images(paths, 0, 0, progress)
    else:  # one tensor, filled as the files are read
        stack, kept, gray, skipped = read_stack(paths, *dims, progress)
    labels = [files[i][1] for i in kept]
    if not kept:
        raise ZooError(f"none of the {len(files)} files in {root} could be read as an image "
                       f"(e.g. {skipped[0]}); zoo reads {FORMATS} files")
    notes = left_out_notes(root, console)
    if skipped:
        notes.append(skipped_note(skipped, str(root)))
        console.print(f"[yellow]warning:[/] {notes[-1]}")
    if channels is None and gray:
        channels = 1
    photos = None
    if dims == (0, 0):
        photos = Photos.of([convert_channels(p.unsqueeze(0), channels or 3)[0] for p in pictures])
        images = photos.centre_crops()
    else:
        images = convert_channels(stack, channels or 3)
    label_tensor = torch.tensor(labels, dtype=torch.int64) if classes else None
    return RawData(images, label_tensor, classes, str(root.resolve()), "all", notes, photos=photos)


def stream_folder(root: Path, console: Console) -> Streamed:
    """The folder's images as a streamed set (read one at a time by prep): each file with
    its class, in the order :func:`read_folder` reads them."""
    classes, files = folder_layout(root)
    items = [Item(str(path.relative_to(root)), label, (str(path),)) for path, label in files
             if path.suffix.lower() in IMAGE_SUFFIXES]
    notes = left_out_notes(root, console)
    others = [path for path, _ in files if path.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        notes.append(f"skipped {len(others)} file(s) that are not images ({FORMATS}) in {root}: "
                     + ", ".join(str(p.relative_to(root)) for p in others[:5]) + (" ..." if len(others) > 5 else ""))
        console.print(f"[yellow]warning:[/] {notes[-1]}")
    if not items:
        raise ZooError(f"none of the {len(files)} files in {root} is an image (e.g. {others[0].name}); "
                       f"zoo reads {FORMATS} files")
    return Streamed(items, classes, str(root.resolve()), lambda item: open(item.where[0], "rb"), notes)


def skipped_note(skipped: Sequence[str], where: str) -> str:
    return (f"skipped {len(skipped)} unreadable file(s) in {where}: {', '.join(skipped[:5])}"
            + (" ..." if len(skipped) > 5 else ""))


def left_out_notes(root: Path, console: Console) -> list[str]:
    """What zoo leaves out of the folder (links leading out of it, hidden files), said."""
    notes = []
    away = links_out(root)
    if away:
        notes.append(f"skipped {len(away)} link(s) leading out of {root} (e.g. {away[0].name}); copy what they "
                     "point to into the folder to use it")
        console.print(f"[yellow]warning:[/] {notes[-1]}")
    left_out = hidden(root)
    if left_out:
        notes.append(f"left out {len(left_out)} hidden file(s) or folder(s) (names starting with '.', e.g. "
                     f"{left_out[0].relative_to(root)}): zoo reads no hidden files")
        console.print(f"[dim]{notes[-1]}[/]")
    return notes
