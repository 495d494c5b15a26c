"""Every picture zoo shows a person: sample grids, GIFs, loss curves, data exploration.

Images arrive as float tensors in [-1, 1] (N x C x H x W) or uint8 tensors; files leave
as PNG and GIF. matplotlib is imported only inside the functions that draw charts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import to_uint8

GRID_PADDING = 2
UNREADABLE = (OSError, ValueError, Image.DecompressionBombError)  # UnidentifiedImageError is an OSError
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
METRIC_LABELS = {"d_real": "D(x)", "d_fake": "D(G(z))", "critic_real": "critic(x)",
                 "critic_fake": "critic(G(z))", "wasserstein": "Wasserstein estimate"}
BELIEFS = ("d_real", "d_fake", "class_acc_real")
"""Metrics in [0, 1], drawn on a panel of their own."""


def metric_label(name: str) -> str:
    """How a metric is named for people: D(x) rather than d_real."""
    return METRIC_LABELS.get(name, name)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return images if images.dtype == torch.uint8 else to_uint8(images)


def read_image(path: Path, height: int, width: int) -> tuple[torch.Tensor, str, tuple[int, int]]:
    """An image file of any size and format, upright, fitted (resized and centre-cropped) to
    height x width: a uint8 3 x H x W tensor, the file's own PIL mode and (width, height).
    Raises one of ``UNREADABLE`` for files that are not images."""
    from PIL import ImageOps

    with Image.open(path) as img:
        mode, size = img.mode, img.size
        img = ImageOps.fit(ImageOps.exif_transpose(img).convert("RGB"), (width, height),
                           Image.Resampling.LANCZOS)
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


def to_pil(image: torch.Tensor) -> Image.Image:
    """One C x H x W image (float in [-1, 1] or uint8) as a PIL image."""
    array = as_uint8(image).cpu().permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(array[:, :, 0]))
    return Image.fromarray(np.ascontiguousarray(array))


def grid(images: torch.Tensor, nrow: int | None = None, padding: int = GRID_PADDING) -> Image.Image:
    """Tile images into one picture, ``nrow`` per row (default: as square as possible).
    A rows x columns x C x H x W tensor keeps its own layout."""
    from torchvision.utils import make_grid

    if images.dim() == 5:
        nrow = images.shape[1]
        images = images.flatten(0, 1)

    images = as_uint8(images).cpu()
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    tiled = make_grid(images, nrow=nrow, padding=padding, pad_value=0)
    if images.shape[1] == 1:
        tiled = tiled[:1]
    return to_pil(tiled)


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None, scale: int = 1) -> Path:
    picture = grid(images, nrow)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def save_images(images: torch.Tensor, folder: Path, names: Sequence[str]) -> list[Path]:
    """One PNG per image, named by ``names`` (without extension)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, name in zip(images, names, strict=True):
        path = folder / f"{name}.png"
        to_pil(image).save(path)
        paths.append(path)
    return paths


GIF_MAX_FRAMES = 60


def save_gif(frames: Iterable[Path], path: Path, frame_ms: int = 400, hold_last_ms: int = 2000,
             max_frames: int = GIF_MAX_FRAMES) -> Path | None:
    """An animated GIF of PNG frames (the training-progress movie); None if no frames. Long
    runs keep ``max_frames`` evenly spread frames, the first and the last among them."""
    frames = list(frames)
    if len(frames) > max_frames:
        step = (len(frames) - 1) / (max_frames - 1)
        frames = [frames[round(i * step)] for i in range(max_frames)]
    images = [Image.open(p).convert("RGB") for p in frames]
    if not images:
        return None
    scale = max(1, 256 // max(images[0].size))
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    durations = [frame_ms] * (len(images) - 1) + [hold_last_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


# -- charts -----------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: Path) -> list[dict]:
    """The rows of a ``metrics.jsonl``, skipping a line a crash cut short."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def loss_curves(records: Sequence[dict], path: Path, title: str = "") -> Path | None:
    """Loss curves, D's beliefs in [0, 1] and any other metric (a critic's outputs, its
    Wasserstein estimate, penalties) against step, raw and smoothed: a panel for each kind."""
    if not records:
        return None
    keys = [k for k in records[0] if k not in ("step", "epoch", "time")]
    losses = [k for k in keys if "loss" in k]
    beliefs = [k for k in keys if k in BELIEFS]
    others = [k for k in keys if k not in losses and k not in beliefs]
    panels = [p for p in (losses, beliefs, others) if p]
    if not panels:  # a model that reports no metrics
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    steps = [r["step"] for r in records]
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        for key in panel:
            values = [r.get(key, float("nan")) for r in records]
            line, = ax.plot(steps, values, alpha=0.25, linewidth=0.8)
            ax.plot(steps, _smooth(values), color=line.get_color(), label=metric_label(key), linewidth=1.6)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[0, 0].set_title(title or "training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _smooth(values: Sequence[float], weight: float | None = None) -> list[float]:
    weight = weight if weight is not None else min(0.98, 1 - 10 / max(10, len(values)))
    out, last = [], None
    for v in values:
        if v != v:  # NaN: keep the gap
            out.append(v)
            continue
        last = v if last is None else weight * last + (1 - weight) * v
        out.append(last)
    return out


def explore_data(images: torch.Tensor, labels: torch.Tensor | None, class_names: Sequence[str],
                 folder: Path, title: str) -> list[Path]:
    """Seed 003's data exploration: statistic images, histograms, class counts, samples."""
    folder.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    written = []
    pixels = images.float()

    # The mean, std, min and max over the data set, pixel by pixel, shown as images.
    stats = {"mean": pixels.mean(0), "std": pixels.std(0), "min": pixels.amin(0), "max": pixels.amax(0)}
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, (name, image) in zip(axes, stats.items(), strict=True):
        shown = image / 255.0 if name != "std" else image / max(float(image.max()), 1e-6)
        if shown.shape[0] == 1:
            ax.imshow(shown[0].numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(shown.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(f"{name} (range {float(image.min()):.0f}-{float(image.max()):.0f})", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{title}: per-pixel statistics")
    fig.tight_layout()
    written.append(_save(fig, plt, folder / "stats.png"))

    # Per-channel histograms of pixel values.
    names = ["gray"] if images.shape[1] == 1 else ["red", "green", "blue"][: images.shape[1]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for c, name in enumerate(names):
        counts = torch.bincount(images[:, c].reshape(-1).long(), minlength=256).numpy()
        ax.plot(range(256), counts, color=name if name != "gray" else "black", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("count (log)")
    ax.set_title(f"{title}: pixel histogram per channel")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, plt, folder / "histogram.png"))

    # How many images of each class.
    if labels is not None and class_names:
        class_counts = torch.bincount(labels, minlength=len(class_names)).tolist()
        fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(class_names) + 2), 3.5))
        ax.bar(range(len(class_names)), class_counts, color="#4c72b0")
        ax.set_xticks(range(len(class_names)), class_names, rotation=45 if len(class_names) > 10 else 0,
                      ha="right" if len(class_names) > 10 else "center")
        ax.set_ylabel("images")
        ax.set_title(f"{title}: images per class")
        fig.tight_layout()
        written.append(_save(fig, plt, folder / "class_counts.png"))

    # A sample of the images themselves: one row per class when labelled.
    written.append(save_grid(_sample_rows(images, labels, len(class_names)), folder / "samples.png",
                             nrow=None if labels is None else 10, scale=2))
    return written


def _sample_rows(images: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    if labels is None or num_classes == 0 or num_classes > 20:
        return images[:64]
    rows = []
    for c in range(num_classes):
        picked = images[labels == c][:10]
        if len(picked) < 10:
            pad = torch.zeros((10 - len(picked), *images.shape[1:]), dtype=images.dtype)
            picked = torch.cat([picked, pad])
        rows.append(picked)
    return torch.cat(rows)


def _save(fig, plt, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
