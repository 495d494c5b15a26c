"""Issue 4's acceptance: inversion, interpolation smoothness, and seed 003's prior comparison.

1. A DCGAN trained on the first 8,000 offline MNIST digits inverts 200 of the held-out last
   2,000, and 200 of its training digits; mean PSNR and SSIM (target: held-out >= 14 dB).
2. It inverts scikit-image's cat photo (out of domain): a clearly worse fit is expected.
3. 20 slerp interpolations of 10 steps: largest frame-to-frame pixel change against the mean.
4. The same DCGAN budget with normal, uniform, gamma(2,1), normal(1,1) and normal(0,10) priors,
   each judged by a CNN trained on real digits 8,000-8,999 (checked on 9,000-9,999): mean
   confidence, classes present and the spread of classes (entropy in bits; log2 10 = 3.32 is
   perfectly even), and the grids.

Results and pictures go to benchmarks/runs/latent_space/. Needs scikit-image
(pip install -e ".[bench]").

    python benchmarks/latent_space.py --steps 1500 --invert-steps 300 --restarts 8
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from digits import classifier, predict  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.display import figures  # noqa: E402
from zoo.pipelines.interpolate import frame_changes, slerp  # noqa: E402
from zoo.pipelines.invert import fit_latents, load_targets  # noqa: E402
from zoo.pipelines.plan import TrainOptions  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.pipelines.train import train  # noqa: E402
from zoo.records import runs  # noqa: E402

RESULTS = Path(__file__).parent / "runs" / "latent_space"
QUIET = Console(file=io.StringIO())
PRIORS = ["normal", "uniform:-1,1", "gamma:2,1", "normal:1,1", "normal:0,10"]


def trained(noise: str, steps: int) -> tuple[Path, float]:
    started = time.perf_counter()
    run = train(TrainOptions(model="dcgan", data="mnist", subset="0:8000", steps=steps, wandb="off",
                             noise=noise, out=RESULTS / f"dcgan-{noise.replace(':', '_')}"), console=QUIET)
    return run, time.perf_counter() - started


def invert_set(model, images: torch.Tensor, args) -> dict:
    started = time.perf_counter()
    fit = fit_latents(model, images, steps=args.invert_steps, restarts=args.restarts)
    return {"images": len(images), "psnr": float(fit.psnr.mean()), "ssim": float(fit.ssim.mean()),
            "psnr_min": float(fit.psnr.min()), "seconds": time.perf_counter() - started, "fit": fit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500, help="DCGAN training steps (each prior)")
    parser.add_argument("--invert-steps", type=int, default=300)
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--count", type=int, default=200, help="digits inverted per set")
    parser.add_argument("--skip-priors", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True)
    report: dict = {"args": vars(args)}

    data = prepare("mnist")
    images = to_float(data.images)
    run, seconds = trained("normal", args.steps)
    model, _ = runs.load_model(run / "checkpoint.safetensors")
    print(f"dcgan on mnist[0:8000], {args.steps} steps: {seconds:.0f}s")

    # 1. Inversion of held-out and training digits.
    for name, chunk in (("held-out 8000-8199", images[8000:8000 + args.count]),
                        ("training 0-199", images[:args.count])):
        r = invert_set(model, chunk, args)
        figures.save_grid(torch.stack([chunk[:16], r["fit"].images[:16]]),
                          RESULTS / f"invert-{name.split()[0]}.png", scale=2)
        r.pop("fit")
        report[name] = r
        print(f"invert {name}: PSNR {r['psnr']:.2f} dB (min {r['psnr_min']:.2f}), SSIM {r['ssim']:.3f}, "
              f"{args.invert_steps} steps x {args.restarts} restarts, {r['seconds']:.0f}s")

    # 2. The out-of-domain cat.
    from PIL import Image
    from skimage import data as skdata

    Image.fromarray(skdata.chelsea()).save(RESULTS / "cat.png")
    _, cat = load_targets(RESULTS / "cat.png", model, QUIET)
    r = invert_set(model, cat, args)
    strip = torch.stack([cat[0]] + [im[0] for _, im in r["fit"].snapshots])
    figures.save_grid(strip.unsqueeze(0), RESULTS / "invert-cat-evolution.png", scale=4)
    r.pop("fit")
    report["cat (out of domain)"] = r
    print(f"invert scikit-image's cat: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.3f}")

    # 3. Interpolation smoothness.
    g = torch.Generator().manual_seed(0)
    a, b = model.sample_latent(20, g), model.sample_latent(20, g)
    path = slerp(a, b, torch.linspace(0, 1, 10))
    with torch.no_grad():
        model.eval()
        frames = model.generate(path.flatten(0, 1)).view(20, 10, 1, 28, 28)
    change = frame_changes(frames)
    report["interpolation"] = {"mean_change": float(change.mean()), "max_change": float(change.max()),
                               "max_over_mean": float(change.max() / change.mean())}
    figures.save_grid(frames[:6], RESULTS / "interpolations.png", scale=2)
    print(f"20 slerp interpolations x 10 steps: frame-to-frame change mean {change.mean():.4f}, "
          f"largest {change.max():.4f} ({change.max() / change.mean():.2f}x the mean)")

    # 4. Seed 003's prior comparison, judged on real digits the GANs never saw.
    if not args.skip_priors:
        net, accuracy = classifier(train=slice(8000, 9000), check=slice(0, 1000), epochs=15)
        print(f"\njudge: CNN on real digits 8000-8999 (no GAN saw them), {accuracy:.3f} on 0-999")
        report["judge_accuracy"] = accuracy
        for noise in PRIORS:
            if noise == "normal":
                prior_run, prior_seconds = run, seconds
            else:
                prior_run, prior_seconds = trained(noise, args.steps)
            prior_model, _ = runs.load_model(prior_run / "checkpoint.safetensors")
            samples = prior_model.sample(1000, generator=torch.Generator().manual_seed(1))
            figures.save_grid(samples[:64], RESULTS / f"prior-{noise.replace(':', '_')}.png", scale=2)
            probs = predict(net, samples)
            counts = torch.bincount(probs.argmax(1), minlength=10).float()
            share = counts / counts.sum()
            entropy = float(-(share[share > 0] * share[share > 0].log2()).sum())
            row = {"confidence": float(probs.max(1).values.mean()), "classes": int((counts > 0).sum()),
                   "entropy_bits": entropy, "seconds": prior_seconds, "histogram": counts.int().tolist()}
            report[f"prior {noise}"] = row
            print(f"  {noise:14} confidence {row['confidence']:.3f}, classes {row['classes']}/10, "
                  f"spread {entropy:.2f} bits (even: {math.log2(10):.2f}), {prior_seconds:.0f}s")

    (RESULTS / "report.json").write_text(json.dumps(report, indent=2))
    print(f"\npictures and report.json in {RESULTS}")


if __name__ == "__main__":
    main()
