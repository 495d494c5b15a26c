"""Train any model plugin: one flat loop that calls the plugin's step.

The loop owns everything around the step: the data as one tensor on the device, the
progress bar, the preview grid after every epoch, checkpoints (each epoch, every ten
minutes, on Ctrl-C), ``metrics.jsonl``, W&B, and at the end the progress GIF and the loss
curves. The plugin decides what one step means.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import zoo
from zoo import checkpoint as ckpt_io
from zoo import config as config_io
from zoo import figures, registry
from zoo.data import PreparedData, TensorBatches, to_float
from zoo.devices import resolve_device
from zoo.errors import UsageError, ZooError
from zoo.model import SMALL_DATA, Capability, Model
from zoo.tracking import open_tracker

from . import runs
from .diagnostics import Alert, Watch, reference_images
from .prep import parse_size, prepare

DEFAULT_EPOCHS = 5
PREVIEW_COUNT = 64
SAVE_EVERY_SECONDS = 600
PREVIEW_EVERY_SECONDS = 120
"""Within a long epoch, progress/latest.png is redrawn this often (and sent to W&B)."""


class Interrupted(ZooError):
    """Ctrl-C: the checkpoint is saved and the run can be resumed."""

    exit_code = 130


@dataclass
class TrainOptions:
    model: str
    data: str | None = None
    epochs: int | None = None
    steps: int | None = None
    minutes: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    device: str = "auto"
    out: Path | None = None
    sets: list[str] = field(default_factory=list)
    config_file: Path | None = None
    resume: str | None = None
    force: bool = False
    wandb: str = "auto"
    size: int | str | None = None
    channels: int | None = None
    data_dir: Path | None = None
    classes: str | None = None
    subset: str | None = None
    noise: str | None = None


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
    resume_from: Path | None = None
    resume_train: dict[str, Any] = field(default_factory=dict)


def plan(opts: TrainOptions) -> Plan:
    """Resolve model, config, data and seed; refuse bad combinations before any work."""
    if opts.epochs is not None and opts.steps is not None:
        raise UsageError("give --epochs or --steps, not both")
    for flag, value in (("--epochs", opts.epochs), ("--steps", opts.steps)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if opts.minutes is not None and not opts.minutes > 0:
        raise UsageError(f"--minutes must be more than 0, got {opts.minutes}")
    cls = registry.get(opts.model)
    if opts.resume is None:
        if opts.data is None:
            raise UsageError(f"--data is required: which data set should {opts.model} learn? "
                             f"(e.g. zoo train {opts.model} --data mnist)")
        if opts.noise is not None:
            _require_noise_key(cls)
        config = _user_config(cls, opts)
        seed = 0 if opts.seed is None else opts.seed
        dims = parse_size(opts.size)
        size = None if dims is None else dims[0] if dims[0] == dims[1] else f"{dims[0]}x{dims[1]}"
        return Plan(cls, config, opts.data, size, opts.channels, seed, opts.classes, opts.subset)

    path = runs.find_checkpoint(opts.resume)
    meta = ckpt_io.read_meta(path)
    if meta["plugin"] != cls.name:
        raise UsageError(f"--resume {opts.resume}: that checkpoint is from {meta['plugin']}, not {cls.name}")
    if opts.sets or opts.config_file or opts.batch_size is not None or opts.noise is not None:
        raise UsageError("a resumed run keeps its config; drop --set/--config/--batch-size/--noise, "
                         "or start a new run to change them")
    saved = meta["train"]
    data = saved["data"]
    if opts.data is not None and opts.data != data["source"]:
        raise UsageError(f"--resume: that run trained on {data['source']}, not {opts.data}")
    if opts.seed is not None and opts.seed != saved["seed"]:
        raise UsageError(f"--resume: that run used --seed {saved['seed']}")
    for flag, value, key in (("--classes", opts.classes, "classes"), ("--subset", opts.subset, "subset")):
        if value is not None and value != data.get(key):
            raise UsageError(f"--resume: that run trained with {flag} {data.get(key)}")
    config = config_io.from_dict(cls.Config, meta["config"], source=str(path))
    return Plan(cls, config, data["source"], data["size"], data["channels"], int(saved["seed"]),
                data.get("classes"), data.get("subset"), resume_from=path, resume_train=saved)


def _user_config(cls: type[Model], opts: TrainOptions, base: dict[str, Any] | None = None,
                 base_source: str = "") -> zoo.Config:
    """The config from the defaults, ``base``, then what the user gave: a config file,
    --set, and the flags that are config keys."""
    return config_io.resolve(cls.Config, config_file=opts.config_file, sets=opts.sets,
                             flags={"batch_size": opts.batch_size, "noise": opts.noise},
                             base=base, base_source=base_source)


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


def train(opts: TrainOptions, console: Console | None = None) -> Path:
    """Run a training job; returns the run folder."""
    console = console or Console()
    p = plan(opts)
    device = resolve_device(opts.device)

    # Data: prepared once, cached, then held as a uint8 tensor on the training device.
    prepared = prepare(p.data, size=p.size, channels=p.channels, data_dir=opts.data_dir,
                       classes=p.classes, subset=p.subset, console=console)
    spec = prepared.spec
    if p.cls.has(Capability.CLASS_CONDITIONAL) and not spec.labelled:
        raise UsageError(f"{p.cls.name} is class-conditional and needs labelled data; {p.data} has no "
                         "labels (for folder: data, put each class's images in its own sub-folder)")
    _check_pairing(p.cls, spec, p.data)
    if p.resume_from is None and len(prepared) < SMALL_DATA and p.cls.small_data:
        p = _small_data_config(p, opts, len(prepared), console)
    p.cls.check_data(p.config, spec)

    # The run folder: new, or the one being resumed.
    if p.resume_from is not None:
        run_dir = p.resume_from.parent
    else:
        run_dir = runs.new_run_dir(p.cls.name, p.data, opts.out, opts.force)
    info = runs.read_run_info(run_dir) if p.resume_from else {}

    # The model, its optimisers, and (when resuming) everything they were.
    torch.manual_seed(p.seed)
    model = p.cls(p.config, spec).to(device)
    model.train()
    model.optimizers = model.configure_optimizers()
    batches = TensorBatches(prepared.images, prepared.labels, p.config.batch_size, p.seed, device,
                            targets=prepared.targets, paired=spec.pairing != "unpaired")
    steps_per_epoch = max(1, batches.batches_per_epoch // model.batches_per_step())
    step = 0
    if p.resume_from is not None:
        step = _restore(model, batches, p.resume_from, device)
    total = _total_steps(opts, p, steps_per_epoch)
    if step >= total:
        raise UsageError(f"that run already finished {step} steps; ask for more with --steps or --epochs")

    preview_inputs = model.preview_inputs(PREVIEW_COUNT, torch.Generator().manual_seed(p.seed),
                                          _examples(prepared, spec, PREVIEW_COUNT, p.seed, device))
    run_name = run_dir.name
    config_dict = config_io.to_dict(p.config)
    info.update({
        "model": p.cls.name, "plugin_version": p.cls.version, "data": p.data,
        "data_spec": spec.to_dict(), "config": config_dict, "seed": p.seed,
        "device": str(device), "total_steps": total, "steps_per_epoch": steps_per_epoch,
        "status": "running", "created": info.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
    })
    tracker = open_tracker(opts.wandb, run_dir, run_name,
                           {"model": p.cls.name, "data": p.data, "seed": p.seed, **config_dict},
                           console, run_id=info.get("wandb_id"))
    info["wandb"] = tracker.mode
    if tracker.run_id:
        info["wandb_id"] = tracker.run_id
    runs.write_run_info(run_dir, info)
    metrics_path = run_dir / "metrics.jsonl"
    _truncate_metrics(metrics_path, step)

    def save(status: str) -> Path:
        path = run_dir / ckpt_io.FILENAME
        train_state = {
            "step": step, "epoch": step // steps_per_epoch, "total_steps": total,
            "steps_per_epoch": steps_per_epoch, "seed": p.seed, "batches": batches.state(),
            "data": {"source": p.data, "size": p.size, "channels": p.channels,
                     "classes": p.classes, "subset": p.subset},
            "run": run_name, "zoo_version": zoo.__version__, "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        state = {"model": model.state_dict(),
                 "optimizers": {k: o.state_dict() for k, o in model.optimizers.items()},
                 "extra": model.extra_state(), "rng": _rng_state(device)}
        ckpt_io.save(path, ckpt_io.Checkpoint(p.cls.name, str(p.cls.version), config_dict,
                                              spec.to_dict(), train_state, state))
        info.update(status=status, step=step)
        runs.write_run_info(run_dir, info)
        return path

    selected = "".join(f" {flag} {v}" for flag, v in (("--classes", p.classes), ("--subset", p.subset)) if v)
    count = f"{len(prepared):,} images"
    if spec.pairing == "paired":
        count = f"{len(prepared):,} pairs"
    elif spec.pairing:
        count = f"{len(prepared):,} + {len(prepared.targets):,} images"
    console.print(f"[bold]{p.cls.name}[/] on [bold]{p.data}{selected}[/] ({count}, "
                  f"{spec.channels}x{spec.height}x{spec.width}) | device {device} | "
                  f"{total:,} steps ({steps_per_epoch} per epoch) | batch {p.config.batch_size} | "
                  f"W&B {tracker.mode}\nrun folder: {run_dir}")

    watch = Watch()
    alerts: list[dict[str, Any]] = info.setdefault("warnings", [])

    def warn(found: list[Alert]) -> None:
        for alert in found:
            bar.console.print(f"[yellow]warning[/] at step {alert.step:,}: {alert.message}")
            alerts.append({"step": alert.step, "kind": alert.kind, "message": alert.message})

    # The loop.
    last_save = last_preview = time.monotonic()
    started = epoch_started = time.perf_counter()
    deadline = started + opts.minutes * 60 if opts.minutes else math.inf
    epoch_sums: dict[str, float] = {}
    epoch_steps = 0
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                   console=console)
    try:
        with bar, metrics_path.open("a", encoding="utf-8") as metrics_file:
            task = bar.add_task(_epoch_label(step, steps_per_epoch, total), total=total,
                                completed=step, metrics="")
            while step < total:
                used = (time.perf_counter() - started) / (opts.minutes * 60) if opts.minutes else 0.0
                progress = zoo.Progress(step=step, total_steps=total, epoch=step // steps_per_epoch,
                                        time_fraction=used)
                values = {k: float(v) for k, v in model.train_step(batches, progress).items()}
                step += 1

                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise ZooError(f"{', '.join(bad)} became {values[bad[0]]} at step {step}; training "
                                   f"stopped. The last good checkpoint is in {run_dir}")
                metrics_file.write(json.dumps({"step": step, "epoch": progress.epoch, **values}) + "\n")
                tracker.log(values, step)
                warn(watch.after_step(step, values))
                for k, v in values.items():
                    epoch_sums[k] = epoch_sums.get(k, 0.0) + v
                epoch_steps += 1
                bar.update(task, completed=step, description=_epoch_label(step, steps_per_epoch, total),
                           metrics=_format(values))

                out_of_time = time.perf_counter() >= deadline
                epoch_done = step % steps_per_epoch == 0 or step == total or out_of_time
                if epoch_done:
                    metrics_file.flush()
                    epoch = math.ceil(step / steps_per_epoch)
                    preview = model.preview(preview_inputs)
                    grid = figures.save_grid(preview, run_dir / "progress" / f"epoch-{epoch:04d}.png")
                    tracker.log_image("samples", grid, step, caption=f"epoch {epoch}")
                    (run_dir / "progress" / "latest.png").unlink(missing_ok=True)
                    last_preview = time.monotonic()
                    means = {k: v / epoch_steps for k, v in epoch_sums.items()}
                    if watch.reference is None and model.has(Capability.LATENT):
                        watch.reference = reference_images(prepared.images, prepared.labels, preview, p.seed)
                    # How far training is, as schedules see it (steps, or a --minutes budget).
                    done = zoo.Progress(step, total, epoch, time_fraction=progress.time_fraction).fraction
                    variety, found = watch.after_epoch(step, done, preview)
                    if variety is not None:
                        means["diversity"] = variety
                        tracker.log({"diversity": variety}, step)
                    warn(found)
                    bar.console.print(f"epoch {epoch}: step {step:,}/{total:,}  {_format(means)}  "
                                      f"({time.perf_counter() - epoch_started:.1f}s)", highlight=False)
                    epoch_sums, epoch_steps, epoch_started = {}, 0, time.perf_counter()
                elif time.monotonic() - last_preview > PREVIEW_EVERY_SECONDS:
                    # A long epoch (a big data set on a CPU) still shows how training goes.
                    latest = figures.save_grid(model.preview(preview_inputs), run_dir / "progress" / "latest.png")
                    tracker.log_image("samples", latest, step, caption=f"step {step}")
                    last_preview = time.monotonic()
                if epoch_done or time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                    save("running")
                    last_save = time.monotonic()
                if out_of_time:
                    bar.console.print(f"--minutes {opts.minutes:g}: time is up after {step:,} of {total:,} steps")
                    break
    except KeyboardInterrupt:
        save("interrupted")
        _finish_pictures(run_dir, metrics_path, p.cls.name, p.data)
        tracker.finish(exit_code=130)
        raise Interrupted(f"interrupted at step {step}/{total}; checkpoint saved. Continue with: "
                          f"zoo train {p.cls.name} --resume {run_dir}") from None
    except BaseException as exc:
        info.update(status=f"failed: {type(exc).__name__}", failed_at_step=step)
        runs.write_run_info(run_dir, info)
        tracker.finish(exit_code=1)
        raise

    checkpoint = save("finished" if step >= total else "time limit")
    gif, losses = _finish_pictures(run_dir, metrics_path, p.cls.name, p.data)
    if gif:
        tracker.log_gif("progress", gif, step)
    if losses:
        tracker.log_image("losses", losses, step)
    tracker.log_checkpoint(checkpoint, f"{p.cls.name}-{p.data.replace(':', '-').replace('/', '-')}"[:120],
                           {"step": step, "data": p.data})
    tracker.finish()
    elapsed = time.perf_counter() - started
    use = f"Samples: zoo sample {run_dir}" if model.has(Capability.LATENT) else (
        f"Translate: zoo translate {run_dir} IMAGE_OR_FOLDER --out DIR"
        if model.has(Capability.IMAGE_TO_IMAGE) else f"Checkpoint: {checkpoint}")
    console.print(f"done: {step:,} steps in {elapsed:.0f}s. {use}")
    if step < total:
        console.print(f"to train the remaining {total - step:,} steps: zoo train {p.cls.name} --resume {run_dir}")
    return run_dir


# -- helpers ------------------------------------------------------------------------------------

def _require_noise_key(cls: type[Model]) -> None:
    if not cls.has(Capability.LATENT):
        able = ", ".join(registry.registry().with_capability(Capability.LATENT))
        raise UsageError(f"--noise: {cls.name} draws no latent vector (models that do: {able})")
    if "noise" not in {f.name for f in config_io.describe(cls.Config)}:
        raise UsageError(f"--noise: {cls.name} has a fixed N(0, 1) prior (its config has no noise key)")


def _check_pairing(cls: type[Model], spec: zoo.DataSpec, data: str) -> None:
    """Two-domain data for the models that translate, one-domain data for the rest."""
    if spec.pairing in cls.data_pairing or not (spec.pairing or cls.data_pairing):
        return
    if not spec.pairing:
        kinds = " or ".join(f"{k}:..." for k in cls.data_pairing)
        raise UsageError(f"{cls.name} translates images and trains on two-domain data ({kinds}), "
                         f"e.g. --data paired:edges2fashion or unpaired:fashion:sneaker,ankle-boot; "
                         f"{data} is one set of images")
    able = registry.registry().trained_on(spec.pairing)
    if not cls.data_pairing:
        raise UsageError(f"{cls.name} learns from one set of images; {data} is two-domain data for "
                         f"image-to-image models ({', '.join(able) or 'none installed'})")
    raise UsageError(f"{cls.name} needs {' or '.join(cls.data_pairing)} data; {data} is {spec.pairing} "
                     f"(models for it: {', '.join(able) or 'none installed'})")


def _examples(prepared: PreparedData, spec: zoo.DataSpec, n: int, seed: int, device: torch.device) -> zoo.Batch | None:
    """A fixed, seeded handful of training examples, for the previews of models that need them."""
    if prepared.targets is None:
        return None
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(prepared.images), generator=g)[:n]
    other = pick if spec.pairing == "paired" else torch.randperm(len(prepared.targets), generator=g)[:n]
    return zoo.Batch(to_float(prepared.images[pick]).to(device), None, to_float(prepared.targets[other]).to(device))


def _total_steps(opts: TrainOptions, p: Plan, steps_per_epoch: int) -> int:
    if opts.steps is not None:
        return opts.steps
    if opts.epochs is not None:
        return opts.epochs * steps_per_epoch
    if p.resume_train:
        return int(p.resume_train["total_steps"])
    return DEFAULT_EPOCHS * steps_per_epoch


def _restore(model: Model, batches: TensorBatches, path: Path, device: torch.device) -> int:
    checkpoint = ckpt_io.load(path)
    state = checkpoint.state
    try:
        model.load_state_dict(state["model"])
        for name, optimizer in model.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ZooError(f"{path} does not fit this {model.name} model: {str(exc).splitlines()[0]}") from None
    model.load_extra_state(state.get("extra", {}))
    batches.load_state(checkpoint.train["batches"])
    _set_rng_state(state["rng"], device)
    return int(checkpoint.train["step"])


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
    """On resume, drop metrics logged after the checkpoint (they will be logged again)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _finish_pictures(run_dir: Path, metrics_path: Path, model: str, data: str) -> tuple[Path | None, Path | None]:
    frames = sorted((run_dir / "progress").glob("epoch-*.png"))
    gif = figures.save_gif(frames, run_dir / "progress.gif")
    losses = figures.loss_curves(figures.read_metrics(metrics_path), run_dir / "losses.png",
                                 title=f"{model} on {data}")
    return gif, losses


def _epoch_label(step: int, steps_per_epoch: int, total: int) -> str:
    epochs = math.ceil(total / steps_per_epoch)
    return f"epoch {min(epochs, step // steps_per_epoch + 1)}/{epochs}"


def _format(values: dict[str, float]) -> str:
    return "  ".join(f"{figures.metric_label(k)} {v:.3f}" for k, v in values.items())
