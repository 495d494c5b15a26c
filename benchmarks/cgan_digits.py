"""Issue 3's acceptance: "only the digit 7", both ways a student would do it.

1. ``cgan`` on the first 5,000 offline MNIST digits, then 1,000 samples of every digit.
2. ``dcgan --classes 7`` on the 7s among those 5,000, then 1,000 samples.

A CNN trained only on real digits 5,000-8,999 (held apart from both GANs, checked on
9,000-9,999) labels the samples. Targets: >= 95% of cgan's sevens and >= 90% of every cgan
digit classified as asked; >= 95% of the dcgan-on-7s samples classified as 7. Diversity is
the mean distance between two samples over that between two real digits of the class:
near 1 is as varied as the data, near 0 a collapse that a classifier alone would not see.
Runs and sample grids are kept in benchmarks/results/cgan_digits/.

    python benchmarks/cgan_digits.py --steps 3000 --dcgan-steps 1500
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from digits import classifier, load_pngs, predict  # noqa: E402

from zoo.metrics import diversity  # noqa: E402

from zoo.data import to_float  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.pipelines.sample import sample  # noqa: E402
from zoo.pipelines.train import TrainOptions, train  # noqa: E402

GAN_DATA = "0:5000"
RESULTS = Path(__file__).parent / "results" / "cgan_digits"
QUIET = Console(file=io.StringIO())


def timed_train(opts: TrainOptions) -> tuple[Path, float]:
    started = time.perf_counter()
    run = train(opts, console=QUIET)
    return run, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="cgan training steps")
    parser.add_argument("--dcgan-steps", type=int, default=1500, help="dcgan --classes 7 training steps")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--conditioning", default="concat", choices=["concat", "projection", "acgan"])
    parser.add_argument("--cgan-set", action="append", default=[], help="extra --set for cgan")
    parser.add_argument("--only", choices=["cgan", "dcgan"], help="run one half")
    parser.add_argument("--dcgan-set", action="append", default=[], help="extra --set for dcgan")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    net, accuracy = classifier(train=slice(5000, 9000), check=slice(9000, None), epochs=15)
    print(f"judge: CNN on real digits 5000-8999, accuracy {accuracy:.3f} on real digits 9000-9999")
    real = prepare("mnist", subset=GAN_DATA)
    real_images = to_float(real.images)
    if args.only != "dcgan":
        conditional(args, net, real, real_images)
    if args.only != "cgan":
        only_sevens(args, net, real, real_images)


def conditional(args: argparse.Namespace, net: torch.nn.Module, real, real_images: torch.Tensor) -> None:
    for old in RESULTS.glob("cgan*"):
        shutil.rmtree(old)
    run, seconds = timed_train(TrainOptions(
        model="cgan", data="mnist", subset=GAN_DATA, steps=args.steps, wandb="off", out=RESULTS / "cgan",
        sets=[f"conditioning={args.conditioning}", *args.cgan_set]))
    print(f"\ncgan ({args.conditioning}) {' '.join(args.cgan_set)} on mnist {GAN_DATA}: {args.steps} steps in {seconds:.0f}s")
    shares, truncated_shares = [], []
    for digit in range(10):
        folder = sample(str(run), n=args.per_class, seed=digit, digit=str(digit),
                        out=RESULTS / f"cgan-digit{digit}", console=QUIET)
        images = load_pngs(folder)
        shares.append(float((predict(net, images).argmax(1) == digit).float().mean()))
        spread = diversity(images, real_images[real.labels == digit])
        folder = sample(str(run), n=args.per_class, seed=digit, digit=str(digit), truncation=1.0,
                        out=RESULTS / f"cgan-digit{digit}-truncated", console=QUIET)
        truncated = load_pngs(folder)
        truncated_shares.append(float((predict(net, truncated).argmax(1) == digit).float().mean()))
        print(f"  --digit {digit}: {shares[-1]:6.1%} of {args.per_class} classified as {digit}, diversity "
              f"{spread:.2f}  | --truncation 1: {truncated_shares[-1]:6.1%}, diversity "
              f"{diversity(truncated, real_images[real.labels == digit]):.2f}")
    for name, values in (("default", shares), ("--truncation 1", truncated_shares)):
        print(f"  {name}: sevens {values[7]:.1%} (target 95%), worst digit {min(values):.1%} "
              f"(target 90%), mean {sum(values) / 10:.1%}")


def only_sevens(args: argparse.Namespace, net: torch.nn.Module, real, real_images: torch.Tensor) -> None:
    for old in RESULTS.glob("dcgan7*"):
        shutil.rmtree(old)
    run, seconds = timed_train(TrainOptions(
        model="dcgan", data="mnist", subset=GAN_DATA, classes="7", steps=args.dcgan_steps,
        wandb="off", out=RESULTS / "dcgan7", sets=args.dcgan_set))
    folder = sample(str(run), n=args.per_class, seed=0, out=RESULTS / "dcgan7-samples", console=QUIET)
    images = load_pngs(folder)
    hist = torch.bincount(predict(net, images).argmax(1), minlength=10).tolist()
    print(f"\ndcgan --classes 7 {' '.join(args.dcgan_set)} on mnist {GAN_DATA}: "
          f"{args.dcgan_steps} steps in {seconds:.0f}s")
    print(f"  {hist[7] / args.per_class:.1%} of {args.per_class} classified as 7 (target 95%); "
          f"diversity {diversity(images, real_images[real.labels == 7]):.2f}; histogram {hist}")


if __name__ == "__main__":
    main()
