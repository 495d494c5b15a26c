"""Image files read into zoo: finding them in a folder and reading them as tensors.

Files of any size and format come in upright and fitted to the size asked for, as uint8
3 x H x W tensors (zoo's edge: :func:`zoo.data.to_float` takes them to [-1, 1]); a file
that is not an image raises one of :data:`UNREADABLE`, so a caller can skip it and say so.
Pictures zoo writes (grids, GIFs, charts) are :mod:`zoo.figures`' part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

UNREADABLE = (OSError, ValueError, Image.DecompressionBombError)  # UnidentifiedImageError is an OSError
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def read_image(path: Path, height: int, width: int) -> tuple[torch.Tensor, str, tuple[int, int]]:
    """An image file of any size and format, upright, fitted (resized and centre-cropped) to
    height x width (0 x 0: kept at its own size): a uint8 3 x H x W tensor, the file's own PIL
    mode and (width, height). Raises one of ``UNREADABLE`` for files that are not images."""
    from PIL import ImageOps

    with Image.open(path) as img:
        mode, size = img.mode, img.size
        img = ImageOps.exif_transpose(img).convert("RGB")
        if height and width:
            img = ImageOps.fit(img, (width, height), Image.Resampling.LANCZOS)
        array = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1), mode, size


def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (by suffix, recursively, hidden ones left out), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_images(files: Sequence[Path], height: int, width: int,
                progress: Callable[[Sequence[Path]], Iterable[Path]] = iter,
                ) -> tuple[list[torch.Tensor], list[int], bool, list[str]]:
    """:func:`read_image` over many files: the pictures, the index of each read file, whether
    every one was grayscale, and "name (error)" for each file that could not be read.
    ``progress`` wraps the iteration (a progress bar)."""
    pictures, kept, skipped, gray = [], [], [], True
    for i, path in enumerate(progress(files)):
        try:
            picture, mode, _ = read_image(path, height, width)
        except UNREADABLE as exc:
            skipped.append(f"{path.name} ({type(exc).__name__})")
            continue
        gray &= mode in GRAY_MODES
        pictures.append(picture)
        kept.append(i)
    return pictures, kept, gray, skipped
