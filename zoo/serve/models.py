"""Trained models kept in memory for the page: each loaded once, the least recently used
let go when they would hold more than a set number of bytes.

A model is known by its checkpoint file and that file's size and modification time, so a
run still training is read again when it saves a newer checkpoint (and its older copy let
go). Loading goes through :func:`zoo.records.runs.load_model`, as every command's does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.model import Model
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs


@dataclass
class Loaded:
    """A model read from ``path`` (its checkpoint file), the checkpoint's record, and the
    bytes its weights take."""

    model: Model
    checkpoint: ckpt_io.Checkpoint
    path: Path
    size: int

    @property
    def step(self) -> Any:
        return self.checkpoint.train.get("step", "?")


def weight_bytes(model: Model) -> int:
    """Bytes held by a model's parameters and buffers."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class Models:
    """An LRU cache of loaded models bounded in bytes (``most_bytes``); one model larger than
    the bound is still served, alone."""

    def __init__(self, most_bytes: int, device: Any = "cpu") -> None:
        self.most_bytes = most_bytes
        self.device = device
        self._held: OrderedDict[tuple[str, int, int], Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, path: Path) -> Loaded:
        """The model of checkpoint ``path``, from memory when this version of the file was read before."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._held:
                self._held.move_to_end(key)
                return self._held[key]
            for old in [k for k in self._held if k[0] == key[0]]:  # an older save of the same file
                del self._held[old]
            model, checkpoint = runs.load_model(path, self.device)
            model.eval()
            loaded = Loaded(model, checkpoint, path, weight_bytes(model))
            self.loads += 1
            self._held[key] = loaded
            while len(self._held) > 1 and self.held_bytes() > self.most_bytes:
                self._held.popitem(last=False)
            return loaded

    def held_bytes(self) -> int:
        return sum(loaded.size for loaded in self._held.values())

    def __len__(self) -> int:
        return len(self._held)
