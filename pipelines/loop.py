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
from zoo.data.memory import TensorBatches
from zoo.display import figures
from zoo.display.console import progress_bar, zoo_command
from zoo.errors import UsageError, ZooError
from zoo.model import Model
from zoo.pipelines.evaluate.training import TrainingEval
from zoo.pipelines.run_files import RunFiles, truncate_metrics
from zoo.records import checkpoint as ckpt_io
from zoo.records import files, runs
from zoo.records.run_info import METRICS_FILE
from zoo.records.tracking import open_tracker
from zoo.training.diagnostics import Alert, Watch, reference_images
from zoo.training.distributed import PeerLost
from zoo.training.engine import evaluating, full_precision
from zoo.training.process import OutOfMemory, deferred_interrupts, is_out_of_memory

if TYPE_CHECKING:
    from zoo.pipelines.plan import Plan
    from zoo.pipelines.train_data import TrainingData

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


class Loop(RunFiles):
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
        self.device = batches.device
        self.run_dir, self.console, self.wandb = run_dir, console, wandb
        self.step, self.images, self.seconds_before = state["step"], state["images"], state["seconds"]
        self.seconds = self.seconds_before
        self.steps_per_epoch = max(1, batches.batches_per_epoch // model.batches_per_step())
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

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> Path:
        """Train from where the run stands to its end (or its time budget); returns the run
        folder. Whatever stops it early is said in one line by :meth:`_failure`."""
        self._open()
        started = time.perf_counter()
        try:
            status = self._steps(started)
            return self._finish(status, time.perf_counter() - started)
        except BaseException as exc:
            failure = self._failure(exc)
            if failure is exc:
                raise
            raise failure from None

    def _open(self) -> None:
        """run.json and W&B opened, the fixed preview inputs and the in-training evaluator made,
        the run announced."""
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
            truncate_metrics(self.metrics_path, self.step)
        with self._own_random_stream():
            self.preview_inputs = model.preview_inputs(PREVIEW_COUNT, torch.Generator().manual_seed(p.seed),
                                                       self.data.examples(PREVIEW_COUNT, p.seed, self.device))
            if self.eval_every and self.writer:
                self.evaluator = TrainingEval.build(model, self.data.prepared, self.eval_features, p.seed,
                                                    self.console)
        if self.evaluator is not None:
            self._keep_eval_protocol(self.evaluator)
        self._announce()

    def _steps(self, started: float) -> str:
        """The steps, each followed by what is due (metrics, previews, evaluations,
        checkpoints); returns the run's status when they end."""
        p, model = self.p, self.model
        self.last_save = self.last_preview = self.seconds
        self.bar = progress_bar(self.console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"))
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
                    self.bar.console.print(f"--minutes {p.minutes:g}: time is up after {self._of_total()}")
                    return "finished" if self.timed else "time limit"
        return "finished"

    def _failure(self, exc: BaseException) -> BaseException:
        """What stopped the run, recorded in run.json and W&B, as the one line the user sees:
        an interruption with the command that resumes it, a lost process, a full disk, out
        of memory with a batch size to try; anything else is returned as it is."""
        p = self.p
        if isinstance(exc, KeyboardInterrupt):
            if self.final_saved:  # training is done and saved; only its pictures or upload were cut short
                return Interrupted(f"training finished and was saved at step {self.step}; stopped while drawing "
                                   f"its pictures or uploading: {self.run_dir}")
            # A second Ctrl-C stops mid-step: the last checkpoint stays as it was.
            self.info["status"] = "interrupted"
            if self.writer:
                runs.update_run_info(self.run_dir, self.info)
            self._finish_pictures()
            self.tracker.finish(exit_code=130)
            path = self.run_dir / ckpt_io.FILENAME
            if not self.writer:
                return Interrupted(f"process {self.cluster.rank}: interrupted at step {self.step}")
            if not path.exists():
                return Interrupted(f"interrupted at step {self.step} before the first checkpoint; "
                                   "nothing to resume: start the run again")
            saved = ckpt_io.read_meta(path)["train"]["step"]
            where = f"step {saved}{f'/{self.total}' if self.total else ''}"
            said = (f"stopped during step {self.step + 1}; the last checkpoint holds {where}" if self.stepping
                    else f"interrupted at {where}; checkpoint saved")
            return Interrupted(f"{said}. Continue with: {self._launcher()} train {p.cls.name} --resume {self.run_dir}")
        if isinstance(exc, PeerLost) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # torchrun's stop must not cut the message
        if not self.final_saved:
            self.info.update(status=f"failed: {type(exc).__name__}", failed_at_step=self.step)
        if self.writer and not self.final_saved:
            with contextlib.suppress(OSError, ZooError):  # a full disk may refuse this too
                runs.update_run_info(self.run_dir, self.info)
        self.tracker.finish(exit_code=1)
        if self.final_saved and isinstance(exc, (OSError, ZooError)):
            return ZooError(f"training finished and was saved at step {self.step} ({self.run_dir}); writing its "
                            f"pictures failed: {exc}")
        if isinstance(exc, PeerLost):
            return PeerLost(f"{exc}; stopped at step {self.step}. {self._resume_hint()}")
        failed = Path(exc.filename) if isinstance(exc, OSError) and exc.filename else self.metrics_path
        full = exc if isinstance(exc, files.DiskFull) else files.disk_full(
            exc, failed, "metrics" if failed == self.metrics_path else "file")
        if full is not None:
            return files.DiskFull(f"{full}. {self._resume_hint()}")
        if is_out_of_memory(exc):
            return OutOfMemory(self._out_of_memory(exc))
        return exc

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

    def _progress(self) -> zoo.Progress:
        return zoo.Progress(step=self.step, total_steps=self.total, epoch=self.step // self.steps_per_epoch,
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
                               f"{self.step / self.steps_per_epoch:.1f}, {self.images:,} images)  "
                               f"{_format(means, first=model.state_metrics)}", highlight=False)

    def _warn(self, found: list[Alert]) -> None:
        for alert in found:
            self.bar.console.print(f"[yellow]warning[/] at step {alert.step:,}: {alert.message}")
            self.alerts.append({"step": alert.step, "kind": alert.kind, "message": alert.message})

    def _label(self) -> str:
        if self.total_images:
            return f"{self.images / 1000:,.1f}/{self.total_images / 1000:,.1f} kimg"
        if self.timed:
            return f"epoch {self.step // self.steps_per_epoch + 1}, seconds of {self.p.minutes:g} min"
        epochs = math.ceil(self.total / self.steps_per_epoch)
        return f"epoch {min(epochs, self.step // self.steps_per_epoch + 1)}/{epochs}"


def _format(values: dict[str, float], first: tuple[str, ...] = ()) -> str:
    """Metrics for a line of text: ``first`` (where training stands: ProGAN's resolution and
    alpha) before the rest, so a narrow terminal's bar cuts the losses, not them; whole
    numbers without decimals."""
    keys = [k for k in first if k in values] + [k for k in values if k not in first]
    return "  ".join(f"{figures.metric_label(k)} {values[k]:.0f}" if float(values[k]).is_integer()
                     and abs(values[k]) >= 1 else f"{figures.metric_label(k)} {values[k]:.3f}" for k in keys)
