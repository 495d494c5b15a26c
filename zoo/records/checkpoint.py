"""Checkpoints that describe themselves and hold no code.

One ``.safetensors`` file holds every tensor of a training run: weights, optimiser
moments, random-number-generator states. Its header holds, as JSON, everything needed to
use it alone: the plugin and its version, the resolved config, the data spec, where
training stood, and the skeleton that puts the nested optimiser state back together.
Nothing is ever unpickled.

Writes are atomic (:func:`zoo.records.files.write_atomically`): a crash mid-write, or a full disk,
leaves the previous checkpoint whole. The header holds a checksum of the tensors, so a
checkpoint changed on disk since is refused before it is trained on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from zoo.config import SEED_MAX, parse_json
from zoo.errors import UsageError, ZooError
from zoo.records import files

FORMAT = "zoo-checkpoint/1"
FILENAME = "checkpoint.safetensors"
ANOTHER = ("use another checkpoint: the run's best.safetensors (--checkpoint best) where it kept one, or an "
           "earlier copy (and to train on, --resume from that one)")
"""What to do about a checkpoint that is cut off or damaged (said after what is wrong with it)."""


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
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    text = json.dumps(meta)
    header = {"zoo": text, files.CHECKSUM: files.checksum(tensors, text)}

    files.write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=header), "checkpoint")


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON header of a checkpoint, without reading its tensors."""
    if not path.is_file():
        raise ZooError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ZooError(f"{path} is not a readable zoo checkpoint: it is cut off (truncated or not safetensors: "
                       f"{_short(exc)}); {ANOTHER}") from None
    try:
        meta = parse_json(header["zoo"])
    except KeyError:
        raise ZooError(f"{path} is a safetensors file but not a zoo checkpoint "
                       "(no zoo header); only checkpoints written by `zoo train` or `zoo export` load") from None
    except ValueError as exc:  # malformed, or nested past any header zoo writes
        raise ZooError(f"{path} is not a checkpoint zoo wrote: its header is not JSON zoo reads "
                       f"({_short(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ZooError(f"{path} has checkpoint format {found!r}; this zoo reads {FORMAT!r}")
    for key, kinds in _HEADER.items():
        if not isinstance(meta.get(key), kinds):
            raise ZooError(f"{path} is not a checkpoint zoo wrote: its header's {key!r} is "
                           f"{type(meta.get(key)).__name__}, not {' or '.join(k.__name__ for k in kinds)}")
    return meta


_HEADER: dict[str, tuple[type, ...]] = {"plugin": (str,), "plugin_version": (str, int), "config": (dict,),
                                        "data": (dict,), "train": (dict,), "skeleton": (dict, list)}
"""What every header holds, and of which JSON type: anything else was not written by :func:`save`."""


def load(path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a whole checkpoint; a damaged or foreign file gives a one-line :class:`ZooError`."""
    meta = read_meta(path)
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ZooError(f"{path} is damaged: it is cut off or corrupt (truncated or corrupt: {_short(exc)}); "
                       f"{ANOTHER}") from None
    header = safe_header(path) or {}
    expected = header.get(files.CHECKSUM)
    if expected is not None and files.checksum(tensors, header.get("zoo", "")) != expected:  # older ones have none
        raise ZooError(f"{path} is damaged: its tensors or header differ from the checksum written with them "
                       f"(changed or corrupted on disk since); {ANOTHER}")
    try:
        state = unflatten(meta["skeleton"], tensors)
    except KeyError as exc:
        raise ZooError(f"{path} is damaged: its skeleton names tensor {exc} that it does not hold") from None
    except (TypeError, ValueError, AttributeError):
        raise ZooError(f"{path} is not a checkpoint zoo wrote: its skeleton is malformed") from None
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict):
        raise ZooError(f"{path} is not a checkpoint zoo wrote: it holds no model weights")
    return Checkpoint(meta["plugin"], meta["plugin_version"], meta["config"], meta["data"],
                      meta["train"], state)


_RESUMABLE: dict[str, tuple[type, ...]] = {"step": (int,), "images": (int,), "seed": (int,), "batches": (dict,),
                                           "data": (dict,), "seconds": (int, float), "total_steps": (int,),
                                           "total_images": (int,), "minutes": (int, float, type(None)),
                                           "clip_grad": (int, float), "precision": (str,)}
_OPTIONAL = {"seconds", "total_images", "minutes", "clip_grad", "precision"}
"""Keys older checkpoints may lack."""
_COUNT_MAX = 2**62
"""The most steps or images a training state counts."""


def check_resumable(train: Mapping[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose training state zoo did not write (so cannot resume from):
    a key missing or of another type, or a number no run reaches (a negative step, a seed
    out of range, an infinite time)."""
    if "export" in train:
        raise UsageError(f"{path} is an export (the weights drawing needs, no discriminator nor optimiser state): "
                         "it cannot be resumed; resume the run it was exported from")
    for key, kinds in _RESUMABLE.items():
        if key in train and (not isinstance(train[key], kinds) or isinstance(train[key], bool)) \
                or key not in _OPTIONAL and key not in train:
            raise ZooError(f"{path} cannot be resumed: its training state's {key!r} is "
                           f"{type(train.get(key)).__name__}, not what zoo writes; sample from it, or start a "
                           f"new run from its weights with --init-from")
    numbers = {key: train.get(key) for key in ("step", "images", "total_steps", "total_images", "seed", "seconds",
                                              "minutes", "clip_grad")}
    limits = {"seed": SEED_MAX, "minutes": 1e9, "seconds": 1e12, "clip_grad": 1e300}
    for key, value in numbers.items():
        if value is not None and not 0 <= value <= limits.get(key, _COUNT_MAX):  # NaN fails too
            raise ZooError(f"{path} cannot be resumed: its training state's {key!r} is {value!r}, which no "
                           "run of zoo's reaches; start a new run from its weights with --init-from")
    if not isinstance(train["data"].get("source"), str):
        raise ZooError(f"{path} cannot be resumed: its training state names no data source")


def check_kinds(model: torch.nn.Module, given: Mapping[str, Any], path: Path) -> None:
    """Refuse weights of another kind than the model's (integers for a float weight, say):
    ``load_state_dict`` would convert them without a word; and NaN or infinite parameters
    (buffers may hold infinities on purpose)."""
    parameters = {name for name, _ in model.named_parameters()}
    for name, want in model.state_dict().items():
        have = given.get(name)
        if (name in parameters and isinstance(have, torch.Tensor) and have.is_floating_point()
                and not bool(torch.isfinite(have).all())):
            raise ZooError(f"{path} holds NaN or infinite weights ({name}): it cannot draw anything; use an "
                           "earlier checkpoint")
        if isinstance(have, torch.Tensor) and _kind(have.dtype) != _kind(want.dtype):
            raise ZooError(f"{path} does not fit: {name} is stored as {have.dtype}, the model's is {want.dtype}; "
                           "it was not written by zoo for this model")


def _kind(dtype: torch.dtype) -> str:
    return "float" if dtype.is_floating_point else "complex" if dtype.is_complex else \
        "bool" if dtype == torch.bool else "int"


def safe_header(path: Path) -> dict[str, str] | None:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return None


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


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
