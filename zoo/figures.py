"""Every picture zoo shows a person: sample grids, GIFs, loss curves, data exploration.

Images arrive as float tensors in [-1, 1] (N x C x H x W) or uint8 tensors; files leave
as PNG and GIF. matplotlib is imported only inside the functions that draw charts.
"""

from __future__ import annotations

import functools
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
EVAL_KEYS = ("fd", "ssim_train", "l1", "psnr")
"""What ``zoo train --eval-every`` writes to metrics.jsonl, on lines of their own."""
EVAL_LABELS = {"fd": "Frechet distance of fixed samples (lower is better)",
               "ssim_train": "SSIM of fixed samples to their nearest training images",
               "l1": "L1 to held-out targets (lower is better)", "psnr": "PSNR to held-out targets (dB)"}
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


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None, scale: int = 1, *,
              column_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
              title: str | None = None) -> Path:
    """:func:`grid` enlarged ``scale`` times and saved; with labels or a title, the
    :func:`labelled_grid` instead."""
    if column_labels or row_labels or title:
        picture = labelled_grid(images, nrow, column_labels=column_labels, row_labels=row_labels,
                                title=title, scale=scale)
    else:
        picture = _enlarged(grid(images, nrow), scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def _enlarged(picture: Image.Image, scale: int) -> Image.Image:
    if scale <= 1:
        return picture
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)


# -- labelled sheets ----------------------------------------------------------------------------

LABELLED_CELL = 56
"""A labelled sheet's cells are enlarged to at least this many pixels a side, where a label
can be read beside them (a 28 px digit is drawn at 56)."""
MAX_LABELLED_SCALE = 8
LABEL_SIZE = 14
"""Font size of labels, in pixels: larger beside large cells, smaller (down to
SMALLEST_LABEL, then cut short) where a label would not fit over its column."""
SMALLEST_LABEL = 10
LARGEST_LABEL = 24
ROW_LABELS_WIDEST = 240
"""Row labels longer than this many pixels are cut short."""
INK, PAPER = "#202020", "#ffffff"


def labelled_grid(images: torch.Tensor, nrow: int | None = None, *,
                  column_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
                  title: str | None = None, scale: int = 1, padding: int = GRID_PADDING) -> Image.Image:
    """:func:`grid` with what its rows and columns mean written on it, so that the picture
    explains itself when copied into a slide or a W&B panel: dark text on white bands, the
    ``title`` and a label over each column above, a label for each row on the left.

    The images are enlarged ``scale`` times, or more (a whole factor, nearest neighbour, so
    pixels stay sharp) until cells are :data:`LABELLED_CELL` px and each column label fits
    over its column; so the size depends on the cells and the column labels, while row labels
    and the title only widen their bands: frames that differ in those alone (a GIF's) keep
    one size. Gray or RGB; a rows x columns x C x H x W tensor keeps its layout (use
    :func:`zoo.image_rows` to put columns of different sizes side by side)."""
    from PIL import ImageColor, ImageDraw

    count = images.shape[0] * (images.shape[1] if images.dim() == 5 else 1)
    if images.dim() == 5:
        nrow = images.shape[1]
    nrow = min(count, nrow or max(1, math.ceil(math.sqrt(count))))
    rows = math.ceil(count / nrow)
    for labels, wanted, what in ((column_labels, nrow, "column"), (row_labels, rows, "row")):
        if labels is not None and len(labels) != wanted:
            raise ValueError(f"{len(labels)} {what} labels for a sheet of {wanted} {what}s")
    column_labels = [str(label) for label in column_labels or ()]
    row_labels = [str(label) for label in row_labels or ()]

    height, width = images.shape[-2:]
    slot = width + padding  # a column's share of the sheet's width, before enlarging
    widest = max((_font(LABEL_SIZE).getlength(label) for label in column_labels), default=0)
    while scale < MAX_LABELLED_SCALE and (min(height, width) * scale < LABELLED_CELL
                                          or slot * scale < widest + LABEL_SIZE // 2):
        scale += 1
    picture = _enlarged(grid(images, nrow, padding), scale)

    # One font for every label: larger beside large cells, smaller where a column is narrow.
    size = max(LABEL_SIZE, min(LARGEST_LABEL, min(height, width) * scale // 6))
    while size > SMALLEST_LABEL and any(_font(size).getlength(label) + size // 2 > slot * scale
                                        for label in column_labels):
        size -= 1
    font, margin = _font(size), max(3, size // 2)
    line = font.getbbox("Ag")[3]
    left = 0
    if row_labels:
        row_labels = [_shortened(label, font, ROW_LABELS_WIDEST) for label in row_labels]
        left = int(max(font.getlength(label) for label in row_labels)) + 2 * margin
    title_lines = _wrapped(title, font, left + picture.width - 2 * margin) if title else []
    title_band = len(title_lines) * (line + margin // 2) + margin if title_lines else 0
    header = line + 2 * margin if column_labels else 0
    top = title_band + header

    sheet = Image.new(picture.mode, (left + picture.width, top + picture.height),
                      ImageColor.getcolor(PAPER, picture.mode))
    sheet.paste(picture, (left, top))
    draw, ink = ImageDraw.Draw(sheet), ImageColor.getcolor(INK, picture.mode)
    for i, text in enumerate(title_lines):
        draw.text((margin, margin + i * (line + margin // 2)), text, fill=ink, font=font)
    for j, label in enumerate(column_labels):
        label = _shortened(label, font, slot * scale - 2)
        centre = left + (padding + j * slot + width / 2) * scale
        draw.text((round(centre - font.getlength(label) / 2), title_band + margin), label, fill=ink, font=font)
    for i, label in enumerate(row_labels):
        middle = top + (padding + i * (height + padding) + height / 2) * scale
        draw.text((left - margin - round(font.getlength(label)), round(middle - line / 2)), label,
                  fill=ink, font=font)
    return sheet


@functools.cache
def _font(size: int):
    """Pillow's own font at ``size`` px (Pillow 10.1 and later), else its small bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # an older Pillow, or one built without FreeType
        return ImageFont.load_default()


def _shortened(text: str, font, width: float) -> str:
    """``text`` cut short with "..." to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _wrapped(text: str, font, width: float) -> list[str]:
    """``text`` broken into lines of at most ``width`` pixels, at spaces where it can be."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(_shortened(word, font, width))
    return lines


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
    size = (max(im.width for im in images), max(im.height for im in images))
    if any(im.size != size for im in images):  # a GIF crops every frame to the first's size
        images = [_on_canvas(im, size) for im in images]
    scale = max(1, 256 // max(images[0].size))
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    durations = [frame_ms] * (len(images) - 1) + [hold_last_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def _on_canvas(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``picture`` centred on a white canvas of ``size`` (frames drawn before and after labels
    were added to a resumed run's previews)."""
    if picture.size == size:
        return picture
    canvas = Image.new(picture.mode, size, "white")
    canvas.paste(picture, ((size[0] - picture.width) // 2, (size[1] - picture.height) // 2))
    return canvas


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
    evals: list[dict] = []
    losses_rows: list[dict] = []
    for r in records:  # --eval-every's lines have no epoch; the steps' lines always do
        (evals if "epoch" not in r and any(k in r for k in EVAL_KEYS) else losses_rows).append(r)
    records = losses_rows
    if not records:
        return None
    keys = [k for k in records[0] if k not in ("step", "epoch", "time")]
    losses = [k for k in keys if "loss" in k]
    beliefs = [k for k in keys if k in BELIEFS]
    others = [k for k in keys if k not in losses and k not in beliefs]
    panels = [p for p in (losses, beliefs, others) if p]
    evaluated = [k for k in EVAL_KEYS if any(k in r for r in evals)]
    if not panels:  # a model that reports no metrics
        return None
    plt = _pyplot()
    rows = len(panels) + len(evaluated)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 * rows), squeeze=False)
    steps = [r["step"] for r in records]
    for ax, panel in zip(axes[:len(panels), 0], panels, strict=True):
        for key in panel:
            values = [r.get(key, float("nan")) for r in records]
            line, = ax.plot(steps, values, alpha=0.25, linewidth=0.8)
            ax.plot(steps, _smooth(values), color=line.get_color(), label=metric_label(key), linewidth=1.6)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    for ax, key in zip(axes[len(panels):, 0], evaluated, strict=True):
        points = [(r["step"], r[key]) for r in evals if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, color="#c44e52",
                label=EVAL_LABELS.get(key, key))
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
    by_class = labels is not None and 0 < len(class_names) <= SAMPLE_CLASSES
    written.append(save_grid(_sample_rows(images, labels, len(class_names)), folder / "samples.png",
                             nrow=None if labels is None else 10, scale=2,
                             row_labels=list(class_names) if by_class else None))
    return written


SAMPLE_CLASSES = 20
"""Data of at most this many classes shows a row of samples for each."""


def _sample_rows(images: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    if labels is None or num_classes == 0 or num_classes > SAMPLE_CLASSES:
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


def bar_chart(values: dict[str, float | None], path: Path, title: str = "", ylabel: str = "",
              limit: tuple[float, float] | None = None) -> Path:
    """One bar per key (a class's accuracy, ...), its value written on it."""
    plt = _pyplot()
    names = [k for k, v in values.items() if v is not None]
    heights = [float(values[k]) for k in names]  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 1.5), 3.2))
    bars = ax.bar(range(len(names)), heights, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names), default=0) > 3 else 0,
                  ha="right" if max(map(len, names), default=0) > 3 else "center", fontsize=8)
    for bar, value in zip(bars, heights, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{value:.0%}" if limit == (0, 1) else
                f"{value:.3g}", ha="center", va="bottom", fontsize=7)
    if limit is not None:
        ax.set_ylim(*limit)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
