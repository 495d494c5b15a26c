"""A data set as read from its files, before zoo prepares it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from zoo.data.memory import Photos
from zoo.errors import UsageError


@dataclass
class RawData:
    """A data set as read from its files: uint8 N x C x H x W, labels int64, names. Two-domain
    data (see ``pairs``) has domain B in ``targets``."""

    images: Tensor
    labels: Tensor | None
    class_names: list[str]
    origin: str
    split: str = "train"
    notes: list[str] = field(default_factory=list)
    targets: Tensor | None = None
    pairing: str = ""
    domains: tuple[str, ...] = ()
    heldout: RawData | None = None
    """Images kept apart for evaluation: the data set's own test split where it has one."""
    photos: Photos | None = None
    """The images at their own sizes (``--size full``); ``images`` then holds their centres."""
    target_photos: Photos | None = None
    """The same for paired targets (high-resolution photos beside low-resolution ones)."""
    captions: list[list[str]] | None = None
    """Each image's captions (one or more sentences), for captioned data."""

    def take(self, index: Tensor) -> RawData:
        """The images ``index`` names (int64 indices or a mask), with their labels, their
        targets when paired and their photos."""
        if index.dtype == torch.bool:
            index = index.nonzero().view(-1)
        paired = self.targets is not None and self.pairing != "unpaired"
        return dataclasses.replace(
            self, images=self.images[index], labels=self.labels[index] if self.labels is not None else None,
            targets=self.targets[index] if paired and self.targets is not None else self.targets,
            photos=self.photos.take(index) if self.photos is not None else None,
            target_photos=self.target_photos.take(index) if paired and self.target_photos is not None
            else self.target_photos,
            captions=[self.captions[i] for i in index.tolist()] if self.captions is not None else None)

    def map(self, change: Callable[[RawData], RawData]) -> RawData:
        """``change`` applied to this data and to its held-out part alike."""
        held = change(self.heldout) if self.heldout is not None else None
        return dataclasses.replace(change(dataclasses.replace(self, heldout=None)), heldout=held)


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
