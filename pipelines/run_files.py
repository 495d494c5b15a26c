"""What the train loop writes and says about its run: run.json, the checkpoint (atomically,
only between whole steps, by one process), the closing pictures (the progress GIF, the loss
curves) and lines, and the line that announces the run.

:class:`RunFiles` is the part of :class:`zoo.pipelines.loop.Loop` that deals with the run
folder; the loop's state it reads is declared here.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import zoo
from zoo import config as config_io
from zoo.data import superres
from zoo.data.mapped import ShardedImages
from zoo.data.memory import TensorBatches
from zoo.display import figures
from zoo.display.console import zoo_command
from zoo.model import Model
from zoo.pipelines.plan import Plan
from zoo.pipelines.train_data import TrainingData
from zoo.records import checkpoint as ckpt_io
from zoo.records import files, runs
from zoo.records.run_info import read_metrics
from zoo.records.tracking import Tracker
from zoo.spec import Capability
from zoo.training import devices
from zoo.training.distributed import Cluster
from zoo.training.engine import native_bf16
from zoo.training.process import rng_state


class RunFiles:
    """The run folder's side of the train loop."""

    p: Plan
    data: TrainingData
    model: Model
    batches: TensorBatches
    run_dir: Path
    metrics_path: Path
    console: Console
    cluster: Cluster
    device: torch.device
    tracker: Tracker
    info: dict[str, Any]
    writer: bool
    step: int
    images: int
    seconds: float
    last_save: float
    saved: bool
    final_saved: bool
    total: int
    total_images: int
    steps_per_epoch: int
    eval_every: int | None
    checkpoint_every: int | None

    @property
    def timed(self) -> bool:
        """Whether the run's length is a time budget alone."""
        return not self.total and not self.total_images

    def _run_info(self) -> dict[str, Any]:
        p, spec = self.p, self.data.spec
        info = runs.read_run_info(self.run_dir) if p.resume_from else {}
        info.pop(runs.EVAL_ENTRY, None)  # zoo eval's, which this run's saves must leave as the file has it
        engine = self.model.engine.options
        info.update({
            "model": p.cls.name, "plugin_version": p.cls.version, "data": p.data,
            "data_spec": spec.to_dict(), "config": config_io.to_dict(p.config), "seed": p.seed,
            "device": str(self.device), "precision": engine.precision, "clip_grad": engine.clip_grad,
            "processes": self.cluster.world, "speed": self.model.engine.applied,
            "total_steps": self.total, "total_images": self.total_images,
            "steps_per_epoch": self.steps_per_epoch, "status": "running",
            "created": info.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
            "hardware": devices.hardware(self.device),
        })
        if p.command and "command" not in info:  # the command that started the run (a card shows it)
            info["command"] = p.command
        if p.preset is not None:
            info.setdefault("preset", p.preset)
        if p.init_from is not None:
            info["init_from"] = str(p.init_from)
        if self.eval_every:
            info["eval_every"] = self.eval_every
        if self.checkpoint_every:
            info["checkpoint_every"] = self.checkpoint_every
        return info

    def save(self, status: str, cadence: bool = True) -> Path:
        """Write the checkpoint (atomically) and run.json; only ever between whole steps, and
        under torchrun by rank 0 alone (after :meth:`_sync`). ``cadence``: it counts for the
        checkpoint cadence (on every process alike; not the best checkpoint rank 0 finds)."""
        p, model = self.p, self.model
        path = self.run_dir / ckpt_io.FILENAME
        if cadence:
            self.last_save, self.saved = self.seconds, True
        if not self.writer:
            return path
        engine = model.engine.options
        train_state = {
            "step": self.step, "images": self.images, "epoch": self.step // self.steps_per_epoch,
            "total_steps": self.total, "total_images": self.total_images,
            "steps_per_epoch": self.steps_per_epoch, "seed": p.seed, "batches": self.batches.state(),
            "minutes": p.minutes, "seconds": round(self.seconds, 3),
            "precision": engine.precision, "clip_grad": engine.clip_grad,
            "data": p.data_record, "helpers": model.helper_sources(),
            "run": self.run_dir.name, "zoo_version": zoo.__version__,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        state = {"model": model.state_dict(),
                 "optimizers": {k: o.state_dict() for k, o in model.optimizers.items()},
                 "extra": model.extra_state(), "engine": model.engine.state(), "rng": rng_state(self.device)}
        if model.text_encoder is not None:  # --text needs it: zoo's by value, an installed one by reference
            state["text_encoder"] = model.text_encoder.to_state()
        ckpt_io.save(path, ckpt_io.Checkpoint(p.cls.name, str(p.cls.version), config_io.to_dict(p.config),
                                              self.data.spec.to_dict(), train_state, state))
        self.info.update(status=status, step=self.step, images=self.images)
        runs.update_run_info(self.run_dir, self.info)
        return path

    def _finish(self, status: str, elapsed: float) -> Path:
        p, model, step = self.p, self.model, self.step
        if not self.writer:
            return self.run_dir  # rank 0 saves; the buffers were averaged at the last step's preview
        checkpoint = self.save(status)
        self.final_saved = True  # what fails after this (pictures, W&B) leaves the run finished
        gif, losses = self._finish_pictures()
        if gif:
            self.tracker.log_gif("progress", gif, step)
        if losses:
            self.tracker.log_image("losses", losses, step)
        self.tracker.log_checkpoint(checkpoint, f"{p.cls.name}-{p.data.replace(':', '-').replace('/', '-')}"[:120],
                                    {"step": step, "data": p.data})
        self.tracker.finish()
        zoo = zoo_command()  # what works as printed: .venv/bin/zoo where the venv is not activated
        use = f"Samples: {zoo} sample {self.run_dir}" if model.has(Capability.LATENT) else (
            f"Upscale: {zoo} upscale {self.run_dir} IMAGE_OR_FOLDER --out DIR" if superres.factor_of(model) > 1 else
            f"Translate: {zoo} translate {self.run_dir} IMAGE_OR_FOLDER --out DIR"
            if model.has(Capability.IMAGE_TO_IMAGE) else
            f"Reconstruct: {zoo} reconstruct {self.run_dir} IMAGES --out DIR" if model.has(Capability.ENCODER)
            else f"Checkpoint: {checkpoint}")
        self.console.print(f"done: {step:,} steps ({self.images:,} images) in {elapsed:.0f}s. {use}",
                           highlight=False)
        if status == "time limit":
            self.console.print(f"to train on: {zoo} train {p.cls.name} --resume {self.run_dir} --minutes "
                               "A_LARGER_TOTAL, or --steps N to train without a time limit", highlight=False)
        return self.run_dir

    def _finish_pictures(self) -> tuple[Path | None, Path | None]:
        if not self.writer:
            return None, None
        frames = sorted((self.run_dir / "progress").glob("step-*.png"))
        gif = figures.save_gif(frames, self.run_dir / "progress.gif")
        losses = figures.loss_curves(read_metrics(self.metrics_path), self.run_dir / "losses.png",
                                     title=f"{self.p.cls.name} on {self.p.data}", state=self.model.state_metrics)
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
        if isinstance(d.images, ShardedImages):
            count += f", {d.images.nbytes / 2**30:.1f} GB read from disk through memory maps"
        shape = f"{spec.channels}x{spec.height}x{spec.width}"
        if spec.target_shape != (spec.channels, spec.height, spec.width):
            shape += " -> " + "x".join(map(str, spec.target_shape))
        length = (f"{self.total_images:,} images" if self.total_images else
                  f"{self.p.minutes:g} minutes" if self.timed else f"{self.total:,} steps")
        engine = self.model.engine.options
        world = self.cluster.world
        extras = "".join([f" | {engine.precision}" if engine.precision != "fp32" else "",
                          f" | clip {engine.clip_grad:g}" if engine.clip_grad else "",
                          f" | {world} processes x {p.config.batch_size // world}" if world > 1 else "",
                          "".join(f" | {done}" for done in self.model.engine.applied if done != "channels-last")])
        self.console.print(f"[bold]{p.cls.name}[/] on [bold]{p.data}{selected}[/] ({count}, {shape}) | "
                           f"device {self.device} | {length} ({self.steps_per_epoch} steps per epoch) | "
                           f"batch {p.config.batch_size}{extras} | W&B {self.tracker.mode}\n"
                           f"run folder: {self.run_dir}")
        for note in self.model.engine.notes:
            self.console.print(f"[yellow]note:[/] {note}", highlight=False)
        if engine.precision == "bf16" and not native_bf16(self.device):
            self.console.print(f"[yellow]warning:[/] {self.device} has no native bf16 (AVX512-BF16 or AMX on a CPU): "
                               "bf16 is emulated here, many times slower than fp32; --precision fp32 is the fast "
                               "choice on this machine")


def truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop metrics logged after the checkpoint (they will be logged again), and
    a last line cut short by a crash."""
    if not path.exists():
        return
    kept = [json.dumps(record) for record in read_metrics(path) if record.get("step", math.inf) <= step]
    files.write_text(path, "".join(line + "\n" for line in kept), "metrics")
