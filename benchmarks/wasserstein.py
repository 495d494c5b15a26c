"""Issue 5's acceptance: dcgan, wgan and wgan-gp on the same data for the same wall-clock time.

Each model trains with its paper's defaults on the first 8,000 offline MNIST digits for
``--minutes`` of training (``zoo train --minutes``), then draws ``--samples`` images. A
CNN trained on those real digits (checked on the held-out 8,000-9,999) judges them:

* **confidence**: its mean top probability (recognisable digits score high);
* **spread**: the entropy of its predicted-class histogram, in bits (log2 10 = 3.32 when
  every digit is equally common; a collapsed model scores low);
* **FD**: the Frechet distance between the samples and the 2,000 held-out real digits in
  the CNN's 128 penultimate features (an FID with a digit network in place of Inception;
  lower is better; the floor is real digits 0-1,999 against the held-out ones).

Speed is images/s: real images through the discriminator per second of the whole
training call, and generator updates per second. Runs, grids and loss curves are kept in
benchmarks/runs/wasserstein/.

    python benchmarks/wasserstein.py --minutes 5
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

import numpy as np
import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from digits import classifier, load_pngs, predict  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.pipelines.plan import TrainOptions  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.pipelines.sample import sample  # noqa: E402
from zoo.pipelines.train import train  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402

GAN_DATA = "0:8000"
RESULTS = Path(__file__).parent / "runs" / "wasserstein"
QUIET = Console(file=io.StringIO())


@torch.no_grad()
def features(net: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """The judge's penultimate 128 features (after its last hidden ReLU)."""
    body = net[:-2].eval()
    return torch.cat([body(x) for x in images.split(500)]).double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)): Heusel et al.'s distance. The
    trace of the root is taken as that of the symmetric S_a^(1/2) S_b S_a^(1/2), whose
    eigenvalues are those of S_a S_b; it stays real for singular covariances."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    cross = np.sqrt(np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def judge(net: torch.nn.Module, images: torch.Tensor, held_out: np.ndarray) -> dict:
    probs = predict(net, images)
    top, label = probs.max(1)
    counts = torch.bincount(label, minlength=10).double()
    share = counts / counts.sum()
    entropy = max(0.0, -float((share[share > 0] * share[share > 0].log2()).sum()))
    return {"confidence": float(top.mean()), "spread_bits": entropy,
            "smallest_class": float(share.min()), "histogram": counts.int().tolist(),
            "fd": frechet(features(net, images), held_out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per model")
    parser.add_argument("--models", default="dcgan,wgan,wgan-gp")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="MODEL:key=value, an extra config key for one model")
    args = parser.parse_args()
    shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True)

    net, accuracy = classifier()
    data = prepare("mnist")
    real = to_float(data.images)
    held_out = features(net, real[8000:])
    floor = frechet(features(net, real[:2000]), held_out)
    print(f"judge: CNN on real digits 0-7999, accuracy {accuracy:.3f} on 8000-8999; "
          f"FD floor (real 0-1999 vs 8000-8999) {floor:.2f}")

    rows = []
    for model in args.models.split(","):
        sets = [s.split(":", 1)[1] for s in args.sets if s.startswith(model + ":")]
        started = time.perf_counter()
        run = train(TrainOptions(model=model, data="mnist", subset=GAN_DATA, steps=10 ** 7,
                                 minutes=args.minutes, wandb="off", out=RESULTS / model, sets=sets),
                    console=QUIET)
        seconds = time.perf_counter() - started
        meta = ckpt_io.read_meta(run / ckpt_io.FILENAME)
        config, steps = meta["config"], meta["train"]["step"]
        images_per_s = steps * config["n_critic"] * config["batch_size"] / seconds
        folder = sample(str(run), n=args.samples, seed=1, out=RESULTS / f"{model}-samples", console=QUIET)
        scores = judge(net, load_pngs(folder), held_out)
        shutil.copy(folder / "grid.png", RESULTS / f"{model}-grid.png")
        shutil.copy(run / "losses.png", RESULTS / f"{model}-losses.png")
        rows.append({"model": model, "sets": sets, "steps": steps, "seconds": seconds,
                     "images_per_s": images_per_s, "g_updates_per_s": steps / seconds, **scores})
        print(f"{model} {' '.join(sets)}: {steps:,} generator steps (x{config['n_critic']} critic, batch "
              f"{config['batch_size']}) in {seconds:.0f}s = {images_per_s:,.0f} images/s | confidence "
              f"{scores['confidence']:.3f}, spread {scores['spread_bits']:.2f}/{math.log2(10):.2f} bits, "
              f"smallest class {scores['smallest_class']:.1%}, FD {scores['fd']:.2f} | {scores['histogram']}")
    (RESULTS / "results.json").write_text(json.dumps({"floor_fd": floor, "judge_accuracy": accuracy,
                                                      "minutes": args.minutes, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
