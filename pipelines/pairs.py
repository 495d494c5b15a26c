"""Two-domain data for image-to-image models: paired (pix2pix) and unpaired (CycleGAN).

``paired:``  each input image A has its target B:

* ``paired:edges2fashion``: built in, offline. Fashion-MNIST items (B) and their edge maps
  (A), white lines on black, computed by a fixed operator (Sobel magnitude over a
  threshold), so every pair is exact and reproducible. The 28 x 28 items are padded to
  32 x 32 (as LeNet padded MNIST), so a U-Net can halve them down to 1 x 1.
* ``paired:PATH``: the layout of the public pix2pix data sets: images with A and B side by
  side (A on the left, as in facades or edges2shoes), or ``A/`` and ``B/`` folders whose
  files match by name. A ``train/`` folder inside PATH is used when there is one.

``unpaired:``  two collections of images with no correspondence:

* ``unpaired:PATH``: the CycleGAN layout, ``trainA/`` and ``trainB/`` (horse2zebra,
  monet2photo, ...).
* ``unpaired:DATASET:CLASS_A,CLASS_B``: built in. Two classes of a labelled data set as two
  domains, e.g. ``unpaired:fashion:sneaker,ankle-boot`` (``fashion`` is Fashion-MNIST).

Both read into a :class:`RawData` whose ``images`` are domain A and ``targets`` domain B
(for paired data the same length and order).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from zoo import figures
from zoo.data import convert_channels
from zoo.errors import UsageError, ZooError

from .datasets import SOURCES, RawData, load_named

PAIRED, UNPAIRED = "paired:", "unpaired:"
BUILTIN_PAIRED = {"edges2fashion": "fashion-mnist"}
ALIASES = {"fashion": "fashion-mnist"}
EDGE_PAD = 2
"""Black border added around each 28 x 28 item of edges2fashion: 32 x 32 halves to 1 x 1."""
EDGE_THRESHOLD = 0.35
"""Sobel magnitude (on images in [0, 1]) above which a pixel is an edge."""


def is_two_domain(data: str) -> bool:
    return data.startswith((PAIRED, UNPAIRED))


def read(data: str, dims: tuple[int, int], channels: int | None, say: Callable[[str], None],
         env_dir: Path | None, data_dir: Path | None, console: Console) -> RawData:
    """Domain A as ``images`` and domain B as ``targets``, fitted to ``dims`` (height, width)."""
    if data.startswith(PAIRED):
        rest = data[len(PAIRED):]
        if rest in BUILTIN_PAIRED:
            return _edges(rest, data_dir, env_dir, say)
        return _paired_folder(_existing(Path(rest).expanduser(), data), dims, channels, console)
    rest = data[len(UNPAIRED):]
    name, sep, classes = rest.partition(":")
    name = ALIASES.get(name, name)
    if sep and name in SOURCES:
        return _two_classes(name, classes, data_dir, env_dir, say)
    return _unpaired_folder(_existing(Path(rest).expanduser(), data), dims, channels, console)


def folder_of(data: str) -> Path | None:
    """The folder a two-domain data spec reads, or None for built-in and one-domain data."""
    if not is_two_domain(data):
        return None
    prefix = PAIRED if data.startswith(PAIRED) else UNPAIRED
    rest = data[len(prefix):]
    name, sep, _ = rest.partition(":")
    if rest in BUILTIN_PAIRED or (prefix == UNPAIRED and sep and ALIASES.get(name, name) in SOURCES):
        return None
    return _existing(Path(rest).expanduser(), data)


def _existing(root: Path, data: str) -> Path:
    if not root.is_dir():
        builtin = ", ".join(f"{PAIRED}{n}" for n in BUILTIN_PAIRED)
        raise UsageError(f"{data}: {root} is not a folder (built in: {builtin}, "
                         f"{UNPAIRED}fashion:CLASS_A,CLASS_B)")
    return root


# -- built in ---------------------------------------------------------------------------------

def edge_map(images: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """White-on-black edges of uint8 images (N x C x H x W): the Sobel gradient magnitude of
    their gray levels, over ``threshold``. A fixed operator: same input, same edges."""
    gray = convert_channels(images, 1).float() / 255
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1)
    grad = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = grad.pow(2).sum(1, keepdim=True).sqrt()
    return ((magnitude > threshold) * 255).to(torch.uint8)


def _edges(name: str, data_dir: Path | None, env_dir: Path | None, say: Callable[[str], None]) -> RawData:
    raw = load_named(BUILTIN_PAIRED[name], data_dir, env_dir, say)
    items = F.pad(raw.images, (EDGE_PAD,) * 4)
    notes = [*raw.notes, f"A: Sobel edges of {BUILTIN_PAIRED[name]} (magnitude > {EDGE_THRESHOLD}); "
                         f"B: the items; both padded by {EDGE_PAD} px"]
    return RawData(edge_map(items), raw.labels, list(raw.class_names), raw.origin, raw.split, notes,
                   targets=items, pairing="paired", domains=("edges", name.split("2", 1)[1]))


def _two_classes(name: str, classes: str, data_dir: Path | None, env_dir: Path | None,
                 say: Callable[[str], None]) -> RawData:
    from .prep import parse_classes

    raw = load_named(name, data_dir, env_dir, say)
    wanted = [c for c in classes.split(",") if c.strip()]
    if len(wanted) != 2:
        raise UsageError(f"{UNPAIRED}{name}:{classes}: name two classes, one per domain "
                         f"(e.g. {UNPAIRED}fashion:sneaker,ankle-boot)")
    a, b = (parse_classes(c, list(raw.class_names), name)[0] for c in wanted)
    if a == b:
        raise UsageError(f"{UNPAIRED}{name}:{classes}: the two domains must be different classes")
    labels = raw.labels
    notes = [*raw.notes, f"A: {raw.class_names[a]} ({int((labels == a).sum()):,}), "
                         f"B: {raw.class_names[b]} ({int((labels == b).sum()):,})"]
    return RawData(raw.images[labels == a], None, [], raw.origin, raw.split, notes,
                   targets=raw.images[labels == b], pairing="unpaired",
                   domains=(raw.class_names[a], raw.class_names[b]))


# -- folders ----------------------------------------------------------------------------------

def _paired_folder(root: Path, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    notes = []
    if (root / "train").is_dir():
        root = root / "train"
        notes.append(f"using {root} (the train split)")
    if (root / "trainA").is_dir() or (root / "trainB").is_dir():
        raise UsageError(f"paired:{root} has the CycleGAN layout (trainA/, trainB/), whose images are not "
                         f"paired; train cyclegan on it with --data unpaired:{root}")
    if (root / "A").is_dir() or (root / "B").is_dir():
        if not ((root / "A").is_dir() and (root / "B").is_dir()):
            missing = "A" if not (root / "A").is_dir() else "B"
            raise UsageError(f"paired:{root}: found one of A/ and B/ but not {missing}/; put inputs in "
                             "A/ and their targets, with the same file names, in B/")
        a_files = {p.relative_to(root / "A").with_suffix("").as_posix(): p for p in figures.image_files(root / "A")}
        b_files = {p.relative_to(root / "B").with_suffix("").as_posix(): p for p in figures.image_files(root / "B")}
        unmatched = sorted(set(a_files) ^ set(b_files))
        if unmatched:
            raise UsageError(f"paired:{root}: {len(unmatched)} file(s) have no partner in the other folder "
                             f"(e.g. {', '.join(unmatched[:3])}); A/ and B/ must hold the same names")
        keys = sorted(a_files)
        a, a_gray = _read_all([a_files[k] for k in keys], dims, console, f"reading {root}/A")
        b, b_gray = _read_all([b_files[k] for k in keys], dims, console, f"reading {root}/B")
    else:
        files = figures.image_files(root)
        if not files:
            raise UsageError(f"paired:{root} holds no images; put A|B side-by-side images in it, "
                             "or A/ and B/ folders")
        a, b, a_gray, b_gray = _read_side_by_side(files, dims)
    a, b = _channels(a, a_gray, channels), _channels(b, b_gray, channels)
    return RawData(a, None, [], str(root.resolve()), "train", notes, targets=b, pairing="paired",
                   domains=("A", "B"))


def _unpaired_folder(root: Path, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    missing = [d for d in ("trainA", "trainB") if not (root / d).is_dir()]
    if missing:
        found = ", ".join(p.name + "/" for p in sorted(root.iterdir()) if p.is_dir()) or "no folders"
        raise UsageError(f"unpaired:{root} has no {' or '.join(m + '/' for m in missing)} (found: {found}); "
                         "the CycleGAN layout puts each domain's images in trainA/ and trainB/")
    domains = []
    for d in ("trainA", "trainB"):
        files = figures.image_files(root / d)
        if not files:
            raise UsageError(f"unpaired:{root}: {d}/ holds no images")
        domains.append(_read_all(files, dims, console, f"reading {root}/{d}"))
    (a, a_gray), (b, b_gray) = domains
    if channels is None and a_gray != b_gray:
        raise UsageError(f"unpaired:{root}: trainA/ is {'grayscale' if a_gray else 'colour'} and trainB/ "
                         f"{'grayscale' if b_gray else 'colour'}; CycleGAN needs the same channels in "
                         "both: pass --channels 3 (or 1) to convert them")
    a, b = _channels(a, a_gray, channels), _channels(b, b_gray, channels)
    return RawData(a, None, [], str(root.resolve()), "train", [], targets=b, pairing="unpaired",
                   domains=("A", "B"))


def _read_all(files: list[Path], dims: tuple[int, int], console: Console, what: str) -> tuple[torch.Tensor, bool]:
    from rich.progress import track

    pictures, _, gray, skipped = figures.read_images(
        files, *dims, lambda paths: track(paths, description=what, console=console,
                                          disable=len(paths) < 200, transient=True))
    if skipped:
        # A skipped file would shift every later pair out of line: refuse rather than guess.
        raise ZooError(f"{what}: {len(skipped)} file(s) are not readable images: {', '.join(skipped[:3])}")
    return torch.stack(pictures), gray


def _read_side_by_side(files: list[Path], dims: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, bool, bool]:
    from PIL import Image, ImageOps

    a_list, b_list, gray = [], [], True
    for path in files:
        try:
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                width, height = img.size
                if abs(width - 2 * height) > max(2, 0.02 * width):
                    raise UsageError(f"paired: {path} is {width}x{height}, not two images side by side "
                                     "(width twice the height); use that layout, or A/ and B/ folders")
                gray &= img.mode in figures.GRAY_MODES
                rgb = img.convert("RGB")
                for half, out in ((rgb.crop((0, 0, width // 2, height)), a_list),
                                  (rgb.crop((width // 2, 0, width, height)), b_list)):
                    fitted = ImageOps.fit(half, (dims[1], dims[0]), Image.Resampling.LANCZOS)
                    out.append(torch.from_numpy(np.asarray(fitted, dtype=np.uint8).copy()).permute(2, 0, 1))
        except figures.UNREADABLE as exc:
            raise ZooError(f"paired: {path} is not a readable image ({type(exc).__name__})") from None
    return torch.stack(a_list), torch.stack(b_list), gray, gray


def _channels(images: torch.Tensor, gray: bool, channels: int | None) -> torch.Tensor:
    return convert_channels(images, channels or (1 if gray else 3))
