"""Checkpoints that describe themselves and hold no code.

One ``.safetensors`` file holds every tensor of a training run: weights, optimiser
moments, random-number-generator states. Its header holds, as JSON, everything needed to
use it alone: the plugin and its version, the resolved config, the data spec, where
training stood, and the skeleton that puts the nested optimiser state back together.
Nothing is ever unpickled.

Writes are atomic: the file is written beside its destination, flushed to disk and then
renamed over it, so a crash mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .errors import ZooError

FORMAT = "zoo-checkpoint/1"
FILENAME = "checkpoint.safetensors"


@dataclass
class Checkpoint:
    plugin: str
    plugin_version: str
    config: dict[str, Any]
    data: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    """Nested dicts and lists of tensors and plain values: model, optimizers, rng, extra."""


def save(path: Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(ckpt.state, tensors)
    meta = {
        "format": FORMAT,
        "plugin": ckpt.plugin,
        "plugin_version": ckpt.plugin_version,
        "config": ckpt.config,
        "data": ckpt.data,
        "train": ckpt.train,
        "skeleton": skeleton,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file_beside(path)
    try:
        mode = stat.S_IMODE(tmp.stat().st_mode)
        save_file(tensors, str(tmp), metadata={"zoo": json.dumps(meta)})
        os.chmod(tmp, mode)  # safetensors renames a 0600 file of its own over ours
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON header of a checkpoint, without reading its tensors."""
    if not path.is_file():
        raise ZooError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ZooError(f"{path} is not a readable zoo checkpoint (truncated or not safetensors): "
                       f"{_short(exc)}") from None
    try:
        meta = json.loads(header["zoo"])
    except (KeyError, ValueError):
        raise ZooError(f"{path} is a safetensors file but not a zoo checkpoint "
                       "(no zoo header); only checkpoints written by `zoo train` load") from None
    if meta.get("format") != FORMAT:
        raise ZooError(f"{path} has checkpoint format {meta.get('format')!r}; "
                       f"this zoo reads {FORMAT!r}")
    return meta


def load(path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a whole checkpoint; a damaged or foreign file gives a one-line :class:`ZooError`."""
    meta = read_meta(path)
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ZooError(f"{path} is damaged (truncated or corrupt): {_short(exc)}") from None
    try:
        state = unflatten(meta["skeleton"], tensors)
    except KeyError as exc:
        raise ZooError(f"{path} is damaged: tensor {exc} is missing") from None
    return Checkpoint(meta["plugin"], meta["plugin_version"], meta["config"], meta["data"],
                      meta["train"], state)


# -- nested state <-> flat tensors + JSON skeleton --------------------------------------------

_TENSOR, _TUPLE, _INT_KEYS = "__tensor__", "__tuple__", "__int_keys__"


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Move every tensor of a nested structure into ``tensors``; return a JSON skeleton.

    Handles what ``state_dict()`` of modules and optimisers contain: dicts with string or
    integer keys, lists, tuples, tensors and plain numbers, strings, booleans and None.
    """
    if isinstance(obj, torch.Tensor):
        key = prefix.rstrip(".")
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {_TENSOR: key}
    if isinstance(obj, Mapping):
        int_keys = bool(obj) and all(isinstance(k, int) for k in obj)
        if not int_keys and not all(isinstance(k, str) for k in obj):
            raise TypeError(f"cannot checkpoint a dict with keys {list(obj)[:3]} at {prefix!r}")
        body = {str(k): flatten(v, tensors, f"{prefix}{k}.") for k, v in obj.items()}
        return {_INT_KEYS: body} if int_keys else body
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten(v, tensors, f"{prefix}{i}.") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, f"{prefix}{i}.") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {prefix!r}")


def unflatten(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of :func:`flatten`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {_TENSOR}:
            return tensors[skeleton[_TENSOR]]
        if set(skeleton) == {_TUPLE}:
            return tuple(unflatten(v, tensors) for v in skeleton[_TUPLE])
        if set(skeleton) == {_INT_KEYS}:
            return {int(k): unflatten(v, tensors) for k, v in skeleton[_INT_KEYS].items()}
        return {k: unflatten(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    return skeleton


def _new_file_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder, with the permissions of any new file: 0666
    less the umask, applied by the system. (Reading the umask means setting it, for the
    whole process: a thread creating a file meanwhile would get it wide open.)"""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
