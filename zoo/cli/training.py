"""zoo train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import Channels, Classes, DataDir, DataDirection, Size, Subset, app, console, examples, handles_errors

# -- zoo train ---------------------------------------------------------------------------------

@app.command(epilog=examples(
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
    "zoo train dcgan --resume runs/dcgan-mnist-20261122-101500 --epochs 10",
    "zoo train dcgan --data mnist --precision bf16 --clip-grad 10",
    "zoo train pix2pix --data paired:~/datasets/facades --direction BtoA",
    "zoo train cgan --data fashion-mnist --init-from runs/cgan-mnist-20261122-101500",
    "zoo train dcgan --data mnist --eval-every 500      # figures during training; best.safetensors kept",
    "zoo train dcgan --data mnist --precision bf16 --compile",
    "torchrun --nproc_per_node 8 -m zoo train dcgan --data cifar10      # 8 GPUs, the batch split 8 ways",
    "torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint HOST:29500 -m zoo train progan --data folder:~/faces",
))
@handles_errors
def train(
    model: Annotated[str, typer.Argument(help="Model name, as in `zoo list`.")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="mnist, fashion-mnist, cifar10, svhn, folder:PATH, or paired:/unpaired: data (see zoo prep --help).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Passes over the data (default 5).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps instead of epochs.")] = None,
    kimg: Annotated[float | None, typer.Option("--kimg", help="Train on this many thousand images instead (ProGAN's unit).")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Alone: train for this long (however many epochs that is). With --steps, --epochs or --kimg: stop after this much training time if they are not done first. Counted across --resume.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b", help="Images per batch (default: the paper's).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/MODEL-DATA-TIME).")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Config override key=value; repeatable. See `zoo info MODEL`.")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="A TOML or JSON file of config keys.")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue a run: its folder, checkpoint, or the model's latest run.")] = None,
    init_from: Annotated[str | None, typer.Option("--init-from", help="Start a new run from another run's weights (a warm start, not a resume): every weight whose name and shape match.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the run already in --out.")] = False,
    size: Size = None,
    channels: Channels = None,
    data_dir: DataDir = None,
    classes: Classes = None,
    subset: Subset = None,
    direction: DataDirection = None,
    precision: Annotated[str | None, typer.Option("--precision", help="fp32 (default), bf16 (autocast; CPUs and recent GPUs) or fp16 (CUDA, with a loss scaler). A resumed run keeps its own.")] = None,
    clip_grad: Annotated[float | None, typer.Option("--clip-grad", help="Clip each optimiser's gradients to this global norm; 0 (default) = off. A resumed run keeps its own.")] = None,
    preview_every: Annotated[int | None, typer.Option("--preview-every", help="Steps between preview grids (default: about 40 per run).")] = None,
    eval_every: Annotated[int | None, typer.Option("--eval-every", help="Every N steps, a quick Frechet distance of 1,000 fixed samples to the held-out images (translators: L1), logged and plotted; the best checkpoint is kept as best.safetensors.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option("--checkpoint-every", help="Also save a checkpoint every N steps (default: every 10 minutes of training, and with a preview when the last is a minute old); a kill loses at most the steps since. A resumed run keeps its own.")] = None,
    eval_features: Annotated[str | None, typer.Option("--eval-features", help="Feature extractor for --eval-every, which it needs (default: as zoo eval's; see zoo eval --help). A resumed run keeps its own.")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile each network (a minute or more of compiling first; pays on GPUs and long runs).")] = False,
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="Convolutional networks in channels-last memory (faster convolutions on CPUs and GPUs).")] = True,
    tf32: Annotated[bool, typer.Option("--tf32/--no-tf32", help="On CUDA GPUs, float32 matrix products and convolutions in TF32 (--no-tf32: full float32).")] = True,
    text_encoder: Annotated[Path | None, typer.Option("--text-encoder", help="Text-conditional models: read text with the sentence-transformers model in this folder (one you have; never downloaded) instead of zoo's own encoder. Needs pip install 'zoo-gan[text]'.")] = None,
    noise: Annotated[str | None, typer.Option("--noise", help="Latent prior: normal:MEAN,STD, uniform:LOW,HIGH, gamma:SHAPE,SCALE, laplace:LOC,SCALE.")] = None,
    wandb: Annotated[str, typer.Option("--wandb", help="auto (online if logged in, else offline), online or offline.")] = "auto",
    no_wandb: Annotated[bool, typer.Option("--no-wandb", help="Do not log to Weights & Biases.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and plan, then stop.")] = False,
) -> None:
    """Train a model; preview grids as it learns, checkpoints, loss curves and a GIF.

    Config precedence: the plugin's defaults < --config file < --set key=value < flags
    such as --batch-size. Ctrl-C saves a checkpoint; --resume continues from it.

    Under torchrun, each process trains on its share of every batch (--batch-size is the
    global batch) and rank 0 writes the run; a run resumes at any number of processes.
    """
    from ..pipelines.train import TrainOptions, plan
    from ..pipelines.train import train as run_training

    if wandb not in ("auto", "online", "offline"):
        raise typer.BadParameter("must be auto, online or offline", param_hint="--wandb")
    opts = TrainOptions(model=model, data=data, epochs=epochs, steps=steps, kimg=kimg, minutes=minutes,
                        batch_size=batch_size, seed=seed, device=device, out=out, sets=list(sets or []),
                        config_file=config_file, resume=resume, init_from=init_from, force=force,
                        wandb="off" if no_wandb else wandb, size=size, channels=channels,
                        data_dir=data_dir, classes=classes, subset=subset, direction=direction, noise=noise,
                        text_encoder=text_encoder,
                        precision=precision, clip_grad=clip_grad, preview_every=preview_every,
                        eval_every=eval_every, eval_features=eval_features, compile=compile,
                        checkpoint_every=checkpoint_every,
                        channels_last=channels_last, tf32=tf32)
    if dry_run:
        import json

        from ..config import to_dict

        p = plan(opts)
        console.print_json(json.dumps({"model": p.cls.name, "data": p.data, "seed": p.seed,
                                       "resume_from": str(p.resume_from) if p.resume_from else None,
                                       "config": to_dict(p.config)}))
        return
    run_training(opts, console=console)
