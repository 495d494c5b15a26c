"""zoo eval: measure a trained model."""

from __future__ import annotations

from typing import Annotated

import typer

from zoo.cli.base import (
    MEASURE,
    Checkpoint,
    Device,
    NoWandb,
    Run,
    TextEncoder,
    Wandb,
    command,
    console,
    handles_errors,
    wandb_mode,
)


@command(
    MEASURE,
    "zoo eval runs/dcgan-mnist-20261122-101500          # FID, KID, precision/recall, density/coverage, ...",
    "zoo eval cgan --n 10000 --features classifier       # + class accuracy per class",
    "zoo eval pix2pix --split test                       # L1 / PSNR / SSIM against the targets",
    "zoo eval dcgan --checkpoint best                    # the best checkpoint --eval-every kept",
    "zoo eval dcgan --features inception:~/weights/inception_v3.safetensors",
    "zoo eval runs/dcgan-mnist-20261122-101500 --split train    # on the images it learnt from",
    "zoo eval runs/dcgan-mnist-7-20261122-101500 --data mnist   # a model of sevens against every digit",
    "zoo eval ae                                         # reconstruction L1 / PSNR / SSIM, active units",
    "zoo eval vae --nll-samples 1000                     # + the held-out NLL, 1,000 importance samples each",
    "zoo eval dcgan --no-wandb                           # leave the run's W&B summary alone",
    name="eval")
@handles_errors
def evaluate(
    target: Run,
    n: Annotated[int, typer.Option("--n", "-n", metavar="N", help="Samples to draw (models with a latent prior).")
                 ] = 10_000,
    features: Annotated[str | None, typer.Option("--features", metavar="EXTRACTOR", help="Feature extractor: classifier (trained once on the labelled data, the default there), inception:WEIGHTS.safetensors, random (tests only), or an installed plugin's.")] = None,
    split: Annotated[str, typer.Option("--split", metavar="heldout|test|train", help="Compare with the held-out images (heldout, or test: the same) or the training images (train).")] = "heldout",
    checkpoint: Checkpoint = "latest",
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed for the samples' latent vectors and conditions.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", metavar="N", help="Images per batch through the feature extractor.")] = 500,
    device: Device = "auto",
    data: Annotated[str | None, typer.Option("--data", "-d", metavar="DATA", help="Judge against another data set's images than the run's own (at the run's size and channels), e.g. a model trained on --classes 7 against all of mnist.")] = None,
    wandb: Wandb = "auto",
    no_wandb: NoWandb = False,
    nll_samples: Annotated[int, typer.Option("--nll-samples", metavar="K", help="Models that estimate a likelihood (VAEs): importance samples per image (Burda et al.'s k; more is tighter and slower).")] = 100,
    nll_images: Annotated[int, typer.Option("--nll-images", metavar="N", help="Models that estimate a likelihood: how many of the reference images the NLL is averaged over.")] = 1000,
    text_encoder: TextEncoder = None,
) -> None:
    """Measure a trained model on images it never trained on; write RUN/eval.json.

    Sampling models: Frechet distance and KID in the extractor's features, precision/recall
    (k=3) and density/coverage (k=5) on sets of one size (the larger cut), diversity, the
    memorisation check, the classifier score, and class accuracy per class for
    class-conditional models, and the samples' sharpness.
    Translators: L1 / PSNR / SSIM against the targets. Encoders (autoencoders, VAEs): the
    same for reconstructions, their sharpness, the latent dimensions in use, and for VAEs the
    held-out negative log-likelihood (an importance-weighted bound). Every figure records
    its protocol: extractor and hash, counts, split, resize (e.g.
    fid10k+prdc10k/classifier:mnist@1a2b3c4d/heldout). A run that logged to W&B gets the
    figures in its W&B summary too, unless --wandb off (or --no-wandb)."""
    from zoo.pipelines.evaluate import evaluate as run

    run(target, n=n, features=features, split=split, checkpoint=checkpoint, seed=seed, batch_size=batch_size,
        device=device, data=data, wandb=wandb_mode(wandb, no_wandb), console=console, nll_samples=nll_samples,
        nll_images=nll_images, text_encoder=text_encoder)
