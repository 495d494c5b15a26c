"""Invert a generator: find the latent vector whose image best matches a target (seed 001).

The latent is fitted by Adam with a cosine learning-rate schedule, from several random
starts at once (the best one wins), minimising pixel MSE plus a structural (1 - SSIM) term
plus an optional prior penalty that keeps z plausible. Models with an encoder start from
its guess. Any image file (any size, format or colour) is converted to the model's size
and channels first, with a note. Outputs per target: the latent (safetensors), the
reconstruction, an evolution strip (target, then the fit as it improves, step by step; seed
001, figure 9), and MSE / PSNR / SSIM in ``metrics.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from safetensors.torch import save_file

from zoo.config import check_seed, within
from zoo.data.images import GRAY_MODES, IMAGE_SUFFIXES, UNREADABLE, convert_channels, read_image, to_float
from zoo.display import figures
from zoo.display.console import make_console, progress_bar
from zoo.errors import UsageError, ZooError
from zoo.measure import metrics
from zoo.model import Model
from zoo.pipelines.classes import chosen_class, class_index
from zoo.records.runs import default_out, load_latent_model, output_dir
from zoo.spec import Capability, class_condition
from zoo.training.engine import evaluating
from zoo.tricks import frozen

SNAPSHOTS = 8


@dataclass
class Fit:
    """The fitted latents (N x d), their images, per-step snapshots and the final scores."""

    z: torch.Tensor
    images: torch.Tensor
    snapshots: list[tuple[int, torch.Tensor]]
    mse: torch.Tensor
    psnr: torch.Tensor
    ssim: torch.Tensor


MOST_STEPS, MOST_RESTARTS = 1_000_000, 1_000
"""The most optimisation steps and random starts an inversion takes."""


def check_fit(steps: int, restarts: int, lr: float = 0.05, ssim_weight: float = 0.0, prior_weight: float = 0.0,
              seed: int = 0, flags: tuple[str, str] = ("--steps", "--restarts")) -> None:
    """Refuse an inversion's settings before anything is loaded or written: counts out of
    range, a learning rate or weight that is not a finite number of its range, a seed."""
    within(flags[0], steps, 1, MOST_STEPS)
    within(flags[1], restarts, 1, MOST_RESTARTS)
    within("--lr", lr, 0, 1e6, above=True)
    within("--ssim-weight", ssim_weight, 0, 1e6)
    within("--prior-weight", prior_weight, 0, 1e6)
    check_seed(seed)


def fit_latents(model: Model, targets: torch.Tensor, *, labels: torch.Tensor | None = None,
                steps: int = 500, restarts: int = 8, lr: float = 0.05, ssim_weight: float = 0.1,
                prior_weight: float = 0.001, seed: int = 0, progress=None) -> Fit:
    """Fit one latent per target image (float in [-1, 1], N x C x H x W on the model's device)."""
    check_fit(steps, restarts, lr, ssim_weight, prior_weight, seed)
    n, device = targets.shape[0], model.device
    prior = model.prior
    generator = torch.Generator().manual_seed(seed)
    z = model.sample_latent(n * restarts, generator).detach()
    if model.has(Capability.ENCODER):  # start from the encoder's guess, the rest jittered around it
        with torch.no_grad(), evaluating(model):
            guess = model.encode(targets, class_condition(labels.to(device) if labels is not None else None))
            guess = guess.repeat_interleave(restarts, 0)
        z = guess + 0.1 * (z - z.mean()) * (torch.arange(n * restarts, device=device) % restarts != 0)[:, None]
    z.requires_grad_(True)
    repeated = targets.repeat_interleave(restarts, 0)
    rep_labels = labels.to(device).repeat_interleave(restarts, 0) if labels is not None else None
    optimizer = torch.optim.Adam([z], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 0.01)
    marks = sorted({0, steps} | {round(steps ** (i / (SNAPSHOTS - 1))) for i in range(1, SNAPSHOTS - 1)})
    snapshots = []
    with frozen(model), evaluating(model):
        for step in range(steps + 1):
            images = model.generate(z, class_condition(rep_labels))
            loss = _loss(images, repeated, z, prior, ssim_weight, prior_weight)
            if step in marks:
                snapshots.append((step, images.detach()))
            if step == steps:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            schedule.step()
            if progress is not None:
                progress(step + 1, steps)
    final = loss.detach().view(n, restarts)
    best = final.argmin(1) + torch.arange(n, device=device) * restarts
    images = snapshots[-1][1][best]
    return Fit(z.detach()[best], images, [(s, im[best]) for s, im in snapshots],
               metrics.mse(images, targets), metrics.psnr(images, targets), metrics.ssim(images, targets))


def _loss(images, targets, z, prior, ssim_weight: float, prior_weight: float) -> torch.Tensor:
    loss = metrics.mse(images, targets)
    if ssim_weight:
        loss = loss + ssim_weight * (1 - metrics.ssim(images, targets))
    if prior_weight:
        loss = loss + prior_weight * prior.log_density_penalty(z)
    return loss


def load_targets(target: Path, model: Model, console: Console) -> tuple[list[str], torch.Tensor]:
    """Target images as the model sees them: its size and channels, float in [-1, 1]."""
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"{target} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    elif target.is_file():
        files = [target]
    else:
        raise UsageError(f"target {target} does not exist")
    spec = model.spec
    after = f"{spec.width}x{spec.height} {'grayscale' if spec.channels == 1 else 'RGB'}"
    names, pictures, converted = [], [], []
    for path in files:
        try:
            picture, mode, (w, h) = read_image(path, spec.height, spec.width)
        except UNREADABLE as exc:
            raise ZooError(f"cannot read target {path} as an image ({type(exc).__name__})") from None
        before = f"{w}x{h} {mode}"
        if (w, h) != (spec.width, spec.height) or (spec.channels == 1) != (mode in GRAY_MODES):
            converted.append(f"{path.name}: {before} -> {after}")
        pictures.append(picture)
        names.append(path.stem)
    for line in converted[:5]:
        console.print(f"[cyan]note:[/] converted {line} (the model's size and channels)")
    if len(converted) > 5:
        console.print(f"[cyan]note:[/] ... and {len(converted) - 5} more converted")
    images = convert_channels(torch.stack(pictures), spec.channels)
    return names, to_float(images).to(model.device)


def invert(target_model: str, target: Path, *, steps: int = 500, restarts: int = 8, lr: float = 0.05,
           ssim_weight: float = 0.1, prior_weight: float = 0.001, class_: str | None = None,
           digit: str | None = None, seed: int = 0, out: Path | None = None, force: bool = False,
           device: str = "auto", which: str = "latest", console: Console | None = None) -> Path:
    """Fit latents to an image or a folder of images; write latents, pictures and scores."""
    console = console or make_console()
    check_fit(steps, restarts, lr, ssim_weight, prior_weight, seed)
    model, checkpoint, checkpoint_path = load_latent_model(target_model, device, "be inverted", or_encoder=True,
                                                           which=which)
    if not model.has(Capability.LATENT):
        prior_weight = 0.0  # no prior to keep z plausible under: the fit starts from the encoder's code
    wanted = chosen_class(model, class_, digit)
    if model.has(Capability.CLASS_CONDITIONAL) and wanted is None:
        raise UsageError(f"{model.name} is class-conditional: say which class the target is with --class "
                         "(or --digit)")
    names, targets = load_targets(target, model, console)
    labels = (torch.full((len(names),), class_index(model.spec, wanted), dtype=torch.long)
              if wanted is not None else None)
    out = output_dir(out or default_out("inversions", checkpoint, checkpoint_path, target.stem), force)

    with progress_bar(console, transient=True) as bar:
        task = bar.add_task(f"inverting {len(names)} image(s), {restarts} restarts", total=steps)
        fit = fit_latents(model, targets, labels=labels, steps=steps, restarts=restarts, lr=lr,
                          ssim_weight=ssim_weight, prior_weight=prior_weight, seed=seed,
                          progress=lambda done, total: bar.update(task, completed=done))

    rows: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        latent = {"z": fit.z[i:i + 1].cpu().contiguous()}
        if labels is not None:
            latent["labels"] = labels[i:i + 1].cpu()
        save_file(latent, str(out / f"{name}.latent.safetensors"),
                  metadata={"model": model.name, "target": name,
                            "prior": str(model.prior) if model.has(Capability.LATENT) else "none (an encoder's code)"})
        figures.save_images(fit.images[i:i + 1].cpu(), out, [f"{name}.reconstruction"])
        strip = torch.stack([targets[i]] + [im[i] for _, im in fit.snapshots]).cpu()
        figures.save_grid(strip.unsqueeze(0), out / f"{name}.evolution.png", scale=2,
                          column_labels=["target"] + [f"step {s}" for s, _ in fit.snapshots],
                          title=f"{name}: PSNR {float(fit.psnr[i]):.1f} dB, SSIM {float(fit.ssim[i]):.3f}")
        rows.append({"target": name, "mse": float(fit.mse[i]), "psnr": float(fit.psnr[i]),
                     "ssim": float(fit.ssim[i])})
    summary = {
        "model": model.name, "checkpoint_step": checkpoint.train.get("step"), "steps": steps,
        "restarts": restarts, "lr": lr, "ssim_weight": ssim_weight, "prior_weight": prior_weight,
        "snapshot_steps": [s for s, _ in fit.snapshots],
        "mean": {k: sum(r[k] for r in rows) / len(rows) for k in ("mse", "psnr", "ssim")},
        "targets": rows,
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    mean = summary["mean"]
    console.print(f"inverted {len(names)} image(s) with {model.name}: mean PSNR {mean['psnr']:.2f} dB, "
                  f"SSIM {mean['ssim']:.3f}, MSE {mean['mse']:.4f} -> {out}/")
    return out

