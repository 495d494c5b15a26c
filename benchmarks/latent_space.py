"""Issue 4's acceptance: inversion, interpolation smoothness, and seed 003's prior comparison.

1. ``zoo train dcgan --data mnist --subset 0:8000 --steps N`` (the first 8,000 of the offline
   MNIST's 9,000 training digits; a whole process, timed) inverts 200 (``--count``) of the
   training digits 8,000-8,999 it never saw, and 200 of its own training digits: mean PSNR and
   SSIM (target: never-seen digits >= 14 dB).
2. It inverts scikit-image's cat photo (out of domain): a clearly worse fit is expected.
3. 20 slerp interpolations of 10 steps: largest frame-to-frame pixel change against the mean.
4. The same command with ``--noise`` normal, uniform(-1,1), gamma(2,1), normal(1,1) and
   normal(0,10), each judged on 1,000 samples by a CNN trained on the real digits 8,000-8,999
   only (which no GAN here saw) and checked on digits 0-999 and on the 1,000 held-out digits,
   neither of which it saw: mean confidence, classes present, the spread of classes (entropy in
   bits; log2 10 = 3.32 is perfectly even) and each class's share; and the grids.

Needs scikit-image (pip install -e ".[bench]").

    python benchmarks/latent_space.py --steps 1500 --invert-steps 300 --restarts 8   # about 35 minutes here
    python benchmarks/latent_space.py --steps 20 --invert-steps 5 --restarts 1 --count 4   # a smoke test

Writes benchmarks/results/latent-space.json (other settings than the above: their values in
the name; ``--skip-priors``: ...-no-priors):
``figures.train`` (steps, whole_seconds, load_before); ``figures.inversion.heldout`` and
``.training`` (images, psnr, ssim, psnr_min, seconds) and ``.cat`` (psnr, ssim);
``figures.interpolation`` (mean_change, max_change, max_over_mean); ``figures.priors.KEY``
for normal, uniform_-1_1, gamma_2_1, normal_1_1, normal_0_10 (noise, confidence, classes,
entropy_bits, shares, whole_seconds); ``figures.judge`` (accuracy on digits 0-999 and on the
held-out digits). Pictures and runs are kept in benchmarks/runs/latent_space/.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from commands import slug, timed  # noqa: E402
from digits import classifier, predict  # noqa: E402
from record import RUNS, write_result  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.data.memory import load_prepared  # noqa: E402
from zoo.display import figures  # noqa: E402
from zoo.pipelines.interpolate import frame_changes, slerp  # noqa: E402
from zoo.pipelines.invert import fit_latents, load_targets  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records import runs  # noqa: E402

HERE = RUNS / "latent_space"
QUIET = Console(file=io.StringIO())
PRIORS = ["normal", "uniform:-1,1", "gamma:2,1", "normal:1,1", "normal:0,10"]
GAN_DATA = "0:8000"
UNSEEN = slice(8000, 9000)
"""Training digits no GAN here learns from: the inverted 'held-out' digits, and the judge's data."""


def trained(noise: str, steps: int) -> tuple[Path, dict]:
    """``zoo train dcgan --data mnist --subset 0:8000 --steps N [--noise PRIOR]``, timed."""
    run = HERE / f"dcgan-{noise.replace(':', '_')}"
    shutil.rmtree(run, ignore_errors=True)
    prior = ["--noise", noise] if noise != "normal" else []  # normal is the default
    took = timed("train", "dcgan", "--data", "mnist", "--subset", GAN_DATA, "--steps", str(steps), *prior,
                 "--no-wandb", "--out", str(run))
    return run, took


def invert_set(model, images: torch.Tensor, args) -> dict:
    started = time.perf_counter()
    fit = fit_latents(model, images, steps=args.invert_steps, restarts=args.restarts)
    return {"images": len(images), "psnr": float(fit.psnr.mean()), "ssim": float(fit.ssim.mean()),
            "psnr_min": float(fit.psnr.min()), "seconds": round(time.perf_counter() - started, 1), "fit": fit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500, help="DCGAN training steps (each prior)")
    parser.add_argument("--invert-steps", type=int, default=300)
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--count", type=int, default=200, help="digits inverted per set")
    parser.add_argument("--skip-priors", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    results: dict = {}

    data = prepare("mnist")
    images = to_float(data.images)
    run, took = trained("normal", args.steps)
    results["train"] = {"steps": args.steps, "whole_seconds": took["seconds"], "load_before": took["load_before"]}
    model, _ = runs.load_model(run / "checkpoint.safetensors")
    print(f"dcgan on mnist[{GAN_DATA}], {args.steps} steps: {took['seconds']:.0f}s", flush=True)

    # 1. Inversion of never-seen and training digits.
    inversion: dict = {}
    for key, label, chunk in (("heldout", f"never seen {UNSEEN.start}-{UNSEEN.start + args.count - 1}",
                               images[UNSEEN][:args.count]),
                              ("training", f"training 0-{args.count - 1}", images[:args.count])):
        r = invert_set(model, chunk, args)
        figures.save_grid(torch.stack([chunk[:16], r["fit"].images[:16]]), HERE / f"invert-{key}.png", scale=2)
        r.pop("fit")
        inversion[key] = r
        print(f"invert {label}: PSNR {r['psnr']:.2f} dB (min {r['psnr_min']:.2f}), SSIM {r['ssim']:.3f}, "
              f"{args.invert_steps} steps x {args.restarts} restarts, {r['seconds']:.0f}s", flush=True)

    # 2. The out-of-domain cat.
    from PIL import Image
    from skimage import data as skdata

    Image.fromarray(skdata.chelsea()).save(HERE / "cat.png")
    _, cat = load_targets(HERE / "cat.png", model, QUIET)
    r = invert_set(model, cat, args)
    strip = torch.stack([cat[0]] + [im[0] for _, im in r["fit"].snapshots])
    figures.save_grid(strip.unsqueeze(0), HERE / "invert-cat-evolution.png", scale=4)
    r.pop("fit")
    inversion["cat"] = r
    results["inversion"] = inversion
    print(f"invert scikit-image's cat: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.3f}", flush=True)

    # 3. Interpolation smoothness.
    g = torch.Generator().manual_seed(0)
    a, b = model.sample_latent(20, g), model.sample_latent(20, g)
    path = slerp(a, b, torch.linspace(0, 1, 10))
    with torch.no_grad():
        model.eval()
        frames = model.generate(path.flatten(0, 1)).view(20, 10, 1, 28, 28)
    change = frame_changes(frames)
    results["interpolation"] = {"mean_change": float(change.mean()), "max_change": float(change.max()),
                                "max_over_mean": float(change.max() / change.mean())}
    figures.save_grid(frames[:6], HERE / "interpolations.png", scale=2)
    print(f"20 slerp interpolations x 10 steps: frame-to-frame change mean {change.mean():.4f}, "
          f"largest {change.max():.4f} ({change.max() / change.mean():.2f}x the mean)", flush=True)

    # 4. Seed 003's prior comparison, judged by a CNN on real digits the GANs never saw.
    if not args.skip_priors:
        net, accuracy = classifier(train=UNSEEN, check=slice(0, 1000), epochs=15)
        held = load_prepared(data.path, "heldout")
        held_accuracy = float((predict(net, to_float(held.images)).argmax(1) == held.labels).float().mean())
        results["judge"] = {"trained_on": "the real training digits 8,000-8,999 (no GAN here saw them)",
                            "accuracy": accuracy, "checked_on": "the real training digits 0-999",
                            "heldout_accuracy": held_accuracy}
        print(f"\njudge: CNN on real digits 8000-8999 (no GAN saw them), {accuracy:.3f} on 0-999, "
              f"{held_accuracy:.3f} on the held-out digits", flush=True)
        priors = {}
        for noise in PRIORS:
            if noise == "normal":
                prior_run, prior_took = run, took
            else:
                prior_run, prior_took = trained(noise, args.steps)
            prior_model, _ = runs.load_model(prior_run / "checkpoint.safetensors")
            samples = prior_model.sample(1000, generator=torch.Generator().manual_seed(1))
            figures.save_grid(samples[:64], HERE / f"prior-{noise.replace(':', '_')}.png", scale=2)
            probs = predict(net, samples)
            counts = torch.bincount(probs.argmax(1), minlength=10).float()
            share = counts / counts.sum()
            entropy = max(0.0, float(-(share[share > 0] * share[share > 0].log2()).sum()))
            row = {"noise": noise, "confidence": float(probs.max(1).values.mean()), "classes": int((counts > 0).sum()),
                   "entropy_bits": entropy, "shares": share.tolist(), "whole_seconds": prior_took["seconds"],
                   "load_before": prior_took["load_before"]}
            priors[noise.replace(":", "_").replace(",", "_")] = row
            print(f"  {noise:14} confidence {row['confidence']:.3f}, classes {row['classes']}/10, "
                  f"spread {entropy:.2f} bits (even: {math.log2(10):.2f}), {prior_took['seconds']:.0f}s", flush=True)
        results["priors"] = priors

    default = (args.steps, args.invert_steps, args.restarts, args.count) == (1500, 300, 8, 200)
    settings = "" if default else f"{args.steps}steps-invert{args.invert_steps}x{args.restarts}-count{args.count}"
    write_result(slug("latent-space", settings, "no-priors" if args.skip_priors else ""), results,
                 steps=args.steps, invert_steps=args.invert_steps, restarts=args.restarts, count=args.count,
                 gan_data=f"mnist --subset {GAN_DATA}", heldout=f"training digits {UNSEEN.start:,}-{UNSEEN.stop - 1:,}",
                 samples_per_prior=1000)
    print(f"pictures in {HERE}")


if __name__ == "__main__":
    main()
