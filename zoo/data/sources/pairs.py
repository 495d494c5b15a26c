"""Two-domain data for image-to-image models: paired (pix2pix) and unpaired (CycleGAN).

``paired:``  each input image A has its target B:

* ``paired:edges2fashion``: built in, offline. Fashion-MNIST items (B) and their edge maps
  (A), white lines on black, computed by a fixed operator (Sobel magnitude over a
  threshold), so every pair is exact and reproducible. The 28 x 28 items are padded to
  32 x 32 (as LeNet padded MNIST), so a U-Net can halve them down to 1 x 1.
* ``paired:PATH``: the layout of the public pix2pix data sets: images with A and B side by
  side (A on the left, as in facades or edges2shoes), or ``A/`` and ``B/`` folders whose
  files match by name. A ``train/`` folder inside PATH is used when there is one. As in
  pix2pix's own loader, each side-by-side image is split at half its width whatever its
  shape (29 of the 255 in the facades set users download are not twice as wide as high).

``unpaired:``  two collections of images with no correspondence:

* ``unpaired:PATH``: the CycleGAN layout, ``trainA/`` and ``trainB/`` (horse2zebra,
  monet2photo, ...).
* ``unpaired:DATASET:CLASS_A,CLASS_B``: built in. Two classes of a labelled data set as two
  domains, e.g. ``unpaired:fashion:sneaker,ankle-boot`` (``fashion`` is Fashion-MNIST).

Both read into a :class:`RawData` whose ``images`` are domain A and ``targets`` domain B
(for paired data the same length and order); ``--direction BtoA`` swaps them
(:func:`directed`), for data stored the other way round (facades: photo | labels).

A few unreadable files never sink a whole data set: they are skipped, counted, named in a
warning and in the prepared data's notes, as ``folder:`` data does. A pair loses both its
images when either file is unreadable, so the pairs stay aligned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from zoo.data.images import FORMATS, GRAY_MODES, UNREADABLE, convert_channels, image_files, read_images
from zoo.data.memory import Photos
from zoo.data.sources.named import DATASETS, load_named
from zoo.data.sources.raw import RawData, parse_classes
from zoo.data.sources.streamed import Item, Streamed
from zoo.errors import UsageError, ZooError

PAIRED, UNPAIRED = "paired:", "unpaired:"
DIRECTIONS = ("AtoB", "BtoA")
BUILTIN_PAIRED = {"edges2fashion": "fashion-mnist"}
ALIASES = {"fashion": "fashion-mnist"}
EDGE_PAD = 2
"""Black border added around each 28 x 28 item of edges2fashion: 32 x 32 halves to 1 x 1."""
EDGE_THRESHOLD = 0.35
"""Sobel magnitude (on images in [0, 1]) above which a pixel is an edge."""


def is_two_domain(data: str) -> bool:
    return data.startswith((PAIRED, UNPAIRED))


def pairing_of(data: str) -> str:
    """"paired", "unpaired" or "" (one set of images), from what the user typed alone."""
    return "paired" if data.startswith(PAIRED) else "unpaired" if data.startswith(UNPAIRED) else ""


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
    if sep and name in DATASETS:
        return _two_classes(name, classes, data_dir, env_dir, say)
    return _unpaired_folder(_existing(Path(rest).expanduser(), data), dims, channels, console)


def builtin_source(data: str) -> str | None:
    """The named data set a built-in two-domain set is made from (edges2fashion, or
    unpaired:fashion:A,B: Fashion-MNIST), or None."""
    if data.startswith(PAIRED):
        return BUILTIN_PAIRED.get(data[len(PAIRED):])
    if data.startswith(UNPAIRED):
        name, sep, _ = data[len(UNPAIRED):].partition(":")
        name = ALIASES.get(name, name)
        return name if sep and name in DATASETS else None
    return None


def folder_of(data: str) -> Path | None:
    """The folder a two-domain data spec reads, or None for built-in and one-domain data."""
    if not is_two_domain(data):
        return None
    prefix = PAIRED if data.startswith(PAIRED) else UNPAIRED
    rest = data[len(prefix):]
    name, sep, _ = rest.partition(":")
    if rest in BUILTIN_PAIRED or (prefix == UNPAIRED and sep and ALIASES.get(name, name) in DATASETS):
        return None
    return _existing(Path(rest).expanduser(), data)


def _existing(root: Path, data: str) -> Path:
    if not root.is_dir():
        builtin = ", ".join(f"{PAIRED}{n}" for n in BUILTIN_PAIRED)
        raise UsageError(f"{data}: {root} is not a folder (built in: {builtin}, "
                         f"{UNPAIRED}fashion:CLASS_A,CLASS_B)")
    return root


def check_direction(data: str, direction: str | None) -> str | None:
    """``--direction`` spelled as in :data:`DIRECTIONS` (any case; None is AtoB) for
    two-domain data, None for one-domain data, which has nothing to swap."""
    known = {d.lower(): d for d in DIRECTIONS}
    if direction is not None and direction.lower() not in known:
        raise UsageError(f"--direction takes AtoB or BtoA, got {direction!r}")
    chosen = known[(direction or "AtoB").lower()]
    if not is_two_domain(data):
        if chosen == "BtoA":
            raise UsageError(f"--direction BtoA swaps the two domains of {PAIRED} or {UNPAIRED} data; "
                             f"{data} is one set of images: leave --direction out")
        return None
    return chosen


def directed(raw: RawData, direction: str | None) -> RawData:
    """Two-domain data as it is (AtoB, None), or with domains A and B swapped (BtoA): the
    targets become the images and the images the targets, their names too. Labels belong to
    a pair, or to no domain, so they stay."""
    if direction != "BtoA":
        return raw

    def swap(raw: RawData) -> RawData:
        assert raw.targets is not None  # check_direction refused one-domain data
        a, b = raw.domains
        notes = [*raw.notes, f"--direction BtoA: the domains swapped, A = {b}, B = {a}"]
        return RawData(raw.targets, raw.labels, raw.class_names, raw.origin, raw.split, notes,
                       targets=raw.images, pairing=raw.pairing, domains=(b, a), photos=raw.target_photos,
                       target_photos=raw.photos)

    return raw.map(swap)


# -- built in ---------------------------------------------------------------------------------

def edge_map(images: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """White-on-black edges of uint8 images (N x C x H x W): the Sobel gradient magnitude of
    their gray levels, over ``threshold``. A fixed operator: same input, same edges."""
    gray = F.pad(convert_channels(images, 1).float() / 255, (1, 1, 1, 1), mode="replicate")
    h, w = images.shape[2], images.shape[3]

    def at(dy: int, dx: int) -> torch.Tensor:  # the neighbour at (dy, dx) of every pixel
        return gray[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    # Sobel by shifted sums: a 3x3 convolution over one channel is many times slower on the CPU.
    grad_x = (at(-1, 1) - at(-1, -1)) + 2 * (at(0, 1) - at(0, -1)) + (at(1, 1) - at(1, -1))
    grad_y = (at(1, -1) - at(-1, -1)) + 2 * (at(1, 0) - at(-1, 0)) + (at(1, 1) - at(-1, 1))
    magnitude = (grad_x.pow(2) + grad_y.pow(2)).sqrt()
    return ((magnitude > threshold) * 255).to(torch.uint8)


def _edges(name: str, data_dir: Path | None, env_dir: Path | None, say: Callable[[str], None]) -> RawData:
    def edges(raw: RawData) -> RawData:
        items = F.pad(raw.images, (EDGE_PAD,) * 4)
        notes = [*raw.notes, f"A: Sobel edges of {BUILTIN_PAIRED[name]} (magnitude > {EDGE_THRESHOLD}); "
                             f"B: the items; both padded by {EDGE_PAD} px"]
        return RawData(edge_map(items), raw.labels, list(raw.class_names), raw.origin, raw.split, notes,
                       targets=items, pairing="paired", domains=("edges", name.split("2", 1)[1]))

    return load_named(BUILTIN_PAIRED[name], data_dir, env_dir, say).map(edges)


def _two_classes(name: str, classes: str, data_dir: Path | None, env_dir: Path | None,
                 say: Callable[[str], None]) -> RawData:
    raw = load_named(name, data_dir, env_dir, say)
    wanted = [c for c in classes.split(",") if c.strip()]
    if len(wanted) != 2:
        raise UsageError(f"{UNPAIRED}{name}:{classes}: name two classes, one per domain "
                         f"(e.g. {UNPAIRED}fashion:sneaker,ankle-boot)")
    a, b = (parse_classes(c, list(raw.class_names), name)[0] for c in wanted)
    if a == b:
        raise UsageError(f"{UNPAIRED}{name}:{classes}: the two domains must be different classes")

    def two_domains(raw: RawData) -> RawData:
        labels = raw.labels
        assert labels is not None  # a named data set is labelled
        notes = [*raw.notes, f"A: {raw.class_names[a]} ({int((labels == a).sum()):,}), "
                             f"B: {raw.class_names[b]} ({int((labels == b).sum()):,})"]
        return RawData(raw.images[labels == a], None, [], raw.origin, raw.split, notes,
                       targets=raw.images[labels == b], pairing="unpaired",
                       domains=(raw.class_names[a], raw.class_names[b]))

    return raw.map(two_domains)


# -- folders ----------------------------------------------------------------------------------

def _pair_files(root: Path) -> tuple[Path, list[str], tuple[dict[str, Path], dict[str, Path]] | None]:
    """paired:PATH: the folder used (``train/`` inside PATH when there is one), notes, and in
    the A/ and B/ layout A's and B's files by their shared name (None: side-by-side images)."""
    notes = []
    if (root / "train").is_dir():
        root = root / "train"
        notes.append(f"using {root} (the train split)")
    if (root / "trainA").is_dir() or (root / "trainB").is_dir():
        raise UsageError(f"paired:{root} has the CycleGAN layout (trainA/, trainB/), whose images are not "
                         f"paired; train cyclegan on it with --data unpaired:{root}")
    if not ((root / "A").is_dir() or (root / "B").is_dir()):
        return root, notes, None
    if not ((root / "A").is_dir() and (root / "B").is_dir()):
        missing = "A" if not (root / "A").is_dir() else "B"
        raise UsageError(f"paired:{root}: found one of A/ and B/ but not {missing}/; put inputs in "
                         "A/ and their targets, with the same file names, in B/")
    a_files = {p.relative_to(root / "A").with_suffix("").as_posix(): p for p in image_files(root / "A")}
    b_files = {p.relative_to(root / "B").with_suffix("").as_posix(): p for p in image_files(root / "B")}
    unmatched = sorted(set(a_files) ^ set(b_files))
    if unmatched:
        raise UsageError(f"paired:{root}: {len(unmatched)} file(s) have no partner in the other folder "
                         f"(e.g. {', '.join(unmatched[:3])}); A/ and B/ must hold the same names")
    if not a_files:
        raise UsageError(f"paired:{root}: A/ and B/ hold no images ({FORMATS})")
    return root, notes, (a_files, b_files)


def stream_pairs(data: str) -> Streamed | None:
    """paired:PATH's A/ and B/ photos as a streamed set of pairs, for a prep at their own sizes
    (``--size full``) that reads one pair at a time: each item's ``where`` holds its A file
    and its B file. None for built-in pairs and side-by-side images (read whole)."""
    root = folder_of(data) if data.startswith(PAIRED) else None
    if root is None:
        return None
    root, notes, both = _pair_files(root)
    if both is None:
        return None
    a_files, b_files = both
    items = [Item(key, -1, (str(a_files[key]), str(b_files[key]))) for key in sorted(a_files)]
    return Streamed(items, [], str(root.resolve()), lambda item: open(item.where[0], "rb"), notes, pairs=True)


def _paired_folder(root: Path, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    root, notes, both_files = _pair_files(root)
    if both_files is not None:
        a_files, b_files = both_files
        keys = sorted(a_files)
        a_read = _read_all([a_files[k] for k in keys], dims, console, f"reading {root}/A")
        b_read = _read_all([b_files[k] for k in keys], dims, console, f"reading {root}/B")
        both = sorted(set(a_read.pictures) & set(b_read.pictures))
        skipped = [f"A/{name}" for name in a_read.skipped] + [f"B/{name}" for name in b_read.skipped]
        if not both:
            raise ZooError(f"paired:{root}: none of the {len(keys)} pairs has both files readable as images "
                           f"(e.g. {skipped[0]})")
        if skipped:
            notes.append(_warn_skipped(f"{len(keys) - len(both)} pair(s) of {root} with an unreadable file",
                                       skipped, console))
        if dims == (0, 0):  # --size full: low- and high-resolution photos, each at its own size
            gray = a_read.gray and b_read.gray  # one channel count for both: colour if either has it
            a_photos = Photos.of([_channels(a_read.pictures[i].unsqueeze(0), gray, channels)[0] for i in both])
            b_photos = Photos.of([_channels(b_read.pictures[i].unsqueeze(0), gray, channels)[0] for i in both])
            return RawData(a_photos.centre_crops(), None, [], str(root.resolve()), "train", notes,
                           targets=_aligned_centres(a_photos, b_photos), pairing="paired", domains=("A", "B"),
                           photos=a_photos, target_photos=b_photos)
        a = torch.stack([a_read.pictures[i] for i in both])
        b = torch.stack([b_read.pictures[i] for i in both])
        a_gray, b_gray = a_read.gray, b_read.gray
    else:
        files = image_files(root)
        if not files:
            raise UsageError(f"paired:{root} holds no images ({FORMATS}); put A|B side-by-side images in it, "
                             "or A/ and B/ folders")
        if dims == (0, 0):
            raise UsageError(f"--size full keeps paired photos at their own sizes in the A/ and B/ layout; "
                             f"paired:{root} holds side-by-side images: give a --size (like 64)")
        a, b, gray = _read_side_by_side(root, files, dims, notes, console)
        a_gray = b_gray = gray
    a, b = _channels(a, a_gray, channels), _channels(b, b_gray, channels)
    return RawData(a, None, [], str(root.resolve()), "train", notes, targets=b, pairing="paired",
                   domains=("A", "B"))


def _unpaired_folder(root: Path, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    missing = [d for d in ("trainA", "trainB") if not (root / d).is_dir()]
    if missing:
        found = ", ".join(p.name + "/" for p in sorted(root.iterdir()) if p.is_dir()) or "no folders"
        raise UsageError(f"unpaired:{root} has no {' or '.join(m + '/' for m in missing)} (found: {found}); "
                         "the CycleGAN layout puts each domain's images in trainA/ and trainB/")
    domains, notes = [], []
    for d in ("trainA", "trainB"):
        files = image_files(root / d)
        if not files:
            raise UsageError(f"unpaired:{root}: {d}/ holds no images: zoo reads {FORMATS} files")
        read = _read_all(files, dims, console, f"reading {root}/{d}")
        if not read.pictures:
            raise ZooError(f"unpaired:{root}: none of the {len(files)} files in {d}/ could be read as an "
                           f"image (e.g. {read.skipped[0]}); zoo reads {FORMATS} files")
        if read.skipped:
            notes.append(_warn_skipped(f"{len(read.skipped)} unreadable file(s) in {root / d}", read.skipped,
                                       console))
        domains.append((torch.stack(list(read.pictures.values())), read.gray))
    (a, a_gray), (b, b_gray) = domains
    if channels is None and a_gray != b_gray:
        raise UsageError(f"unpaired:{root}: trainA/ is {'grayscale' if a_gray else 'colour'} and trainB/ "
                         f"{'grayscale' if b_gray else 'colour'}; CycleGAN needs the same channels in "
                         "both: pass --channels 3 (or 1) to convert them")
    a, b = _channels(a, a_gray, channels), _channels(b, b_gray, channels)
    return RawData(a, None, [], str(root.resolve()), "train", notes, targets=b, pairing="unpaired",
                   domains=("A", "B"))


@dataclass
class _Read:
    """What was read of a list of files: each readable file's picture by its index in the
    list, whether all of them were grayscale, and "name (error)" for each unreadable one."""

    pictures: dict[int, torch.Tensor]
    gray: bool
    skipped: list[str]


def _read_all(files: list[Path], dims: tuple[int, int], console: Console, what: str) -> _Read:
    from zoo.display.console import track

    pictures, kept, gray, skipped = read_images(
        files, *dims, lambda paths: track(paths, description=what, console=console,
                                          disable=len(paths) < 200, transient=True))
    return _Read(dict(zip(kept, pictures, strict=True)), gray, skipped)


def _aligned_centres(low: Photos, high: Photos) -> torch.Tensor:
    """The high-resolution photos' centre windows, each over its low-resolution photo's centre
    window, when every pair has one whole ratio (else each photo's own centre)."""
    ratios = {(h[1] / lo[1], h[2] / lo[2]) for lo, h in zip(low.shapes.tolist(), high.shapes.tolist(), strict=True)}
    if len(ratios) != 1 or any(r != int(r) for r in next(iter(ratios))) or len(set(next(iter(ratios)))) != 1:
        return high.centre_crops()
    scale = int(next(iter(ratios))[0])
    height, width = low.smallest
    return high.centre_crops((height * scale, width * scale), scale=scale, within=low)


def _warn_skipped(what: str, skipped: list[str], console: Console) -> str:
    """Say which files were skipped, a few by name, and return it as a note for meta.json."""
    note = f"skipped {what}: {', '.join(skipped[:5])}" + (" ..." if len(skipped) > 5 else "")
    console.print(f"[yellow]warning:[/] {note}")
    return note


def _read_side_by_side(root: Path, files: list[Path], dims: tuple[int, int], notes: list[str],
                       console: Console) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """A (left half) and B (right half) of each readable file, each half fitted to ``dims``.

    Like pix2pix's loader, every image is split at half its width, whatever its shape: 29 of
    the 255 in the facades set users download are not twice as wide as high (512 x 231,
    ...), and refusing them would refuse the data set. Those are counted in a note, in case the folder does not hold
    side-by-side pairs at all."""
    from PIL import Image, ImageOps

    a_list: list[torch.Tensor] = []
    b_list: list[torch.Tensor] = []
    gray, skipped, odd = True, [], []
    for path in files:
        try:
            with Image.open(path) as opened:
                mode = opened.mode
                img = ImageOps.exif_transpose(opened)
                width, height = img.size
                half = width // 2
                if half < 1:
                    raise ValueError("1 px wide")
                # Both halves half wide, an odd width's last column left out: fitted by the same
                # crop and resize, A's pixels stay in line with B's.
                rgb = img.convert("RGB")
                halves = [ImageOps.fit(rgb.crop((left, 0, left + half, height)), (dims[1], dims[0]),
                                       Image.Resampling.LANCZOS) for left in (0, half)]
        except UNREADABLE as exc:
            skipped.append(f"{path.name} ({type(exc).__name__})")
            continue
        gray &= mode in GRAY_MODES
        for fitted, out in zip(halves, (a_list, b_list), strict=True):
            out.append(torch.from_numpy(np.asarray(fitted, dtype=np.uint8).copy()).permute(2, 0, 1))
        if abs(width - 2 * height) > max(2, 0.02 * width):
            odd.append(f"{path.name} {width}x{height}")
    if not a_list:
        raise ZooError(f"paired:{root}: none of the {len(files)} files could be read as an image "
                       f"(e.g. {skipped[0]}); zoo reads {FORMATS} files")
    if skipped:
        notes.append(_warn_skipped(f"{len(skipped)} unreadable file(s) in {root}", skipped, console))
    if odd:
        notes.append(f"{len(odd)} of {len(a_list)} images are not twice as wide as high (e.g. "
                     f"{', '.join(odd[:3])}); each was split at half its width, as pix2pix does")
        console.print(f"[cyan]note:[/] {notes[-1]}")
    return torch.stack(a_list), torch.stack(b_list), gray


def _channels(images: torch.Tensor, gray: bool, channels: int | None) -> torch.Tensor:
    return convert_channels(images, channels or (1 if gray else 3))
