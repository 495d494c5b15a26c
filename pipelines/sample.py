"""Sample a trained model: N images as PNG files plus one grid of them.

The target is a run folder, a checkpoint file, or a model name (its latest run). The
latents come from a CPU generator seeded with ``--seed``, so the same seed gives the same
images on every device.
"""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console

from zoo import figures, registry
from zoo.devices import resolve_device
from zoo.errors import UsageError
from zoo.model import Capability

from . import runs

CHUNK = 256
GRID_LIMIT = 1024


def sample(target: str, *, n: int = 64, seed: int = 0, out: Path | None = None, force: bool = False,
           device: str = "auto", console: Console | None = None) -> Path:
    """Write ``n`` samples and ``grid.png`` into a folder; returns it."""
    console = console or Console()
    if n < 1:
        raise UsageError(f"--n must be at least 1, got {n}")
    path = runs.find_checkpoint(target)
    model, checkpoint = runs.load_model(path, resolve_device(device))
    registry.registry().require(type(model), Capability.LATENT, "sample from noise")

    run_name = checkpoint.train.get("run") or path.parent.name
    out = out or Path("samples") / f"{run_name}-seed{seed}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UsageError(f"--out {out} already holds files; pick another folder or pass --force "
                         "to write over them")

    generator = torch.Generator().manual_seed(seed)
    images = torch.cat([model.sample(min(CHUNK, n - start), generator=generator).cpu()
                        for start in range(0, n, CHUNK)])
    width = len(str(n - 1))
    figures.save_images(images, out, [f"{i:0{max(4, width)}d}" for i in range(n)])
    figures.save_grid(images[:GRID_LIMIT], out / "grid.png")
    note = f" (grid shows the first {GRID_LIMIT})" if n > GRID_LIMIT else ""
    console.print(f"{n} samples of {model.name} (step {checkpoint.train.get('step', '?')}) "
                  f"-> {out}/ and {out / 'grid.png'}{note}")
    return out
