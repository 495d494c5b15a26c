"""Issue 6's acceptance: pix2pix on edges2fashion, CycleGAN on sneaker <-> ankle boot.

1. **pix2pix**: ``zoo train pix2pix --data paired:edges2fashion --subset 0:50000 --minutes M``
   (a whole process, timed), then the edge maps of 2,000 items it never trained on
   (50,000-51,999) translated. Mean L1 (in [0, 1] units) and SSIM of output against the real
   item are compared with the trivial baseline of returning the edge map itself.
2. **cyclegan**: ``zoo train cyclegan --data unpaired:fashion:sneaker,ankle-boot --subset 0:50000
   --minutes M``, built from Fashion-MNIST training items 0-49,999. The held-out sneakers and
   ankle boots among training items 50,000-59,999, which it never trained on, are translated
   each way and classified by benchmarks/digits.py's ``heldout_judge("fashion-mnist")``: a CNN
   trained on Fashion-MNIST's 10,000 *held-out* (test) images only, so it never saw an image
   the GAN learnt from, nor the items it reads; its accuracy on the 60,000 training images,
   which it never sees, is in the result. Figures: the share called the other class, each way
   (target: at least 70%), and the cycle reconstruction error ||F(G(a)) - a||_1. (Until 2026-12
   the judge learnt from items 0-49,999, the GAN's own data.)

Both at the data's 28-32 px, where jitter and mirroring are off by default (the result keeps the
config as the checkpoint resolved it).

    python benchmarks/translation.py --pix2pix-minutes 15 --cyclegan-minutes 15   # about 40 minutes
    python benchmarks/translation.py --pix2pix-minutes 0.2 --cyclegan-minutes 0.2 --judge-epochs 1  # smoke test

Writes benchmarks/results/translation-pix2pix-{M}min[-SETS].json (``figures``: steps,
pairs_per_s, train_seconds, whole_seconds, load_before, l1, ssim, baseline_l1, baseline_ssim,
heldout_pairs) and benchmarks/results/translation-cyclegan-{M}min[-SETS].json (``figures``:
steps, train_seconds, whole_seconds, load_before, ``AtoB`` and ``BtoA`` each with n,
called_target, still_source, cycle_l1; judge_accuracy). Runs and sheets are kept in
benchmarks/runs/translation/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import slug, timed, training  # noqa: E402
from digits import heldout_judge, predict  # noqa: E402
from record import RUNS, write_result  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.display import figures  # noqa: E402
from zoo.measure import metrics  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.previews import image_rows  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402
from zoo.records.runs import load_model  # noqa: E402
from zoo.training.engine import evaluating  # noqa: E402

TRAIN, HELD_OUT = "0:50000", "50000:60000"
HERE = RUNS / "translation"
HELD_PAIRS = 2000
CONFIG_KEYS = ("batch_size", "jitter", "mirror", "lr")


def zoo_train(model: str, data: str, minutes: float, sets: list[str]) -> tuple[Path, dict, dict]:
    """``zoo train MODEL --data DATA --subset 0:50000 --minutes M`` as a whole process, in a
    fresh run folder: the run, the command's time, and the checkpoint's record."""
    run = HERE / model
    shutil.rmtree(run, ignore_errors=True)
    took = timed("train", model, "--data", data, "--subset", TRAIN, "--minutes", f"{minutes:g}",
                 *[a for s in sets for a in ("--set", s)], "--no-wandb", "--out", str(run))
    config = ckpt_io.read_meta(run / ckpt_io.FILENAME)["config"]
    return run, {**training(run), "command": took["command"], "whole_seconds": took["seconds"],
                 "load_before": took["load_before"]}, \
        {k: config.get(k) for k in CONFIG_KEYS}


@torch.no_grad()
def translated(model, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
    with evaluating(model):
        return torch.cat([model.translate(x, direction) for x in images.split(500)])


def l1(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean() / 2)  # [-1, 1] -> [0, 1] units


def run_pix2pix(args: argparse.Namespace) -> None:
    run, took, config = zoo_train("pix2pix", "paired:edges2fashion", args.pix2pix_minutes, args.pix2pix_set)
    model, _ = load_model(run / ckpt_io.FILENAME)
    held = prepare("paired:edges2fashion", subset=HELD_OUT)
    edges, items = to_float(held.images[:HELD_PAIRS]), to_float(held.targets[:HELD_PAIRS])
    outputs = translated(model, edges)
    figures.save_grid(image_rows(edges[:16], outputs[:16], items[:16]), HERE / "pix2pix-sheet.png", scale=2)
    result = {
        "steps": took["steps"], "train_seconds": took["train_seconds"], "whole_seconds": took["whole_seconds"],
        "load_before": took["load_before"],
        "pairs_per_s": took["steps"] * model.config.batch_size / took["train_seconds"],
        "heldout_pairs": len(edges), "l1": l1(outputs, items), "ssim": float(metrics.ssim(outputs, items).mean()),
        "baseline_l1": l1(edges, items), "baseline_ssim": float(metrics.ssim(edges, items).mean()),
    }
    print(f"pix2pix {' '.join(args.pix2pix_set)}: {result['steps']:,} steps in {result['train_seconds']:.0f}s "
          f"({result['pairs_per_s']:.0f} pairs/s); on {len(edges):,} held-out pairs: L1 {result['l1']:.4f} vs "
          f"baseline {result['baseline_l1']:.4f}, SSIM {result['ssim']:.3f} vs baseline {result['baseline_ssim']:.3f}",
          flush=True)
    write_result(slug("translation-pix2pix", f"{args.pix2pix_minutes:g}min", *args.pix2pix_set), result,
                 zoo_command=took["command"].split(" --no-wandb")[0], minutes=args.pix2pix_minutes,
                 sets=args.pix2pix_set, config=config,
                 heldout=f"paired:edges2fashion items {HELD_OUT}, the first {len(edges):,}")


def run_cyclegan(args: argparse.Namespace) -> None:
    net, judge = heldout_judge("fashion-mnist", epochs=args.judge_epochs)
    print(f"judge: {judge['trained_on']}; {judge['accuracy']:.2%} right on {judge['checked_on']}", flush=True)
    run, took, config = zoo_train("cyclegan", "unpaired:fashion:sneaker,ankle-boot", args.cyclegan_minutes,
                                  args.cyclegan_set)
    model, _ = load_model(run / ckpt_io.FILENAME)
    held = prepare("fashion-mnist", subset=HELD_OUT)
    names = held.meta["class_names"]
    sneaker, boot = names.index("sneaker"), names.index("ankle-boot")
    result: dict = {"steps": took["steps"], "train_seconds": took["train_seconds"],
                    "whole_seconds": took["whole_seconds"], "load_before": took["load_before"],
                    "judge_accuracy": judge["accuracy"]}
    for direction, source, target in (("AtoB", sneaker, boot), ("BtoA", boot, sneaker)):
        images = to_float(held.images[held.labels == source])
        out = translated(model, images, direction)
        back = translated(model, out, "BtoA" if direction == "AtoB" else "AtoB")
        called = predict(net, out).argmax(1)
        result[direction] = {"n": len(images), "called_target": float((called == target).float().mean()),
                             "still_source": float((called == source).float().mean()),
                             "cycle_l1": l1(back, images)}
        figures.save_grid(image_rows(images[:12], out[:12], back[:12]), HERE / f"cyclegan-{direction}.png", scale=2)
        r = result[direction]
        print(f"cyclegan {direction} ({names[source]} -> {names[target]}), {r['n']} held-out items: "
              f"{r['called_target']:.1%} called {names[target]} (target 70%), {r['still_source']:.1%} still "
              f"{names[source]}; cycle L1 {r['cycle_l1']:.4f}", flush=True)
    print(f"cyclegan {' '.join(args.cyclegan_set)}: {result['steps']:,} steps in {result['train_seconds']:.0f}s")
    write_result(slug("translation-cyclegan", f"{args.cyclegan_minutes:g}min", *args.cyclegan_set), result,
                 zoo_command=took["command"].split(" --no-wandb")[0], minutes=args.cyclegan_minutes,
                 sets=args.cyclegan_set, config=config, judge=judge,
                 heldout=f"the sneakers and ankle boots among Fashion-MNIST training items {HELD_OUT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pix2pix-minutes", type=float, default=15.0)
    parser.add_argument("--cyclegan-minutes", type=float, default=15.0)
    parser.add_argument("--only", choices=["pix2pix", "cyclegan"])
    parser.add_argument("--pix2pix-set", action="append", default=[])
    parser.add_argument("--cyclegan-set", action="append", default=[])
    parser.add_argument("--judge-epochs", type=int, default=10,
                        help="passes of the judge's training over the 10,000 held-out images")
    args = parser.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "pix2pix"):
        run_pix2pix(args)
    if args.only in (None, "cyclegan"):
        run_cyclegan(args)


if __name__ == "__main__":
    main()
