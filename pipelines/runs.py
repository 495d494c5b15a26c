"""Run folders: making them without overwriting anything, and finding them again.

A run folder holds ``run.json`` (what was trained, on what, how far it got), the checkpoint,
the per-epoch preview grids, ``metrics.jsonl``, the loss curves and the progress GIF.
Commands that use a trained model take a run folder, a checkpoint file, or a model name
(meaning that model's latest run in the runs folder).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from zoo import checkpoint as ckpt_io
from zoo import registry
from zoo.errors import UsageError, ZooError
from zoo.paths import runs_dir

RUN_FILE = "run.json"


def new_run_dir(model: str, data: str, out: Path | None, force: bool) -> Path:
    """A fresh folder for a run; refuses to reuse an existing one unless forced."""
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = data.replace("folder:", "").replace("/", "_").replace(":", "_").strip("_.") or "data"
        base = runs_dir() / f"{model}-{Path(slug).name}-{stamp}"
        out, n = base, 1
        while out.exists():
            n += 1
            out = base.with_name(f"{base.name}-{n}")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not out.is_dir():
            raise UsageError(f"--out {out} is a file; pick a folder for the run")
        if not (out / RUN_FILE).exists():
            raise UsageError(f"--out {out} already holds files that are not a zoo run; pick another "
                             "folder (--force only ever replaces runs)")
        if not force:
            raise UsageError(f"--out {out} already holds a run; continue it with --resume {out}, "
                             "or pass --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    tmp = run_dir / f".{RUN_FILE}.tmp"
    tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
    os.replace(tmp, run_dir / RUN_FILE)


def read_run_info(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def find_checkpoint(target: str) -> Path:
    """The checkpoint file meant by a run folder, a checkpoint path, or a model name."""
    path = Path(target).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidate = path / ckpt_io.FILENAME
        if not candidate.is_file():
            raise ZooError(f"{path} holds no {ckpt_io.FILENAME}; is it a zoo run folder that "
                           "finished at least one epoch?")
        return candidate
    reg = registry.registry()
    if reg.is_name(target):
        latest = latest_run(target)
        if latest is None:
            raise ZooError(f"no {target} run found in {runs_dir()}; train one first: "
                           f"zoo train {target} --data mnist")
        return latest / ckpt_io.FILENAME
    if os.sep in target or target.endswith(".safetensors"):
        raise UsageError(f"{target} does not exist")
    raise UsageError(f"{target!r} is neither a run folder, a checkpoint file nor a model name; "
                     f"{reg.unknown_message(target)}")


def latest_run(model: str) -> Path | None:
    """The newest run of ``model`` in the runs folder that has a checkpoint."""
    root = runs_dir()
    if not root.is_dir():
        return None
    found = []
    for run in root.iterdir():
        if not (run / ckpt_io.FILENAME).is_file():
            continue
        info = read_run_info(run)
        if info.get("model") == model:
            found.append((info.get("created", ""), run.stat().st_mtime, run))
    return max(found)[2] if found else None


def load_model(path: Path, device: Any = "cpu", expect: str | None = None):
    """Rebuild a model from a checkpoint alone; returns (model, checkpoint)."""
    from zoo.config import from_dict
    from zoo.model import DataSpec

    meta = ckpt_io.read_meta(path)
    if expect is not None and meta["plugin"] != expect:
        raise UsageError(f"{path} is a {meta['plugin']} checkpoint, not {expect}")
    cls = registry.get(meta["plugin"])
    if str(cls.version) != str(meta["plugin_version"]):
        raise ZooError(f"{path} was written by {cls.name} version {meta['plugin_version']}; the "
                       f"installed plugin is version {cls.version} and cannot read it")
    config = from_dict(cls.Config, meta["config"], source=str(path))
    model = cls(config, DataSpec.from_dict(meta["data"]))
    checkpoint = ckpt_io.load(path)
    try:
        model.load_state_dict(checkpoint.state["model"])
    except (RuntimeError, KeyError) as exc:
        raise ZooError(f"{path} does not fit the {cls.name} networks its config describes: "
                       f"{str(exc).splitlines()[0]}") from None
    model.load_extra_state(checkpoint.state.get("extra", {}))
    return model.to(device), checkpoint


def output_dir(out: Path, force: bool) -> Path:
    """A folder for a command's pictures and files: new or empty, or written over with --force."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UsageError(f"--out {out} already holds files; pick another folder or pass --force "
                         "to write over them")
    out.mkdir(parents=True, exist_ok=True)
    return out


def load_latent_model(target: str, device: str, action: str):
    """(model, checkpoint, path) for a command that needs a latent prior; refuses others."""
    from zoo.devices import resolve_device
    from zoo.model import Capability

    path = find_checkpoint(target)
    model, checkpoint = load_model(path, resolve_device(device))
    hint = ""
    if model.has(Capability.IMAGE_TO_IMAGE):
        hint = f"It translates images: zoo translate {target} IMAGE_OR_FOLDER --out DIR"
    registry.registry().require(type(model), Capability.LATENT, action, hint)
    return model, checkpoint, path


def load_translator(target: str, device: str):
    """(model, checkpoint, path) for ``zoo translate``; refuses models that do not translate."""
    from zoo.devices import resolve_device
    from zoo.model import Capability

    path = find_checkpoint(target)
    model, checkpoint = load_model(path, resolve_device(device))
    if not model.has(Capability.IMAGE_TO_IMAGE):
        able = ", ".join(registry.registry().with_capability(Capability.IMAGE_TO_IMAGE)) or "none installed"
        hint = f"; it samples from noise: zoo sample {target}" if model.has(Capability.LATENT) else ""
        raise UsageError(f"{model.name} does not translate images (models that do: {able}){hint}")
    return model, checkpoint, path
