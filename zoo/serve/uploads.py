"""Images a browser sends the page, read as carefully as ``zoo prep`` reads files.

An upload is refused, with a message for the page, when it holds more bytes than the
server takes, when its header claims more pixels than the server takes (checked before a
pixel is decoded: a decompression bomb is a few kilobytes that claim billions), or when it
is not an image. A drawing from the pad is read the same way; its transparent canvas
counts as white paper.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from zoo.data.images import FORMATS, UNREADABLE, read_image
from zoo.errors import UsageError

MOST_BYTES = 20 * 2**20
"""The largest upload the server takes (its --max-upload-mb)."""
MOST_PIXELS = 4096 * 4096
"""The most pixels an upload may claim (its --max-upload-pixels)."""


class UploadError(UsageError):
    """An upload the page cannot use: the message says why and what to send instead."""


def read_upload(value: Any, what: str = "the upload", most_bytes: int = MOST_BYTES,
                most_pixels: int = MOST_PIXELS, height: int = 0, width: int = 0) -> torch.Tensor:
    """An uploaded (or drawn) image file as a uint8 3 x H x W tensor: at its own size, or
    fitted (resized and centre-cropped) to ``height`` x ``width`` as ``zoo translate`` fits files."""
    if isinstance(value, dict):  # the drawing pad's value: its layers flattened on the canvas
        value = value.get("composite")
    if value is None or value == "":
        raise UploadError(f"{what}: nothing was sent; upload an image or draw one")
    path = Path(str(value))
    if not path.is_file():
        raise UploadError(f"{what}: the upload did not arrive; send it again")
    size = path.stat().st_size
    if size > most_bytes:
        raise UploadError(f"{what} is {size / 2**20:.1f} MB; this server takes images up to "
                          f"{most_bytes / 2**20:.0f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # the header alone
                claimed = img.size
    except Image.DecompressionBombError:
        raise UploadError(f"{what} claims more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels (a decompression "
                          f"bomb); this server takes images of up to {most_pixels:,} pixels") from None
    except UNREADABLE:
        raise UploadError(f"{what} is not an image zoo can read; send a {FORMATS} file") from None
    if claimed[0] * claimed[1] > most_pixels:
        raise UploadError(f"{what} is {claimed[0]}x{claimed[1]} pixels; this server takes images of up to "
                          f"{most_pixels:,} pixels (e.g. {int(most_pixels ** 0.5)}x{int(most_pixels ** 0.5)})")
    try:
        picture, _, _ = read_image(path, height, width)
    except UNREADABLE as exc:
        raise UploadError(f"{what} could not be decoded as an image ({type(exc).__name__}); send a {FORMATS} "
                          "file") from None
    return picture
