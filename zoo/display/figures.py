"""Every picture zoo shows a person: sample grids (plain or labelled), GIFs, and charts:
loss curves, in-training figures, runs compared, data exploration, bars.

Images arrive as float tensors in [-1, 1] (N x C x H x W) or uint8 tensors; files leave
as PNG and GIF. The words on a labelled grid are :mod:`zoo.display.sheets`' part; reading image
files in is :mod:`zoo.data.images`'; the run files charts are drawn from are read by
:mod:`zoo.records.run_info`. matplotlib is imported only inside the functions that draw charts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from zoo.data.images import as_uint8
from zoo.display import sheets
from zoo.records import files
from zoo.records.run_info import EVAL_KEYS, is_evaluation

GRID_PADDING = 2
METRIC_LABELS = {"d_real": "D(x)", "d_fake": "D(G(z))", "critic_real": "critic(x)",
                 "critic_fake": "critic(G(z))", "wasserstein": "Wasserstein estimate"}
BELIEFS = ("d_real", "d_fake", "class_acc_real")
EVAL_LABELS = {"fd": "Frechet distance of fixed samples (lower is better)",
               "ssim_train": "SSIM of fixed samples to their nearest training images",
               "l1": "L1 to held-out targets (lower is better)", "psnr": "PSNR to held-out targets (dB)"}
"""Metrics in [0, 1], drawn on a panel of their own."""


def metric_label(name: str) -> str:
    """How a metric is named for people: D(x) rather than d_real."""
    return METRIC_LABELS.get(name, name)


def number(value: float) -> str:
    """A figure as people read it: 1,235 from a thousand up, else four significant digits
    (nan and inf as Python writes them)."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


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
    """The :func:`labelled_grid` of ``images``, saved: every grid a person looks at is drawn
    one way, its cells enlarged until they can be seen (a grid of 28 px digits with a row
    per class and one without are drawn at the same size), with labels when it has them."""
    picture = labelled_grid(images, nrow, column_labels=column_labels, row_labels=row_labels,
                            title=title, scale=scale)
    return save_picture(picture, path)


def save_picture(picture: Image.Image, path: Path, **options: Any) -> Path:
    """Save a picture atomically (:func:`zoo.records.files.write_atomically`), in the format its
    name says: a crash or a full disk never leaves a half-written PNG or GIF."""
    kind = Image.registered_extensions().get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"no picture format for {path.name}")
    files.write_atomically(path, lambda tmp: picture.save(tmp, format=kind, **options), "picture")
    return path


def _enlarged(picture: Image.Image, scale: int) -> Image.Image:
    if scale <= 1:
        return picture
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)


def labelled_grid(images: torch.Tensor, nrow: int | None = None, *,
                  column_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
                  title: str | None = None, scale: int = 1, padding: int = GRID_PADDING) -> Image.Image:
    """:func:`grid` with what its rows and columns mean written on it (when it is given
    labels), so that the picture explains itself when copied into a slide or a W&B panel:
    dark text on white bands, the ``title`` and a label over each column above, a label for
    each row on the left (:mod:`zoo.display.sheets` draws them).

    The images are enlarged ``scale`` times, or more (a whole factor, nearest neighbour, so
    pixels stay sharp) until cells are :data:`zoo.display.sheets.LABELLED_CELL` px and each column
    label fits over its column; so the size depends on the cells and the column labels, while
    row labels and the title only widen their bands: frames that differ in those alone (a
    GIF's) keep one size. Gray or RGB; a rows x columns x C x H x W tensor keeps its layout
    (use :func:`zoo.image_rows` to put columns of different sizes side by side)."""
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
    scale = sheets.scale_to_fit(height, width, padding, column_labels, scale)
    picture = _enlarged(grid(images, nrow, padding), scale)
    return sheets.with_labels(picture, (height, width), padding, scale, column_labels, row_labels, title)


def save_caption_sheet(images: torch.Tensor, captions: Sequence[Sequence[str]], path: Path, side: int = 64) -> Path:
    """Images (float in [-1, 1] or uint8), each enlarged to about ``side`` px beside its
    captions: the sheet ``zoo prep`` draws of captioned data."""
    scale = max(1, side // max(images.shape[-2:]))
    return save_picture(sheets.caption_sheet([_enlarged(to_pil(im), scale) for im in images], captions), path)


def save_images(images: torch.Tensor, folder: Path, names: Sequence[str]) -> list[Path]:
    """One PNG per image, named by ``names`` (without extension)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, name in zip(images, names, strict=True):
        path = folder / f"{name}.png"
        paths.append(save_picture(to_pil(image), path))
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
    images = [im for im in map(_readable, frames) if im is not None]
    if not images:
        return None
    size = (max(im.width for im in images), max(im.height for im in images))
    if any(im.size != size for im in images):  # a GIF crops every frame to the first's size
        images = [_on_canvas(im, size) for im in images]
    scale = max(1, 256 // max(images[0].size))
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    durations = [frame_ms] * (len(images) - 1) + [hold_last_ms]
    return save_picture(images[0], path, save_all=True, append_images=images[1:], duration=durations, loop=0)


def _readable(path: Path) -> Image.Image | None:
    """A frame, or None if it cannot be read (a preview cut off by a crash of an older zoo)."""
    try:
        with Image.open(path) as picture:
            return picture.convert("RGB")
    except (OSError, ValueError):
        return None


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


def loss_curves(records: Sequence[dict], path: Path, title: str = "",
                state: Sequence[str] = ()) -> Path | None:
    """Loss curves, D's beliefs in [0, 1] and any other metric (a critic's outputs, its
    Wasserstein estimate, penalties) against step, raw and smoothed: a panel for each kind.
    ``state`` names metrics that say where training stands (ProGAN's resolution and alpha):
    drawn unsmoothed, each in a panel of its own."""
    evals: list[dict] = []
    losses_rows: list[dict] = []
    for r in records:
        (evals if is_evaluation(r) else losses_rows).append(r)
    records = losses_rows
    if not records:
        return None
    keys = [k for k in records[0] if k not in ("step", "epoch", "time")]
    losses = [k for k in keys if "loss" in k]
    states = [k for k in keys if k in state]
    beliefs = [k for k in keys if k in BELIEFS]
    others = [k for k in keys if k not in losses and k not in beliefs and k not in states]
    panels = [p for p in (losses, beliefs, others) if p] + [[k] for k in states]
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
            if key in states:  # a schedule: drawn as it was, step by step
                ax.plot(steps, values, color="#4c72b0", label=metric_label(key), linewidth=1.6)
                continue
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
    return _save(fig, plt, path, dpi=110)


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


def compare_chart(records: dict[str, list[dict]], metrics: Sequence[str], path: Path,
                  labels: dict[str, str] | None = None) -> Path:
    """Runs compared (``zoo compare``): one panel per metric, one line per run (``records``:
    each run's metrics.jsonl rows, by name) against the step: in-training evaluations as
    points joined by lines, per-step values faint with a smoothed line over them."""
    plt = _pyplot()
    labels = labels or {}
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 3.4 * len(metrics)), squeeze=False)
    for ax, key in zip(axes[:, 0], metrics, strict=True):
        for name, rows in records.items():
            points = [(r["step"], float(r[key])) for r in rows if key in r and "step" in r]
            if not points:
                continue
            steps, values = [p[0] for p in points], [p[1] for p in points]
            label = labels.get(name, name)
            if key in EVAL_KEYS or len(points) <= 20:
                ax.plot(steps, values, marker="o", markersize=3, label=label)
            else:
                line, = ax.plot(steps, values, alpha=0.2, linewidth=0.8)
                ax.plot(steps, _smooth(values), color=line.get_color(), linewidth=1.6, label=label)
        ax.set_title(EVAL_LABELS.get(key, metric_label(key)), fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(metric_label(key))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, plt, path, dpi=110)


def eval_curve(evals: Sequence[dict], keys: Sequence[str], best: dict[str, Any]) -> bytes:
    """The in-training figures (``--eval-every``'s metrics.jsonl rows) against the step, one
    panel each, the ``best`` (run.json's) marked: a PNG, as bytes."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.8 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        points = [(r["step"], r[key]) for r in evals if key in r and "step" in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, color="#c44e52")
        if key in best and "step" in best:
            ax.plot([best["step"]], [best[key]], marker="*", markersize=12, color="#2a7d4f", linestyle="none",
                    label=f"best: {number(best[key])} at step {best['step']:,}")
            ax.legend(fontsize=8)
        ax.set_title(EVAL_LABELS.get(key, key), fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


STATISTICS_CHUNK = 1 << 22
"""Pixel values at a time in :func:`pixel_statistics` (whole images; 32 MB as float64)."""


def pixel_statistics(images: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-pixel mean, standard deviation (N - 1; 0 for one image), min and max (each C x H x W)
    of uint8 ``images``, and each channel's histogram of values (C x 256), in chunks: memory
    beyond the data is a chunk's, whatever the data set's size (its float copy would be 4x)."""
    n, channels = images.shape[0], images.shape[1]
    total = torch.zeros(images.shape[1:], dtype=torch.float64)
    squares = torch.zeros_like(total)
    low = torch.full(images.shape[1:], 255, dtype=torch.uint8)
    high = torch.zeros(images.shape[1:], dtype=torch.uint8)
    histograms = torch.zeros(channels, 256, dtype=torch.int64)
    chunk = max(1, STATISTICS_CHUNK // max(1, images[0].numel()))
    for start in range(0, n, chunk):
        part = images[start:start + chunk]
        values = part.double()
        total += values.sum(0)
        squares += values.square_().sum(0)
        low, high = torch.minimum(low, part.amin(0)), torch.maximum(high, part.amax(0))
        for c in range(channels):
            histograms[c] += torch.bincount(part[:, c].reshape(-1), minlength=256)
    mean = total / max(n, 1)
    spread = ((squares - n * mean.square()) / (n - 1)).clamp(min=0).sqrt() if n > 1 else torch.zeros_like(mean)
    stats = {"mean": mean.float(), "std": spread.float(), "min": low.float(), "max": high.float()}
    return stats, histograms


def explore_data(images: torch.Tensor, labels: torch.Tensor | None, class_names: Sequence[str],
                 folder: Path, title: str) -> list[Path]:
    """Seed 003's data exploration: statistic images, histograms, class counts, samples."""
    folder.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    written = []
    stats, histograms = pixel_statistics(images)

    # The mean, std, min and max over the data set, pixel by pixel, shown as images.
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
    written.append(_save(fig, plt, folder / "stats.png"))

    # Per-channel histograms of pixel values.
    names = ["gray"] if images.shape[1] == 1 else ["red", "green", "blue"][: images.shape[1]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for c, name in enumerate(names):
        ax.plot(range(256), histograms[c].numpy(), color=name if name != "gray" else "black", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("count (log)")
    ax.set_title(f"{title}: pixel histogram per channel")
    ax.legend()
    written.append(_save(fig, plt, folder / "histogram.png"))

    # How many images of each class.
    if labels is not None and class_names:
        class_counts = torch.bincount(labels, minlength=len(class_names)).tolist()
        k = len(class_names)
        fig, ax = plt.subplots(figsize=(min(16, max(5, 0.6 * k + 2)), 3.5))  # 1,000 classes: one bar each, 16 in
        if k <= 50:
            ax.bar(range(k), class_counts, color="#4c72b0")
        else:  # one filled outline, not a thousand bars (matplotlib draws each bar on its own)
            ax.stairs(class_counts, [i - 0.5 for i in range(k + 1)], fill=True, color="#4c72b0")
        ticks = range(0, k, 1 if k <= 50 else k // 10)  # many classes: every tenth of them named
        ax.set_xticks(list(ticks), [class_names[i] for i in ticks], rotation=45 if k > 10 else 0,
                      ha="right" if k > 10 else "center")
        ax.set_ylabel("images")
        ax.set_title(f"{title}: images per class")
        written.append(_save(fig, plt, folder / "class_counts.png"))

    # A sample of the images themselves: one row per class when labelled.
    by_class = labels is not None and 0 < len(class_names) <= SAMPLE_CLASSES
    written.append(save_grid(thumbnails(_sample_rows(images, labels, len(class_names))), folder / "samples.png",
                             nrow=None if labels is None else 10, scale=2,
                             row_labels=list(class_names) if by_class else None))
    return written


SAMPLE_CLASSES = 20
"""Data of at most this many classes shows a row of samples for each."""
THUMBNAIL = 128
"""Longest side of an image in a picture of the data (photos are shrunk to it, one at a time)."""


def thumbnails(images: torch.Tensor, side: int = THUMBNAIL) -> torch.Tensor:
    """uint8 images no larger than ``side`` on their longer side (antialiased), each shrunk on
    its own: a grid of 64 full-size photos would be gigabytes of pixels, and no better to look at."""
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    if not len(images) or max(height, width) <= side:
        return images
    size = (max(1, round(height * side / max(height, width))), max(1, round(width * side / max(height, width))))
    return torch.cat([F.interpolate(im.unsqueeze(0).float(), size=size, mode="bilinear", antialias=True,
                                    align_corners=False).round().clamp(0, 255).to(torch.uint8) for im in images])


def _sample_rows(images: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    if labels is None or num_classes == 0 or num_classes > SAMPLE_CLASSES:
        return images[:64]
    rows = []
    for c in range(num_classes):
        picked = images[(labels == c).nonzero().view(-1)[:10]]  # ten gathered, not the whole class
        if len(picked) < 10:
            pad = torch.zeros((10 - len(picked), *images.shape[1:]), dtype=images.dtype)
            picked = torch.cat([picked, pad])
        rows.append(picked)
    return torch.cat(rows)


def _save(fig, plt, path: Path, dpi: int = 100) -> Path:
    """Lay a chart out, write it (its folder made if need be) and let go of it."""
    fig.tight_layout()
    try:
        files.write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png"),
                               "chart")
    finally:
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
    return _save(fig, plt, path, dpi=110)
