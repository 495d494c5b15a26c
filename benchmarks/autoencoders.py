"""Issue 13's acceptance: the autoencoders, measured at the commands a user types.

Every model is trained and judged by the CLI as whole processes (``zoo train``, ``zoo eval``),
on the offline MNIST's 9,000 training digits, and judged on the 1,000 held-out digits it
never saw.

* ``pca``: ``zoo train ae --data mnist --set latent_dim=K`` for each code size K, and its
  held-out reconstruction PSNR (``zoo eval``), against principal component analysis with the
  same K components fitted on the same training digits (reconstructions quantised to 8 bits
  as zoo eval's are).
* ``nll``: ``zoo train vae --data mnist``, then ``zoo eval vae --nll-samples K`` for several K:
  the importance-weighted held-out NLL as the bound tightens.
* ``versus``: vae and dcgan for the same wall-clock budget (``--minutes M`` each), measured by
  ``zoo eval`` (10,000 samples, classifier features): FID, precision/recall, sharpness, the
  memorisation check; and a picture of 64 samples of each, side by side.
* ``cvae``: ``zoo train cvae --data mnist`` and ``zoo eval``'s class accuracy per class; and the
  same command on every other digit (``--subset 0::2``, as many steps) judged by a CNN trained
  on the other half only (benchmarks/digits.py), which never saw the model's data.

    python benchmarks/autoencoders.py pca --codes 2,8,16,32
    python benchmarks/autoencoders.py nll --nll-samples 1,100,1000
    python benchmarks/autoencoders.py versus --minutes 5
    python benchmarks/autoencoders.py cvae

Runs are kept in benchmarks/runs/autoencoders/ (a run that is there is measured again,
not retrained); set OMP_NUM_THREADS to share the cores between parts run side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import zoo  # noqa: E402
from digits import classifier, load_pngs, predict  # noqa: E402

from zoo.data.images import as_uint8, to_float  # noqa: E402
from zoo.data.memory import load_prepared  # noqa: E402
from zoo.display import figures  # noqa: E402
from zoo.measure import metrics  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records import runs  # noqa: E402

RESULTS = Path(__file__).parent / "runs" / "autoencoders"
IMAGES = Path(__file__).parents[1] / "docs" / "images"


def trained(name: str, *args: str) -> tuple[Path, float | None]:
    """A run of ``zoo train ARGS`` in the results folder, made once."""
    run = RESULTS / name
    if (run / "checkpoint.safetensors").is_file():
        return run, None
    seconds = zoo("train", *args, "--no-wandb", "--out", str(run))
    return run, seconds


def evaluated(run: Path, *args: str) -> dict:
    seconds = zoo("eval", str(run), "--wandb", "off", *args)
    result = json.loads((run / "eval.json").read_text())
    result["wall_seconds"] = round(seconds, 1)
    return result


# -- the parts ------------------------------------------------------------------------------------------------

def pca_baseline(train: torch.Tensor, heldout: torch.Tensor, k: int) -> float:
    """Held-out PSNR of PCA with ``k`` components fitted on ``train`` (float images in [-1, 1])."""
    x = train.flatten(1).double()
    mean = x.mean(0)
    basis = torch.linalg.svd(x - mean, full_matrices=False).Vh[:k]
    codes = (heldout.flatten(1).double() - mean) @ basis.T
    rebuilt = (codes @ basis + mean).float().clamp(-1, 1).view_as(heldout)
    rebuilt = to_float(as_uint8(rebuilt))  # 8 bits, as zoo eval's reconstructions
    return float(metrics.psnr(rebuilt, heldout).mean())


def part_pca(args: argparse.Namespace) -> None:
    data = prepare("mnist")
    train, heldout = to_float(data.images), to_float(load_prepared(data.path, "heldout").images)
    print(f"{'code size':>9} | {'ae PSNR':>8} | {'PCA PSNR':>8} | {'ae SSIM':>7} | steps | train s")
    for k in args.codes:
        run, seconds = trained(f"ae-{k}", "ae", "--data", "mnist", "--set", f"latent_dim={k}")
        result = evaluated(run)
        steps = result["checkpoint"]["step"]
        print(f"{k:>9} | {result['psnr']:8.2f} | {pca_baseline(train, heldout, k):8.2f} | {result['ssim']:7.3f} | "
              f"{steps:>5} | {seconds if seconds is None else round(seconds)}")


def part_nll(args: argparse.Namespace) -> None:
    name = "-".join(["vae", *(a.lstrip("-") for a in args.train)])
    run, seconds = trained(name, "vae", "--data", "mnist", *args.train)
    print(f"zoo train vae --data mnist {' '.join(args.train)}: {seconds and round(seconds)} s")
    for k in args.nll_samples:
        result = evaluated(run, "--nll-samples", str(k), "--nll-images", str(args.nll_images))
        print(f"k={k:>5}: NLL {result['nll']:.2f} nats ({result['bits_per_dim']:.4f} bits/dim) +- "
              f"{result['likelihood']['standard_error']:.2f}, ELBO bound {result['nll_elbo']:.2f}, "
              f"active units {result['active_units']}/{result['latent_dim']}, eval {result['wall_seconds']} s")


def part_versus(args: argparse.Namespace) -> None:
    rows = {}
    for name in ("vae", "dcgan"):
        run, seconds = trained(f"{name}-{args.minutes:g}min", name, "--data", "mnist", "--minutes", f"{args.minutes:g}")
        rows[name] = (run, evaluated(run))
    keys = ("fid", "precision", "recall", "sharpness", "memorisation", "memorisation_reference", "diversity")
    print("model | steps | " + " | ".join(keys))
    for name, (_, result) in rows.items():
        print(f"{name} | {result['checkpoint']['step']} | " + " | ".join(f"{result[k]:.3f}" for k in keys))
    print(f"real held-out digits: sharpness 1 by definition; protocol {rows['vae'][1]['protocol']}")
    sheets = []
    for run, _ in rows.values():
        model, _ = runs.load_model(runs.find_checkpoint(str(run)))
        sheets.append(model.sample(64, generator=torch.Generator().manual_seed(0)).view(8, 8, 1, 28, 28))
    gap = -torch.ones(8, 1, 1, 28, 28)
    grid = torch.cat([sheets[0], gap, sheets[1]], dim=1)
    path = IMAGES / "vae-dcgan-mnist.png"
    vae_result, dcgan_result = rows["vae"][1], rows["dcgan"][1]
    figures.save_grid(grid, path, scale=2, column_labels=["vae", *[""] * 7, "", "dcgan", *[""] * 7],
                      title=f"{args.minutes:g} minutes each: vae FID {vae_result['fid']:.1f}, sharpness "
                            f"{vae_result['sharpness']:.2f}; dcgan FID {dcgan_result['fid']:.1f}, sharpness "
                            f"{dcgan_result['sharpness']:.2f}")
    print(f"-> {path}")


def part_cvae(args: argparse.Namespace) -> None:
    run, seconds = trained("cvae", "cvae", "--data", "mnist", *args.train)
    result = evaluated(run)
    per = result["class_accuracy_per_class"]
    print(f"zoo train cvae --data mnist {' '.join(args.train)}: {result['checkpoint']['step']} steps, "
          f"{seconds and round(seconds)} s; zoo eval (its classifier reads "
          f"{result['protocol_detail']['extractor_accuracy']:.1%} of held-out digits right): sevens {per['7']:.1%}, "
          f"worst {min(per.values()):.1%}, all {result['class_accuracy']:.1%}, FID {result['fid']:.2f}")
    # The independent judge: the model learns from every other digit, a CNN from the rest.
    # As many steps as the command took on all the digits (its --epochs would give half as many).
    steps = str(result["checkpoint"]["step"])
    rest = [a for i, a in enumerate(args.train) if a != "--epochs" and (i == 0 or args.train[i - 1] != "--epochs")]
    half, _ = trained("cvae-half", "cvae", "--data", "mnist", "--subset", "0::2", "--steps", steps, *rest)
    judge, accuracy = classifier(slice(1, None, 2), slice(0, None, 2))
    data = prepare("mnist")
    held = load_prepared(data.path, "heldout")
    held_accuracy = float((predict(judge, to_float(held.images)).argmax(1) == held.labels).float().mean())
    print(f"judge (trained on the other half): {accuracy:.1%} of the model's half, {held_accuracy:.1%} of the "
          f"held-out digits")
    worst = 1.0
    for digit in range(10):
        out = RESULTS / "cvae-half-samples" / str(digit)
        if not out.is_dir():
            zoo("sample", str(half), "--digit", str(digit), "--n", "1000", "--out", str(out))
        share = float((predict(judge, load_pngs(out)).argmax(1) == digit).float().mean())
        worst = min(worst, share)
        print(f"  digit {digit}: {share:.1%} read as {digit}")
    print(f"  worst digit {worst:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["pca", "nll", "versus", "cvae"])
    parser.add_argument("--codes", type=lambda s: [int(v) for v in s.split(",")], default=[2, 8, 16, 32])
    parser.add_argument("--nll-samples", type=lambda s: [int(v) for v in s.split(",")], default=[1, 100, 1000])
    parser.add_argument("--nll-images", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--train", default="", help="more zoo train arguments, quoted (nll, cvae): '--epochs 20'")
    args = parser.parse_args()
    args.train = args.train.split()
    RESULTS.mkdir(parents=True, exist_ok=True)
    {"pca": part_pca, "nll": part_nll, "versus": part_versus, "cvae": part_cvae}[args.part](args)


if __name__ == "__main__":
    main()
