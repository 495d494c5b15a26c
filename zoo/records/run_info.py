"""What a run folder says about itself, read from its files alone: nothing is loaded onto a
device, and a file that is missing, cut short or edited by hand leaves a gap, not an error.

A run folder is one holding ``run.json`` or a checkpoint (:mod:`zoo.records.runs` makes them and
finds their checkpoints). What it says comes from ``run.json`` (what was trained, how far,
its status, the best in-training figure), the checkpoint's header (the training state),
``eval.json`` (``zoo eval``'s figures and their protocol) and ``metrics.jsonl`` (a line per
step, and ``--eval-every``'s figures on lines of their own). ``zoo runs``, ``zoo compare``
and ``zoo report`` present it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.config import parse_json
from zoo.errors import ZooError
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs

EVAL_FILE = "eval.json"
METRICS_FILE = "metrics.jsonl"

EVAL_KEYS = ("fd", "ssim_train", "l1", "psnr")
"""What ``zoo train --eval-every`` writes to metrics.jsonl, on lines of their own."""
EVAL_METRICS: dict[str, tuple[str | None, str]] = {
    "fid": ("lower", "Frechet distance, lower is better"),
    "kid": ("lower", "kernel inception distance, lower is better"),
    "precision": ("higher", "fidelity, 0-1"),
    "recall": ("higher", "variety, 0-1"),
    "density": ("one", "about 1 like the data"),
    "coverage": ("higher", "0-1"),
    "diversity": ("one", "pixel spread / the data's"),
    "memorisation": ("lower", "samples nearer a training image than held-out images come"),
    "memorisation_reference": (None, "the same for real held-out images"),
    "classifier_score": ("higher", "at most the number of classes"),
    "class_accuracy": ("higher", "samples read as the class asked"),
    "sharpness": ("one", "Laplacian energy / the data's; below 1 blurrier"),
    "swd": ("lower", "sliced Wasserstein distance on Laplacian pyramid patches, x1000"),
    "swd_reference": (None, "the same between real training and held-out images"),
    "ms_ssim": (None, "MS-SSIM between samples: lower is more varied; compare with the data's"),
    "ms_ssim_reference": (None, "the same between real images"),
    "modes": ("higher", "Stacked MNIST: modes of 1,000 that 26,000 samples reach"),
    "modes_kl": ("lower", "KL from the samples' mode histogram to uniform (0 is every mode alike)"),
    "modes_reference": (None, "the same for 10,000 real training stacks (the judge never saw them)"),
    "modes_kl_reference": (None, "the same for 10,000 real training stacks (the judge never saw them)"),
    "l1": ("lower", "mean |output - target|, 0-1"),
    "psnr": ("higher", "dB"),
    "ssim": ("higher", "0-1"),
    "psnr_y": ("higher", "dB on the Y channel, border cropped (super-resolution's convention)"),
    "ssim_y": ("higher", "0-1, the same way"),
    "bicubic_psnr_y": (None, "the same for bicubic upsampling: the baseline"),
    "bicubic_ssim_y": (None, "the same for bicubic upsampling"),
    "laplacian_energy": (None, "no-reference sharpness: the upscaled images' mean squared Laplacian "
                               "(Y, 8-bit); read beside the original's"),
    "bicubic_laplacian_energy": (None, "the same for bicubic upsampling"),
    "original_laplacian_energy": (None, "the same for the original images"),
    "grid_artefact": ("lower", "checkerboard: RMS of the Laplacian's means per phase mod scale (Y, 8-bit)"),
    "original_grid_artefact": (None, "the same for the original images"),
    "reconstruction_sharpness": ("one", "reconstructions' Laplacian energy / the inputs'"),
    "active_units": ("higher", "latent dimensions the codes use"),
    "nll": ("lower", "held-out negative log-likelihood, nats per image"),
    "bits_per_dim": ("lower", "the same in bits per dimension"),
    "nll_elbo": ("lower", "the ELBO's looser bound on it, nats"),
}
"""eval.json's figures in the order they are shown: which way is better (None: a reference,
not a figure of the model, or one to read beside its reference, as MS-SSIM; "one": nearest 1)
and what they mean."""
NOT_FIGURES = {"seconds", "kid_std", "latent_dim"}
"""Numbers in eval.json that are not figures to compare."""


@dataclass
class RunSummary:
    """One run as ``zoo runs`` shows it; None where the run's files do not say."""

    path: Path
    status: str
    model: str | None = None
    data: str | None = None
    step: int | None = None
    total_steps: int | None = None
    images: int | None = None
    created: str | None = None
    seconds: float | None = None
    best: dict[str, Any] = field(default_factory=dict)
    """run.json's best in-training figure: {"step": 1200, "fd": 15.2, "protocol": ...}."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """eval.json, as ``zoo eval`` wrote it."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def protocol(self) -> str | None:
        protocol = self.evaluation.get("protocol")
        return str(protocol) if protocol else None

    def figures(self) -> dict[str, float]:
        """The eval.json numbers that are figures of the model."""
        return {k: float(v) for k, v in self.evaluation.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_FIGURES}

    def to_json(self) -> dict[str, Any]:
        return {"run": self.name, "path": str(self.path), "model": self.model, "data": self.data,
                "status": self.status, "step": self.step, "total_steps": self.total_steps, "images": self.images,
                "created": self.created, "seconds": self.seconds, "fid": self.evaluation.get("fid"),
                "protocol": self.protocol, "eval": self.figures(), "best": self.best or None}


def read_run(run_dir: Path) -> RunSummary | None:
    """What a run folder says about itself; None for a folder that is not a run."""
    info_file, checkpoint = run_dir / runs.RUN_FILE, run_dir / ckpt_io.FILENAME
    if not info_file.is_file() and not checkpoint.is_file():
        return None
    info = runs.read_json(info_file) if info_file.is_file() else {}
    if info is None:
        return RunSummary(run_dir, "unreadable", created=_mtime(run_dir))
    train = train_state(run_dir) or {}

    def known(key: str, kind: type | tuple[type, ...]) -> Any:
        """run.json's value, else the checkpoint's; None where neither says, or says nonsense."""
        value = info.get(key, train.get(key))
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    data = info.get("data") or (train.get("data") or {}).get("source")
    return RunSummary(
        run_dir, run_status(run_dir, info), model=known("model", str), data=str(data) if data else None,
        step=known("step", int), total_steps=known("total_steps", int), images=known("images", int),
        created=known("created", str) or _mtime(run_dir), seconds=known("seconds", (int, float)),
        best=known("best", dict) or {}, evaluation=runs.read_json(run_dir / EVAL_FILE) or {})


def train_state(run_dir: Path) -> dict[str, Any] | None:
    """Where training stood at the last checkpoint (its header's "train"), if it has one."""
    path = run_dir / ckpt_io.FILENAME
    if not path.is_file():
        return None
    try:
        meta = ckpt_io.read_meta(path)
    except ZooError:
        return None
    return {"model": meta.get("plugin"), **meta.get("train", {})}


def run_status(run_dir: Path, info: dict[str, Any]) -> str:
    """run.json's status, except that a run "running" with no process holding its lock was
    stopped (killed, or its machine went down): it says "stopped"."""
    status = str(info.get("status") or "unknown")
    if status == "running" and not runs.is_training(run_dir):
        return "stopped"
    return status


def _mtime(path: Path) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(path.stat().st_mtime))


def find_runs(root: Path, model: str | None = None) -> list[RunSummary]:
    """Every run in ``root`` (of ``model`` only, if given), the oldest first."""
    found = []
    for path in root.iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        run = read_run(path)
        if run is not None and (model is None or run.model == model):
            found.append(run)
    return sorted(found, key=lambda r: (r.created or "", r.name))


def read_metrics(path: Path) -> list[dict]:
    """The rows of a ``metrics.jsonl``, skipping a line a crash cut short."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = parse_json(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def is_evaluation(record: dict) -> bool:
    """Whether a metrics.jsonl row is one of ``--eval-every``'s: they have no epoch, and the
    steps' rows always do."""
    return "epoch" not in record and any(k in record for k in EVAL_KEYS)
