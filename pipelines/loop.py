"""The training loop of one run: everything around the plugin's step.

It owns the engine every update passes through (mixed precision, clipping, gradient
averaging), the progress bar, metrics read from the device every few steps, previews and
checkpoints on a step and time cadence, Ctrl-C deferred to the end of the step,
``metrics.jsonl`` and W&B, and at the end the progress GIF and the loss curves.
``zoo.pipelines.train`` builds what it needs and hands over to :class:`Loop`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import zoo
from zoo import config as config_io
from zoo.data import superres
from zoo.data.memory import TensorBatches
from zoo.display import figures
from zoo.display.console import progress_bar, zoo_command
from zoo.errors import UsageError, ZooError
from zoo.model import Model
from zoo.pipelines.evaluate import TrainingEval
from zoo.records import checkpoint as ckpt_io
from zoo.records import files, runs
from zoo.records.run_info import METRICS_FILE, read_metrics
from zoo.records.tracking import open_tracker
from zoo.spec import Capability
from zoo.training.diagnostics import Alert, Watch, reference_images
from zoo.training.distributed import PeerLost
from zoo.training.engine import evaluating, full_precision, native_bf16

if TYPE_CHECKING:
    from zoo.pipelines.train import Plan, TrainingData

DEFAULT_EPOCHS = 5
PREVIEW_COUNT = 64
PREVIEW_FRAMES = 40
"""A run draws about this many preview grids (``progress/step-NNNNNNN.png``, then the GIF),
whatever the size of its epochs: not one every 4 steps on 519 sevens."""
READ_EVERY = 10
"""Metrics are read from the device (one sync) every this many steps."""
SAVE_EVERY_SECONDS = 600
"""Seconds of training between checkpoints (at least)."""
SAVE_AT_PREVIEW_SECONDS = 60
"""A checkpoint goes with a preview when the last one is at least this old."""
PREVIEW_EVERY_SECONDS = 120
"""Between two previews, progress/latest.png is redrawn this often (and sent to W&B)."""


SAME_SIGNAL_SECONDS = 0.5
"""Under torchrun, a second Ctrl-C this soon after the first is the same one, forwarded."""


class Interrupted(ZooError):
    """Ctrl-C: the checkpoint is saved and the run can be resumed."""

    exit_code = 130


class Loop:
    """The training loop of one run, from its first (or resumed) step to its last.

    Its length is in steps, or in images with ``--kimg`` (then ``total`` is 0: steps are
    unbounded, and schedules and previews follow the images seen), or, with ``--minutes``
    and no other length, in time alone (``total`` and ``total_images`` both 0: schedules,
    previews and the bar follow the clock)."""

    def __init__(self, p: Plan, data: TrainingData, model: Model, batches: TensorBatches,
                 state: dict[str, Any], run_dir: Path, console: Console, *, steps: int | None = None,
                 epochs: int | None = None, kimg: float | None = None, preview_every: int | None = None,
                 eval_every: int | None = None, eval_features: str | None = None, wandb: str = "auto",
                 checkpoint_every: int | None = None) -> None:
        self.p, self.data, self.model, self.batches = p, data, model, batches
        self.run_dir, self.console, self.wandb = run_dir, console, wandb
        self.step, self.images, self.seconds_before = state["step"], state["images"], state["seconds"]
        self.seconds = self.seconds_before
        self.steps_per_epoch = max(1, batches.batches_per_epoch // model.batches_per_step())
        self.images_per_epoch = len(data.prepared)
        self.total, self.total_images = self._length(steps, epochs, kimg)
        self.budget = p.minutes * 60 if p.minutes else math.inf
        if self._finished():
            more = "--kimg" if self.total_images else "--steps or --epochs"
            raise UsageError(f"that run already finished {self._of_total()}; ask for more with {more}")
        self.preview_every = preview_every
        self.eval_every, self.eval_features = eval_every, eval_features
        self.checkpoint_every = checkpoint_every
        self.evaluator: TrainingEval | None = None
        self.preview_index = self._preview_index()
        self.metrics_path = run_dir / METRICS_FILE
        self.pending: list[tuple[int, int, dict[str, Any]]] = []
        self.means: dict[str, list[float]] = {}
        self.watch = Watch()
        self.cluster = model.engine.cluster
        self.writer = self.cluster.writer
        """Rank 0 (or the one process) writes the run's files; under torchrun the others only train."""
        self.saved = False
        self.final_saved = False
        self.stepping = False
        """True while the plugin's step runs: an interrupt then leaves half an update."""

    def _length(self, steps: int | None, epochs: int | None, kimg: float | None) -> tuple[int, int]:
        """Training length as (steps, images); 0 for the one that does not bound it."""
        if kimg is not None:
            return 0, round(kimg * 1000)
        if steps is not None:
            return steps, 0
        if epochs is not None:
            return epochs * self.steps_per_epoch, 0
        if self.p.resume_train:
            return int(self.p.resume_train["total_steps"]), int(self.p.resume_train.get("total_images", 0))
        if self.p.minutes:  # --minutes alone: train for that long, however many epochs that is
            return 0, 0
        default = self.p.cls.default_kimg(self.p.config, self.data.spec)
        if default is not None:  # a schedule in images (ProGAN's growth) runs through once
            return 0, round(default * 1000)
        return DEFAULT_EPOCHS * self.steps_per_epoch, 0

    @property
    def timed(self) -> bool:
        """Whether the run's length is a time budget alone."""
        return not self.total and not self.total_images

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> Path:
        p, model = self.p, self.model
        self.info = self._run_info()
        self.alerts: list[dict[str, Any]] = self.info.setdefault("warnings", [])
        self.tracker = open_tracker(self.wandb if self.writer else "off", self.run_dir, self.run_dir.name,
                                    {"model": p.cls.name, "data": p.data, "seed": p.seed,
                                     **config_io.to_dict(p.config)},
                                    self.console, run_id=self.info.get("wandb_id"), tags=[p.cls.name, p.data])
        if self.writer:
            self.info["wandb"] = self.tracker.mode
            if self.tracker.run_id:
                self.info["wandb_id"] = self.tracker.run_id
            runs.update_run_info(self.run_dir, self.info)
            _truncate_metrics(self.metrics_path, self.step)
        with self._own_random_stream():
            self.preview_inputs = model.preview_inputs(PREVIEW_COUNT, torch.Generator().manual_seed(p.seed),
                                                       self.data.examples(PREVIEW_COUNT, p.seed, self.device))
            if self.eval_every and self.writer:
                self.evaluator = TrainingEval.build(model, self.data.prepared, self.eval_features, p.seed,
                                                    self.console)
        if self.evaluator is not None:
            self._keep_eval_protocol(self.evaluator)
        self._announce()

        started = time.perf_counter()
        self.last_save = self.last_preview = self.seconds
        self.bar = progress_bar(self.console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"))
        status = "finished"
        try:
            metrics_path = self.metrics_path if self.writer else Path(os.devnull)
            with self.bar, metrics_path.open("a", encoding="utf-8") as self.metrics_file, \
                    deferred_interrupts(SAME_SIGNAL_SECONDS if self.cluster.distributed else 0.0) as interrupted:
                self.task = self.bar.add_task(self._label(), total=self._length_done()[1],
                                              completed=self._done(), metrics="")
                while not self._finished():
                    if not self.cluster.distributed:  # many processes keep the clock they agreed on
                        self.seconds = self.seconds_before + time.perf_counter() - started
                    progress = self._progress()
                    self.stepping = True
                    with model.engine.autocast():
                        values = model.train_step(self.batches, progress)
                    model.engine.end_step()
                    self.stepping = False
                    self.step += 1
                    self.images = self.batches.drawn
                    # Detached: a metric must not keep its step's graph alive until it is read.
                    self.pending.append((self.step, progress.epoch, {
                        k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()}))
                    # Under torchrun every process takes the same decisions: on the same clock
                    # (the slowest's) and stopping when any was asked to.
                    self.seconds, stop = self.cluster.agree(
                        [self.seconds_before + time.perf_counter() - started, float(interrupted.is_set())])
                    if stop:  # Ctrl-C during the step: it is whole now, save it
                        self._flush()
                        self._sync()
                        self.save("interrupted")
                        raise KeyboardInterrupt
                    out_of_time = self.seconds >= self.budget
                    self._after_step(last=out_of_time or self._finished())
                    if out_of_time:
                        status = "finished" if self.timed else "time limit"
                        self.bar.console.print(f"--minutes {p.minutes:g}: time is up after {self._of_total()}")
                        break
            return self._finish(status, time.perf_counter() - started)
        except KeyboardInterrupt:
            if self.final_saved:  # training is done and saved; only its pictures or upload were cut short
                raise Interrupted(f"training finished and was saved at step {self.step}; stopped while drawing "
                                  f"its pictures or uploading: {self.run_dir}") from None
            # A second Ctrl-C stops mid-step: the last checkpoint stays as it was.
            self.info["status"] = "interrupted"
            if self.writer:
                runs.update_run_info(self.run_dir, self.info)
            self._finish_pictures()
            self.tracker.finish(exit_code=130)
            path = self.run_dir / ckpt_io.FILENAME
            if not self.writer:
                raise Interrupted(f"process {self.cluster.rank}: interrupted at step {self.step}") from None
            if not path.exists():
                raise Interrupted(f"interrupted at step {self.step} before the first checkpoint; "
                                  "nothing to resume: start the run again") from None
            saved = ckpt_io.read_meta(path)["train"]["step"]
            where = f"step {saved}{f'/{self.total}' if self.total else ''}"
            said = (f"stopped during step {self.step + 1}; the last checkpoint holds {where}" if self.stepping
                    else f"interrupted at {where}; checkpoint saved")
            raise Interrupted(f"{said}. Continue with: {self._launcher()} train {p.cls.name} "
                              f"--resume {self.run_dir}") from None
        except BaseException as exc:
            if isinstance(exc, PeerLost) and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # torchrun's stop must not cut the message
            if not self.final_saved:
                self.info.update(status=f"failed: {type(exc).__name__}", failed_at_step=self.step)
            if self.writer and not self.final_saved:
                with contextlib.suppress(OSError, ZooError):  # a full disk may refuse this too
                    runs.update_run_info(self.run_dir, self.info)
            self.tracker.finish(exit_code=1)
            if self.final_saved and isinstance(exc, (OSError, ZooError)):
                raise ZooError(f"training finished and was saved at step {self.step} ({self.run_dir}); writing its "
                               f"pictures failed: {exc}") from None
            if isinstance(exc, PeerLost):
                raise PeerLost(f"{exc}; stopped at step {self.step}. {self._resume_hint()}") from None
            failed = Path(exc.filename) if isinstance(exc, OSError) and exc.filename else self.metrics_path
            full = exc if isinstance(exc, files.DiskFull) else files.disk_full(
                exc, failed, "metrics" if failed == self.metrics_path else "file")
            if full is not None:
                raise files.DiskFull(f"{full}. {self._resume_hint()}") from None
            if is_out_of_memory(exc):
                raise OutOfMemory(self._out_of_memory(exc)) from None
            raise

    def _out_of_memory(self, exc: BaseException) -> str:
        batch = getattr(self.p.config, "batch_size", None)
        smaller = f"--batch-size {max(1, batch // 2)}" if isinstance(batch, int) and batch > 1 else \
            "a smaller model (see zoo info)"
        where = "a preview" if not self.stepping else f"step {self.step + 1}"
        run = self.run_dir / ckpt_io.FILENAME
        keep = (f" --init-from {self.run_dir} to keep its weights" if run.exists() else "")
        return (f"out of memory on {self.device} at batch size {batch} ({where}): train again with {smaller}"
                f"{keep} (a --resume keeps its batch size)")

    def _resume_hint(self) -> str:
        path = self.run_dir / ckpt_io.FILENAME
        if not path.exists():
            return "No checkpoint was saved yet: start the run again"
        saved = ckpt_io.read_meta(path)["train"]["step"]
        return f"The last checkpoint holds step {saved}; continue with: {self._launcher()} train " \
               f"{self.p.cls.name} --resume {self.run_dir}"

    def _launcher(self) -> str:
        """How this run was started: zoo, or torchrun with its processes (any number resumes it)."""
        return f"torchrun --nproc_per_node {self.cluster.world} -m zoo" if self.cluster.distributed else zoo_command()

    @property
    def device(self) -> torch.device:
        return self.batches.device

    def _progress(self) -> zoo.Progress:
        return zoo.Progress(step=self.step, total_steps=self.total, epoch=self.images // self.images_per_epoch,
                            time_fraction=min(1.0, self.seconds / self.budget), images=self.images,
                            total_images=self.total_images)

    def _finished(self) -> bool:
        if self.timed:
            return self.seconds >= self.budget
        return self.images >= self.total_images if self.total_images else self.step >= self.total

    def _length_done(self) -> tuple[int, int]:
        """(done, of) on the bar: images, steps, or for a time budget alone seconds."""
        if self.timed:
            return int(self.seconds), int(self.budget)
        return (self.images, self.total_images) if self.total_images else (self.step, self.total)

    def _done(self) -> int:
        return self._length_done()[0]

    def _of_total(self) -> str:
        if self.total_images:
            return f"{self.images:,} of {self.total_images:,} images ({self.step:,} steps)"
        if self.timed:
            return f"{self.step:,} steps"
        return f"{self.step:,} of {self.total:,} steps"

    def _preview_index(self) -> int:
        """Which preview the run is at: a new one is due when this moves on."""
        if self.preview_every:
            return self.step // self.preview_every
        if self.total_images:
            return self.images // max(1, math.ceil(self.total_images / PREVIEW_FRAMES))
        if self.timed:
            return math.floor(min(1.0, self.seconds / self.budget) * PREVIEW_FRAMES)
        return self.step // max(1, math.ceil(self.total / PREVIEW_FRAMES))

    def _after_step(self, last: bool) -> None:
        """Read metrics every few steps; a preview, and maybe a checkpoint, on their cadence."""
        index = self._preview_index()
        preview_due = index != self.preview_index or last
        self.preview_index = index
        # Every decision below is the same on every process (steps, images and agreed seconds).
        latest_due = not preview_due and self.seconds - self.last_preview > PREVIEW_EVERY_SECONDS
        eval_due = bool(self.eval_every) and (self.step % (self.eval_every or 1) == 0 or last)
        save_due = not last and (self.seconds - self.last_save > SAVE_EVERY_SECONDS
                                 or bool(self.checkpoint_every) and self.step % (self.checkpoint_every or 1) == 0)
        if len(self.pending) >= READ_EVERY or preview_due or latest_due or save_due or eval_due:
            self._flush()  # on every process alike: the read is a collective under torchrun
        if preview_due or latest_due or eval_due or save_due:
            self._sync()
        if preview_due:
            self._preview()
            # The last step's checkpoint is written once, by _finish.
            if not last and (not self.saved or self.seconds - self.last_save > SAVE_AT_PREVIEW_SECONDS):
                self.save("running")
        elif latest_due:
            # A slow stretch between previews (a big model on a CPU) still shows how it goes.
            if self.writer:
                columns, rows = self.model.preview_labels(self.preview_inputs)
                with self._own_random_stream():
                    latest = figures.save_grid(self.model.preview(self.preview_inputs),
                                               self.run_dir / "progress" / "latest.png",
                                               column_labels=columns, row_labels=rows)
                self.tracker.log_image("samples", latest, self.step, caption=f"step {self.step}")
            self.last_preview = self.seconds
        if self.evaluator is not None and eval_due:
            self._evaluate(last)
        if save_due and (self.last_save < self.seconds or not self.saved):  # not twice at one step
            self.save("running")

    def _sync(self) -> None:
        """Before a preview, a checkpoint or an evaluation under torchrun: batch norm's running
        statistics averaged across processes, and the weights checked to be the same."""
        self.cluster.average_buffers(self.model)
        self.cluster.check_same(self.model)

    def _keep_eval_protocol(self, evaluator: TrainingEval) -> None:
        """The run keeps the features its --eval-every figures are measured in (a resume
        measures in them again); a best figure measured under another protocol (another
        extractor, or the same one's weights changed) is never compared with this run's."""
        if evaluator.features is not None:
            self.info["eval_features"] = evaluator.features
            runs.update_run_info(self.run_dir, self.info)
        best = self.info.get("best")
        if isinstance(best, dict) and best.get("protocol") != evaluator.protocol:
            self.console.print(
                f"[yellow]note:[/] best.safetensors holds the best figure of step {best.get('step')} measured "
                f"under {best.get('protocol')}; this run now measures under {evaluator.protocol}, whose figures "
                "cannot be compared with it, so best.safetensors stays as it is. For a best in these features, "
                f"start a new run from this one's weights: --init-from {self.run_dir}", highlight=False)

    def _evaluate(self, last: bool) -> None:
        """--eval-every: the quick figures on fixed samples, logged; a better one than any
        before of the same protocol is kept as best.safetensors beside the latest checkpoint
        (one of another protocol stays: they cannot be compared)."""
        assert self.evaluator is not None
        self._flush()  # the losses of the steps so far go first in metrics.jsonl
        with self._own_random_stream(), evaluating(self.model), full_precision():
            values = self.evaluator(self.model)
        self.metrics_file.write(json.dumps({"step": self.step, **values}) + "\n")
        self.metrics_file.flush()
        self.tracker.log(values, self.step)
        key = self.evaluator.key
        best = self.info.get("best")
        best = best if isinstance(best, dict) else {}
        comparable = not best or best.get("protocol") == self.evaluator.protocol
        better = comparable and (key not in best or values[key] < best[key])
        self.bar.console.print(f"eval at step {self.step:,}: {_format(values)}"
                               f"{'  (best so far)' if better else ''}", highlight=False)
        if better:
            self.info["best"] = {"step": self.step, key: values[key], "protocol": self.evaluator.protocol}
            self.tracker.summary({f"best/{key}": values[key], "best/step": self.step})
            checkpoint = self.save("running" if not last else "finished", cadence=False)
            files.write_atomically(self.run_dir / runs.BEST_FILE, lambda tmp: shutil.copyfile(checkpoint, tmp),
                                   "best checkpoint")

    @contextmanager
    def _own_random_stream(self) -> Iterator[None]:
        """Previews draw their own random numbers (a translator's noise, dropout): training's
        stream must not depend on when, by the wall clock, a preview was drawn."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            yield

    def _flush(self) -> None:
        """Read the pending steps' metrics from the device in one go; log them; stop on NaN."""
        pending, self.pending = self.pending, []
        flat = [torch.as_tensor(v, dtype=torch.float32).to(self.device).reshape(())
                for _, _, values in pending for v in values.values()]
        # The one sync; under torchrun each step's metrics are the mean over the processes.
        numbers = iter(self.cluster.mean(torch.stack(flat)).tolist() if flat else [])
        record: dict[str, float] = {}
        for step, epoch, values in pending:
            record = {k: next(numbers) for k in values}
            bad = [k for k, v in record.items() if not math.isfinite(v)]
            if bad:
                self.metrics_file.flush()
                raise ZooError(f"{', '.join(bad)} became {record[bad[0]]} at step {step}; training "
                               f"stopped. The last good checkpoint is in {self.run_dir}")
            self.metrics_file.write(json.dumps({"step": step, "epoch": epoch, **record}) + "\n")
            if not self.writer:
                continue  # the metrics are rank 0's to log and to show
            self.tracker.log(record, step)
            self._warn(self.watch.after_step(step, record, self._progress().fraction))
            for k, v in record.items():
                self.means.setdefault(k, []).append(v)
        self.metrics_file.flush()
        self.bar.update(self.task, completed=self._done(), description=self._label(),
                        metrics=_format(record, first=self.model.state_metrics))

    def _preview(self) -> None:
        model, step = self.model, self.step
        self.last_preview = self.seconds
        if not self.writer:
            return
        with self._own_random_stream():
            preview = model.preview(self.preview_inputs)
        columns, rows = model.preview_labels(self.preview_inputs)
        grid = figures.save_grid(preview, self.run_dir / "progress" / f"step-{step:07d}.png",
                                 column_labels=columns, row_labels=rows)
        self.tracker.log_image("samples", grid, step, caption=f"step {step}")
        (self.run_dir / "progress" / "latest.png").unlink(missing_ok=True)
        state = set(model.state_metrics)  # where training stands: the latest value, not a mean
        means = {k: v[-1] if k in state else sum(v) / len(v) for k, v in self.means.items()}
        self.means = {}
        samples = model.preview_samples(self.preview_inputs, preview)
        if samples is not None:
            if self.watch.reference is None:
                d = self.data.prepared
                self.watch.reference = reference_images(d.images, d.labels, samples, self.p.seed)
            variety, found = self.watch.after_preview(step, self._progress().fraction, samples)
            if variety is not None:
                means["diversity"] = variety
                self.tracker.log({"diversity": variety}, step)
            self._warn(found)
        self.bar.console.print(f"step {step:,}{f'/{self.total:,}' if self.total else ''} (epoch "
                               f"{self.images / self.images_per_epoch:.1f}, {self.images:,} images)  "
                               f"{_format(means, first=model.state_metrics)}", highlight=False)

    def _warn(self, found: list[Alert]) -> None:
        for alert in found:
            self.bar.console.print(f"[yellow]warning[/] at step {alert.step:,}: {alert.message}")
            self.alerts.append({"step": alert.step, "kind": alert.kind, "message": alert.message})

    # -- files -----------------------------------------------------------------------------------

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
        })
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
            "step": self.step, "images": self.images, "epoch": self.images // self.images_per_epoch,
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
                               "bf16 is emulated here, many times slower than fp32 (the lab DCGAN: 41 against 934 "
                               "images/s on a 2-core EPYC); --precision fp32 is the fast choice on this machine")

    def _label(self) -> str:
        if self.total_images:
            return f"{self.images / 1000:,.1f}/{self.total_images / 1000:,.1f} kimg"
        if self.timed:
            return f"epoch {self.step // self.steps_per_epoch + 1}, seconds of {self.p.minutes:g} min"
        epochs = math.ceil(self.total / self.steps_per_epoch)
        return f"epoch {min(epochs, self.step // self.steps_per_epoch + 1)}/{epochs}"


@contextmanager
def deferred_interrupts(same_within: float = 0.0) -> Iterator[threading.Event]:
    """Ctrl-C (or SIGTERM: a scheduler's pre-emption, torchrun stopping its processes) during
    a step is held until the step ends (a checkpoint never holds half an update); a second
    stops at once, keeping the last checkpoint. Under torchrun one Ctrl-C arrives twice (from
    the terminal, then forwarded by torchrun): a second signal ``same_within`` seconds of the
    first is the same one."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    first: list[float] = []

    def handler(signum: int, frame: Any) -> None:
        if interrupted.is_set() and time.monotonic() - first[0] > same_within:
            raise KeyboardInterrupt
        if not interrupted.is_set():
            first.append(time.monotonic())
        interrupted.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupted
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].to(torch.uint8))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8), device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"].to(torch.uint8))


class OutOfMemory(ZooError):
    """Training ran out of device (or host) memory; the message names a batch size to try."""


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA or MPS out-of-memory error, or the CPU allocator's failure."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop metrics logged after the checkpoint (they will be logged again), and
    a last line cut short by a crash."""
    if not path.exists():
        return
    kept = [json.dumps(record) for record in read_metrics(path) if record.get("step", math.inf) <= step]
    files.write_text(path, "".join(line + "\n" for line in kept), "metrics")


def _format(values: dict[str, float], first: tuple[str, ...] = ()) -> str:
    """Metrics for a line of text: ``first`` (where training stands: ProGAN's resolution and
    alpha) before the rest, so a narrow terminal's bar cuts the losses, not them; whole
    numbers without decimals."""
    keys = [k for k in first if k in values] + [k for k in values if k not in first]
    return "  ".join(f"{figures.metric_label(k)} {values[k]:.0f}" if float(values[k]).is_integer()
                     and abs(values[k]) >= 1 else f"{figures.metric_label(k)} {values[k]:.3f}" for k in keys)
