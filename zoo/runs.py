"""Run folders: making them without overwriting anything, the lock held while one trains,
and finding them and their checkpoints again.

A run folder holds ``run.json`` (what was trained, on what, how far it got), the checkpoint,
the per-epoch preview grids, ``metrics.jsonl``, the loss curves and the progress GIF.
Commands that use a trained model take a run folder, a checkpoint file, or a model name
(meaning that model's latest run in the runs folder). Reading what a run says about itself,
for people (``zoo runs``, ``zoo compare``, ``zoo report``), is :mod:`zoo.run_info`'s part.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from zoo import checkpoint as ckpt_io
from zoo import files, registry
from zoo.config import parse_json
from zoo.errors import UsageError, ZooError
from zoo.paths import runs_dir

RUN_FILE = "run.json"


LOCK_FILE = ".lock"


def new_run_dir(model: str, data: str, out: Path | None, force: bool) -> tuple[Path, RunLock]:
    """A fresh folder for a run and the lock on it, held: two trainings started in the same
    second get two folders, and two into one ``--out`` cannot both have it. An existing
    run is replaced only with ``force``; a folder that is not a run never."""
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = data.replace("folder:", "").replace("/", "_").replace(":", "_").strip("_.") or "data"
        base = runs_dir() / f"{model}-{Path(slug).name}-{stamp}"
        base.parent.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:  # ends only in the return, which mypy cannot tell of a loop over itertools.count
            out = base if n == 1 else base.with_name(f"{base.name}-{n}")
            try:
                out.mkdir()  # atomic: exactly one process makes a given folder
            except FileExistsError:
                n += 1
                continue
            return out, RunLock(out).acquire()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pick a folder for the run")
    held = [p for p in out.iterdir() if p.name != LOCK_FILE] if out.is_dir() else []
    if held and not (out / RUN_FILE).exists():
        raise UsageError(f"--out {out} already holds files that are not a zoo run; pick another "
                         "folder (--force only ever replaces runs)")
    out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out).acquire()  # refuses a run that is training now
    try:
        held = [p for p in out.iterdir() if p.name != LOCK_FILE]
        if held and not force:
            raise UsageError(f"--out {out} already holds a run; continue it with --resume {out}, "
                             "or pass --force to replace it")
        for path in held:  # the lock file stays: it is what keeps others out meanwhile
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    except BaseException:
        lock.release()
        raise
    return out, lock


class RunLock:
    """Held while a run trains: a second training into the same folder, or a second
    ``--resume`` of it, is refused with a clear message instead of corrupting it. An
    advisory ``flock`` on ``RUN/.lock``, released by the system when the process dies."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise UsageError(f"{self.path.parent} is being trained right now (by {holder}); wait "
                             "for it to finish, or train into another --out") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"process {os.getpid()}".encode(), 0)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_training(run_dir: Path) -> bool:
    """Whether a process holds the run's lock (:class:`RunLock`) now. A shared, non-blocking
    ``flock`` taken and let go at once: it never waits and writes nothing."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, believe run.json
        return True
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing lets go of the lock, if we got it
    return False


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    files.write_text(run_dir / RUN_FILE, json.dumps(info, indent=2), "run.json")


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json; empty when it is missing, unreadable or not an object."""
    return read_json(run_dir / RUN_FILE) or {}


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file; None when it is missing, unreadable or not an object."""
    try:
        value = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # a stranger's run.json: malformed, or nested past reading
        return None
    return value if isinstance(value, dict) else None


BEST_FILE = "best.safetensors"
"""Beside the latest checkpoint, the one with the best in-training figure (--eval-every)."""
CHECKPOINTS = {"latest": ckpt_io.FILENAME, "best": BEST_FILE}


def find_checkpoint(target: str, which: str = "latest") -> Path:
    """The checkpoint file meant by a run folder, a checkpoint path, or a model name:
    the run's latest checkpoint, or with ``which="best"`` the best one."""
    if which not in CHECKPOINTS:
        raise UsageError(f"--checkpoint must be latest or best, not {which!r}")
    path = Path(target).expanduser()
    if path.is_file():
        if which == "best" and path.name != BEST_FILE:
            raise UsageError(f"{path} is a checkpoint file; --checkpoint best takes a run folder or a model name")
        return path
    reg = registry.registry()
    if not path.is_dir() and reg.is_name(target):
        latest = latest_run(target)
        if latest is None:
            raise ZooError(f"no {target} run found in {runs_dir()}; train one first: "
                           f"zoo train {target} --data mnist")
        path = latest
    if path.is_dir():
        candidate = path / CHECKPOINTS[which]
        if which == "best" and not candidate.is_file() and (path / ckpt_io.FILENAME).is_file():
            raise ZooError(f"{path} has no {BEST_FILE}: a run keeps one when it trains with --eval-every N; "
                           "use --checkpoint latest")
        if not candidate.is_file():
            raise ZooError(f"{path} holds no {ckpt_io.FILENAME}; is it a zoo run folder that "
                           "finished at least one epoch?")
        return candidate
    if os.sep in target or target.endswith(".safetensors"):
        raise UsageError(f"{target} does not exist")
    raise UsageError(f"{target!r} is neither a run folder, a checkpoint file nor a model name; "
                     f"{reg.unknown_message(target)}")


def resolve_run(target: str) -> Path:
    """The run folder meant by a folder, a checkpoint file or a model name (its latest run).
    A folder with a run.json counts even before its first checkpoint."""
    path = Path(target).expanduser()
    if path.is_dir() and (path / RUN_FILE).is_file():
        return path
    return find_checkpoint(target).parent


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


def load_model(path: Path, device: Any = "cpu", expect: str | None = None, text_encoder: Path | None = None,
               reads_text: bool = True):
    """Rebuild a model from a checkpoint alone; returns (model, checkpoint). A text-conditional
    model gets its text encoder: zoo's own from the checkpoint, or the installed one it names
    from ``text_encoder`` (``--text-encoder``: a folder a checkpoint names is never read
    unless the user names it). With ``reads_text`` False (a command that refuses models
    that read text) none is attached."""
    from zoo.config import from_dict
    from zoo.model import Capability, DataSpec

    meta = ckpt_io.read_meta(path)
    if expect is not None and meta["plugin"] != expect:
        raise UsageError(f"{path} is a {meta['plugin']} checkpoint, not {expect}")
    if meta["plugin"] not in registry.registry().names():
        raise ZooError(f"{path} was written by the plugin {meta['plugin']!r}, which is not installed here "
                       f"(see `zoo list`); install the package that provides it")
    cls = registry.get(meta["plugin"])
    if str(cls.version) != str(meta["plugin_version"]):
        raise ZooError(f"{path} was written by {cls.name} version {meta['plugin_version']}; the "
                       f"installed plugin is version {cls.version} and cannot read it")
    if text_encoder is not None and not cls.has(Capability.TEXT_CONDITIONAL):
        raise UsageError(f"--text-encoder is for models that draw from text; {cls.name} reads none")
    config = from_dict(cls.Config, meta["config"], source=str(path))
    try:
        spec = DataSpec.from_dict(meta["data"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ZooError(f"{path} is not a checkpoint zoo wrote: its data spec is unreadable ({exc})") from None
    check_size(cls, config, spec, path)
    model = cls(config, spec)
    checkpoint = ckpt_io.load(path)
    model.load_extra_state(checkpoint.state.get("extra", {}))  # first: it may add layers a grown model has
    ckpt_io.check_kinds(model, checkpoint.state["model"], path)
    try:
        model.load_state_dict(checkpoint.state["model"])
    except (RuntimeError, KeyError) as exc:
        raise ZooError(f"{path} does not fit the {cls.name} networks its config describes: "
                       f"{str(exc).splitlines()[0]}") from None
    if reads_text and "text_encoder" in checkpoint.state:
        from zoo.text import encoder_from_state

        encoder = encoder_from_state(checkpoint.state["text_encoder"], text_encoder)
        model.attach_text_encoder(encoder, f"{path} (fingerprint {encoder.fingerprint()})")
    elif reads_text and model.has(Capability.TEXT_CONDITIONAL):
        raise ZooError(f"{path} holds no text encoder, which {cls.name} needs to read a --text; it was not "
                       "written by zoo's train pipeline")
    return model.to(device), checkpoint


def check_size(cls: Any, config: Any, spec: Any, path: Path) -> None:
    """Refuse a header whose config describes networks larger than the file could hold
    before building them: a stranger's header must not make zoo allocate what it claims.
    The networks are built on the meta device, which allocates nothing."""
    import torch

    try:
        with torch.device("meta"):
            probe = cls(config, spec)
        need = sum(t.numel() * t.element_size() for t in probe.state_dict().values())
    except Exception:  # a plugin that cannot be built on the meta device is built for real
        return
    have = path.stat().st_size
    if need > have:
        raise ZooError(f"{path} does not fit the {cls.name} networks its config describes: they need "
                       f"{_megabytes(need)} of weights, and the whole file is {_megabytes(have)}")


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**17 else f"{n:,} bytes"


def output_dir(out: Path, force: bool) -> Path:
    """A folder for a command's pictures and files: new or empty, or written over with --force."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UsageError(f"--out {out} already holds files; pick another folder or pass --force "
                         "to write over them")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _loaded(target: str, device: str, which: str, text_encoder: Path | None = None, reads_text: bool = False):
    from zoo.devices import resolve_device

    path = find_checkpoint(target, which)
    model, checkpoint = load_model(path, resolve_device(device), text_encoder=text_encoder, reads_text=reads_text)
    return model, checkpoint, path


def _instead(model, target: str) -> str:
    """What a model does instead of what a command asked, as a sentence for the refusal."""
    from zoo.model import Capability

    if model.has(Capability.IMAGE_TO_IMAGE):
        return f"It translates images: zoo translate {target} IMAGE_OR_FOLDER --out DIR"
    if model.has(Capability.ENCODER) and not model.has(Capability.LATENT):
        return f"It has no prior to draw from; it encodes images: zoo reconstruct {target} IMAGES"
    if model.has(Capability.LATENT) and not model.has(Capability.ENCODER):
        return f"It only decodes; zoo invert {target} IMAGE fits a latent to an image by optimisation"
    return ""


def load_latent_model(target: str, device: str, action: str, takes_text: bool = False, which: str = "latest",
                      or_encoder: bool = False, text_encoder: Path | None = None):
    """(model, checkpoint, path) for a command that needs a latent prior (or, with
    ``or_encoder``, at least an encoder to find latents with); refuses others, and
    text-conditional models where the command has no ``--text`` to give them.
    ``text_encoder``: the folder of the installed text encoder the model names, if it does."""
    from zoo.model import Capability

    model, checkpoint, path = _loaded(target, device, which, text_encoder, reads_text=takes_text)
    if not (or_encoder and model.has(Capability.ENCODER)):
        registry.registry().require(type(model), Capability.LATENT, action, _instead(model, target))
    if model.has(Capability.TEXT_CONDITIONAL) and not takes_text:
        raise UsageError(f"{model.name} draws from a description, and this command takes none; "
                         f"zoo sample {target} --text \"...\" does")
    return model, checkpoint, path


def load_encoder(target: str, device: str, action: str = "reconstruct images", which: str = "latest"):
    """(model, checkpoint, path) for a command that needs an encoder; refuses others."""
    from zoo.model import Capability

    model, checkpoint, path = _loaded(target, device, which)
    registry.registry().require(type(model), Capability.ENCODER, action, _instead(model, target))
    return model, checkpoint, path


def load_translator(target: str, device: str):
    """(model, checkpoint, path) for ``zoo translate``; refuses models that do not translate."""
    from zoo.model import Capability

    model, checkpoint, path = _loaded(target, device, "latest")
    if not model.has(Capability.IMAGE_TO_IMAGE):
        able = ", ".join(registry.registry().with_capability(Capability.IMAGE_TO_IMAGE)) or "none installed"
        hint = f"; it samples from noise: zoo sample {target}" if model.has(Capability.LATENT) else ""
        raise UsageError(f"{model.name} does not translate images (models that do: {able}){hint}")
    return model, checkpoint, path
