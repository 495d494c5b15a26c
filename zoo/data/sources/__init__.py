"""Where data comes from: one table of data sources, where a new kind of data is one entry.

What a user types after ``--data`` is matched against :data:`SOURCES` in order; the first
source that claims it reads it into a :class:`RawData` (uint8 images, labels, the second
domain of two-domain data, the held-out part) and names it for the prepared-data cache by
what it was built from (the files, their sizes and times), so a changed data set is
prepared anew. ``zoo.pipelines.prep`` does the rest: the selection, the shape, the cache
and the exploration pictures.

    mnist, fashion-mnist, cifar10, svhn     named data sets (named.py)
    folder:PATH                             a folder of images, a class per sub-folder (folder.py)
    shards:PATTERN                          tar files of images, WebDataset's layout (shards.py)
    paired:edges2fashion, paired:PATH       image pairs for pix2pix (pairs.py)
    unpaired:PATH, unpaired:fashion:A,B     two domains for CycleGAN (pairs.py)
    captions:fashion, captions:PATH         captioned images for text-to-image (captions.py)
    stacked-mnist                           three MNIST digits as one colour image: 1,000 modes (stacked.py)
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from zoo.data.sources import captions, folder, named, pairs, shards, stacked
from zoo.data.sources.raw import RawData, parse_classes
from zoo.data.sources.streamed import Streamed
from zoo.errors import UsageError

__all__ = ["SOURCES", "DataSource", "RawData", "Reading", "find", "parse_classes"]


@dataclass(frozen=True)
class Reading:
    """How a source is to be read: the shape asked for, where to look, where to say things."""

    dims: tuple[int, int] | None
    channels: int | None
    data_dir: Path | None
    console: Console

    @property
    def env_dir(self) -> Path | None:
        env = os.environ.get("ZOO_DATA_DIR")
        return Path(env).expanduser() if env else None

    def say(self, text: str) -> None:
        self.console.print(f"[cyan]note:[/] {text}")


@dataclass(frozen=True)
class DataSource:
    """One kind of data: how to recognise it, read it, and name its prepared cache."""

    forms: tuple[str, ...]
    """What a user types, for help and for the message about unknown data."""
    matches: Callable[[str], bool]
    read: Callable[[str, Reading], RawData]
    key: Callable[[str, Reading], str]
    """The cache name's stem: the data and a hash of the files it is built from."""
    fitted_size: Callable[[str], int | None] = lambda data: None
    """The size images are fitted to without --size (photos come in every size), or None
    for data whose images share one native size."""
    made_of: Callable[[str], str | None] = lambda data: None
    """The named data set it is made of, downloaded first when it is missing."""
    stream: Callable[[str, Reading], Streamed | None] | None = None
    """The data as a list of images read one at a time (prep then holds one shard in memory,
    whatever the size); None, or a None result, to read it whole with ``read``."""


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-," else "_" for c in text.lower()).replace(",", "+")


def _files_key(kind: str, root: Path, files: list[tuple[Path, int]]) -> str:
    digest = hashlib.sha256(str(root.resolve()).encode())
    for path, label in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{label}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return f"{kind}-{root.resolve().name}-{digest.hexdigest()[:10]}"


def _named_key(data: str, r: Reading) -> str:
    return f"{data}-{named.fingerprint(data, r.data_dir, r.env_dir) or 'none'}"


def _folder_root(data: str) -> Path:
    return Path(data[len(folder.PREFIX):]).expanduser()


def _two_domain_key(data: str, r: Reading) -> str:
    root = pairs.folder_of(data)
    if root is not None:
        return _files_key(data.split(":", 1)[0], root, [(p, 0) for p in folder.files_under(root)])
    source = pairs.builtin_source(data)
    assert source is not None  # folder_of returned None: a built-in set
    name = f"{_safe(data)}-{hashlib.sha256(data.lower().encode()).hexdigest()[:6]}"
    return f"{name}-{named.fingerprint(source, r.data_dir, r.env_dir) or 'none'}"


def _captions_key(data: str, r: Reading) -> str:
    root = captions.folder_of(data)
    if root is None:  # the built-in set: its files, and the version of the captions made for them
        files = named.fingerprint("fashion-mnist", r.data_dir, r.env_dir) or "none"
        return f"captions-fashion-v{captions.VERSION}-{files}"
    return _files_key("captions", root, [(p, 0) for p in captions.files_of(root)])


def _read_captions(data: str, r: Reading) -> RawData:
    root = captions.folder_of(data)
    if root is None:
        raw = named.load_named("fashion-mnist", r.data_dir, r.env_dir, r.say)
        return captions.caption_fashion(raw)[0]
    return captions.read_folder(root, _fit(data, r), r.channels, r.console)


def _read_stacked(data: str, r: Reading) -> RawData:
    from zoo.pipelines.prep import hold_out  # MNIST's held-out digits, as every prep of MNIST holds them out

    return stacked.from_mnist(hold_out(named.load_named("mnist", r.data_dir, r.env_dir, r.say)))


def _fit(data: str, r: Reading) -> tuple[int, int]:
    return r.dims or (folder.DEFAULT_SIZE,) * 2


SOURCES: list[DataSource] = [
    DataSource(
        forms=tuple(sorted(named.DATASETS)),
        matches=lambda data: data in named.DATASETS,
        read=lambda data, r: named.load_named(data, r.data_dir, r.env_dir, r.say),
        key=_named_key,
        made_of=lambda data: data,
    ),
    DataSource(
        forms=("folder:PATH",),
        matches=lambda data: data.startswith(folder.PREFIX),
        read=lambda data, r: folder.read_folder(_folder_root(data), _fit(data, r), r.channels, r.console),
        key=lambda data, r: _files_key("folder", _folder_root(data), folder.folder_layout(_folder_root(data))[1]),
        fitted_size=lambda data: folder.DEFAULT_SIZE,
        stream=lambda data, r: folder.stream_folder(_folder_root(data), r.console),
    ),
    DataSource(
        forms=("shards:PATTERN",),
        matches=lambda data: data.startswith(shards.PREFIX),
        read=lambda data, r: shards.read(data, _fit(data, r), r.channels, r.console),
        key=lambda data, r: shards.key(data),
        fitted_size=lambda data: folder.DEFAULT_SIZE,
        stream=lambda data, r: shards.stream(data, r.console),
    ),
    DataSource(
        forms=("paired:edges2fashion", "paired:PATH", "unpaired:PATH", "unpaired:DATASET:CLASS_A,CLASS_B"),
        matches=pairs.is_two_domain,
        read=lambda data, r: pairs.read(data, _fit(data, r), r.channels, r.say, r.env_dir, r.data_dir, r.console),
        key=_two_domain_key,
        fitted_size=lambda data: folder.DEFAULT_SIZE if pairs.folder_of(data) is not None else None,
        made_of=pairs.builtin_source,
        stream=lambda data, r: pairs.stream_pairs(data) if r.dims == (0, 0) else None,  # photos, one pair at a time
    ),
    DataSource(
        forms=("captions:fashion", "captions:PATH"),
        matches=captions.is_captions,
        read=_read_captions,
        key=_captions_key,
        fitted_size=lambda data: folder.DEFAULT_SIZE if captions.folder_of(data) is not None else None,
        made_of=lambda data: "fashion-mnist" if data == captions.FASHION else None,
    ),
    DataSource(
        forms=(stacked.NAME,),
        matches=lambda data: data == stacked.NAME,
        read=_read_stacked,
        key=lambda data, r: f"{stacked.NAME}-{stacked.key()}-{_named_key('mnist', r).split('-', 1)[1]}",
        made_of=lambda data: "mnist",
    ),
]
"""Every kind of data zoo reads, first match wins. A new kind of data is one entry."""


def find(data: str) -> DataSource:
    """The source that reads ``data``, or a UsageError naming what is known."""
    for source in SOURCES:
        if source.matches(data):
            return source
    known = [form for source in SOURCES for form in source.forms]
    close = difflib.get_close_matches(data, list(named.DATASETS), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise UsageError(f"unknown data set {data!r}{hint} (known: {', '.join(known)})")
