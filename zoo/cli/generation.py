"""zoo sample, zoo translate, zoo upscale and zoo reconstruct: images from a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.base import (
    USE,
    Checkpoint,
    Class,
    Device,
    Digit,
    Force,
    Images,
    Run,
    TextEncoder,
    command,
    console,
    handles_errors,
    out_option,
)

# -- zoo sample --------------------------------------------------------------------------------

@command(USE, "zoo sample dcgan --n 64 --out samples/",
         "zoo sample cgan --digit 7 --n 100 --out sevens/",
         "zoo sample cgan --n 100                      # a row per class",
         "zoo sample cgan --class sneaker",
         "zoo sample dcgan --truncation 0.7",
         "zoo sample runs/dcgan-mnist-20261122-101500 --n 16 --seed 3",
         "zoo sample dcgan --checkpoint best     # kept by zoo train --eval-every",
         "zoo sample runs/dcgan-mnist-20261122-101500/checkpoint.safetensors")
@handles_errors
def sample(
    target: Run,
    n: Annotated[int, typer.Option("--n", "-n", metavar="N", help="How many images.")] = 64,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed for the latent vectors.")] = 0,
    class_: Class = None,
    digit: Digit = None,
    noise: Annotated[str | None, typer.Option(
        "--noise", metavar="PRIOR",
        help="Draw z from another prior than the model was trained with (an experiment).")] = None,
    truncation: Annotated[float | None, typer.Option(
        "--truncation", metavar="T", help="Keep z likely: normal within T std devs, uniform the middle fraction T.")
    ] = None,
    text: Annotated[list[str] | None, typer.Option(
        "--text", metavar="TEXT",
        help="Text-conditional models: the description to draw; several --text give a row each.")] = None,
    text_encoder: TextEncoder = None,
    checkpoint: Checkpoint = "latest",
    out: Annotated[Path | None, out_option(
        "samples/RUN-seedS, with the checkpoint, class or text, prior and truncation when given: "
        "samples/RUN-best-7-trunc0.7-seed0")] = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Generate N images from a trained model: one PNG each plus grid.png.

    Class-conditional models make --class (or --digit) only, or else a grid with one row
    per class; each file name starts with its class. Text-conditional models draw --n
    images for each --text, a row each, the same latents in every row."""
    from zoo.pipelines.sample import sample as run_sampling

    run_sampling(target, n=n, seed=seed, out=out, force=force, device=device, class_=class_,
                 digit=digit, noise=noise, truncation=truncation, text=text, which=checkpoint,
                 text_encoder=text_encoder, console=console)


# -- zoo translate -----------------------------------------------------------------------------

@command(USE, "zoo translate pix2pix edges.png --out out/",
         "zoo translate pix2pix my-sketches/ --out out/",
         "zoo translate pix2pix 'photos/*.jpg' --out out/",
         "zoo translate cyclegan boots/ --direction BtoA --out sneakers/",
         "zoo translate pix2pix sketches/ --checkpoint best    # kept by --eval-every",
         "zoo translate runs/pix2pix-paired-edges2fashion-XXXX edges.png")
@handles_errors
def translate(
    target: Run,
    inputs: Images,
    direction: Annotated[str | None, typer.Option(
        "--direction", metavar="AtoB|BtoA", help="AtoB (default) or BtoA, for models that go both ways.")] = None,
    checkpoint: Checkpoint = "latest",
    out: Annotated[Path | None, out_option(
        "translations/RUN-DIRECTION, or RUN-best-DIRECTION with --checkpoint best")] = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Translate images with an image-to-image model: one PNG per input and sheet.png (input | output)."""
    from zoo.pipelines.translate import translate as run

    run(target, inputs, out=out, direction=direction, force=force, device=device, which=checkpoint,
        console=console)


# -- zoo upscale -------------------------------------------------------------------------------

@command(USE, "zoo upscale srgan photo.jpg --out big/              # any size, tiled",
         "zoo upscale srresnet photos/ --out big/",
         "zoo upscale srgan 'shots/*.png' --scale 4",
         "zoo upscale srgan originals/ --compare --out check/   # shrink, upscale back, measure",
         "zoo upscale srgan photo.jpg --checkpoint best      # kept by --eval-every",
         "zoo upscale runs/srgan-folder-photos-XXXX photo.jpg")
@handles_errors
def upscale(
    target: Run,
    inputs: Images,
    scale: Annotated[int | None, typer.Option(
        "--scale", metavar="N", help="The factor you expect (2, 4 or 8); refused unless the model was trained for it.")
    ] = None,
    compare: Annotated[bool, typer.Option(
        "--compare", help="Take the inputs as high-resolution originals: shrink each by the scale, upscale it "
                          "back, and show and measure it beside the original.")] = False,
    tile: Annotated[int, typer.Option(
        "--tile", metavar="PIXELS", help="Tile side in input pixels for large images (tiles overlap by the "
                                         "model's reach, so they join with no seams).")] = 128,
    checkpoint: Checkpoint = "latest",
    out: Annotated[Path | None, out_option(
        "upscaled/RUN, with -best for --checkpoint best and -compare for --compare")] = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Make images SCALE times larger with a super-resolution model (srresnet, srgan): one PNG per
    input and sheet.png (bicubic | model, | original with --compare)."""
    from zoo.pipelines.upscale import upscale as run

    run(target, inputs, out=out, scale=scale, compare=compare, tile=tile, force=force, device=device,
        which=checkpoint, console=console)


# -- zoo reconstruct ---------------------------------------------------------------------------

@command(USE, "zoo reconstruct ae digits/ --out recon/",
         "zoo reconstruct vae seven.png",
         "zoo reconstruct vae 'photos/*.jpg' --out recon/",
         "zoo reconstruct cvae sevens/ --digit 7    # a conditional encoder is told the class",
         "zoo reconstruct vae digits/ --checkpoint best     # kept by --eval-every",
         "zoo reconstruct runs/ae-mnist-20261122-101500 digits/")
@handles_errors
def reconstruct(
    target: Run,
    inputs: Images,
    class_: Class = None,
    digit: Digit = None,
    checkpoint: Checkpoint = "latest",
    out: Annotated[Path | None, out_option(
        "reconstructions/RUN, with -best for --checkpoint best and the class when given")] = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Encode and decode images: one PNG per input, sheet.png (input | reconstruction) and
    PSNR / SSIM / MSE per image in metrics.json.

    Inputs of any size and format are fitted to the model's size and channels first."""
    from zoo.pipelines.reconstruct import reconstruct as run

    run(target, inputs, out=out, class_=class_, digit=digit, force=force, device=device, which=checkpoint,
        console=console)
