"""Prepared data too large to hold: safetensors shards read through memory maps.

A safetensors file is a JSON header followed by each tensor's bytes, end to end, so a tensor
of a file on disk can be a view of the file mapped into memory (:func:`map_tensors`): the
operating system reads the pages a batch touches and keeps them in its page cache, which
every process on the machine shares and which it frees when memory is short. A process's
own (anonymous) memory holds only the batches it gathers, whatever the data set's size.

:class:`ShardedImages` lays the images of several shards end to end and gathers rows of
them by their global index, as ``torch.index_select`` does for one tensor.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from zoo.errors import UsageError
from zoo.records import files

DTYPES = {"U8": (np.uint8, torch.uint8), "I8": (np.int8, torch.int8), "I16": (np.int16, torch.int16),
          "I32": (np.int32, torch.int32), "I64": (np.int64, torch.int64), "F16": (np.float16, torch.float16),
          "BF16": (np.uint16, torch.bfloat16), "F32": (np.float32, torch.float32),
          "F64": (np.float64, torch.float64), "BOOL": (np.bool_, torch.bool)}
"""safetensors' dtype names, with how numpy maps the bytes and the torch dtype they hold."""
HEADER_LIMIT = 100 * 1024 * 1024
"""safetensors' own cap on a header's size."""


def map_tensors(path: Path, what: str, fix: str, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a safetensors file, each tensor a read-only view of the
    file mapped into memory (copy on write: a tensor changed in place changes a private copy
    of its pages, never the file). With ``verify`` the tensors are checked against the
    checksum :func:`zoo.records.files.save_tensors` wrote, by reading them through the map:
    the file's pages pass through the page cache, not through this process's memory.
    :class:`zoo.records.files.Damaged`, saying ``fix``, for a file cut off or changed."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if not 0 < length <= min(HEADER_LIMIT, size - 8):
                raise ValueError("header length out of range")
            header = json.loads(fh.read(length))
        if not isinstance(header, dict):
            raise ValueError("its header is not a table of tensors")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict):
            raise ValueError("its metadata is not a table")
        start = 8 + length
        tensors = {}
        for name, entry in header.items():
            np_dtype, dtype = DTYPES[entry["dtype"]]
            begin, end = (int(v) for v in entry["data_offsets"])
            shape = tuple(int(v) for v in entry["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            if not 0 <= begin <= end <= size - start or end - begin != count * np.dtype(np_dtype).itemsize:
                raise ValueError(f"tensor {name} lies outside the file")
            tensors[name] = _mapped(path, start + begin, np_dtype, shape, count).view(dtype)
    except FileNotFoundError:
        raise files.Damaged(f"{what} {path} is missing", fix) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error, RecursionError) as exc:
        raise files.Damaged(f"{what} {path} is unreadable (truncated, or not safetensors: {files.short(exc)})",
                            fix) from None
    expected = metadata.get(files.CHECKSUM)
    if verify and (expected is None or files.checksum(tensors) != expected):
        problem = ("has no checksum, so zoo cannot tell it is whole" if expected is None else "is damaged: its "
                   "tensors differ from the checksum written with them (changed or corrupted on disk since)")
        raise files.Damaged(f"{what} {path} {problem}", fix)
    return tensors, metadata


def _mapped(path: Path, offset: int, np_dtype: type, shape: tuple[int, ...], count: int) -> torch.Tensor:
    if count == 0:  # nothing to map (mmap refuses an empty range)
        return torch.from_numpy(np.empty(shape, dtype=np_dtype))
    array = np.memmap(path, dtype=np_dtype, mode="c", offset=offset, shape=shape)
    with warnings.catch_warnings():  # torch warns of read-only arrays; this one is copy-on-write
        warnings.simplefilter("ignore")
        return torch.from_numpy(array)


class ShardedImages:
    """The images of several shards (each an N_i x C x H x W tensor, mapped or in memory)
    as one data set: its shape, single images and slices (``images[5]``, ``images[:64]``),
    and rows gathered by global index (:meth:`rows`), as a tensor would give them. Only what
    is asked for is copied into memory."""

    def __init__(self, parts: Sequence[torch.Tensor]) -> None:
        if not parts:
            raise ValueError("no shards")
        if len({tuple(p.shape[1:]) for p in parts}) != 1 or len({p.dtype for p in parts}) != 1:
            raise ValueError("shards of one data set must share their image shape and dtype")
        self.parts = list(parts)
        counts = torch.tensor([p.shape[0] for p in parts], dtype=torch.int64)
        self.ends = torch.cumsum(counts, 0)
        self.starts = self.ends - counts
        self.shape = torch.Size((int(self.ends[-1]), *parts[0].shape[1:]))
        self.dtype = parts[0].dtype
        self.device = torch.device("cpu")
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def numel(self) -> int:
        return self.shape.numel()

    def element_size(self) -> int:
        return self.parts[0].element_size()

    @property
    def nbytes(self) -> int:
        return self.numel() * self.element_size()

    def rows(self, index: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``images[index]`` for a 1-D int64 host tensor of global indices: each shard's rows
        gathered by one ``index_select`` into their places in ``out`` (allocated when None)."""
        index = index.to(torch.int64).reshape(-1).contiguous()
        if out is None:
            out = torch.empty((index.shape[0], *self.shape[1:]), dtype=self.dtype)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise IndexError(f"index out of range for {len(self)} images")
        shard = torch.searchsorted(self.ends, index, right=True)
        for s in torch.unique(shard).tolist():
            where = (shard == s).nonzero().view(-1)
            out.index_copy_(0, where, torch.index_select(self.parts[s], 0, index[where] - self.starts[s]))
        return out

    def __getitem__(self, key: int | slice | Sequence[int] | torch.Tensor) -> torch.Tensor:
        if isinstance(key, int):
            if not -len(self) <= key < len(self):
                raise IndexError(f"image {key} of {len(self)}")
            return self.rows(torch.tensor([key % len(self)]))[0]
        if isinstance(key, slice):
            return self.rows(torch.arange(*key.indices(len(self))))
        index = torch.as_tensor(key)
        if index.dtype == torch.bool:
            index = index.nonzero().view(-1)
        if index.ndim == 0:
            return self[int(index)]
        return self.rows(torch.where(index < 0, index + len(self), index))

    def __iter__(self) -> Iterator[torch.Tensor]:
        for part in self.parts:
            yield from part

    def chunks(self, size: int) -> Iterator[torch.Tensor]:
        """The images in order, ``size`` at a time (the last chunk may be smaller)."""
        for start in range(0, len(self), size):
            yield self[start:start + size]

    def split(self, size: int) -> Iterator[torch.Tensor]:
        return self.chunks(size)

    def to(self, device: torch.device | str) -> torch.Tensor:
        """Every image in one tensor on ``device``: for a data set small enough to hold."""
        return torch.cat(self.parts).to(device)

    def __repr__(self) -> str:
        return f"ShardedImages({len(self.parts)} shards, shape {tuple(self.shape)}, {self.dtype})"


IN_MEMORY_MB = 1024
"""Prepared shards of at most this many megabytes of pixels are read whole into memory (as
fast as data gets); larger sets stay on disk, read through memory maps. ``$ZOO_IN_MEMORY_MB``
sets another limit."""


def in_memory_bytes() -> int:
    try:
        megabytes = float(os.environ.get("ZOO_IN_MEMORY_MB", IN_MEMORY_MB))
        if not 0 <= megabytes <= 1 << 30:
            raise ValueError
        return int(megabytes * 1024 * 1024)
    except ValueError:
        raise UsageError(f"$ZOO_IN_MEMORY_MB must be a number of megabytes from 0 up, got "
                         f"{os.environ['ZOO_IN_MEMORY_MB']!r}") from None


def read_shards(folder: Path, names: list[str], fix: str) -> tuple[torch.Tensor | ShardedImages, torch.Tensor]:
    """A split's shards: their images end to end (one tensor in memory when the set is small,
    else mapped from disk) and their labels (always in memory: 8 bytes an image)."""
    if not names:
        raise files.Damaged(f"prepared data in {folder} lists no shards", fix)
    shards = [map_tensors(folder / name, "prepared data", fix)[0] for name in names]
    images = ShardedImages([t["images"] for t in shards])
    labels = torch.cat([t["labels"] for t in shards]).clone()
    if images.nbytes <= in_memory_bytes():
        return images.to("cpu"), labels
    return images, labels


def read_split(path: Path, fix: str, required: bool) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A prepared split's file (``data.safetensors``): read whole when it is small, mapped
    from disk past :func:`in_memory_bytes` (full-size photos of any number), checked
    against its checksum either way (a file without one only when not ``required``)."""
    if not path.is_file() or path.stat().st_size <= in_memory_bytes():
        return files.load_tensors(path, "prepared data", fix, required=required)
    tensors, metadata = map_tensors(path, "prepared data", fix, verify=False)
    expected = metadata.get(files.CHECKSUM)
    if expected is None and required:
        raise files.Damaged(f"prepared data {path} has no checksum, so zoo cannot tell it is whole", fix)
    if expected is not None and files.checksum(tensors) != expected:
        raise files.Damaged(f"prepared data {path} is damaged: its tensors differ from the checksum written with "
                            "them (changed or corrupted on disk since)", fix)
    return tensors, metadata


MAPPED_EVAL_IMAGES = 10_000
"""Measures that need a whole split as one float tensor (reconstructions, super-resolution's
pairs) take a mapped split's first this many images, and say so."""


def whole_or_first(images: torch.Tensor) -> torch.Tensor:
    """``images`` as one tensor: all of them when in memory, a mapped set's first
    :data:`MAPPED_EVAL_IMAGES` (a float copy of a set past the in-memory limit would not fit)."""
    return images[:MAPPED_EVAL_IMAGES] if isinstance(images, ShardedImages) else images
