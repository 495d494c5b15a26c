"""Data sets read one image at a time: the list of what they hold first (cheap: file names,
archive headers), then each image's bytes on demand, so that prep holds one shard of
fitted images in memory whatever the set's size (``zoo.pipelines.streamed_prep``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import torch

from zoo.data.images import GRAY_MODES, UNREADABLE, read_image


@dataclass(frozen=True)
class Item:
    """One image of a streamed set: a name for messages, its class (-1: none) and where its
    bytes are (a file, or a member of an archive: ``where`` is the source's to read)."""

    name: str
    label: int
    where: tuple


@dataclass
class Streamed:
    """A data set as a list of :class:`Item` and a way to read each one's bytes."""

    items: list[Item]
    class_names: list[str]
    origin: str
    read: Callable[[Item], BinaryIO]
    """The item's bytes as a file (PIL reads the header first, and refuses a bomb before decoding)."""
    notes: list[str] = field(default_factory=list)
    key: str = ""
    """What the prepared set is made of (names, sizes, times), hashed: prep's resume checks
    that it continues the same set."""
    pairs: bool = False
    """Each item is a pair of photos (paired:PATH's A/ and B/ files, ``where`` holds both), read
    at their own sizes (``--size full``)."""

    def fitted(self, item: Item, height: int, width: int) -> tuple[torch.Tensor, bool] | str:
        """The item's image fitted to height x width (uint8 3 x H x W) and whether it is gray,
        or why it could not be read ("name (error)")."""
        try:  # reading (a file that cannot be opened) or decoding
            with self.read(item) as fh:
                picture, mode, _ = read_image(fh, height, width)
        except UNREADABLE as exc:
            return f"{item.name} ({type(exc).__name__})"
        return picture, mode in GRAY_MODES
