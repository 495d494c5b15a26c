"""The README's commands as a user types them: whole processes, default settings, judged on
images the model never trained on, by a judge that never saw the model's data.

    python benchmarks/as_typed.py demo             # make demo: zoo train dcgan --preset demo, zoo sample
    python benchmarks/as_typed.py lab              # the same with the lab's recipe: --preset lab
    python benchmarks/as_typed.py cgan --seed 1    # zoo train cgan --data mnist --epochs 20, --digit 7
    python benchmarks/as_typed.py demo --set ema=0.999   # the demo's training with a setting changed

Each command runs in its own process, as typed (plus ``--out``; W&B off through
``WANDB_MODE=disabled``), timed as a whole; then ``zoo eval RUN`` as typed (its figures
from eval.json, its own time), and a judge reads samples drawn by ``zoo sample``. The
judge is benchmarks/digits.py's CNN trained on the data set's held-out images only (the
split zoo never trains on) and checked on the training images, which it never sees: its
own accuracy there is reported beside its reading.
A judge's reading of unconditional samples: how many it reads with confidence (the largest
class probability at least 0.9: a legible digit), and how evenly they spread over the
classes (entropy in bits; log2(10) = 3.32 is every digit as often).

Results: benchmarks/results/as-typed-NAME[-seedS].json (make demo's: as-typed-make-demo-seedS; those
named as-typed-demo-seedS were make demo's when it trained the lab's recipe); runs in
benchmarks/runs/as_typed/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import zoo  # noqa: E402
from digits import heldout_judge, load_pngs, predict  # noqa: E402
from record import RUNS, write_result  # noqa: E402

HERE = RUNS / "as_typed"
CONFIDENT = 0.9


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def timed(*args: str) -> dict[str, object]:
    """Run ``zoo ARGS`` and say what was typed and how long the whole process took."""
    load = os.getloadavg()[0]
    seconds = zoo(*args)
    return {"command": "zoo " + " ".join(args), "seconds": round(seconds, 1), "load_before": round(load, 2)}


def eval_figures(run: Path) -> dict[str, object]:
    """``zoo eval RUN`` as typed: its figures and protocol from eval.json, and its time."""
    took = timed("eval", str(run))
    result = json.loads((run / "eval.json").read_text())
    keep = ("fid", "kid", "precision", "recall", "density", "coverage", "sharpness", "diversity", "memorisation",
            "memorisation_reference", "class_accuracy", "class_accuracy_per_class", "classifier_score", "protocol")
    return {"took": took, **{k: result[k] for k in keep if k in result},
            "extractor_accuracy": result.get("protocol_detail", {}).get("extractor_accuracy")}


def judged(net: torch.nn.Module, folder: Path) -> dict[str, object]:
    """The judge's reading of the sample PNGs in ``folder``."""
    probs = predict(net, load_pngs(folder))
    top, read = probs.max(1)
    counts = torch.bincount(read, minlength=probs.shape[1]).float()
    share = counts / counts.sum()
    entropy = -sum(float(p) * math.log2(float(p)) for p in share if p > 0)
    return {"samples": len(read), "legible": float((top >= CONFIDENT).float().mean()),
            "mean_confidence": float(top.mean()), "class_spread_bits": entropy,
            "classes": [int(c) for c in counts]}


def demo(args: argparse.Namespace, net: torch.nn.Module, judge: dict) -> None:
    """make demo's commands: `zoo train dcgan --preset demo`, `zoo sample dcgan --n 64`; ``lab``:
    the same with `--preset lab`, the lab's recipe (make demo's until zoo measured a better one;
    its results before that are as-typed-demo-seed0*.json)."""
    case = "make-demo" if args.case == "demo" else args.case  # (as-typed-demo-*: the lab's recipe, before)
    name = "-".join([f"{case}-seed{args.seed}", *(s.replace("=", "") for s in args.set)])
    run = fresh(HERE / name)
    seed = ["--seed", str(args.seed)] if args.seed else []
    changed = [arg for setting in args.set for arg in ("--set", setting)]
    train = timed("train", "dcgan", "--preset", args.case, *seed, *changed, "--out", str(run))
    sample = timed("sample", str(run), "--n", "64", "--out", str(fresh(HERE / f"{name}-64")))
    many = fresh(HERE / f"{name}-judged")
    zoo("sample", str(run), "--n", str(args.samples), "--seed", "1", "--out", str(many))
    figures = {"train": train, "sample_64": sample, "eval": eval_figures(run), "judge": judged(net, many)}
    write_result(f"as-typed-{name}", figures, judge=judge, seed=args.seed, settings=args.set)


def cgan(args: argparse.Namespace, net: torch.nn.Module, judge: dict) -> None:
    """The lab's sevens: `zoo train cgan --data mnist --epochs 20`, `zoo sample cgan --digit 7 --n 100`."""
    run = fresh(HERE / f"cgan-seed{args.seed}")
    seed = ["--seed", str(args.seed)] if args.seed else []
    train = timed("train", "cgan", "--data", "mnist", "--epochs", "20", *seed, "--out", str(run))
    sevens = timed("sample", str(run), "--digit", "7", "--n", "100", "--out", str(fresh(HERE / "cgan-sevens")))
    per_digit = []
    for digit in range(10):
        folder = fresh(HERE / f"cgan-seed{args.seed}-digit{digit}")
        zoo("sample", str(run), "--digit", str(digit), "--n", str(args.samples), "--seed", "1", "--out", str(folder))
        probs = predict(net, load_pngs(folder))
        per_digit.append(float((probs.argmax(1) == digit).float().mean()))
    figures = {"train": train, "sample_sevens": sevens, "eval": eval_figures(run),
               "judge": {"samples_per_digit": args.samples, "read_as_asked": per_digit, "sevens": per_digit[7],
                         "worst": min(per_digit), "mean": sum(per_digit) / 10}}
    write_result(f"as-typed-cgan-seed{args.seed}", figures, judge=judge, seed=args.seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=["demo", "lab", "cgan"])
    parser.add_argument("--seed", type=int, default=0, help="the training seed (0: the command's default)")
    parser.add_argument("--samples", type=int, default=1000, help="samples the judge reads (per digit for cgan)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="demo, lab: a setting of dcgan changed (zoo train --set), e.g. ema=0.999")
    args = parser.parse_args()
    started = time.perf_counter()
    net, judge = heldout_judge("mnist")
    print(f"judge: {judge['trained_on']}; {judge['accuracy']:.2%} right on {judge['checked_on']}", flush=True)
    {"demo": demo, "lab": demo, "cgan": cgan}[args.case](args, net, judge)
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
