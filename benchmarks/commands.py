"""What the benchmarks share: running a zoo command as a user would, in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ZOO = [sys.executable, "-m", "zoo"]


def trained(results: Path, name: str, *args: str) -> Path:
    """``results/name``: a run of ``zoo train ARGS``, trained once (a run that is there is kept)."""
    run = results / name
    if not (run / "checkpoint.safetensors").is_file():
        seconds = zoo("train", *args, "--no-wandb", "--out", str(run))
        print(f"trained {name} in {seconds:.0f} s")
    return run


def zoo(*args: str) -> float:
    """Run a zoo command as a user would (its own process, W&B off); returns its wall-clock
    seconds, or stops the benchmark with the command's last output if it failed."""
    started = time.perf_counter()
    done = subprocess.run([*ZOO, *args], capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"})
    if done.returncode:
        raise SystemExit(f"zoo {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started
