"""What the benchmarks share: running a zoo command as a user would, in its own process, timed,
with the machine's load beside the time so that a noisy measurement shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ZOO = [sys.executable, "-m", "zoo"]
TRAINED = "benchmark-train.json"
"""Beside a run a benchmark trained: the command and how long it took as a whole process."""


def load() -> float:
    """The machine's load average over the last minute: taken before each timed part, since a
    time measured beside another job is not the same figure."""
    return round(os.getloadavg()[0], 2)


def zoo(*args: str, env: dict[str, str] | None = None) -> float:
    """Run a zoo command as a user would (its own process, W&B off, ``env`` added to the
    environment); returns its wall-clock seconds, or stops the benchmark with the command's
    last output if it failed."""
    started = time.perf_counter()
    done = subprocess.run([*ZOO, *args], capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled", **(env or {})})
    if done.returncode:
        raise SystemExit(f"zoo {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def timed(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``zoo ARGS``: what was typed, the whole process's seconds and the load before it."""
    before = load()
    seconds = zoo(*args, env=env)
    return {"command": "zoo " + " ".join(args), "seconds": round(seconds, 1), "load_before": before}


def trained(results: Path, name: str, *args: str) -> Path:
    """``results/name``: a run of ``zoo train ARGS``, trained once (a run that is there is kept).
    The command's time is kept beside the run (:func:`training`), so a run measured again later
    still says how long it took to train."""
    run = results / name
    if not (run / "checkpoint.safetensors").is_file():
        record = timed("train", *args, "--no-wandb", "--out", str(run))
        record["command"] = "zoo train " + " ".join(args)  # as typed; W&B off and the run folder aside
        (run / TRAINED).write_text(json.dumps(record, indent=2) + "\n")
        print(f"trained {name} in {record['seconds']:.0f} s", flush=True)
    return run


def training(run: Path) -> dict[str, Any]:
    """How ``run`` was trained: the command and its time as a whole process (when a benchmark
    trained it), and the steps, images and seconds of training its checkpoint records."""
    from zoo.records import checkpoint as ckpt_io

    record: dict[str, Any] = json.loads((run / TRAINED).read_text()) if (run / TRAINED).is_file() else {}
    train = ckpt_io.read_meta(run / ckpt_io.FILENAME)["train"]
    return {**record, "steps": train["step"], "images": train["images"],
            "train_seconds": round(float(train.get("seconds", 0.0)), 1)}


EVAL_KEYS = ("fid", "kid", "precision", "recall", "density", "coverage", "sharpness", "diversity", "swd",
             "swd_per_level", "swd_reference", "ms_ssim", "ms_ssim_reference", "memorisation",
             "memorisation_reference", "class_accuracy", "class_accuracy_per_class", "classifier_score", "psnr",
             "ssim", "psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y", "laplacian_energy",
             "bicubic_laplacian_energy", "original_laplacian_energy", "grid_artefact", "original_grid_artefact",
             "reconstruction_sharpness", "nll", "nll_elbo", "bits_per_dim", "active_units", "latent_dim",
             "likelihood", "modes", "modes_kl", "modes_reference", "modes_kl_reference", "modes_protocol",
             "protocol", "timings")


def evaluated(run: Path, *args: str) -> dict[str, Any]:
    """``zoo eval RUN ARGS`` as typed (W&B off): its figures and protocol from eval.json, the
    accuracy of its feature extractor on the real held-out images, and the whole process's time."""
    took = timed("eval", str(run), "--wandb", "off", *args)
    result = json.loads((run / "eval.json").read_text())
    detail = result.get("protocol_detail", {})
    extractor = detail.get("extractor")
    accuracy = detail.get("extractor_accuracy", extractor.get("accuracy") if isinstance(extractor, dict) else None)
    # the likelihood's details and the code's size sit in protocol_detail
    merged = {**{k: detail[k] for k in ("likelihood", "latent_dim") if k in detail}, **result}
    return {"took": took, **{k: merged[k] for k in EVAL_KEYS if k in merged},
            "extractor_accuracy": accuracy, "step": result.get("checkpoint", {}).get("step")}


def slug(*parts: object) -> str:
    """A result's name from its parts, in letters, digits, dots and dashes: ``slug("wasserstein",
    "5min", "wgan-gp:lr=1e-3")`` is ``wasserstein-5min-wgan-gp-lr-1e-3``; empty parts are left out."""
    return "-".join(w for w in (re.sub(r"[^A-Za-z0-9.]+", "-", str(p)).strip("-") for p in parts) if w)
