"""Train any model plugin: one flat loop that calls the plugin's step.

``train()`` reads top to bottom in four parts: resolve the plan (model, config, data,
seed; refuse bad combinations before any work), load the data, claim the run folder
(locked while training), build the model and restore what a resumed run was, then hand
over to :class:`Loop`. The loop owns everything around the step: the engine through which
every update passes (mixed precision, clipping, gradient averaging), the progress bar,
metrics read from the device every few steps, previews and checkpoints on a step and time
cadence, Ctrl-C deferred to the end of the step, ``metrics.jsonl`` and W&B, and at the end
the progress GIF and the loss curves. The plugin decides what one step means.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import zoo
from zoo import checkpoint as ckpt_io
from zoo import config as config_io
from zoo import figures, registry, runs
from zoo.data import PreparedData, TensorBatches, to_float
from zoo.devices import resolve_device
from zoo.diagnostics import Alert, Watch, reference_images
from zoo.engine import Engine, EngineOptions
from zoo.errors import UsageError, ZooError
from zoo.model import SMALL_DATA, Capability, Derivation, Model
from zoo.sources.pairs import pairing_of
from zoo.tracking import open_tracker

from .prep import parse_size, prepare

DEFAULT_EPOCHS = 5
PREVIEW_COUNT = 64
PREVIEW_FRAMES = 40
"""A run draws about this many preview grids (``progress/step-NNNNNNN.png``, then the GIF),
whatever the size of its epochs: not one every 4 steps on 519 sevens."""
READ_EVERY = 10
"""Metrics are read from the device (one sync) every this many steps."""
SAVE_EVERY_SECONDS = 600
SAVE_AT_PREVIEW_SECONDS = 60
"""A checkpoint goes with a preview when the last one is at least this old."""
PREVIEW_EVERY_SECONDS = 120
"""Between two previews, progress/latest.png is redrawn this often (and sent to W&B)."""


class Interrupted(ZooError):
    """Ctrl-C: the checkpoint is saved and the run can be resumed."""

    exit_code = 130


@dataclass
class TrainOptions:
    model: str
    data: str | None = None
    epochs: int | None = None
    steps: int | None = None
    kimg: float | None = None
    minutes: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    device: str = "auto"
    out: Path | None = None
    sets: list[str] = field(default_factory=list)
    config_file: Path | None = None
    resume: str | None = None
    init_from: str | None = None
    force: bool = False
    wandb: str = "auto"
    size: int | str | None = None
    channels: int | None = None
    data_dir: Path | None = None
    classes: str | None = None
    subset: str | None = None
    direction: str | None = None
    noise: str | None = None
    precision: str = "fp32"
    clip_grad: float = 0.0
    preview_every: int | None = None


@dataclass
class Plan:
    """Everything resolved before training starts."""

    cls: type[Model]
    config: zoo.Config
    data: str
    size: int | str | None
    channels: int | None
    seed: int
    classes: str | None = None
    subset: str | None = None
    data_dir: str | None = None
    direction: str | None = None
    minutes: float | None = None
    resume_from: Path | None = None
    resume_train: dict[str, Any] = field(default_factory=dict)
    init_from: Path | None = None

    @property
    def data_record(self) -> dict[str, Any]:
        """How the data was asked for, as the checkpoint keeps it for --resume."""
        return {"source": self.data, "size": self.size, "channels": self.channels, "classes": self.classes,
                "subset": self.subset, "data_dir": self.data_dir, "direction": self.direction}


def plan(opts: TrainOptions) -> Plan:
    """Resolve model, config, data and seed; refuse bad combinations before any work."""
    lengths = [flag for flag, v in (("--epochs", opts.epochs), ("--steps", opts.steps), ("--kimg", opts.kimg))
               if v is not None]
    if len(lengths) > 1:
        raise UsageError(f"give one of --epochs, --steps and --kimg, not {' and '.join(lengths)}")
    for flag, value in (("--epochs", opts.epochs), ("--steps", opts.steps)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    for flag, number in (("--kimg", opts.kimg), ("--minutes", opts.minutes)):
        if number is not None and not number > 0:
            raise UsageError(f"{flag} must be more than 0, got {number}")
    if opts.preview_every is not None and opts.preview_every < 1:
        raise UsageError(f"--preview-every must be at least 1, got {opts.preview_every}")
    EngineOptions(opts.precision, opts.clip_grad)  # refuses bad values now, not after data prep
    cls = registry.get(opts.model)
    init_from = _init_from(opts, cls)
    data_dir = str(opts.data_dir.expanduser().resolve()) if opts.data_dir is not None else None
    if opts.resume is None:
        if opts.data is None:
            raise UsageError(f"--data is required: which data set should {opts.model} learn? "
                             f"(e.g. zoo train {opts.model} --data mnist)")
        if opts.noise is not None:
            _require_noise_key(cls)
        # The kind of data is known from its name: refuse a mismatch before preparing anything.
        _check_pairing(cls, pairing_of(opts.data) or ("derived" if "derived" in cls.data_pairing else ""),
                       opts.data)
        dims = parse_size(opts.size)
        size = None if dims is None else dims[0] if dims[0] == dims[1] else f"{dims[0]}x{dims[1]}"
        return Plan(cls, _user_config(cls, opts), opts.data, size, opts.channels,
                    0 if opts.seed is None else opts.seed, opts.classes, opts.subset, data_dir,
                    opts.direction, opts.minutes, init_from=init_from)

    # Resuming: everything comes from the checkpoint; a flag that disagrees is refused.
    if init_from is not None:
        raise UsageError("--init-from starts a new run from another run's weights; --resume continues "
                         "one: give one of them")
    path = runs.find_checkpoint(opts.resume)
    meta = ckpt_io.read_meta(path)
    if meta["plugin"] != cls.name:
        raise UsageError(f"--resume {opts.resume}: that checkpoint is from {meta['plugin']}, not {cls.name}")
    if str(meta["plugin_version"]) != str(cls.version):
        raise UsageError(f"--resume {opts.resume}: that checkpoint was written by {cls.name} version "
                         f"{meta['plugin_version']}; the installed plugin is version {cls.version}. Start a "
                         f"new run from its weights: zoo train {cls.name} --data DATA --init-from {opts.resume}")
    saved = meta["train"]
    if "images" not in saved:
        raise UsageError(f"--resume {opts.resume}: that checkpoint was written by zoo "
                         f"{saved.get('zoo_version', '0.1')} before training counted images; it samples "
                         f"as before but cannot resume. Start a new run from its weights: zoo train "
                         f"{cls.name} --data {saved['data']['source']} --init-from {opts.resume}")
    if opts.sets or opts.config_file or opts.batch_size is not None or opts.noise is not None:
        raise UsageError("a resumed run keeps its config; drop --set/--config/--batch-size/--noise, "
                         "or start a new run to change them")
    data = saved["data"]
    given: dict[str, tuple[Any, Any]] = {"--data": (opts.data, data["source"]), "--seed": (opts.seed, saved["seed"]),
             "--classes": (opts.classes, data.get("classes")), "--subset": (opts.subset, data.get("subset")),
             "--channels": (opts.channels, data.get("channels")), "--data-dir": (data_dir, data.get("data_dir")),
             "--direction": (opts.direction, data.get("direction"))}
    dims = parse_size(opts.size)
    if dims is not None:
        given["--size"] = (dims[0] if dims[0] == dims[1] else f"{dims[0]}x{dims[1]}", data.get("size"))
    for flag, (value, kept) in given.items():
        if value is not None and value != kept:
            raise UsageError(f"--resume: that run trained with {flag} {kept if kept is not None else '(none)'}, "
                             f"not {value}; drop {flag}, or start a new run")
    config = config_io.from_dict(cls.Config, meta["config"], source=str(path))
    minutes = opts.minutes if opts.minutes is not None else saved.get("minutes")
    if minutes is not None and saved.get("seconds", 0.0) >= minutes * 60:
        raise UsageError(f"--resume: that run has used its --minutes {minutes:g} budget; give a larger "
                         "total with --minutes (it counts the time already trained)")
    return Plan(cls, config, data["source"], data["size"], data["channels"], int(saved["seed"]),
                data.get("classes"), data.get("subset"), data.get("data_dir"), data.get("direction"),
                minutes, resume_from=path, resume_train=saved)


def _init_from(opts: TrainOptions, cls: type[Model]) -> Path | None:
    if opts.init_from is None:
        return None
    path = runs.find_checkpoint(opts.init_from)
    ckpt_io.read_meta(path)  # a damaged or foreign file is refused now
    return path


def _user_config(cls: type[Model], opts: TrainOptions, base: dict[str, Any] | None = None,
                 base_source: str = "") -> zoo.Config:
    """The config from the defaults, ``base``, then what the user gave: a config file,
    --set, and the flags that are config keys."""
    return config_io.resolve(cls.Config, config_file=opts.config_file, sets=opts.sets,
                             flags={"batch_size": opts.batch_size, "noise": opts.noise},
                             base=base, base_source=base_source)


# -- the data -------------------------------------------------------------------------------------

@dataclass
class TrainingData:
    prepared: PreparedData
    spec: zoo.DataSpec
    """What the model is built for: the prepared data's, or the derived pairs'."""
    derivation: Derivation | None = None

    def batches(self, batch_size: int, seed: int, device: torch.device) -> TensorBatches:
        d = self.prepared
        return TensorBatches(d.images, d.labels, batch_size, seed, device, targets=d.targets,
                             paired=self.spec.pairing != "unpaired", conditions=d.conditions,
                             derive=self.derivation)

    def examples(self, n: int, seed: int, device: torch.device) -> zoo.Batch:
        """A fixed, seeded handful of training examples, for the previews that show inputs."""
        d, g = self.prepared, torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(d.images), generator=g)[:n]
        images = to_float(d.images[pick]).to(device)
        conditions = {k: v[pick].to(device) for k, v in d.conditions.items()}
        if d.labels is not None:
            conditions["class"] = d.labels[pick].to(device)
        if d.targets is not None:
            other = pick if self.spec.pairing == "paired" else torch.randperm(len(d.targets), generator=g)[:n]
            return zoo.Batch(images, to_float(d.targets[other]).to(device), conditions)
        if self.derivation is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                inputs, targets = self.derivation(images)
            return zoo.Batch(inputs, targets, conditions)
        return zoo.Batch(images, None, conditions)


def load_data(p: Plan, opts: TrainOptions, console: Console) -> tuple[Plan, TrainingData]:
    """The prepared data, checked against the model; the plan with any small-data values."""
    prepared = prepare(p.data, size=p.size, channels=p.channels,
                       data_dir=Path(p.data_dir) if p.data_dir else None, classes=p.classes,
                       subset=p.subset, direction=p.direction, console=console)
    spec = prepared.spec
    for condition in p.cls.needs():
        if not spec.has(condition):
            if condition is zoo.Condition.CLASS:
                raise UsageError(f"{p.cls.name} is class-conditional and needs labelled data; {p.data} has no "
                                 "labels (for folder: data, put each class's images in its own sub-folder)")
            raise UsageError(f"{p.cls.name} is {condition.value}-conditional and needs data with a "
                             f"{condition.value} for each image; {p.data} has none")
    derivation = None
    if "derived" in p.cls.data_pairing and not spec.pairing:
        derivation = p.cls.derivation(p.config)
        spec = derivation.spec(spec) if derivation is not None else spec
    _check_pairing(p.cls, spec.pairing, p.data)
    if p.resume_from is None and len(prepared) < SMALL_DATA and p.cls.small_data:
        p = _small_data_config(p, opts, len(prepared), console)
        if derivation is not None:  # the small-data values may change the derivation
            derivation = p.cls.derivation(p.config)
            spec = derivation.spec(prepared.spec) if derivation is not None else spec
    p.cls.check_data(p.config, spec)
    return p, TrainingData(prepared, spec, derivation)


def _small_data_config(p: Plan, opts: TrainOptions, count: int, console: Console) -> Plan:
    """The plan with the model's small-data values for the keys the user left alone."""
    config = _user_config(p.cls, opts, p.cls.small_data, f"{p.cls.name}'s small-data values")
    before, after = config_io.to_dict(p.config), config_io.to_dict(config)
    changed = [key for key in after if after[key] != before[key]]
    if changed:
        values = ", ".join(f"{key}={after[key]}" for key in changed)
        console.print(f"note: {count:,} training images is a small data set; using {values} "
                      f"({p.cls.name}'s choice for fewer than {SMALL_DATA:,} images; choose "
                      f"otherwise with --set, e.g. --set {changed[0]}=...)", highlight=False)
    return replace(p, config=config)


# -- the run ----------------------------------------------------------------------------------------

def train(opts: TrainOptions, console: Console | None = None) -> Path:
    """Run a training job; returns the run folder."""
    console = console or Console()
    p = plan(opts)
    device = resolve_device(opts.device)
    engine = Engine(EngineOptions(opts.precision, opts.clip_grad), device)
    p, data = load_data(p, opts, console)

    # The run folder: new, or the one being resumed; locked while this process trains it.
    if p.resume_from is not None:
        run_dir, lock = p.resume_from.parent, runs.RunLock(p.resume_from.parent).acquire()
    else:
        run_dir, lock = runs.new_run_dir(p.cls.name, p.data, opts.out, opts.force)
    try:
        model, batches, state = build(p, data, device, engine, console)
        loop = Loop(p, opts, data, model, batches, state, run_dir, console)
        return loop.run()
    finally:
        lock.release()


def build(p: Plan, data: TrainingData, device: torch.device, engine: Engine,
          console: Console) -> tuple[Model, TensorBatches, dict[str, Any]]:
    """The model on its device, its optimisers and batches, and (resuming) all they were.
    Returns the training state to continue from: step, images, seconds."""
    torch.manual_seed(p.seed)
    model = p.cls(p.config, data.spec).to(device)
    model.engine = engine
    model.train()
    batches = data.batches(p.config.batch_size, p.seed, device)
    state = {"step": 0, "images": 0, "seconds": 0.0}
    if p.init_from is not None:
        _warm_start(model, p.init_from, console)
    if p.resume_from is None:
        model.optimizers = model.configure_optimizers()
        return model, batches, state

    checkpoint = ckpt_io.load(p.resume_from)
    saved = checkpoint.state
    try:
        model.load_state_dict(saved["model"])
        model.load_extra_state(saved.get("extra", {}))
        # Optimisers are made after the extra state: a grown ProGAN has more weights to optimise.
        model.optimizers = model.configure_optimizers()
        for name, optimizer in model.optimizers.items():
            optimizer.load_state_dict(saved["optimizers"][name])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ZooError(f"{p.resume_from} does not fit this {model.name} model: {str(exc).splitlines()[0]}") from None
    engine.load_state(saved.get("engine", {}))
    batches.load_state(checkpoint.train["batches"])
    _set_rng_state(saved["rng"], device)
    train = checkpoint.train
    return model, batches, {"step": int(train["step"]), "images": int(train["images"]),
                            "seconds": float(train.get("seconds", 0.0))}


def _warm_start(model: Model, path: Path, console: Console) -> None:
    source = ckpt_io.load(path)
    copied, fresh = model.warm_start(source.state["model"])
    if not copied:
        raise UsageError(f"--init-from {path}: none of its weights fit {model.name} "
                         f"(it is a {source.plugin} checkpoint)")
    console.print(f"warm start from {path}: {len(copied)} weight tensors copied"
                  + (f", {len(fresh)} left as initialised" if fresh else ""), highlight=False)


class Loop:
    """The training loop of one run, from its first (or resumed) step to its last."""

    def __init__(self, p: Plan, opts: TrainOptions, data: TrainingData, model: Model,
                 batches: TensorBatches, state: dict[str, Any], run_dir: Path, console: Console) -> None:
        self.p, self.data, self.model, self.batches = p, data, model, batches
        self.run_dir, self.console = run_dir, console
        self.step, self.images, self.seconds_before = state["step"], state["images"], state["seconds"]
        self.steps_per_epoch = max(1, batches.batches_per_epoch // model.batches_per_step())
        self.images_per_epoch = len(data.prepared)
        self.total, self.total_images = self._length(opts)
        if self.step >= self.total or (self.total_images and self.images >= self.total_images):
            raise UsageError(f"that run already finished {self.step} steps; ask for more with --steps or --epochs")
        frames = opts.preview_every or math.ceil(self.total / PREVIEW_FRAMES)
        self.preview_every = max(1, frames)
        self.budget = p.minutes * 60 if p.minutes else math.inf
        self.metrics_path = run_dir / "metrics.jsonl"
        self.pending: list[tuple[int, int, dict[str, Any]]] = []
        self.alerts: list[dict[str, Any]] = []
        self.means: dict[str, list[float]] = {}
        self.watch = Watch()
        self.wandb = opts.wandb
        self.seconds = self.seconds_before

    def _length(self, opts: TrainOptions) -> tuple[int, int]:
        """Training length as (steps, images): images only with --kimg (steps then unbounded)."""
        if opts.kimg is not None:
            return 2 ** 62, round(opts.kimg * 1000)
        if opts.steps is not None:
            return opts.steps, 0
        if opts.epochs is not None:
            return opts.epochs * self.steps_per_epoch, 0
        if self.p.resume_train:
            return int(self.p.resume_train["total_steps"]), int(self.p.resume_train.get("total_images", 0))
        return DEFAULT_EPOCHS * self.steps_per_epoch, 0

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> Path:
        p, model = self.p, self.model
        self.info = self._run_info()
        self.tracker = open_tracker(self.wandb, self.run_dir, self.run_dir.name,
                                    {"model": p.cls.name, "data": p.data, "seed": p.seed,
                                     **config_io.to_dict(p.config)},
                                    self.console, run_id=self.info.get("wandb_id"),
                                    tags=[p.cls.name, p.data])
        self.info["wandb"] = self.tracker.mode
        if self.tracker.run_id:
            self.info["wandb_id"] = self.tracker.run_id
        runs.write_run_info(self.run_dir, self.info)
        _truncate_metrics(self.metrics_path, self.step)
        self.preview_inputs = model.preview_inputs(
            PREVIEW_COUNT, torch.Generator().manual_seed(p.seed),
            self.data.examples(PREVIEW_COUNT, p.seed, self.batches.images.device))
        self._announce()

        started = time.perf_counter()
        self.last_save = self.last_preview = time.monotonic()
        self.saved = False
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                            console=self.console)
        status = "finished"
        try:
            with self.bar, self.metrics_path.open("a", encoding="utf-8") as self.metrics_file, \
                    deferred_interrupts() as interrupted:
                self.task = self.bar.add_task(self._label(), total=self.total if not self.total_images
                                              else self.total_images, completed=self._done(), metrics="")
                while not self._finished():
                    self.seconds = self.seconds_before + time.perf_counter() - started
                    progress = zoo.Progress(step=self.step, total_steps=self.total,
                                            epoch=self.images // self.images_per_epoch,
                                            time_fraction=min(1.0, self.seconds / self.budget),
                                            images=self.images, total_images=self.total_images)
                    with model.engine.autocast():
                        values = model.train_step(self.batches, progress)
                    model.engine.end_step()
                    self.step += 1
                    self.images = self.batches.drawn
                    self.pending.append((self.step, progress.epoch, dict(values)))
                    self.seconds = self.seconds_before + time.perf_counter() - started
                    if interrupted.is_set():  # Ctrl-C during the step: it is whole now, save it
                        self._flush()
                        self.save("interrupted")
                        raise KeyboardInterrupt
                    out_of_time = self.seconds >= self.budget
                    self._after_step(out_of_time or self._finished())
                    if out_of_time:
                        status = "time limit"
                        self.bar.console.print(f"--minutes {p.minutes:g}: time is up after {self.step:,} "
                                               f"of {self.total:,} steps")
                        break
        except KeyboardInterrupt:
            # A second Ctrl-C stops mid-step: the last checkpoint stays as it was.
            self.info.setdefault("status", "interrupted")
            self._finish_pictures()
            self.tracker.finish(exit_code=130)
            saved = ckpt_io.read_meta(self.run_dir / ckpt_io.FILENAME)["train"]["step"] \
                if (self.run_dir / ckpt_io.FILENAME).exists() else 0
            raise Interrupted(f"interrupted at step {saved}/{self.total}; checkpoint saved. Continue "
                              f"with: zoo train {p.cls.name} --resume {self.run_dir}") from None
        except BaseException as exc:
            self.info.update(status=f"failed: {type(exc).__name__}", failed_at_step=self.step)
            runs.write_run_info(self.run_dir, self.info)
            self.tracker.finish(exit_code=1)
            raise
        return self._finish(status, time.perf_counter() - started)

    def _finished(self) -> bool:
        if self.total_images:
            return self.images >= self.total_images
        return self.step >= self.total

    def _done(self) -> int:
        return self.images if self.total_images else self.step

    def _after_step(self, last: bool) -> None:
        """Read metrics every few steps; a preview, and maybe a checkpoint, on their cadence."""
        preview_due = self.step % self.preview_every == 0 or last
        if len(self.pending) >= READ_EVERY or preview_due:
            self._flush()
        if preview_due:
            self._preview()
            if last or not self.saved or time.monotonic() - self.last_save > SAVE_AT_PREVIEW_SECONDS:
                self.save("running")
        elif time.monotonic() - self.last_preview > PREVIEW_EVERY_SECONDS:
            # A slow stretch between previews (a big model on a CPU) still shows how it goes.
            self._flush()
            latest = figures.save_grid(self.model.preview(self.preview_inputs),
                                       self.run_dir / "progress" / "latest.png")
            self.tracker.log_image("samples", latest, self.step, caption=f"step {self.step}")
            self.last_preview = time.monotonic()
        if time.monotonic() - self.last_save > SAVE_EVERY_SECONDS:
            self._flush()
            self.save("running")

    def _flush(self) -> None:
        """Read the pending steps' metrics from the device in one go; log them; stop on NaN."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        device = self.batches.images.device
        flat = [torch.as_tensor(v, dtype=torch.float32).to(device).reshape(())
                for _, _, values in pending for v in values.values()]
        numbers = iter(torch.stack(flat).tolist())  # the one sync
        for step, epoch, values in pending:
            record = {k: next(numbers) for k in values}
            bad = [k for k, v in record.items() if not math.isfinite(v)]
            if bad:
                self.metrics_file.flush()
                raise ZooError(f"{', '.join(bad)} became {record[bad[0]]} at step {step}; training "
                               f"stopped. The last good checkpoint is in {self.run_dir}")
            self.metrics_file.write(json.dumps({"step": step, "epoch": epoch, **record}) + "\n")
            self.tracker.log(record, step)
            self._warn(self.watch.after_step(step, record))
            for k, v in record.items():
                self.means.setdefault(k, []).append(v)
        self.metrics_file.flush()
        self.bar.update(self.task, completed=self._done(), description=self._label(), metrics=_format(record))

    def _preview(self) -> None:
        model, step = self.model, self.step
        preview = model.preview(self.preview_inputs)
        grid = figures.save_grid(preview, self.run_dir / "progress" / f"step-{step:07d}.png")
        self.tracker.log_image("samples", grid, step, caption=f"step {step}")
        (self.run_dir / "progress" / "latest.png").unlink(missing_ok=True)
        self.last_preview = time.monotonic()
        means = {k: sum(v) / len(v) for k, v in self.means.items()}
        self.means = {}
        if self.watch.reference is None and model.has(Capability.LATENT):
            d = self.data.prepared
            self.watch.reference = reference_images(d.images, d.labels, preview, self.p.seed)
        done = self.images / self.total_images if self.total_images else step / self.total
        variety, found = self.watch.after_preview(step, max(done, min(1.0, self.seconds / self.budget)), preview)
        if variety is not None:
            means["diversity"] = variety
            self.tracker.log({"diversity": variety}, step)
        self._warn(found)
        self.bar.console.print(f"step {step:,}/{self.total:,} (epoch {self.images / self.images_per_epoch:.1f}, "
                               f"{self.images:,} images)  {_format(means)}", highlight=False)

    def _warn(self, found: list[Alert]) -> None:
        for alert in found:
            self.bar.console.print(f"[yellow]warning[/] at step {alert.step:,}: {alert.message}")
            self.alerts.append({"step": alert.step, "kind": alert.kind, "message": alert.message})

    # -- files -----------------------------------------------------------------------------------

    def _run_info(self) -> dict[str, Any]:
        p, spec = self.p, self.data.spec
        info = runs.read_run_info(self.run_dir) if p.resume_from else {}
        info.update({
            "model": p.cls.name, "plugin_version": p.cls.version, "data": p.data,
            "data_spec": spec.to_dict(), "config": config_io.to_dict(p.config), "seed": p.seed,
            "device": str(self.batches.images.device), "precision": self.model.engine.options.precision,
            "total_steps": self.total, "total_images": self.total_images,
            "steps_per_epoch": self.steps_per_epoch, "status": "running",
            "created": info.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
        })
        if p.init_from is not None:
            info["init_from"] = str(p.init_from)
        self.alerts = info.setdefault("warnings", [])
        return info

    def save(self, status: str) -> Path:
        """Write the checkpoint (atomically) and run.json; only ever between whole steps."""
        p, model = self.p, self.model
        path = self.run_dir / ckpt_io.FILENAME
        train_state = {
            "step": self.step, "images": self.images, "epoch": self.images // self.images_per_epoch,
            "total_steps": self.total, "total_images": self.total_images,
            "steps_per_epoch": self.steps_per_epoch, "seed": p.seed, "batches": self.batches.state(),
            "minutes": p.minutes, "seconds": round(self.seconds, 3),
            "data": p.data_record, "helpers": model.helper_sources(),
            "run": self.run_dir.name, "zoo_version": zoo.__version__,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        state = {"model": model.state_dict(),
                 "optimizers": {k: o.state_dict() for k, o in model.optimizers.items()},
                 "extra": model.extra_state(), "engine": model.engine.state(),
                 "rng": _rng_state(self.batches.images.device)}
        ckpt_io.save(path, ckpt_io.Checkpoint(p.cls.name, str(p.cls.version), config_io.to_dict(p.config),
                                              self.data.spec.to_dict(), train_state, state))
        self.info.update(status=status, step=self.step, images=self.images)
        runs.write_run_info(self.run_dir, self.info)
        self.last_save, self.saved = time.monotonic(), True
        return path

    def _finish(self, status: str, elapsed: float) -> Path:
        p, model, step = self.p, self.model, self.step
        checkpoint = self.save(status)
        gif, losses = self._finish_pictures()
        if gif:
            self.tracker.log_gif("progress", gif, step)
        if losses:
            self.tracker.log_image("losses", losses, step)
        self.tracker.log_checkpoint(checkpoint, f"{p.cls.name}-{p.data.replace(':', '-').replace('/', '-')}"[:120],
                                    {"step": step, "data": p.data})
        self.tracker.finish()
        use = f"Samples: zoo sample {self.run_dir}" if model.has(Capability.LATENT) else (
            f"Translate: zoo translate {self.run_dir} IMAGE_OR_FOLDER --out DIR"
            if model.has(Capability.IMAGE_TO_IMAGE) else f"Checkpoint: {checkpoint}")
        self.console.print(f"done: {step:,} steps ({self.images:,} images) in {elapsed:.0f}s. {use}")
        if status == "time limit":
            self.console.print(f"to train on: zoo train {p.cls.name} --resume {self.run_dir} --minutes "
                               "LARGER_TOTAL (or --steps N)")
        return self.run_dir

    def _finish_pictures(self) -> tuple[Path | None, Path | None]:
        frames = sorted((self.run_dir / "progress").glob("step-*.png"))
        gif = figures.save_gif(frames, self.run_dir / "progress.gif")
        losses = figures.loss_curves(figures.read_metrics(self.metrics_path), self.run_dir / "losses.png",
                                     title=f"{self.p.cls.name} on {self.p.data}")
        return gif, losses

    def _announce(self) -> None:
        p, spec, d = self.p, self.data.spec, self.data.prepared
        selected = "".join(f" {flag} {v}" for flag, v in (("--classes", p.classes), ("--subset", p.subset),
                                                           ("--direction", p.direction)) if v)
        count = f"{len(d):,} images"
        if spec.pairing == "paired":
            count = f"{len(d):,} pairs"
        elif spec.pairing == "unpaired" and d.targets is not None:
            count = f"{len(d):,} + {len(d.targets):,} images"
        shape = f"{spec.channels}x{spec.height}x{spec.width}"
        if spec.target_shape != (spec.channels, spec.height, spec.width):
            shape += " -> " + "x".join(map(str, spec.target_shape))
        length = f"{self.total_images:,} images" if self.total_images else f"{self.total:,} steps"
        engine = self.model.engine.options
        extras = "".join([f" | {engine.precision}" if engine.precision != "fp32" else "",
                          f" | clip {engine.clip_grad:g}" if engine.clip_grad else ""])
        self.console.print(f"[bold]{p.cls.name}[/] on [bold]{p.data}{selected}[/] ({count}, {shape}) | "
                           f"device {self.batches.images.device} | {length} ({self.steps_per_epoch} steps per "
                           f"epoch) | batch {p.config.batch_size}{extras} | W&B {self.tracker.mode}\n"
                           f"run folder: {self.run_dir}")

    def _label(self) -> str:
        if self.total_images:
            return f"{self.images / 1000:,.1f}/{self.total_images / 1000:,.1f} kimg"
        epochs = math.ceil(self.total / self.steps_per_epoch)
        return f"epoch {min(epochs, self.step // self.steps_per_epoch + 1)}/{epochs}"


@contextmanager
def deferred_interrupts() -> Iterator[threading.Event]:
    """Ctrl-C during a step is held until the step ends (a checkpoint never holds half an
    update); a second Ctrl-C stops at once, keeping the last checkpoint."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def handler(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


# -- helpers ------------------------------------------------------------------------------------

def _require_noise_key(cls: type[Model]) -> None:
    if not cls.has(Capability.LATENT):
        able = ", ".join(registry.registry().with_capability(Capability.LATENT))
        raise UsageError(f"--noise: {cls.name} draws no latent vector (models that do: {able})")
    if "noise" not in {f.name for f in config_io.describe(cls.Config)}:
        raise UsageError(f"--noise: {cls.name} has a fixed N(0, 1) prior (its config has no noise key)")


def _check_pairing(cls: type[Model], pairing: str, data: str) -> None:
    """Two-domain data for the models that translate, one-domain data for the rest."""
    if pairing in cls.data_pairing or not (pairing or cls.data_pairing):
        return
    if not pairing:
        kinds = " or ".join(f"{k}:..." for k in cls.data_pairing if k != "derived")
        raise UsageError(f"{cls.name} translates images and trains on two-domain data ({kinds}), "
                         f"e.g. --data paired:edges2fashion or unpaired:fashion:sneaker,ankle-boot; "
                         f"{data} is one set of images")
    able = registry.registry().trained_on(pairing)
    if not cls.data_pairing:
        raise UsageError(f"{cls.name} learns from one set of images; {data} is two-domain data for "
                         f"image-to-image models ({', '.join(able) or 'none installed'})")
    raise UsageError(f"{cls.name} needs {' or '.join(cls.data_pairing)} data; {data} is {pairing} "
                     f"(models for it: {', '.join(able) or 'none installed'})")


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].to(torch.uint8))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8), device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"].to(torch.uint8))


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop metrics logged after the checkpoint (they will be logged again), and
    a last line cut short by a crash."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # half a line: the process died while writing it
        if isinstance(record, dict) and record.get("step", math.inf) <= step:
            kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    tmp.replace(path)


def _format(values: dict[str, float]) -> str:
    return "  ".join(f"{figures.metric_label(k)} {v:.3f}" for k, v in values.items())
