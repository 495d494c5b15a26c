"""Super-resolution's shared parts: upscaling whole images of any size in tiles, making
the low-resolution half of a high-resolution photo, and measuring as the field does.

* :func:`upscale` runs an image-to-image model over an image in tiles of ``tile`` input
  pixels, each read with :meth:`zoo.Model.context` pixels of overlap on every side and cut
  back to its centre: the result is the untiled one (no seams), in bounded memory.
* :func:`shrink` is the protocol's low-resolution image: the photo cropped to a multiple of
  the scale, downsampled bicubically (antialiased, as training derives its pairs) and
  rounded to 8 bits, as a saved image would be.
* :func:`measure`: PSNR and SSIM on the BT.601 Y channel with ``scale`` pixels cropped from
  each border (Ledig et al.'s convention, which makes figures comparable with papers),
  for the model and for bicubic upsampling of the same inputs, and the Laplacian energy of
  each (a no-reference sharpness figure: a blurry upscale has little), with the share of that
  detail that is a grid repeating every ``scale`` pixels (a checkerboard scores high there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.data.images import as_uint8, to_float
from zoo.errors import UsageError
from zoo.measure.metrics import grid_artefact, laplacian_energy, luma, psnr_y, ssim_y
from zoo.spec import DataSpec
from zoo.training.devices import to_device


class Upscaler(Protocol):
    """What tiled upscaling needs of an image-to-image model (a :class:`zoo.Model` is one)."""

    config: Any

    def context(self) -> int: ...

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor: ...


TILE = 128
"""Side of a tile in input pixels (each read with the model's context around it)."""

def derivation_of(cls: Any, config: Any) -> Derivation | None:
    """How a model class (a :class:`zoo.Model` subclass) makes its pairs from one-domain data
    (None for a model that does not)."""
    return cls.derivation(config) if "derived" in cls.data_pairing else None


def factor_of(model: Upscaler) -> int:
    """How many times larger a model trained on derived pairs makes images (1: not at all)."""
    derivation = derivation_of(type(model), model.config)
    return derivation.factor if derivation is not None else 1


def tiles(image: Tensor, model: Upscaler, tile: int = TILE) -> int:
    """How many tiles :func:`upscale` cuts ``image`` into (1: it is upscaled whole)."""
    h, w = image.shape[-2:]
    if model.context() <= 0 or (h <= tile and w <= tile):
        return 1
    return math.ceil(h / tile) * math.ceil(w / tile)


def upscale(model: Upscaler, image: Tensor, factor: int, tile: int = TILE,
            done: Callable[[], None] | None = None) -> Tensor:
    """``image`` (1 x C x h x w, float in [-1, 1], on the model's device) made ``factor``
    times larger by ``model.translate``, in tiles when it is larger than ``tile`` and the
    model declares its context; ``done`` is called after each tile (a progress bar)."""
    _, _, h, w = image.shape
    margin = model.context()
    if tile < 1:
        raise UsageError(f"--tile must be at least 1, got {tile}")
    if margin <= 0 or (h <= tile and w <= tile):
        whole = model.translate(image)
        if done is not None:
            done()
        return whole
    out: Tensor | None = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            y0, x0 = max(0, top - margin), max(0, left - margin)
            y1, x1 = min(h, bottom + margin), min(w, right + margin)
            piece = model.translate(image[:, :, y0:y1, x0:x1])
            if out is None:
                out = piece.new_empty(piece.shape[0], piece.shape[1], h * factor, w * factor)
            out[:, :, top * factor:bottom * factor, left * factor:right * factor] = piece[
                :, :, (top - y0) * factor:(bottom - y0) * factor, (left - x0) * factor:(right - x0) * factor]
            if done is not None:
                done()
    assert out is not None
    return out


def bicubic(image: Tensor, factor: int) -> Tensor:
    """The baseline: bicubic upsampling with the kernel of MATLAB's ``imresize`` and PIL
    (a = -0.5: torch's ``antialias=True``; its default is a = -0.75), clamped to [-1, 1]."""
    return F.interpolate(image, scale_factor=factor, mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)


def shrink(images: Tensor, factor: int, name: str = "the image") -> tuple[Tensor, Tensor]:
    """(high, low): uint8 N x C x H x W images cropped to sides that divide by ``factor``
    (from the bottom and right) and their bicubic downsample, rounded to 8 bits."""
    height, width = images.shape[-2:]
    least = 3 * factor  # a border of factor px is cropped from each side before measuring
    if height < least or width < least:
        raise UsageError(f"{name} is {height}x{width}: too small to measure x{factor} super-resolution on (its "
                         f"{factor} px border is cropped); give images of at least {least} px a side")
    high = images[..., :height - height % factor, :width - width % factor]
    low = as_uint8(Derivation(factor).downsample(to_float(high)))
    return high, low


def centre_window(images: Tensor, side: int) -> Tensor:
    """The centre ``side`` x ``side`` of images (the whole of a smaller side), for close-ups."""
    height, width = images.shape[-2:]
    h, w = min(side, height), min(side, width)
    top, left = (height - h) // 2, (width - w) // 2
    return images[..., top:top + h, left:left + w]


@dataclass
class Scores:
    """Per image: the model's and bicubic's PSNR and SSIM (Y, border cropped), and the
    Laplacian energy (the mean squared 3 x 3 Laplacian of Y, 8-bit units) of the model's
    output, of bicubic's and of the original; and the grid artefact (:func:`zoo.measure.metrics.
    grid_artefact`, period ``scale``) of the output and of the original."""

    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    bicubic_psnr: list[float] = field(default_factory=list)
    bicubic_ssim: list[float] = field(default_factory=list)
    energy: list[float] = field(default_factory=list)
    bicubic_energy: list[float] = field(default_factory=list)
    original_energy: list[float] = field(default_factory=list)
    grid: list[float] = field(default_factory=list)
    original_grid: list[float] = field(default_factory=list)


def measure(outputs: Tensor, baseline: Tensor, high: Tensor, border: int, scores: Scores) -> None:
    """Add one image's figures (uint8 1 x C x H x W each, as saved) to ``scores``."""
    a, b, h = to_float(outputs), to_float(baseline), to_float(high)
    scores.psnr.append(float(psnr_y(a, h, border)[0]))
    scores.ssim.append(float(ssim_y(a, h, border)[0]))
    scores.bicubic_psnr.append(float(psnr_y(b, h, border)[0]))
    scores.bicubic_ssim.append(float(ssim_y(b, h, border)[0]))
    for images, into in ((a, scores.energy), (b, scores.bicubic_energy), (h, scores.original_energy)):
        y = luma(images) / 127.5 - 1  # Y in [-1, 1]: laplacian_energy takes it to [0, 1] ...
        into.append(float(laplacian_energy(y)[0]) * 255 ** 2)  # ... and this back to 8-bit units
    scores.grid.append(float(grid_artefact(a, border)[0]))
    scores.original_grid.append(float(grid_artefact(h, border)[0]))


@dataclass(frozen=True)
class Derivation:
    """Pairs derived on the fly from one set of images: each image (or a random
    ``crop`` x ``crop`` patch of it, flipped at random with ``flips``) is the target, and its
    bicubic downsample by ``factor`` (antialiased, as MATLAB's ``imresize`` and PIL do) the
    input. Super-resolution trains on any image data this way, prepared once; full-size
    photos (``--size full``) give their crops straight from each photo."""

    factor: int
    crop: int = 0
    """Side of the random square patch taken from each image first; 0 = the whole image."""
    flips: bool = False
    """Flip each pair left-right and upside-down, each with probability 1/2."""

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise UsageError(f"a downscale factor must be at least 1, got {self.factor}")
        if self.crop and self.crop % self.factor:
            raise UsageError(f"the crop ({self.crop} px) must be a multiple of the factor {self.factor}")

    def spec(self, spec: DataSpec) -> DataSpec:
        """The spec a model sees: low-resolution inputs, the (cropped) images as targets."""
        height, width = (self.crop, self.crop) if self.crop else (spec.height, spec.width)
        if self.crop and (self.crop > spec.height or self.crop > spec.width):
            raise UsageError(f"patches of {self.crop} px do not fit in {spec.height}x{spec.width} images (the "
                             f"smallest); set a smaller crop (--set crop=...) or use larger images")
        if height % self.factor or width % self.factor:
            raise UsageError(f"{height}x{width} images do not divide by the factor {self.factor}; "
                             f"prep the data with a --size that is a multiple of {self.factor}")
        return DataSpec(spec.name, spec.channels, height // self.factor, width // self.factor,
                        spec.class_names, "derived", spec.channels, ("low", "high"), height, width,
                        spec.conditions, spec.text_dim)

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(inputs, targets) for float images in [-1, 1]."""
        n, _, h, w = images.shape
        if self.crop and (h > self.crop or w > self.crop):
            top = torch.randint(0, h - self.crop + 1, (n,))
            left = torch.randint(0, w - self.crop + 1, (n,))
            images = windows(images, top, left, self.crop)
        (images,) = self.flip(images)
        return self.downsample(images), images

    def flip(self, *images: Tensor) -> tuple[Tensor, ...]:
        """With ``flips``, each example flipped left-right and upside-down with probability
        1/2, the same way in every tensor given (a pair's two halves); else as they are."""
        if not self.flips:
            return images
        n = images[0].shape[0]
        flip = torch.rand(2, n, 1, 1, 1, device=images[0].device) < 0.5
        return tuple(torch.where(flip[1], x.flip(-2), x) for x in
                     (torch.where(flip[0], x.flip(-1), x) for x in images))

    def paired_spec(self, spec: DataSpec) -> DataSpec:
        """The spec a model sees for paired low- and high-resolution photos (its crops)."""
        side = self.crop // self.factor
        if side > spec.height or side > spec.width:
            raise UsageError(f"crops of {self.crop} px need low-resolution images of {side} px; the smallest is "
                             f"{spec.height}x{spec.width}; set a smaller crop (--set crop=...)")
        return DataSpec(spec.name, spec.channels, side, side, spec.class_names, "paired",
                        spec.target_channels or spec.channels, spec.domains, self.crop, self.crop, spec.conditions,
                        spec.text_dim)

    def downsample(self, images: Tensor) -> Tensor:
        """Images in [-1, 1] made ``factor`` times smaller (their sides must divide by it)."""
        if self.factor == 1:
            return images
        return F.interpolate(images, scale_factor=1 / self.factor, mode="bicubic", antialias=True,
                             align_corners=False).clamp(-1, 1)


def windows(images: Tensor, top: Tensor, left: Tensor, size: int) -> Tensor:
    """The ``size`` x ``size`` window of each image (N x C x H x W) whose top left corner is at
    (``top``, ``left``), N host tensors each."""
    n, c, h, w = images.shape
    first = torch.arange(n) * (c * h * w) + top * w + left
    return flat_windows(images.contiguous().view(-1), first, torch.full((n,), h * w), torch.full((n,), w), c, size)


def flat_windows(pixels: Tensor, first: Tensor, plane: Tensor, row: Tensor, channels: int, size: int) -> Tensor:
    """N windows of ``channels`` x ``size`` x ``size`` pixels of images laid end to end in
    ``pixels`` (1-D), each given by N host tensors: the offset of its top left pixel in its
    image's first channel (``first``), and its image's strides from channel to channel
    (``plane``) and row to row (``row``). One selection of ``size``-pixel runs, on the
    pixels' device: no per-image Python, nothing read back from the device, and on a CPU
    faster than slicing each window (a gather of single pixels is several times slower)."""
    first, plane, row = (t.view(-1, 1, 1) for t in to_device(torch.stack([first, plane, row]), pixels.device))
    starts = (first + plane * torch.arange(channels, device=pixels.device).view(1, -1, 1)
              + row * torch.arange(size, device=pixels.device).view(1, 1, -1))
    runs = pixels.unfold(0, size, 1)  # every run of ``size`` pixels, as a view
    return runs.index_select(0, starts.view(-1)).view(-1, channels, size, size)
