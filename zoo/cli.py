"""The ``zoo`` command line. Each command parses, then hands off to one pipeline function.

Expected errors end as one line and a non-zero exit (2 for bad usage); ``--verbose`` shows
the traceback. Heavy imports (torch, wandb, matplotlib) happen inside the commands, so
``zoo --help`` is instant.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import ZooError

app = typer.Typer(
    name="zoo",
    help="A zoo of GANs and their relatives: prepare data, train, sample.\n\n"
         "Start with [bold]zoo list[/], then [bold]zoo train dcgan --data mnist[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()
err_console = Console(stderr=True)
_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        console.print(f"zoo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    _state["verbose"] = verbose


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ZooError into one red line and its exit code (a traceback with --verbose)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ZooError as exc:
            if _state["verbose"]:
                raise
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def examples(*lines: str) -> str:
    return "[bold]Examples[/]\n\n" + "\n\n".join(f"  [cyan]{line}[/]" for line in lines)


# -- zoo list / zoo info ---------------------------------------------------------------------

@app.command("list", epilog=examples("zoo list"))
@handles_errors
def list_models() -> None:
    """List every model plugin: built-in and installed, working or broken."""
    from rich.table import Table

    from .registry import registry

    reg = registry()
    table = Table(title="zoo models", show_lines=False)
    for column in ("name", "family", "capabilities", "summary", "package", "status"):
        table.add_column(column, overflow="fold")
    for entry in reg.entries():
        conflict = reg.conflict(entry.name)
        if entry.model is not None:
            m = entry.model
            caps = ", ".join(sorted(str(c) for c in m.capabilities)) or "-"
            status = "[red]name conflict[/]" if conflict else "[green]ok[/]"
            table.add_row(m.name, m.family, caps, m.summary, entry.package, status)
        else:
            table.add_row(entry.name, "?", "?", f"[red]{entry.error}[/]", entry.package, "[red]broken[/]")
    console.print(table)
    for name in reg.names():
        if problem := reg.conflict(name):
            err_console.print(f"[yellow]warning:[/] {problem}")


@app.command(epilog=examples("zoo info dcgan"))
@handles_errors
def info(model: Annotated[str, typer.Argument(help="Model name, as in `zoo list`.")]) -> None:
    """Show a model: its paper, capabilities and every config key with its default."""
    from rich.table import Table

    from .config import describe
    from .registry import registry

    cls = registry().get(model)
    caps = ", ".join(sorted(str(c) for c in cls.capabilities)) or "none"
    console.print(f"[bold]{cls.name}[/] ({cls.family}, plugin version {cls.version})\n{cls.summary}\n"
                  f"paper: {cls.paper or '-'}\ncapabilities: {caps}")
    table = Table(title=f"{cls.name} config (change with --set key=value)")
    for column in ("key", "type", "default", "help"):
        table.add_column(column, overflow="fold")
    for f in describe(cls.Config):
        table.add_row(f.name, f.type, repr(f.default), f.help)
    console.print(table)


# -- zoo prep ----------------------------------------------------------------------------------

DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Look here first for the raw files (then $ZOO_DATA_DIR, the cache, system "
                       "folders; then download).")]
Size = Annotated[Optional[int], typer.Option("--size", help="Resize (and centre-crop) to SIZE x SIZE.")]
Channels = Annotated[Optional[int], typer.Option("--channels", help="1 (grayscale) or 3 (RGB).")]
Classes = Annotated[Optional[str], typer.Option(
    "--classes", help="Keep only these classes, by name or index: 7, or sneaker,sandal.")]
Subset = Annotated[Optional[str], typer.Option(
    "--subset", help="Keep part of the data set, START:STOP in its order: 0:8000, 8000:.")]


@app.command(epilog=examples("zoo prep mnist", "zoo prep fashion-mnist --size 32",
                             "zoo prep mnist --classes 7", "zoo prep fashion-mnist --classes sneaker,sandal",
                             "zoo prep folder:~/pictures/cats --size 64 --channels 3",
                             "zoo prep mnist --data-dir ~/datasets/mnist"))
@handles_errors
def prep(
    data: Annotated[str, typer.Argument(help="mnist, fashion-mnist, cifar10, svhn, or folder:PATH.")],
    size: Size = None,
    channels: Channels = None,
    data_dir: DataDir = None,
    classes: Classes = None,
    subset: Subset = None,
    force: Annotated[bool, typer.Option("--force", help="Prepare again even if cached.")] = False,
) -> None:
    """Prepare a data set once (train does this on demand) and draw what is in it."""
    from rich.table import Table

    from .pipelines.prep import describe, prepare

    prepared = prepare(data, size=size, channels=channels, data_dir=data_dir, classes=classes,
                       subset=subset, force=force, console=err_console)
    table = Table(show_header=False, title=f"prepared {data}")
    for key, value in describe(prepared).items():
        table.add_row(key, str(value))
    for note in prepared.meta.get("notes", []):
        table.add_row("note", note)
    pictures = ", ".join(p.name for p in sorted(prepared.path.glob("*.png")))
    table.add_row("pictures", pictures)
    console.print(table)


# -- zoo train ---------------------------------------------------------------------------------

@app.command(epilog=examples(
    "zoo train dcgan --data mnist --epochs 5",
    "zoo train dcgan --data mnist --steps 1560 --set real_label=0.9",
    "zoo train dcgan --data folder:~/monet --size 64 --channels 3 --device cuda",
    "zoo train dcgan --data mnist --dry-run",
    "zoo train cgan --data fashion-mnist --epochs 20",
    "zoo train wgan-gp --data mnist --steps 100000 --minutes 10",
    "zoo train dcgan --data mnist --set loss=hinge --set ema=0.999",
    "zoo train dcgan --data mnist --classes 7",
    "zoo train dcgan --data mnist --noise uniform:-1,1",
    "zoo train dcgan --resume runs/dcgan-mnist-20261122-101500 --epochs 10",
))
@handles_errors
def train(
    model: Annotated[str, typer.Argument(help="Model name, as in `zoo list`.")],
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="mnist, fashion-mnist, cifar10, svhn or folder:PATH.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Passes over the data (default 5).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Training steps instead of epochs.")] = None,
    minutes: Annotated[Optional[float], typer.Option("--minutes", help="Stop after this much training time, if the steps are not done first (--resume continues).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Images per batch (default: the paper's).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (default 0).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default runs/MODEL-DATA-TIME).")] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Config override key=value; repeatable. See `zoo info MODEL`.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="A TOML or JSON file of config keys.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue a run: its folder, checkpoint, or the model's latest run.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the run already in --out.")] = False,
    size: Size = None,
    channels: Channels = None,
    data_dir: DataDir = None,
    classes: Classes = None,
    subset: Subset = None,
    noise: Annotated[Optional[str], typer.Option("--noise", help="Latent prior: normal:MEAN,STD, uniform:LOW,HIGH, gamma:SHAPE,SCALE, laplace:LOC,SCALE.")] = None,
    wandb: Annotated[str, typer.Option("--wandb", help="auto (online if logged in, else offline), online or offline.")] = "auto",
    no_wandb: Annotated[bool, typer.Option("--no-wandb", help="Do not log to Weights & Biases.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and plan, then stop.")] = False,
) -> None:
    """Train a model; a preview grid each epoch, checkpoints, loss curves and a GIF.

    Config precedence: the plugin's defaults < --config file < --set key=value < flags
    such as --batch-size. Ctrl-C saves a checkpoint; --resume continues from it.
    """
    from .pipelines.train import TrainOptions, plan, train as run_training

    if wandb not in ("auto", "online", "offline"):
        raise typer.BadParameter("must be auto, online or offline", param_hint="--wandb")
    opts = TrainOptions(model=model, data=data, epochs=epochs, steps=steps, minutes=minutes, batch_size=batch_size,
                        seed=seed, device=device, out=out, sets=list(sets or []),
                        config_file=config_file, resume=resume, force=force,
                        wandb="off" if no_wandb else wandb, size=size, channels=channels,
                        data_dir=data_dir, classes=classes, subset=subset, noise=noise)
    if dry_run:
        import json

        from .config import to_dict

        p = plan(opts)
        console.print_json(json.dumps({"model": p.cls.name, "data": p.data, "seed": p.seed,
                                       "resume_from": str(p.resume_from) if p.resume_from else None,
                                       "config": to_dict(p.config)}))
        return
    run_training(opts, console=console)


# -- zoo sample --------------------------------------------------------------------------------

@app.command(epilog=examples("zoo sample dcgan --n 64 --out samples/",
                             "zoo sample cgan --digit 7 --n 100 --out sevens/",
                             "zoo sample cgan --n 100                      # a row per class",
                             "zoo sample cgan --class sneaker",
                             "zoo sample dcgan --truncation 0.7",
                             "zoo sample runs/dcgan-mnist-20261122-101500 --n 16 --seed 3",
                             "zoo sample runs/dcgan-mnist-20261122-101500/checkpoint.safetensors"))
@handles_errors
def sample(
    target: Annotated[str, typer.Argument(help="A run folder, a checkpoint file, or a model name (its latest run).")],
    n: Annotated[int, typer.Option("--n", "-n", help="How many images.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the latent vectors.")] = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the PNGs (default samples/RUN-seedS).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already holds files.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    class_: Annotated[Optional[str], typer.Option("--class", help="Class-conditional models: the class to make, by name or index.")] = None,
    digit: Annotated[Optional[str], typer.Option("--digit", help="--class for digit data sets (mnist, svhn).")] = None,
    noise: Annotated[Optional[str], typer.Option("--noise", help="Draw z from another prior than the model was trained with (an experiment).")] = None,
    truncation: Annotated[Optional[float], typer.Option("--truncation", help="Keep z likely: normal within T std devs, uniform the middle fraction T.")] = None,
) -> None:
    """Generate N images from a trained model: one PNG each plus grid.png.

    Class-conditional models make --class (or --digit) only, or else a grid with one row
    per class; each file name starts with its class."""
    from .pipelines.sample import sample as run_sampling

    run_sampling(target, n=n, seed=seed, out=out, force=force, device=device, class_=class_,
                 digit=digit, noise=noise, truncation=truncation, console=console)


# -- zoo interpolate / invert / explore: the latent space ---------------------------------

Target = Annotated[str, typer.Argument(help="A run folder, a checkpoint file, or a model name (its latest run).")]
Out = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder.")]
Force = Annotated[bool, typer.Option("--force", help="Write into a folder that already holds files.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
Class = Annotated[Optional[str], typer.Option("--class", help="Class-conditional models: the class, by name or index.")]
Digit = Annotated[Optional[str], typer.Option("--digit", help="--class for digit data sets.")]


def _ints(text: Optional[str], flag: str) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("takes seeds as integers, comma-separated: 1 or 1,3,5", param_hint=flag) from None


@app.command(epilog=examples(
    "zoo interpolate dcgan --from-seed 1 --to-seed 2 --steps 10 --method slerp",
    "zoo interpolate dcgan --from-seed 1,3,5 --to-seed 2,4,6          # three rows",
    "zoo interpolate dcgan --from-image a.png --to-image b.png        # inverts both first",
    "zoo interpolate cgan --from-class 1 --to-class 7 --from-seed 0 --to-seed 0",
))
@handles_errors
def interpolate(
    target: Target,
    from_seed: Annotated[Optional[str], typer.Option("--from-seed", help="Start seed(s), comma-separated for several rows.")] = None,
    to_seed: Annotated[Optional[str], typer.Option("--to-seed", help="End seed(s), as many as --from-seed.")] = None,
    from_latent: Annotated[Optional[Path], typer.Option("--from-latent", help="Start latent(s): a .safetensors from zoo invert.")] = None,
    to_latent: Annotated[Optional[Path], typer.Option("--to-latent", help="End latent(s).")] = None,
    from_image: Annotated[Optional[Path], typer.Option("--from-image", help="Start image (inverted first).")] = None,
    to_image: Annotated[Optional[Path], typer.Option("--to-image", help="End image (inverted first).")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Images along each path, ends included.")] = 10,
    method: Annotated[Optional[str], typer.Option("--method", help="lerp or slerp (default: slerp for Gaussian priors).")] = None,
    class_: Class = None,
    digit: Digit = None,
    from_class: Annotated[Optional[str], typer.Option("--from-class", help="Conditional models: walk from this class...")] = None,
    to_class: Annotated[Optional[str], typer.Option("--to-class", help="...to this one.")] = None,
    invert_steps: Annotated[int, typer.Option("--invert-steps", help="Optimisation steps when inverting images.")] = 300,
    restarts: Annotated[int, typer.Option("--restarts", help="Random starts when inverting images.")] = 4,
    out: Out = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Interpolate between two points of a model's latent space: a strip, a GIF, the latents."""
    from .pipelines.interpolate import interpolate as run

    run(target, from_seed=_ints(from_seed, "--from-seed"), to_seed=_ints(to_seed, "--to-seed"),
        from_latent=from_latent, to_latent=to_latent, from_image=from_image, to_image=to_image,
        steps=steps, method=method, class_=class_, digit=digit, from_class=from_class, to_class=to_class,
        invert_steps=invert_steps, restarts=restarts, out=out, force=force, device=device, console=console)


@app.command(epilog=examples(
    "zoo invert dcgan target.png --steps 500 --restarts 8",
    "zoo invert dcgan photos/ --out fits/                 # every image in a folder",
    "zoo invert cgan seven.png --digit 7",
))
@handles_errors
def invert(
    model: Target,
    target: Annotated[Path, typer.Argument(help="An image file (any size or format) or a folder of them.")],
    steps: Annotated[int, typer.Option("--steps", help="Optimisation steps.")] = 500,
    restarts: Annotated[int, typer.Option("--restarts", help="Random starts; the best fit wins.")] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Adam's starting learning rate (cosine decay).")] = 0.05,
    ssim_weight: Annotated[float, typer.Option("--ssim-weight", help="Weight of the structural term (1 - SSIM).")] = 0.1,
    prior_weight: Annotated[float, typer.Option("--prior-weight", help="Weight of the penalty keeping z plausible under the prior.")] = 0.001,
    class_: Class = None,
    digit: Digit = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the random starts.")] = 0,
    out: Out = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Find the latent vector whose image best matches a target: latent, reconstruction,
    evolution strip and MSE / PSNR / SSIM."""
    from .pipelines.invert import invert as run

    run(model, target, steps=steps, restarts=restarts, lr=lr, ssim_weight=ssim_weight,
        prior_weight=prior_weight, class_=class_, digit=digit, seed=seed, out=out, force=force,
        device=device, console=console)


def _span(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter("takes LOW,HIGH, like -3,3", param_hint="--range") from None
    return low, high


@app.command(epilog=examples(
    "zoo explore dcgan --dim 5 --range -3,3 --steps 9",
    "zoo explore dcgan --dims 10                         # a row for each of the first 10",
    "zoo explore dcgan --dim 0 --latent fits/cat.latent.safetensors",
))
@handles_errors
def explore(
    target: Target,
    dim: Annotated[Optional[int], typer.Option("--dim", help="The latent coordinate to vary.")] = None,
    dims: Annotated[Optional[int], typer.Option("--dims", help="Vary each of the first K coordinates, a row each.")] = None,
    span: Annotated[str, typer.Option("--range", help="LOW,HIGH values the coordinate takes.")] = "-3,3",
    steps: Annotated[int, typer.Option("--steps", help="Values from LOW to HIGH.")] = 9,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the base latent.")] = 0,
    latent: Annotated[Optional[Path], typer.Option("--latent", help="Base latent from a file instead of a seed.")] = None,
    class_: Class = None,
    digit: Digit = None,
    out: Out = None,
    force: Force = False,
    device: Device = "auto",
) -> None:
    """Vary one latent value at a time around a base latent and see what it does."""
    from .pipelines.interpolate import explore as run

    run(target, dim=dim, dims=dims, span=_span(span), steps=steps, seed=seed, latent=latent,
        class_=class_, digit=digit, out=out, force=force, device=device, console=console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
