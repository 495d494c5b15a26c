"""Run folders: making them without overwriting anything, the lock held while one trains,
and finding them and their checkpoints again.

A run folder holds ``run.json`` (what was trained, on what, how far it got), the checkpoint,
the per-epoch preview grids, ``metrics.jsonl``, the loss curves and the progress GIF.
Commands that use a trained model take a run folder, a checkpoint file, or a model name
(meaning that model's latest run in the runs folder). Reading what a run says about itself,
for people (``zoo runs``, ``zoo compare``, ``zoo report``), is :mod:`zoo.records.run_info`'s part.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from zoo import registry
from zoo.config import parse_json
from zoo.errors import UsageError, ZooError
from zoo.records import checkpoint as ckpt_io
from zoo.records import files
from zoo.records.paths import runs_dir, safe_name

RUN_FILE = "run.json"


LOCK_FILE = ".lock"


def new_run_dir(model: str, data: str, out: Path | None, force: bool,
                say: Callable[[str], None] | None = None) -> tuple[Path, RunLock]:
    """A fresh folder for a run and the lock on it, held: two trainings started in the same
    second get two folders, and two into one ``--out`` cannot both have it. An existing
    run is replaced (everything in its folder deleted) only with ``force`` (``--replace``),
    and ``say`` told what went; a folder that is not a run never."""
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
                             "or pass --replace to delete it and train a new one there")
        if held and say is not None:
            info = read_run_info(out)
            what = f"{info.get('model', 'a run')} on {info.get('data', '?')}, step {info.get('step', 0)}"
            say(f"--replace: deleting the run in {out} ({what}): "
                f"{', '.join(sorted(p.name + ('/' if p.is_dir() else '') for p in held))}")
        for path in held:  # the lock file stays: it is what keeps others out meanwhile
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    except BaseException:
        lock.release()
        raise
    return out, lock


class RunLock:
    """Held while a run trains: a second training into the same folder, or a second
    ``--resume`` of it, is refused with a clear message instead of corrupting it (never made
    to wait). An operating-system lock on ``RUN/.lock`` (filelock's: ``flock`` on POSIX,
    ``msvcrt`` on Windows), let go by the system when the process dies."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._lock = FileLock(self.path)

    def acquire(self) -> RunLock:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise UsageError(f"{self.path.parent} is being trained right now by another process; wait for it "
                             "to finish, or train into another --out") from None
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_training(run_dir: Path) -> bool:
    """Whether a process holds the run's lock (:class:`RunLock`) now: the lock taken without
    waiting and let go at once. A folder without a lock file has none; one whose lock cannot
    be tried (a folder this user may not write) is believed training, as run.json says."""
    path = run_dir / LOCK_FILE
    if not path.is_file():
        return False
    probe = FileLock(path)
    try:
        probe.acquire(timeout=0)
    except OSError:  # filelock's Timeout (held) is one too
        return True
    probe.release()
    return False


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    """Replace run.json with ``info`` whole (atomically). A writer of a run that another
    process may write too uses :func:`update_run_info`."""
    files.write_text(run_dir / RUN_FILE, json.dumps(info, indent=2), "run.json")


INFO_LOCK_FILE = ".run.json.lock"
INFO_LOCK_SECONDS = 60.0
EVAL_ENTRY = "eval"
"""run.json's key that ``zoo eval`` writes (its headline figures); a training never writes it."""


def update_run_info(run_dir: Path, fields: Mapping[str, Any], *, create: bool = True) -> dict[str, Any] | None:
    """Set ``fields`` in run.json and keep every other key as the file has it now. Two
    processes write a run's run.json: its training (status, step, best, ...) and a ``zoo
    eval`` beside it (:data:`EVAL_ENTRY`); each writes only its own fields, read, changed and
    written (atomically) under a lock on ``RUN/.run.json.lock`` held for that long, so
    neither loses what the other wrote meanwhile. ``create=False``: a folder without a
    readable run.json is left alone (returns None). Returns run.json as written."""
    from filelock import FileLock, Timeout

    path = run_dir / RUN_FILE
    if not create and not path.is_file():
        return None
    try:
        with FileLock(run_dir / INFO_LOCK_FILE, timeout=INFO_LOCK_SECONDS):
            info = read_json(path)
            if info is None:
                if not create:
                    return None
                info = {}
            info.update(fields)
            write_run_info(run_dir, info)
    except Timeout:
        raise ZooError(f"{path} stayed locked by another process for {INFO_LOCK_SECONDS:.0f} s (its lock is "
                       f"{run_dir / INFO_LOCK_FILE}); run the command again when that process is done") from None
    return info


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
            from zoo.display.console import zoo_command

            raise ZooError(f"no {target} run found in {runs_dir()}; train one first: "
                           f"{zoo_command()} train {target} --data mnist")
        path = latest
    if path.is_dir() and is_export(path):
        if which == "best":
            raise UsageError(f"{path} is an export: it holds one set of weights; leave out --checkpoint best")
        return path / EXPORT_WEIGHTS
    if path.is_dir():
        candidate = path / CHECKPOINTS[which]
        if which == "best" and not candidate.is_file() and (path / ckpt_io.FILENAME).is_file():
            raise ZooError(f"{path} has no {BEST_FILE}: a run keeps one when it trains with --eval-every N; "
                           "use --checkpoint latest")
        if not candidate.is_file():
            raise ZooError(f"{path} holds no {ckpt_io.FILENAME}; is it a zoo run folder that "
                           f"finished at least one epoch, or a zoo export ({EXPORT_WEIGHTS} and {EXPORT_CONFIG})?")
        return candidate
    if os.sep in target or target.endswith(".safetensors"):
        raise UsageError(f"{target} does not exist; `zoo runs` lists the runs in {runs_dir()}")
    raise UsageError(f"{target!r} is neither a run folder, a checkpoint file nor a model name (`zoo runs` lists "
                     f"the runs in {runs_dir()}); {reg.unknown_message(target)}")


EXPORT_WEIGHTS, EXPORT_CONFIG = "model.safetensors", "config.json"
"""An export's files (``zoo export``), named as the Hugging Face hub expects them."""


EXPORT_FORMAT = "zoo-export/1"


def is_export(folder: Path) -> bool:
    """Whether a folder is one ``zoo export`` wrote: its weights, and a config.json that says so
    (another library's model folder also holds a model.safetensors and a config.json)."""
    if not (folder / EXPORT_WEIGHTS).is_file() or (folder / ckpt_io.FILENAME).is_file():
        return False
    config = read_json(folder / EXPORT_CONFIG)
    return isinstance(config, dict) and config.get("format") == EXPORT_FORMAT


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
    from zoo.spec import Capability, DataSpec

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
    exported = "export" in meta["train"]
    check_size(cls, config, spec, path, exported)
    model = cls(config, spec)
    checkpoint = ckpt_io.load(path)
    model.load_extra_state(checkpoint.state.get("extra", {}))  # first: it may add layers a grown model has
    ckpt_io.check_kinds(model, checkpoint.state["model"], path)
    try:
        loaded = model.load_state_dict(checkpoint.state["model"], strict=not exported)
    except (RuntimeError, KeyError) as exc:
        raise ZooError(f"{path} does not fit the {cls.name} networks its config describes: "
                       f"{str(exc).splitlines()[0]}") from None
    if loaded.unexpected_keys:
        raise ZooError(f"{path} does not fit the {cls.name} networks its config describes: it holds weights "
                       f"they do not have ({loaded.unexpected_keys[0]}, {len(loaded.unexpected_keys)} in all)")
    needed = [k for k in loaded.missing_keys if not _under(k, model.training_only())]
    if needed:
        raise ZooError(f"{path} is an export without weights {cls.name} needs to draw ({needed[0]}, "
                       f"{len(needed)} in all); export the run again with this zoo")
    if reads_text and "text_encoder" in checkpoint.state:
        from zoo.data.sentence_encoder import encoder_from_state

        encoder = encoder_from_state(checkpoint.state["text_encoder"], text_encoder)
        model.attach_text_encoder(encoder, f"{path} (fingerprint {encoder.fingerprint()})")
    elif reads_text and model.has(Capability.TEXT_CONDITIONAL):
        raise ZooError(f"{path} holds no text encoder, which {cls.name} needs to read a --text; it was not "
                       "written by zoo's train pipeline")
    return model.to(device), checkpoint


def check_size(cls: Any, config: Any, spec: Any, path: Path, exported: bool = False) -> None:
    """Refuse a header whose config describes networks larger than the file could hold
    before building them: a stranger's header must not make zoo allocate what it claims.
    The networks are built on the meta device, which allocates nothing. An export holds
    only the networks drawing needs, perhaps in half precision: two bytes a number."""
    import torch

    try:
        with torch.device("meta"):
            probe = cls(config, spec)
        dropped = probe.training_only() if exported else ()
        need = sum(t.numel() * (min(2, t.element_size()) if exported else t.element_size())
                   for k, t in probe.state_dict().items() if not _under(k, dropped))
    except Exception:  # a plugin that cannot be built on the meta device is built for real
        return
    have = path.stat().st_size
    if need > have:
        raise ZooError(f"{path} does not fit the {cls.name} networks its config describes: they need "
                       f"{_megabytes(need)} of weights, and the whole file is {_megabytes(have)}")


def _under(key: str, modules: tuple[str, ...]) -> bool:
    """Whether a state-dict key names a weight of one of ``modules``."""
    return any(key == m or key.startswith(m + ".") for m in modules)


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**17 else f"{n:,} bytes"


def default_out(folder: str, checkpoint: Any, path: Path, *details: str | None) -> Path:
    """Where a command writes when not given ``--out``: ``FOLDER/RUN[-best]-DETAIL-...`` here:
    the run, ``best`` from its best checkpoint, and what sets these outputs apart from others
    of the same run (the class, the prior, the seed, ...: ``details``, each made a file name;
    empty ones left out)."""
    run_name = checkpoint.train.get("run") or path.parent.name
    best = ["best"] if path.name == BEST_FILE else []
    return Path(folder) / "-".join([run_name, *best, *(safe_name(str(d)) for d in details if d)])


def output_dir(out: Path, force: bool) -> Path:
    """A folder for a command's pictures and files: new or empty, or written over with --force."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UsageError(f"--out {out} already holds files; pick another folder or pass --force "
                         "to write over them")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _loaded(target: str, device: str, which: str, check: Callable[[Any], None], text_encoder: Path | None = None,
            reads_text: bool = False):
    """(model, checkpoint, path) of a target, after ``check`` of the model's class, which
    refuses models that cannot do what the command asks: by name before any run of it is
    looked for (``zoo sample ae`` says that an autoencoder cannot sample, not that no run of
    it was found). ``text_encoder``: the folder of the installed text encoder the model
    names, if it does (read only when the command reads text, ``reads_text``)."""
    from zoo.training.devices import resolve_device

    reg = registry.registry()
    if not Path(target).expanduser().exists() and reg.is_name(target):
        check(reg.get(target))
    path = find_checkpoint(target, which)
    model, checkpoint = load_model(path, resolve_device(device), text_encoder=text_encoder, reads_text=reads_text)
    check(type(model))
    return model, checkpoint, path


def _instead(model, target: str) -> str:
    """What a model (or its class) does instead of what a command asked, as a sentence for
    the refusal."""
    from zoo.spec import Capability

    if model.has(Capability.IMAGE_TO_IMAGE):
        return f"It translates images: zoo translate {target} IMAGE_OR_FOLDER --out DIR"
    if model.has(Capability.ENCODER) and not model.has(Capability.LATENT):
        return f"It has no prior to draw from; it encodes images: zoo reconstruct {target} IMAGES"
    if model.has(Capability.LATENT) and not model.has(Capability.ENCODER):
        return f"It only decodes; zoo invert {target} IMAGE fits a latent to an image by optimisation"
    return ""


def require_latent(cls: Any, target: str, action: str, takes_text: bool = False, or_encoder: bool = False) -> None:
    """Refuse a model without a latent prior (or, with ``or_encoder``, at least an encoder to
    find latents with), and a text-conditional one where nothing gives it a text."""
    from zoo.spec import Capability

    if not (or_encoder and cls.has(Capability.ENCODER)):
        registry.registry().require(cls, Capability.LATENT, action, _instead(cls, target))
    if cls.has(Capability.TEXT_CONDITIONAL) and not takes_text:
        raise UsageError(f"{cls.name} draws from a description, and this command takes none; "
                         f"zoo sample {target} --text \"...\" does")


def require_encoder(cls: Any, target: str, action: str = "reconstruct images") -> None:
    from zoo.spec import Capability

    registry.registry().require(cls, Capability.ENCODER, action, _instead(cls, target))


def require_translator(cls: Any, target: str) -> None:
    from zoo.spec import Capability

    if not cls.has(Capability.IMAGE_TO_IMAGE):
        able = ", ".join(registry.registry().with_capability(Capability.IMAGE_TO_IMAGE)) or "none installed"
        hint = f"; it samples from noise: zoo sample {target}" if cls.has(Capability.LATENT) else ""
        raise UsageError(f"{cls.name} does not translate images (models that do: {able}){hint}")


def load_latent_model(target: str, device: str, action: str, takes_text: bool = False, which: str = "latest",
                      or_encoder: bool = False, text_encoder: Path | None = None):
    """(model, checkpoint, path) for a command that needs a latent prior (or, with
    ``or_encoder``, at least an encoder to find latents with); refuses others, and
    text-conditional models where the command has no ``--text`` to give them.
    ``text_encoder``: the folder of the installed text encoder the model names, if it does."""
    return _loaded(target, device, which, lambda cls: require_latent(cls, target, action, takes_text, or_encoder),
                   text_encoder, reads_text=takes_text)


def load_encoder(target: str, device: str, action: str = "reconstruct images", which: str = "latest"):
    """(model, checkpoint, path) for a command that needs an encoder; refuses others."""
    return _loaded(target, device, which, lambda cls: require_encoder(cls, target, action))


def load_translator(target: str, device: str, which: str = "latest"):
    """(model, checkpoint, path) for ``zoo translate`` and ``zoo upscale``; refuses models
    that do not translate."""
    return _loaded(target, device, which, lambda cls: require_translator(cls, target))
