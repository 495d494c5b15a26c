"""Image files read into zoo: finding them in a folder and reading them as tensors.

Files of any size and format come in upright and fitted to the size asked for, as uint8
3 x H x W tensors (zoo's edge: :func:`to_float` takes them to [-1, 1]); a file
that is not an image raises one of :data:`UNREADABLE`, so a caller can skip it and say so.
Every PIL mode is read as it looks: 16-bit and 32-bit gray scaled to 8 bits (not clipped),
CMYK and palettes converted, transparent pixels put on white (as a viewer shows them), EXIF
rotation applied, an animated GIF's first frame. A decompression bomb (more than twice
PIL's :data:`PIL.Image.MAX_IMAGE_PIXELS`, a header's claim) is refused before decoding.
Pictures zoo writes (grids, GIFs, charts) are :mod:`zoo.display.figures`' part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

UNREADABLE = (OSError, ValueError, Image.DecompressionBombError)  # UnidentifiedImageError is an OSError
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
FORMATS = ", ".join(sorted(IMAGE_SUFFIXES))
"""The image files zoo looks for, as an error message lists them."""


def read_image(path: Path | BinaryIO, height: int, width: int) -> tuple[torch.Tensor, str, tuple[int, int]]:
    """An image file (or its bytes, as a file object) of any size and format, upright, fitted
    (resized and centre-cropped) to height x width (0 x 0: kept at its own size): a uint8
    3 x H x W tensor, the file's own PIL mode and (width, height). Raises one of
    ``UNREADABLE`` for files that are not images."""
    import warnings

    with warnings.catch_warnings(), Image.open(path) as img:
        # Large (but less than twice the limit, which raises): read, without PIL's warning.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return fit_image(img, height, width), img.mode, img.size


def fit_image(img: Image.Image, height: int, width: int) -> torch.Tensor:
    """A PIL image as :func:`read_image` reads a file of it: upright, 8-bit RGB, fitted to
    height x width (0 x 0: its own size); a uint8 3 x H x W tensor."""
    from PIL import ImageOps

    upright = _as_rgb(ImageOps.exif_transpose(img))
    if height and width:
        upright = ImageOps.fit(upright, (width, height), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(upright, dtype=np.uint8).copy()).permute(2, 0, 1)


def _as_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB, as it looks: wide gray scaled, not clipped at 255;
    transparency composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        if img.mode == "F" and values.max(initial=0) <= 1.0:
            top = 1.0  # float images in [0, 1]
        img = Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info or img.mode in ("PA", "La"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (by suffix, recursively, hidden ones left out), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _each_readable(files: Sequence[Path], height: int, width: int,
                   progress: Callable[[Sequence[Path]], Iterable[Path]], skipped: list[str],
                   ) -> Iterator[tuple[int, torch.Tensor, str]]:
    """(index, picture, PIL mode) of each file :func:`read_image` can read, one at a time;
    "name (error)" of each other one appended to ``skipped``."""
    for i, path in enumerate(progress(files)):
        try:
            picture, mode, _ = read_image(path, height, width)
        except UNREADABLE as exc:
            skipped.append(f"{path.name} ({type(exc).__name__})")
            continue
        yield i, picture, mode


def read_stack(files: Sequence[Path], height: int, width: int,
               progress: Callable[[Sequence[Path]], Iterable[Path]] = iter,
               ) -> tuple[torch.Tensor, list[int], bool, list[str]]:
    """:func:`read_images` at a fixed size, into one uint8 tensor (N x 3 x height x width)
    allocated before the first file is read: memory is the fitted pictures' own, one byte
    per pixel and channel, however many files there are, never a list of pictures and their
    stacked copy. Only one file is decoded at a time (a bomb is refused before decoding)."""
    if not (height and width):
        raise ValueError("read_stack needs a size; read_images keeps pictures at their own sizes")
    stack = torch.empty(len(files), 3, height, width, dtype=torch.uint8)
    kept: list[int] = []
    skipped: list[str] = []
    gray = True
    for i, picture, mode in _each_readable(files, height, width, progress, skipped):
        gray &= mode in GRAY_MODES
        stack[len(kept)] = picture
        kept.append(i)
    return stack[:len(kept)], kept, gray, skipped


def read_images(files: Sequence[Path], height: int, width: int,
                progress: Callable[[Sequence[Path]], Iterable[Path]] = iter,
                ) -> tuple[list[torch.Tensor], list[int], bool, list[str]]:
    """:func:`read_image` over many files: the pictures, the index of each read file, whether
    every one was grayscale, and "name (error)" for each file that could not be read.
    ``progress`` wraps the iteration (a progress bar)."""
    skipped: list[str] = []
    read = list(_each_readable(files, height, width, progress, skipped))
    return ([picture for _, picture, _ in read], [i for i, _, _ in read],
            all(mode in GRAY_MODES for _, _, mode in read), skipped)


CONVERT_CHUNK = 1 << 22
"""Pixel values converted at a time by :func:`convert_channels` (a float copy of all would be 12x the data)."""


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the one convention images cross modules in."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], for writing files."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 images to 1 channel (ITU-R 601 luma) or 3 (gray repeated)."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    gray = torch.empty(images.shape[0], 1, *images.shape[2:], dtype=torch.uint8)
    chunk = max(1, CONVERT_CHUNK // max(1, images[0].numel()))  # float copies of all would be 12x the data
    for start in range(0, images.shape[0], chunk):
        part = images[start:start + chunk].float()
        gray[start:start + chunk] = (part * weights).sum(1, keepdim=True).round().clamp(0, 255)
    return gray


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return images if images.dtype == torch.uint8 else to_uint8(images)

"""Pixel values converted at a time by :func:`convert_channels` (whole images; 16 MB of floats)."""
