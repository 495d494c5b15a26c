"""Issue 5's acceptance: dcgan, wgan and wgan-gp on the same data for the same wall-clock time.

Each model trains with its paper's defaults on the first 8,000 offline MNIST training digits
for ``--minutes`` (``zoo train MODEL --data mnist --subset 0:8000 --minutes M``, a whole
process, timed), then ``zoo sample RUN --n SAMPLES --seed 1`` draws its samples. The training
digits 8,000-8,999 are kept from every model: the reference of the Frechet distance.

The judge is benchmarks/digits.py's ``heldout_judge``: a CNN trained on the 1,000 *held-out*
digits only (the split zoo never trains on), so it never saw a digit any of the GANs learnt
from; its accuracy on the 9,000 training digits, which it never sees, is in the result. It
reads each model's samples:

* **confidence**: its mean top probability (recognisable digits score high);
* **spread**: the entropy of its predicted-class histogram, in bits (log2 10 = 3.32 when
  every digit is equally common; a collapsed model scores low);
* **FD**: the Frechet distance between the samples and the real digits 8,000-8,999 (which
  neither the GANs nor the judge saw) in the judge's 128 penultimate features (an FID with a
  digit network in place of Inception; lower is better; the floor is real digits 0-1,999
  against the same 1,000).

Speed is images/s: real images through the discriminator per second of training (the seconds
the checkpoint records), and generator updates per second; the whole command's time and the
load average before it are kept beside them.

    python benchmarks/wasserstein.py --minutes 5        # about 17 minutes here (3 x 5 + judging)
    python benchmarks/wasserstein.py --minutes 0.2 --samples 500   # a smoke test

Writes benchmarks/results/wasserstein-{M}min[-SETS].json: per model (``figures.models.dcgan``,
``.wgan``, ``.wgan-gp``) steps, n_critic, batch_size, images_per_s, g_updates_per_s,
whole_seconds, load_before, confidence, spread_bits, smallest_class, histogram, fd; and
``figures.floor_fd``, ``figures.judge_accuracy``. Runs, grids and loss curves are kept in
benchmarks/runs/wasserstein/.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import slug, timed, training  # noqa: E402
from digits import heldout_judge, load_pngs, predict  # noqa: E402
from record import RUNS, write_result  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402

GAN_DATA = "0:8000"
REFERENCE = slice(8000, 9000)
"""Training digits that no model here learns from, nor the judge: the FD's reference."""
FLOOR = slice(0, 2000)
HERE = RUNS / "wasserstein"


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


def judge(net: torch.nn.Module, images: torch.Tensor, reference: np.ndarray) -> dict:
    """The judge's reading of ``images``, and their FD to the ``reference`` features."""
    probs = predict(net, images)
    top, label = probs.max(1)
    counts = torch.bincount(label, minlength=10).double()
    share = counts / counts.sum()
    entropy = max(0.0, -float((share[share > 0] * share[share > 0].log2()).sum()))
    return {"confidence": float(top.mean()), "spread_bits": entropy,
            "smallest_class": float(share.min()), "histogram": counts.int().tolist(),
            "fd": frechet(features(net, images), reference)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per model")
    parser.add_argument("--models", default="dcgan,wgan,wgan-gp")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="MODEL:key=value, an extra config key for one model")
    args = parser.parse_args()
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)

    net, judge_info = heldout_judge("mnist")
    real = to_float(prepare("mnist").images)
    reference = features(net, real[REFERENCE])
    floor = frechet(features(net, real[FLOOR]), reference)
    print(f"judge: {judge_info['trained_on']}; {judge_info['accuracy']:.2%} right on {judge_info['checked_on']}; "
          f"FD floor (real training digits 0-1,999 vs 8,000-8,999) {floor:.2f}", flush=True)

    rows = {}
    for model in args.models.split(","):
        sets = [s.split(":", 1)[1] for s in args.sets if s.startswith(model + ":")]
        run = HERE / model
        whole = timed("train", model, "--data", "mnist", "--subset", GAN_DATA, "--minutes", f"{args.minutes:g}",
                      *[a for s in sets for a in ("--set", s)], "--no-wandb", "--out", str(run))
        trained = training(run)
        config = ckpt_io.read_meta(run / ckpt_io.FILENAME)["config"]
        steps, seconds = trained["steps"], trained["train_seconds"]
        images_per_s = steps * config["n_critic"] * config["batch_size"] / seconds
        folder = HERE / f"{model}-samples"
        timed("sample", str(run), "--n", str(args.samples), "--seed", "1", "--out", str(folder))
        scores = judge(net, load_pngs(folder), reference)
        shutil.copy(folder / "grid.png", HERE / f"{model}-grid.png")
        if (run / "losses.png").is_file():
            shutil.copy(run / "losses.png", HERE / f"{model}-losses.png")
        rows[model] = {"steps": steps, "n_critic": config["n_critic"],
                       "batch_size": config["batch_size"], "train_seconds": seconds,
                       "whole_seconds": whole["seconds"], "load_before": whole["load_before"],
                       "images_per_s": images_per_s, "g_updates_per_s": steps / seconds, **scores}
        print(f"{model} {' '.join(sets)}: {steps:,} generator steps (x{config['n_critic']} critic, batch "
              f"{config['batch_size']}) in {seconds:.0f}s of training ({whole['seconds']:.0f}s whole) = "
              f"{images_per_s:,.0f} images/s | confidence {scores['confidence']:.3f}, spread "
              f"{scores['spread_bits']:.2f}/{math.log2(10):.2f} bits, smallest class {scores['smallest_class']:.1%}, "
              f"FD {scores['fd']:.2f} | {scores['histogram']}", flush=True)
    write_result(slug("wasserstein", f"{args.minutes:g}min", *args.sets),
                 {"models": rows, "floor_fd": floor, "judge_accuracy": judge_info["accuracy"]},
                 minutes=args.minutes, samples=args.samples, models=args.models.split(","), sets=args.sets,
                 gan_data=f"mnist --subset {GAN_DATA}", fd_reference="training digits 8,000-8,999",
                 judge=judge_info)


if __name__ == "__main__":
    main()
