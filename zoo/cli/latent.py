"""zoo interpolate, zoo invert, zoo explore: the latent space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.base import (
    LATENT,
    Checkpoint,
    Class,
    Device,
    Digit,
    Force,
    Run,
    TextEncoder,
    command,
    console,
    handles_errors,
    out_option,
)

# -- zoo interpolate / invert / explore: the latent space ---------------------------------


def _ints(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("takes seeds as integers, comma-separated: 1 or 1,3,5", param_hint=flag) from None


@command(
    LATENT,
    "zoo interpolate dcgan --from-seed 1 --to-seed 2 --steps 10 --method slerp",
    "zoo interpolate dcgan --from-seed 1,3,5 --to-seed 2,4,6          # three rows",
    "zoo interpolate dcgan --from-image a.png --to-image b.png        # inverts both first",
    "zoo interpolate cgan --from-class 1 --to-class 7 --from-seed 0 --to-seed 0",
    'zoo interpolate stackgan --from-text "a light sandal" --to-text "a dark sneaker"',
)
@handles_errors
def interpolate(
    target: Run,
    from_seed: Annotated[str | None, typer.Option("--from-seed", metavar="SEEDS", help="Start seed(s), comma-separated for several rows.")] = None,
    to_seed: Annotated[str | None, typer.Option("--to-seed", metavar="SEEDS", help="End seed(s), as many as --from-seed.")] = None,
    from_latent: Annotated[Path | None, typer.Option("--from-latent", metavar="FILE", help="Start latent(s): a .safetensors from zoo invert.")] = None,
    to_latent: Annotated[Path | None, typer.Option("--to-latent", metavar="FILE", help="End latent(s).")] = None,
    from_image: Annotated[Path | None, typer.Option("--from-image", metavar="IMAGE", help="Start image (inverted first).")] = None,
    to_image: Annotated[Path | None, typer.Option("--to-image", metavar="IMAGE", help="End image (inverted first).")] = None,
    steps: Annotated[int, typer.Option("--steps", metavar="N", help="Images along each path, ends included.")] = 10,
    method: Annotated[str | None, typer.Option("--method", metavar="lerp|slerp", help="lerp or slerp (default: slerp for Gaussian priors).")] = None,
    class_: Class = None,
    digit: Digit = None,
    from_class: Annotated[str | None, typer.Option("--from-class", metavar="CLASS", help="Conditional models: walk from this class...")] = None,
    to_class: Annotated[str | None, typer.Option("--to-class", metavar="CLASS", help="...to this one.")] = None,
    from_text: Annotated[str | None, typer.Option("--from-text", metavar="TEXT", help="Text-conditional models: walk from this description...")] = None,
    to_text: Annotated[str | None, typer.Option("--to-text", metavar="TEXT", help="...to this one (a row per seed, seeds 0-3 unless given).")] = None,
    text_encoder: TextEncoder = None,
    invert_steps: Annotated[int, typer.Option("--invert-steps", metavar="N", help="Optimisation steps when inverting images.")] = 300,
    restarts: Annotated[int, typer.Option("--restarts", metavar="N", help="Random starts when inverting images.")] = 4,
    checkpoint: Checkpoint = "latest",
    out: Annotated[Path | None, out_option("interpolations/RUN-METHOD")] = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Interpolate between two points of a model's latent space: a strip, a GIF, the latents."""
    from zoo.pipelines.interpolate import interpolate as run

    run(target, from_seed=_ints(from_seed, "--from-seed"), to_seed=_ints(to_seed, "--to-seed"),
        from_latent=from_latent, to_latent=to_latent, from_image=from_image, to_image=to_image,
        steps=steps, method=method, class_=class_, digit=digit, from_class=from_class, to_class=to_class,
        invert_steps=invert_steps, restarts=restarts, out=out, force=force, device=device,
        from_text=from_text, to_text=to_text, which=checkpoint, text_encoder=text_encoder, console=console)


@command(
    LATENT,
    "zoo invert dcgan target.png --steps 500 --restarts 8",
    "zoo invert dcgan photos/ --out fits/                 # every image in a folder",
    "zoo invert cgan seven.png --digit 7",
)
@handles_errors
def invert(
    model: Run,
    target: Annotated[Path, typer.Argument(metavar="IMAGE_OR_FOLDER", help="An image file (any size or format) or a folder of them.")],
    steps: Annotated[int, typer.Option("--steps", metavar="N", help="Optimisation steps.")] = 500,
    restarts: Annotated[int, typer.Option("--restarts", metavar="N", help="Random starts; the best fit wins.")] = 8,
    lr: Annotated[float, typer.Option("--lr", metavar="LR", help="Adam's starting learning rate (cosine decay).")] = 0.05,
    ssim_weight: Annotated[float, typer.Option("--ssim-weight", metavar="WEIGHT", help="Weight of the structural term (1 - SSIM).")] = 0.1,
    prior_weight: Annotated[float, typer.Option("--prior-weight", metavar="WEIGHT", help="Weight of the penalty keeping z plausible under the prior.")] = 0.001,
    class_: Class = None,
    digit: Digit = None,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed for the random starts.")] = 0,
    checkpoint: Checkpoint = "latest",
    out: Annotated[Path | None, out_option("inversions/RUN-TARGET")] = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Find the latent vector whose image best matches a target: latent, reconstruction,
    evolution strip and MSE / PSNR / SSIM."""
    from zoo.pipelines.invert import invert as run

    run(model, target, steps=steps, restarts=restarts, lr=lr, ssim_weight=ssim_weight,
        prior_weight=prior_weight, class_=class_, digit=digit, seed=seed, out=out, force=force,
        device=device, which=checkpoint, console=console)


def _span(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter("takes LOW,HIGH, like -3,3", param_hint="--range") from None
    return low, high


@command(
    LATENT,
    "zoo explore dcgan --dim 5 --range -3,3 --steps 9",
    "zoo explore dcgan --dims 10                         # a row for each of the first 10",
    "zoo explore dcgan --dim 0 --latent fits/cat.latent.safetensors",
)
@handles_errors
def explore(
    target: Run,
    dim: Annotated[int | None, typer.Option("--dim", metavar="I", help="The latent coordinate to vary.")] = None,
    dims: Annotated[int | None, typer.Option("--dims", metavar="K", help="Vary each of the first K coordinates, a row each.")] = None,
    span: Annotated[str, typer.Option("--range", metavar="LOW,HIGH", help="LOW,HIGH values the coordinate takes.")] = "-3,3",
    steps: Annotated[int, typer.Option("--steps", metavar="N", help="Values from LOW to HIGH.")] = 9,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the base latent.")] = 0,
    latent: Annotated[Path | None, typer.Option("--latent", metavar="FILE", help="Base latent from a file instead of a seed.")] = None,
    class_: Class = None,
    digit: Digit = None,
    checkpoint: Checkpoint = "latest",
    out: Annotated[Path | None, out_option("explorations/RUN-seedS, or RUN-LATENT with --latent")] = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Vary one latent value at a time around a base latent and see what it does."""
    from zoo.pipelines.interpolate import explore as run

    run(target, dim=dim, dims=dims, span=_span(span), steps=steps, seed=seed, latent=latent,
        class_=class_, digit=digit, out=out, force=force, device=device, which=checkpoint, console=console)
