"""Issue 16's first probe: zoo's DCGAN step (the lab's 28x28 networks, batch 128, the offline
MNIST) under each single-process option, and where a step's time goes.

Each option is timed over the same steps after a warm-up (compilation included in the
warm-up, reported apart): fp32 as the pipeline runs it, channels-last weights, fused Adam,
``torch.compile`` per network, bf16 autocast. ``--profile`` prints torch.profiler's table of
one fp32 run's operators by their own CPU time.

    python benchmarks/step_options.py                  # every option (about 5 minutes here)
    python benchmarks/step_options.py fp32 channels-last
    python benchmarks/step_options.py --profile
    python benchmarks/step_options.py fp32 --steps 3 --warmup 1   # a smoke test

Writes benchmarks/results/step-options.json (``figures.OPTION``: images_per_s, warmup_s,
load_before; OPTION fp32, channels_last, fused_adam, compile, bf16), other options or steps
naming themselves (step-options-fp32-channels-last-...), and with ``--profile``
step-options-profile.json (``figures``: convolution_share of the step's own CPU time, and the
top operators with their share).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

import zoo
from zoo.data.memory import TensorBatches
from zoo.pipelines.prep import prepare
from zoo.plugins.dcgan import DCGAN, DCGANConfig
from zoo.training.engine import Engine, EngineOptions

sys.path.insert(0, str(Path(__file__).parent))

from commands import slug  # noqa: E402
from record import write_result  # noqa: E402

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
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=14))
    total = sum(e.self_cpu_time_total for e in averages)
    top = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:14]
    convolution = sum(e.self_cpu_time_total for e in averages if "conv" in e.key.lower())
    write_result(slug("step-options-profile", "" if steps == 60 else f"{steps}steps"),
                 {"convolution_share": convolution / total,
                  "top": [{"operator": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in top]},
                 steps=steps, threads=torch.get_num_threads(), model="dcgan, the lab's networks, batch 128, fp32")


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
    figures = {}
    for option in args.options or OPTIONS:
        before = round(os.getloadavg()[0], 2)
        rate, warm = timed(option, args.steps, args.warmup)
        figures[option.replace("-", "_")] = {"images_per_s": round(rate, 1), "warmup_s": round(warm, 1),
                                             "load_before": before}
        print(f"{option:14} {rate:8.0f} images/s   warm-up {warm:5.1f} s", flush=True)
    default = (args.steps, args.warmup) == (60, 10)
    write_result(slug("step-options", *args.options, "" if default else f"{args.steps}steps-warmup{args.warmup}"),
                 figures, steps=args.steps, warmup=args.warmup, threads=torch.get_num_threads(),
                 model="dcgan, the lab's networks (architecture=lab, loss=cross_entropy), batch 128, MNIST")


if __name__ == "__main__":
    main()
