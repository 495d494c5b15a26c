"""``shards:PATTERN``: tar files of images, as large image sets and WebDataset lay them out.

    zoo prep "shards:/data/bedrooms/{0000..0099}.tar" --size 256
    zoo prep "shards:/data/faces/*.tar"
    zoo prep "shards:s3://bucket/faces/{000..009}.tar"     # with fsspec (and s3fs) installed

Each sample is the members of one archive that share a key (the name up to its first
dot): an image (``0001.jpg``) and optionally its class (``0001.cls``: a number or a name)
and caption (``0001.txt``: one caption a line). Members that are not images, whose path
would leave the archive, that are cut off, or that are not regular files are skipped and
counted. Archives are read by each member's place in them, so they must be plain
(uncompressed) tar, as WebDataset writes them.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import posixpath
import re
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from zoo.data.images import FORMATS, IMAGE_SUFFIXES
from zoo.data.sources.raw import RawData
from zoo.data.sources.streamed import Item, Streamed
from zoo.errors import UsageError, ZooError

PREFIX = "shards:"
SIDE_FILES = {".cls", ".txt", ".json"}
"""A sample's other members zoo knows: its class, its captions, metadata (not read)."""
LONGEST_SIDE_FILE = 1 << 16
"""A class or caption member larger than this is not one: skipped."""
LARGEST_IMAGE_MEMBER = 256 << 20
"""An image member larger than this is skipped as unreadable, not read into memory."""
LONGEST_EXTENDED_HEADER = 1 << 20
"""A pax or GNU long-name header longer than this is no real one (tarfile would read it whole
into memory): the rest of its archive is skipped, with a note."""
EXTENDED_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
                  tarfile.SOLARIS_XHDTYPE)


def pattern_of(data: str) -> str:
    return data[len(PREFIX):].strip()


def origin(data: str) -> str:
    """Where the shards are, as prep records it: a local pattern made absolute."""
    pattern = pattern_of(data)
    return pattern if "://" in pattern else os.path.abspath(os.path.expanduser(pattern))


def expand(pattern: str) -> list[str]:
    """Brace ranges and lists (``{0000..0099}``, zero-padded as written; ``{a,b}``), then
    glob patterns for local paths, in order; a UsageError for none."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is not None:
        head, tail, body = pattern[:match.start()], pattern[match.end():], match.group(1)
        span = re.fullmatch(r"(\d+)\.\.(\d+)", body)
        if span:
            first, last = span.groups()
            width = len(first) if first.startswith("0") else 0
            parts = [str(i).zfill(width) for i in range(int(first), int(last) + 1)]
        else:
            parts = body.split(",")
        return [path for part in parts for path in expand(head + part + tail)]
    if "://" not in pattern and glob.has_magic(pattern):
        found = sorted(glob.glob(str(Path(pattern).expanduser())))
        if not found:
            raise UsageError(f"shards:{pattern} matches no files")
        return found
    return [pattern if "://" in pattern else str(Path(pattern).expanduser())]


def _opener(path: str) -> Any:
    """A binary file object of a local path, or of a URL through fsspec."""
    if "://" not in path:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise UsageError(f"{path}: reading shards from a URL needs fsspec (pip install fsspec, and s3fs or "
                         "gcsfs for those stores)") from None
    return fsspec.open(path, "rb").open()


def _identity(path: str) -> str:
    """The shard's name and, on this machine's disk, its size and time. A URL is its name
    alone: asking its store each time would cost a request a shard on every `zoo train`, fail
    offline where the prepared copy would do, and change with signed URLs (`zoo prep --force`
    prepares shards changed at their store again)."""
    if "://" in path:
        return path
    stat = Path(path).stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def key(data: str) -> str:
    """The prepared cache's stem: the shards' names, sizes and times, hashed."""
    paths = _existing(pattern_of(data))
    digest = hashlib.sha256("\n".join(_identity(p) for p in paths).encode())
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", Path(paths[0]).stem)[:24]
    return f"shards-{stem}-{len(paths)}-{digest.hexdigest()[:10]}"


def _existing(pattern: str) -> list[str]:
    if not pattern:
        raise UsageError("shards: needs a pattern of tar files, like shards:/data/faces/{0000..0099}.tar")
    paths = expand(pattern)
    if not paths:
        raise UsageError(f"shards:{pattern} names no files (a range runs from low to high: {{0000..0099}})")
    for path in paths:
        if "://" not in path and not Path(path).is_file():
            raise UsageError(f"shard {path} does not exist (from shards:{pattern})")
    return paths


def list_shards(data: str) -> tuple[list[dict[str, Any]], Counter, list[str]]:
    """Every sample of the shards in order: ``{"name", "where", "cls", "txt"}``; the members
    skipped by reason; notes (an archive cut off)."""
    samples: dict[tuple[int, str], dict[str, Any]] = {}
    skipped: Counter = Counter()
    notes: list[str] = []
    for shard, path in enumerate(_existing(pattern_of(data))):
        with _opener(path) as fh:
            size = fh.seek(0, 2)
            if _hostile_header(fh, 0, path, notes):
                continue
            fh.seek(0)
            try:
                archive = tarfile.open(fileobj=fh, mode="r:")  # noqa: SIM115 - fh is closed
            except tarfile.TarError as exc:
                raise ZooError(f"shard {path} is not a plain tar file ({exc}); zoo reads uncompressed .tar shards") \
                    from None
            listed = 0
            while True:
                if listed and _hostile_header(fh, archive.offset, path, notes):  # (the first: checked at 0)
                    break
                try:
                    member = archive.next()
                except (tarfile.TarError, EOFError, OSError):
                    notes.append(f"shard {path} is cut off after {listed} members; the rest of it is skipped")
                    break
                if member is None:
                    break
                listed += 1
                _add_member(samples, skipped, shard, path, member, fh, size)
    out = []
    for (_, name), sample in samples.items():
        if "image" not in sample:
            continue  # a class or caption whose image is missing: nothing to train on
        out.append({"name": name, "where": sample["image"], "cls": sample.get("cls"), "txt": sample.get("txt")})
    return out, skipped, notes


def _hostile_header(fh: Any, offset: int, path: str, notes: list[str]) -> bool:
    """Whether the headers at ``offset`` begin with extended ones (pax, GNU long names, one
    after another as tarfile follows them) of which one is longer than
    :data:`LONGEST_EXTENDED_HEADER` or of a negative length, which tarfile would read whole:
    then noted."""
    start = offset
    while offset >= 0:  # (after a member of a negative size tarfile's offset is too: it says what is wrong)
        fh.seek(offset)
        block = fh.read(tarfile.BLOCKSIZE)
        if len(block) < tarfile.BLOCKSIZE or block[156:157] not in EXTENDED_TYPES:
            return False
        length = _header_size(block[124:136])
        if length is None:
            return False  # tarfile says what is wrong with it
        if not 0 <= length <= LONGEST_EXTENDED_HEADER:
            notes.append(f"shard {path} has an extended tar header of {length:,} bytes at byte {offset:,} (not "
                         f"0 to {LONGEST_EXTENDED_HEADER >> 20} MB: not a real one); the rest of it, from byte "
                         f"{start:,}, is skipped")
            return True
        offset += tarfile.BLOCKSIZE + -(-length // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return False


def _header_size(field: bytes) -> int | None:
    """A tar header's size field: octal digits, or base-256 as GNU writes large (0x80 first) and
    negative (0xff first) ones; None if it is neither."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[:1] == b"\xff" else value
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        return None


def _add_member(samples: dict, skipped: Counter, shard: int, path: str, member: tarfile.TarInfo, fh: Any,
                size: int) -> None:
    name = member.name
    if member.isdir():
        return
    parts = posixpath.normpath(name).split("/")
    if name.startswith("/") or ".." in parts or ":" in parts[0]:
        skipped["path leaving the archive"] += 1
        return
    if not member.isfile():
        skipped["not a regular file"] += 1
        return
    if member.size < 0 or member.offset_data + member.size > size:
        skipped["cut off"] += 1  # (a negative size: no real member either)
        return
    folder, base = posixpath.split(posixpath.normpath(name))
    stem, _, rest = base.partition(".")
    suffix = "." + rest.rsplit(".", 1)[-1].lower() if rest else ""
    sample = samples.setdefault((shard, posixpath.join(folder, stem)), {})
    if suffix in IMAGE_SUFFIXES and "image" not in sample:
        sample["image"] = (path, member.offset_data, member.size, f"{Path(path).name}/{name}")
    elif suffix in (".cls", ".txt"):
        if member.size > LONGEST_SIDE_FILE:
            skipped[f"{suffix} member too large"] += 1
            return
        fh.seek(member.offset_data)
        sample[suffix[1:]] = fh.read(member.size).decode("utf-8", errors="replace").strip()
    elif suffix not in SIDE_FILES:
        skipped["not an image"] += 1


def _read(item: Item) -> Any:
    path, offset, size, _ = item.where
    if size > LARGEST_IMAGE_MEMBER:
        raise ValueError(f"a member of {size:,} bytes (more than {LARGEST_IMAGE_MEMBER >> 20} MB)")
    with _opener(path) as fh:
        fh.seek(offset)
        return io.BytesIO(fh.read(size))


def _classes(samples: list[dict[str, Any]], skipped: Counter) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    """Class names and each kept sample's label: numbers as written (0..max), else the names
    sorted; unlabelled samples of a labelled set are skipped."""
    marked = [s for s in samples if s["cls"]]
    if not marked:
        return [], samples, [-1] * len(samples)
    if len(marked) < len(samples):
        skipped["no class beside a labelled set's image"] += len(samples) - len(marked)
    values = [s["cls"].split()[0] for s in marked]
    if all(v.isascii() and v.isdecimal() for v in values) and max(int(v) for v in values) < 10 * len(values) + 10:
        names = [str(i) for i in range(max(int(v) for v in values) + 1)]
        return names, marked, [int(v) for v in values]
    names = sorted(set(values))
    index = {n: i for i, n in enumerate(names)}
    return names, marked, [index[v] for v in values]


def _notes(skipped: Counter, notes: list[str], data: str, console: Console) -> list[str]:
    if skipped:
        notes = [*notes, f"skipped {sum(skipped.values())} member(s) of {data}: " +
                 ", ".join(f"{n} {reason}" for reason, n in skipped.most_common())]
    for note in notes:
        console.print(f"[yellow]warning:[/] {note}")
    return notes


def stream(data: str, console: Console) -> Streamed | None:
    """The shards as a streamed set; None when their samples have captions (captioned data is
    read whole by :func:`read`, for its text encoder)."""
    samples, skipped, notes = list_shards(data)
    if any(s["txt"] for s in samples):
        return None
    if not samples:
        raise ZooError(f"{data} holds no images ({FORMATS} members)")
    names, kept, labels = _classes(samples, skipped)
    items = [Item(s["where"][3], label, s["where"]) for s, label in zip(kept, labels, strict=True)]
    return Streamed(items, names, origin(data), _read, _notes(skipped, notes, data, console), key(data))


def read(data: str, dims: tuple[int, int], channels: int | None, console: Console) -> RawData:
    """The shards whole, in memory (captioned shards): images fitted to ``dims``, classes and
    each image's captions."""
    from zoo.data.images import convert_channels

    samples, skipped, notes = list_shards(data)
    names, kept, labels = _classes(samples, skipped)
    streamed = Streamed([Item(s["where"][3], label, s["where"]) for s, label in zip(kept, labels, strict=True)],
                        names, origin(data), _read)
    pictures, kept_labels, captions, gray = [], [], [], True
    for sample, item in zip(kept, streamed.items, strict=True):
        fitted = streamed.fitted(item, *dims)
        if isinstance(fitted, str):
            skipped["not an image"] += 1
            continue
        pictures.append(fitted[0])
        gray &= fitted[1]
        kept_labels.append(item.label)
        captions.append([line.strip() for line in (sample["txt"] or "").splitlines() if line.strip()] or [""])
    if not pictures:
        raise ZooError(f"none of the images in {data} could be read ({FORMATS} members)")
    images = convert_channels(torch.stack(pictures), channels or (1 if gray else 3))
    label_tensor = torch.tensor(kept_labels, dtype=torch.int64) if names else None
    return RawData(images, label_tensor, names, origin(data), "all", _notes(skipped, notes, data, console),
                   captions=captions)
