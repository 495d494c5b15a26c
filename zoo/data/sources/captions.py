"""Captioned images, for text-conditional models: ``captions:PATH`` and ``captions:fashion``.

``captions:PATH`` is a folder of images with a ``.txt`` of captions for each, one caption
per line: the layout of the CUB-200 and Oxford-102 caption sets (Reed et al. 2016) once
their pickled embeddings are set aside (zoo never loads them). An image's captions are the
``.txt`` of the same name beside it, else the one of the same name in a parallel folder
(CUB's ``images/001.X/a.jpg`` and ``text/001.X/a.txt``), else the one ``.txt`` of that
name under the folder when no other image or caption file shares the name. Images in
one sub-folder per class are labelled by it. Images without captions, caption files with
no words and files that are not UTF-8 text are skipped and counted.

``captions:fashion`` is built in: every Fashion-MNIST image, padded to 32 x 32, gets
:data:`PER_IMAGE` different sentences made from its class and from attributes measured on
the image itself (:func:`measure`): dark or light, large or small, plain or patterned,
each said only of images in the outer thirds of their class, so that the text says what
the picture shows. A few combinations of class and attribute are never said in training
(:data:`WITHHELD`): prompts with them test whether a model composes what it learnt.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console

from zoo.data.images import FORMATS, IMAGE_SUFFIXES, read_stack
from zoo.data.sources.raw import RawData
from zoo.errors import UsageError, ZooError

PREFIX = "captions:"
FASHION = "captions:fashion"
VERSION = 1
"""Of the rules that make captions:fashion's sentences: a change prepares it anew."""
PER_IMAGE = 5
"""Sentences made for each Fashion-MNIST image."""
MAX_PER_IMAGE = 10
"""Captions kept per image of a folder (CUB and Oxford-102 have ten)."""
PAD = 2
"""Pixels of black added on each side of Fashion-MNIST's 28 x 28 images: 32 x 32."""
FOREGROUND = 25
"""Pixel value above which a Fashion-MNIST pixel belongs to the item (its background is 0)."""

NOUNS = {
    "t-shirt": ("t-shirt", "top"), "trouser": ("pair of trousers", "trousers"),
    "pullover": ("pullover", "sweater"), "dress": ("dress",), "coat": ("coat",), "sandal": ("sandal",),
    "shirt": ("shirt",), "sneaker": ("sneaker",), "bag": ("bag", "handbag"), "ankle-boot": ("ankle boot", "boot"),
}
"""How captions name each Fashion-MNIST class (several ways for some)."""
ATTRIBUTES = {"tone": ("dark", "light"), "size": ("small", "large"), "pattern": ("plain", "patterned")}
"""Each measured attribute and its words for the low and the high third of a class."""
WITHHELD = {("sandal", "dark"), ("trouser", "light"), ("bag", "small")}
"""(class, word) never said together in captions:fashion, though such items exist."""


def is_captions(data: str) -> bool:
    return data.startswith(PREFIX)


def folder_of(data: str) -> Path | None:
    return None if data == FASHION else Path(data[len(PREFIX):]).expanduser()


# -- measured attributes --------------------------------------------------------------------------

def measure(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Attributes of uint8 Fashion-MNIST-like images (bright items on black), one value each:
    ``tone`` the mean brightness of the item's pixels as shown (low: dark), ``size`` the
    share of the picture it covers, ``pattern`` how much neighbouring item pixels differ
    (low: plain). Padded images measure as unpadded ones, but for ``size``'s scale."""
    x = images.float()
    if x.shape[1] != 1:
        x = x.mean(1, keepdim=True)
    mask = x > FOREGROUND
    area = mask.flatten(1).sum(1).clamp(min=1)
    tone = (x * mask).flatten(1).sum(1) / area
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs() * (mask[..., :, 1:] & mask[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs() * (mask[..., 1:, :] & mask[..., :-1, :])
    pattern = (dx.flatten(1).sum(1) + dy.flatten(1).sum(1)) / area / tone.clamp(min=1)
    return {"tone": tone, "size": area.float() / mask[0].numel(), "pattern": pattern}


def thirds(values: dict[str, torch.Tensor], labels: torch.Tensor, classes: int) -> dict[str, torch.Tensor]:
    """Per attribute, each class's lower and upper tercile: classes x 2."""
    out = {}
    for name, v in values.items():
        cuts = torch.zeros(classes, 2)
        for c in range(classes):
            own = v[labels == c]
            if len(own):
                cuts[c] = torch.quantile(own, torch.tensor([1 / 3, 2 / 3]))
        out[name] = cuts
    return out


def attribute_words(values: dict[str, torch.Tensor], labels: torch.Tensor,
                    cuts: dict[str, torch.Tensor]) -> list[list[str]]:
    """For each image, the words its measured attributes earn (none for a middle third)."""
    said: list[list[str]] = [[] for _ in range(len(labels))]
    for name, (low, high) in ATTRIBUTES.items():
        v, c = values[name], cuts[name][labels]
        for i in (v <= c[:, 0]).nonzero().view(-1).tolist():
            said[i].append(low)
        for i in (v >= c[:, 1]).nonzero().view(-1).tolist():
            said[i].append(high)
    return said


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


TEMPLATES: tuple[Callable[[str, list[str]], str], ...] = (
    lambda noun, adj: _article(" ".join([*adj, noun])),
    lambda noun, adj: f"{_article(noun)} that is {_listed(adj)}" if adj else f"{_article(noun)}",
    lambda noun, adj: f"this {noun} is {_listed(adj)}" if adj else f"this is {_article(noun)}",
    lambda noun, adj: f"a picture of {_article(' '.join([*adj, noun]))}",
    lambda noun, adj: " ".join([*adj, noun]),
    lambda noun, adj: f"{_article(noun)}, {_listed(adj)}" if adj else f"just {_article(noun)}",
)


def sentences(class_name: str, words: list[str], count: int, rng: random.Random) -> list[str]:
    """``count`` different captions of one item: its class named (one of its nouns) and some
    of its attribute words (each said with probability 3/4), in varied sentence forms."""
    nouns = NOUNS.get(class_name, (class_name.lower(),))
    allowed = [w for w in words if (class_name, w) not in WITHHELD]
    out: list[str] = []
    order = rng.sample(range(len(TEMPLATES)), len(TEMPLATES))
    for j in range(count):
        keep = [w for w in allowed if rng.random() < 0.75]
        noun = rng.choice(nouns)
        out.append(TEMPLATES[order[j % len(order)]](noun, keep))
    return out


def caption_fashion(raw: RawData, cuts: dict[str, torch.Tensor] | None = None,
                    seed: int = 0) -> tuple[RawData, dict[str, torch.Tensor]]:
    """Fashion-MNIST read by the named source, padded to 32 x 32 and captioned; the held-out
    part is captioned by the training part's thirds. Returns the data and the thirds."""
    assert raw.labels is not None
    values = measure(raw.images)
    cuts = cuts or thirds(values, raw.labels, len(raw.class_names))
    rng = random.Random(seed)
    captions = [sentences(raw.class_names[int(c)], w, PER_IMAGE, rng)
                for c, w in zip(raw.labels.tolist(), attribute_words(values, raw.labels, cuts), strict=True)]
    images = F.pad(raw.images, (PAD, PAD, PAD, PAD))
    held = None
    if raw.heldout is not None:
        held, _ = caption_fashion(raw.heldout, cuts, seed + 1)
    notes = [*raw.notes, f"captioned: {PER_IMAGE} sentences per image from its class and its measured "
             f"tone, size and pattern (outer thirds of its class); never said together in training: "
             + ", ".join(f"{w} {c}" for c, w in sorted(WITHHELD))]
    return RawData(images, raw.labels, raw.class_names, raw.origin, raw.split, notes, heldout=held,
                   captions=captions), cuts


# -- captions:PATH ---------------------------------------------------------------------------------

def layout(root: Path) -> tuple[list[str], list[tuple[Path, int, Path | None]]]:
    """Class names (or none) and every image with its class index and its captions file
    (None where it has none)."""
    if not root.exists():
        raise UsageError(f"folder {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; captions: needs a folder of images with a .txt of "
                         "captions for each")
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    texts = [p for p in files if p.suffix.lower() == ".txt"]
    if not images:
        raise UsageError(f"folder {root} holds no images; put images in it ({FORMATS}), each with a .txt of captions "
                         "(one per line) beside it or in a parallel text/ folder")
    if not texts:
        raise UsageError(f"folder {root} holds images but no .txt captions; give each image a .txt of the "
                         "same name (a.jpg, a.txt), one caption per line")
    by_stem: dict[str, list[Path]] = {}
    for t in texts:
        by_stem.setdefault(t.stem, []).append(t)
    image_root = Path(*_common_parts([p.parent.relative_to(root).parts for p in images]))
    rel = [p.relative_to(root / image_root) for p in images]
    classes: list[str] = []
    if all(len(r.parts) == 2 for r in rel) and len({r.parts[0] for r in rel}) >= 2:
        classes = sorted({r.parts[0] for r in rel})
    image_stems = Counter(p.stem for p in images)
    found = []
    for path, r in zip(images, rel, strict=True):
        beside = path.with_suffix(".txt")
        caption: Path | None = None
        if beside.is_file():
            caption = beside
        else:  # a parallel tree (same folder name), else a name no other image or caption shares
            same_stem = by_stem.get(path.stem, [])
            parallel = [t for t in same_stem if t.parent.name == path.parent.name]
            if len(parallel) == 1:
                caption = parallel[0]
            elif not parallel and len(same_stem) == 1 and image_stems[path.stem] == 1:
                caption = same_stem[0]
        found.append((path, classes.index(r.parts[0]) if classes else -1, caption))
    return classes, found


def _common_parts(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    common: tuple[str, ...] = parts[0]
    for p in parts[1:]:
        k = 0
        while k < min(len(common), len(p)) and common[k] == p[k]:
            k += 1
        common = common[:k]
    return common


def read_captions(path: Path) -> list[str]:
    """The non-empty lines of a UTF-8 caption file (a byte-order mark allowed); a ValueError
    naming where for bytes that are not UTF-8."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") \
            from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_folder(root: Path, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    """Every captioned, readable image under ``root``, fitted to ``dims``, with its captions."""
    from zoo.data.images import convert_channels
    from zoo.data.text import words
    from zoo.display.console import track

    if dims == (0, 0):
        raise UsageError("captions: data is fitted to one size; give a --size (like 64), not full")
    classes, found = layout(root)
    skipped: dict[str, list[str]] = {"no captions": [], "captions without words": [], "not UTF-8": []}
    wanted: list[tuple[Path, int, list[str]]] = []
    for image, label, caption_file in found:
        if caption_file is None:
            skipped["no captions"].append(image.name)
            continue
        try:
            lines = read_captions(caption_file)
        except (ValueError, OSError) as exc:
            skipped["not UTF-8"].append(str(exc))
            continue
        lines = [line for line in lines if words(line)]
        if not lines:
            skipped["captions without words"].append(caption_file.name)
            continue
        wanted.append((image, label, lines[:MAX_PER_IMAGE]))
    notes = []
    for why, items in skipped.items():
        if items:
            notes.append(f"skipped {len(items)} image(s) with {why}: {', '.join(items[:3])}"
                         + (" ..." if len(items) > 3 else ""))
            console.print(f"[yellow]warning:[/] {notes[-1]}")
    if not wanted:
        raise UsageError(f"no image in {root} has captions zoo can read ({'; '.join(notes)}); give each image "
                         "a UTF-8 .txt of the same name with one caption per line")
    pictures, kept, gray, unreadable = read_stack(
        [w[0] for w in wanted], *dims,
        lambda paths: track(paths, description=f"reading {root}", console=console,
                            disable=len(paths) < 200, transient=True))
    if unreadable:
        notes.append(f"skipped {len(unreadable)} unreadable image(s): {', '.join(unreadable[:3])}")
        console.print(f"[yellow]warning:[/] {notes[-1]}")
    if not kept:
        raise ZooError(f"none of the {len(wanted)} captioned images in {root} could be read (e.g. {unreadable[0]}); "
                       f"zoo reads {FORMATS} files")
    if channels is None and gray:
        channels = 1
    images = convert_channels(pictures, channels or 3)
    labels = torch.tensor([wanted[i][1] for i in kept], dtype=torch.int64) if classes else None
    return RawData(images, labels, classes, str(root.resolve()), "all", notes,
                   captions=[wanted[i][2] for i in kept])


def files_of(root: Path) -> list[Path]:
    """Every file the prepared cache of ``captions:PATH`` depends on: images and captions."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in {*IMAGE_SUFFIXES, ".txt"}
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))

