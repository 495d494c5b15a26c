"""Issue 16's first probe: zoo's DCGAN step (the lab's 28x28 networks, batch 128, the offline
MNIST) under each single-process option, and where a step's time goes.

Each option is timed over the same steps after a warm-up (compilation included in the
warm-up, reported apart): fp32 as the pipeline runs it, channels-last weights, fused Adam,
``torch.compile`` per network, bf16 autocast. ``--profile`` prints torch.profiler's table of
one fp32 run's operators by their own CPU time.

    python benchmarks/step_options.py                  # every option
    python benchmarks/step_options.py fp32 channels-last
    python benchmarks/step_options.py --profile
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo
from zoo.data.memory import TensorBatches
from zoo.pipelines.prep import prepare
from zoo.plugins.dcgan import DCGAN, DCGANConfig
from zoo.training.engine import Engine, EngineOptions

OPTIONS = ("fp32", "channels-last", "fused-adam", "compile", "bf16")


def model_for(option: str, spec: zoo.DataSpec) -> DCGAN:
    torch.manual_seed(999)
    model = DCGAN(DCGANConfig(architecture="lab", loss="cross_entropy"), spec)
    if option == "channels-last":
        model = model.to(memory_format=torch.channels_last)
    model.engine = Engine(EngineOptions("bf16" if option == "bf16" else "fp32"), torch.device("cpu"))
    model.optimizers = model.configure_optimizers()
    if option == "fused-adam":
        model.optimizers = {name: torch.optim.Adam(opt.param_groups[0]["params"], lr=opt.param_groups[0]["lr"],
                                                   betas=opt.param_groups[0]["betas"], fused=True)
                            for name, opt in model.optimizers.items()}
    if option == "compile":
        model.generator = torch.compile(model.generator)  # type: ignore[assignment]
        model.discriminator = torch.compile(model.discriminator)  # type: ignore[assignment]
    return model


def timed(option: str, steps: int, warmup: int) -> tuple[float, float]:
    """(images/s over ``steps`` after ``warmup`` steps, seconds of the warm-up)."""
    data = prepare("mnist")
    model = model_for(option, data.spec)
    batches = TensorBatches(data.images, data.labels, 128, seed=0)
    started = time.perf_counter()
    warm = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            warm = time.perf_counter() - started
            started = time.perf_counter()
        with model.engine.autocast():
            metrics = model.train_step(batches, zoo.Progress(i, warmup + steps, 0))
        {k: float(v) for k, v in metrics.items()}  # what the pipeline reads
    return steps * 128 / (time.perf_counter() - started), warm


def profile(steps: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    data = prepare("mnist")
    model = model_for("fp32", data.spec)
    batches = TensorBatches(data.images, data.labels, 128, seed=0)
    for i in range(5):
        model.train_step(batches, zoo.Progress(i, steps, 0))
    with profiler(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            metrics = model.train_step(batches, zoo.Progress(i, steps, 0))
            {k: float(v) for k, v in metrics.items()}
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("options", nargs="*", help=f"options to time, of {', '.join(OPTIONS)} (default: all)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="profile the fp32 step instead")
    args = parser.parse_args()
    unknown = [o for o in args.options if o not in OPTIONS]
    if unknown:
        parser.error(f"unknown option(s) {', '.join(unknown)}; choose from {', '.join(OPTIONS)}")
    if args.profile:
        profile(args.steps)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; lab DCGAN, MNIST, batch 128")
    for option in args.options or OPTIONS:
        rate, warm = timed(option, args.steps, args.warmup)
        print(f"{option:14} {rate:8.0f} images/s   warm-up {warm:5.1f} s", flush=True)


if __name__ == "__main__":
    main()
