"""The images a user hands a command (``zoo translate``, ``zoo reconstruct``): files, folders
and globs, read in any format and size and fitted to what the model takes."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from zoo.data.images import FORMATS, UNREADABLE, convert_channels, image_files, read_image, to_float
from zoo.errors import UsageError, ZooError


@dataclass
class Inputs:
    """The readable inputs as float images in [-1, 1] (N x C x H x W), their names, and what
    happened on the way: how many were fitted to the model's size, which files were skipped."""

    images: torch.Tensor
    names: list[str]
    files: list[Path]
    resized: int
    skipped: list[str]

    def report(self, console: Console, height: int, width: int) -> None:
        """A note on the fitted inputs and a warning naming the skipped files."""
        if self.resized:
            console.print(f"[cyan]note:[/] {self.resized} input(s) fitted to the model's {height}x{width}")
        if self.skipped:
            console.print(f"[yellow]warning:[/] skipped {len(self.skipped)} unreadable file(s): "
                          f"{', '.join(self.skipped[:5])}" + (" ..." if len(self.skipped) > 5 else ""))


def read_inputs(files: Sequence[Path], named: set[Path], height: int, width: int, channels: int) -> Inputs:
    """Read every file, fitted (resized and centre-cropped) to height x width and converted to
    ``channels``. An unreadable file that was named on its own is an error; one found in a
    folder or by a glob is skipped and counted."""
    pictures, names, kept, skipped, resized = [], [], [], [], 0
    for file in files:
        try:
            picture, _, size = read_image(file, height, width)
        except UNREADABLE as exc:
            if file in named:
                raise UsageError(f"{file} is not a readable image ({type(exc).__name__})") from None
            skipped.append(file.name)
            continue
        resized += size != (width, height)
        pictures.append(convert_channels(picture.unsqueeze(0), channels)[0])
        names.append(file.stem)
        kept.append(file)
    if not pictures:
        raise ZooError(f"none of the {len(files)} file(s) could be read as an image (e.g. {skipped[0]}); zoo reads "
                       f"{FORMATS} files")
    return Inputs(to_float(torch.stack(pictures)), names, kept, resized, skipped)


def check_named(named: set[Path]) -> None:
    """Refuse a file named on its own that is not an image, without decoding it: its header
    and checksums only (for commands that read each image when its turn comes)."""
    from PIL import Image

    for file in sorted(named):
        try:
            with Image.open(file) as picture:
                picture.verify()
        except UNREADABLE as exc:
            raise UsageError(f"{file} is not a readable image ({type(exc).__name__})") from None


def collect(inputs: Sequence[str], verb: str = "translate") -> tuple[list[Path], set[Path]]:
    """Image files from paths, folders (every image inside, recursively) and globs; and the
    files that were named one by one (those must be readable)."""
    if not inputs:
        raise UsageError(f"give an image, a folder or a glob to {verb}")
    files: list[Path] = []
    named: set[Path] = set()
    for item in inputs:
        if not item.strip():  # Path("") is the current folder: never what an empty argument meant
            raise UsageError(f"an empty name among the images to {verb}; give an image, a folder or a glob")
        path = Path(item).expanduser()
        if path.is_file():
            files.append(path)
            named.add(path)
        elif path.is_dir():
            found = image_files(path)
            if not found:
                raise UsageError(f"folder {path} holds no images: zoo reads {FORMATS} files (in it or "
                                 "in folders below it)")
            files += found
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not found:
                raise UsageError(f"{item} matches no files")
            files += found
        else:
            raise UsageError(f"{item} does not exist")
    return list(dict.fromkeys(files)), named


def unique(names: list[str], reserved: tuple[str, ...] = ("sheet",)) -> list[str]:
    """File names made distinct: a second a.png (from another folder) becomes a-2, and an
    input called sheet.png never overwrites the sheet."""
    seen: dict[str, int] = {name: 1 for name in reserved}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out
