"""zoo train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.base import (
    DATA,
    START,
    Channels,
    Classes,
    DataDir,
    DataDirection,
    ModelName,
    Size,
    Subset,
    WandbMode,
    command,
    console,
    device_option,
    handles_errors,
    no_wandb_option,
    out_option,
    wandb_mode,
    wandb_option,
)

LENGTH, CONFIG, RUN, WATCH, SPEED = ("How long", "Model and config", "The run folder", "Watching it learn",
                                    "Device and speed")

# -- zoo train ---------------------------------------------------------------------------------

@command(START,
    "zoo train dcgan --data mnist --epochs 5",
    "zoo train dcgan --data mnist --steps 1560 --set real_label=0.9",
    "zoo train dcgan --data folder:~/monet --size 64 --channels 3 --device cuda",
    "zoo train dcgan --data mnist --dry-run",
    "zoo train cgan --data fashion-mnist --epochs 20",
    "zoo train wgan-gp --data mnist --steps 100000 --minutes 10",
    "zoo train vae --data mnist --minutes 5              # five minutes of training, whatever the epochs",
    "zoo train dcgan --data mnist --set loss=hinge --set ema=0.999",
    "zoo train pix2pix --data paired:edges2fashion --minutes 15",
    "zoo train dcgan --data mnist --classes 7",
    "zoo train dcgan --data mnist --noise uniform:-1,1",
    "zoo train r3gan --data mnist                        # the modern baseline: RpGAN + R1 + R2, no tricks",
    "zoo train dcgan --data folder:~/paintings --augment ada --mirror   # small data: adaptive augmentation",
    "zoo train dcgan --resume runs/dcgan-mnist-20261122-101500 --epochs 10",
    "zoo train dcgan --data mnist --precision bf16 --clip-grad 10",
    "zoo train pix2pix --data paired:~/datasets/facades --direction BtoA",
    "zoo train cgan --data fashion-mnist --init-from runs/cgan-mnist-20261122-101500",
    "zoo train dcgan --data mnist --eval-every 500      # figures during training; best.safetensors kept",
    "zoo train dcgan --data mnist --precision bf16 --compile",
    "torchrun --nproc_per_node 8 -m zoo train dcgan --data cifar10      # 8 GPUs, the batch split 8 ways",
    "torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint HOST:29500 -m zoo train progan --data folder:~/faces",
)
@handles_errors
def train(
    model: ModelName,
    data: Annotated[str | None, typer.Option(
        "--data", "-d", metavar="DATA", rich_help_panel=DATA,
        help="mnist, fashion-mnist, cifar10, svhn, folder:PATH, shards:PATTERN, or paired:/unpaired: data (see zoo prep --help).")] = None,
    size: Size = None,
    channels: Channels = None,
    data_dir: DataDir = None,
    classes: Classes = None,
    subset: Subset = None,
    direction: DataDirection = None,
    epochs: Annotated[int | None, typer.Option("--epochs", metavar="N", rich_help_panel=LENGTH,
                                               help="Passes over the data (default 5).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", metavar="N", rich_help_panel=LENGTH,
                                              help="Training steps instead of epochs.")] = None,
    kimg: Annotated[float | None, typer.Option(
        "--kimg", metavar="K", rich_help_panel=LENGTH,
        help="Train on this many thousand images instead (ProGAN's unit).")] = None,
    minutes: Annotated[float | None, typer.Option(
        "--minutes", metavar="MINUTES", rich_help_panel=LENGTH,
        help="Alone: train for this long (however many epochs that is). With --steps, --epochs or --kimg: stop "
             "after this much training time if they are not done first. Counted across --resume.")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", rich_help_panel=CONFIG,
        help="Config override; repeatable. See `zoo info MODEL`.")] = None,
    config_file: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", rich_help_panel=CONFIG, help="A TOML or JSON file of config keys.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b", metavar="N", rich_help_panel=CONFIG,
                                                   help="Images per batch (default: the paper's).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", rich_help_panel=CONFIG,
                                             help="Random seed (default 0).")] = None,
    noise: Annotated[str | None, typer.Option(
        "--noise", metavar="PRIOR", rich_help_panel=CONFIG,
        help="Latent prior: normal:MEAN,STD, uniform:LOW,HIGH, gamma:SHAPE,SCALE, laplace:LOC,SCALE.")] = None,
    augment: Annotated[str | None, typer.Option(
        "--augment", metavar="ada|POLICY", rich_help_panel=CONFIG,
        help="Augment every image the discriminator sees: ada (adaptive: its strength follows how much D "
             "overfits; for small data sets) or a DiffAugment policy such as translation,cutout. GANs of the "
             "dcgan family (dcgan, cgan, wgan, wgan-gp, r3gan).")] = None,
    mirror: Annotated[bool, typer.Option(
        "--mirror", rich_help_panel=CONFIG,
        help="Flip each real image left to right half the time: twice the data for photos, faces or garments "
             "(not for digits or text).")] = False,
    text_encoder: Annotated[Path | None, typer.Option(
        "--text-encoder", metavar="DIR", rich_help_panel=CONFIG,
        help="Text-conditional models: read text with the sentence-transformers model in this folder (one you "
             "have; never downloaded) instead of zoo's own encoder. Needs pip install 'zoo-gan[text]'.")] = None,
    clip_grad: Annotated[float | None, typer.Option(
        "--clip-grad", metavar="NORM", rich_help_panel=CONFIG,
        help="Clip each optimiser's gradients to this global norm; 0 (default) = off. A resumed run keeps "
             "its own.")] = None,
    out: Annotated[Path | None, out_option("a new run folder, runs/MODEL-DATA-TIME", RUN)] = None,
    resume: Annotated[str | None, typer.Option(
        "--resume", metavar="RUN", rich_help_panel=RUN,
        help="Continue a run: its folder, checkpoint, or the model's latest run.")] = None,
    init_from: Annotated[str | None, typer.Option(
        "--init-from", metavar="RUN", rich_help_panel=RUN,
        help="Start a new run from another run's weights (a warm start, not a resume): every weight whose name "
             "and shape match.")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", rich_help_panel=RUN,
        help="Delete the zoo run already in --out (its run.json, checkpoint.safetensors, best.safetensors, "
             "previews, metrics, charts and W&B files: everything in the folder) and train a new one there. "
             "A folder that is not a zoo run is never deleted.")] = False,
    force: Annotated[bool, typer.Option("--force", hidden=True, help="Before --replace had its own name: the same.")
                     ] = False,
    preset: Annotated[str | None, typer.Option(
        "--preset", metavar="NAME", rich_help_panel=CONFIG,
        help="A named recipe of the model's (its data, length and config keys, with the time and figures "
             "measured for it): `zoo info MODEL` lists them. Flags and --set given too take precedence.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", rich_help_panel=RUN,
                                          help="Print the resolved config and plan, then stop.")] = False,
    preview_every: Annotated[int | None, typer.Option(
        "--preview-every", metavar="N", rich_help_panel=WATCH,
        help="Steps between preview grids (default: about 40 per run).")] = None,
    eval_every: Annotated[int | None, typer.Option(
        "--eval-every", metavar="N", rich_help_panel=WATCH,
        help="Every N steps, a quick Frechet distance of 1,000 fixed samples to the held-out images (translators: "
             "L1), logged and plotted; the best checkpoint is kept as best.safetensors.")] = None,
    eval_features: Annotated[str | None, typer.Option(
        "--eval-features", metavar="EXTRACTOR", rich_help_panel=WATCH,
        help="Feature extractor for --eval-every, which it needs (default: as zoo eval's; see zoo eval --help). "
             "A resumed run keeps its own.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        "--checkpoint-every", metavar="N", rich_help_panel=WATCH,
        help="Also save a checkpoint every N steps (default: every 10 minutes of training, and with a preview "
             "when the last is a minute old); a kill loses at most the steps since. A resumed run keeps "
             "its own.")] = None,
    wandb: Annotated[WandbMode, wandb_option(WATCH)] = "auto",
    no_wandb: Annotated[bool, no_wandb_option(WATCH)] = False,
    device: Annotated[str, device_option(SPEED)] = "auto",
    precision: Annotated[str | None, typer.Option(
        "--precision", metavar="fp32|bf16|fp16", rich_help_panel=SPEED,
        help="fp32 (default), bf16 (autocast; CPUs and recent GPUs) or fp16 (CUDA, with a loss scaler). A "
             "resumed run keeps its own.")] = None,
    compile: Annotated[bool, typer.Option(
        "--compile", rich_help_panel=SPEED,
        help="torch.compile each network (a minute or more of compiling first; pays on GPUs and long runs).")
    ] = False,
    channels_last: Annotated[bool, typer.Option(
        "--channels-last/--no-channels-last", rich_help_panel=SPEED,
        help="Convolutional networks in channels-last memory (faster convolutions on CPUs and GPUs).")] = True,
    tf32: Annotated[bool, typer.Option(
        "--tf32/--no-tf32", rich_help_panel=SPEED,
        help="On CUDA GPUs, float32 matrix products and convolutions in TF32 (--no-tf32: full float32).")] = True,
) -> None:
    """Train a model; preview grids as it learns, checkpoints, loss curves and a GIF.

    Config precedence: the plugin's defaults < --config file < --set key=value < flags
    such as --batch-size. Ctrl-C saves a checkpoint; --resume continues from it.

    Under torchrun, each process trains on its share of every batch (--batch-size is the
    global batch) and rank 0 writes the run; a run resumes at any number of processes.
    """
    from zoo.pipelines.plan import TrainOptions, plan
    from zoo.pipelines.train import train as run_training

    opts = TrainOptions(model=model, data=data, epochs=epochs, steps=steps, kimg=kimg, minutes=minutes,
                        batch_size=batch_size, seed=seed, device=device, out=out, sets=list(sets or []),
                        config_file=config_file, resume=resume, init_from=init_from, force=replace or force,
                        wandb=wandb_mode(wandb, no_wandb), size=size, channels=channels,
                        data_dir=data_dir, classes=classes, subset=subset, direction=direction, noise=noise,
                        augment=augment, mirror=mirror, text_encoder=text_encoder,
                        precision=precision, clip_grad=clip_grad, preview_every=preview_every,
                        eval_every=eval_every, eval_features=eval_features, compile=compile,
                        checkpoint_every=checkpoint_every,
                        channels_last=channels_last, tf32=tf32, preset=preset, command=_as_typed())
    if dry_run:
        import json

        from zoo.config import to_dict

        p = plan(opts)
        given = p.options or opts
        length = {k: getattr(given, k) for k in ("epochs", "steps", "kimg", "minutes") if getattr(given, k) is not None}
        console.print_json(json.dumps({"model": p.cls.name, "data": p.data, "seed": p.seed, "length": length,
                                       "resume_from": str(p.resume_from) if p.resume_from else None,
                                       "preset": p.preset, "config": to_dict(p.config)}))
        return
    run_training(opts, console=console)


def _as_typed() -> str | None:
    """The command line as the user typed it (zoo's own, or ``python -m zoo``'s under torchrun),
    for the run's record; None when zoo was not started from a command line (tests, notebooks)."""
    import shlex
    import sys
    from pathlib import Path

    started = Path(sys.argv[0]).name
    if started not in ("zoo", "__main__.py") or sys.argv[1:2] != ["train"]:
        return None
    return shlex.join(["zoo", *sys.argv[1:]])
