"""Issue 13's acceptance: the autoencoders, measured at the commands a user types.

Every model is trained and judged by the CLI as whole processes (``zoo train``, ``zoo eval``;
each timed, with the load average before it), on the offline MNIST's 9,000 training digits,
and judged on the 1,000 held-out digits it never saw.

* ``pca``: ``zoo train ae --data mnist --set latent_dim=K`` for each code size K, and its
  held-out reconstruction PSNR (``zoo eval``), against principal component analysis with the
  same K components fitted on the same training digits (reconstructions quantised to 8 bits
  as zoo eval's are).
* ``nll``: ``zoo train vae --data mnist``, then ``zoo eval vae --nll-samples K`` for several K:
  the importance-weighted held-out NLL as the bound tightens.
* ``versus``: vae and dcgan for the same wall-clock budget (``--minutes M`` each), measured by
  ``zoo eval`` (10,000 samples, classifier features): FID, precision/recall, sharpness, the
  memorisation check; and by benchmarks/digits.py's ``heldout_judge`` (trained on the held-out
  digits only, so it never saw the models' data; its accuracy on the training digits is kept):
  its reading of 2,000 samples and their Frechet distance to the held-out digits in its
  features. A picture of 64 samples of each, side by side, goes to the runs folder.
* ``cvae``: ``zoo train cvae --data mnist`` and ``zoo eval``'s class accuracy per class; and the
  same command on every other digit (``--subset 0::2``, as many steps) judged by a CNN trained
  on the other half only (benchmarks/digits.py), which never saw the model's data; its
  accuracy on the model's half and on the held-out digits, neither of which it saw, is kept.

    python benchmarks/autoencoders.py pca --codes 2,8,16,32            # about 10 minutes here
    python benchmarks/autoencoders.py nll --nll-samples 1,100,1000     # about 5 minutes
    python benchmarks/autoencoders.py versus --minutes 5               # about 13 minutes
    python benchmarks/autoencoders.py cvae                             # about 8 minutes
    python benchmarks/autoencoders.py cvae --train '--epochs 80'       # about 1 hour
    python benchmarks/autoencoders.py pca --codes 2 --train '--steps 5' --eval-n 500   # a smoke test

Writes benchmarks/results/autoencoders-pca[-TRAIN].json (``figures.codes.K``: ae_psnr, ae_ssim,
pca_psnr, steps, train; ``figures.extractor_accuracy``), autoencoders-nll[-TRAIN].json
(``figures.train``; ``figures.by_k.K``: nll, bits_per_dim, standard_error, nll_elbo, images,
eval_seconds; active_units, latent_dim), autoencoders-versus-{M}min.json (``figures.vae`` and
``.dcgan``: steps, train, fid, precision, recall, sharpness, memorisation,
memorisation_reference, diversity, judge_fd, judge_legible, judge_spread_bits;
``figures.extractor_accuracy``, ``figures.judge_accuracy``) and autoencoders-cvae[-TRAIN].json
(``figures.eval``: zoo eval's figures and ``class_accuracy_per_class``; ``figures.half``:
read_as_asked per digit, sevens, worst, mean, judge accuracies). TRAIN is ``--train``'s
arguments (e.g. epochs-80). Runs are kept in benchmarks/runs/autoencoders/ (a run that is there
is measured again, not retrained); set OMP_NUM_THREADS to share the cores between parts run
side by side.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import evaluated, slug, timed, trained, training  # noqa: E402
from digits import classifier, heldout_judge, load_pngs, predict  # noqa: E402
from record import RUNS, write_result  # noqa: E402
from wasserstein import features, frechet  # noqa: E402

from zoo.data.images import to_float, to_uint8  # noqa: E402
from zoo.data.memory import load_prepared  # noqa: E402
from zoo.display import figures  # noqa: E402
from zoo.measure import metrics  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records import runs  # noqa: E402

HERE = RUNS / "autoencoders"
CODES = [2, 8, 16, 32]
JUDGED_SAMPLES = 2000
EVAL_KEPT = ("fid", "kid", "precision", "recall", "density", "coverage", "sharpness", "memorisation",
             "memorisation_reference", "diversity", "class_accuracy", "class_accuracy_per_class", "nll", "nll_elbo",
             "bits_per_dim", "active_units", "latent_dim", "protocol")


EVAL_N: list[str] = []
"""``zoo eval``'s sample count when ``--eval-n`` gives one (smoke tests); as typed, none."""


def run_of(name: str, *args: str) -> tuple[Path, dict]:
    """A run of ``zoo train ARGS`` in the runs folder, made once; and how it was trained."""
    run = trained(HERE, name, *args)
    return run, training(run)


def kept(result: dict) -> dict:
    return {k: result[k] for k in EVAL_KEPT if k in result} | {"eval_seconds": result["took"]["seconds"]}


# -- the parts ------------------------------------------------------------------------------------------------

def pca_baseline(train: torch.Tensor, heldout: torch.Tensor, k: int) -> float:
    """Held-out PSNR of PCA with ``k`` components fitted on ``train`` (float images in [-1, 1])."""
    x = train.flatten(1).double()
    mean = x.mean(0)
    basis = torch.linalg.svd(x - mean, full_matrices=False).Vh[:k]
    codes = (heldout.flatten(1).double() - mean) @ basis.T
    rebuilt = (codes @ basis + mean).float().clamp(-1, 1).view_as(heldout)
    rebuilt = to_float(figures.as_uint8(rebuilt))  # 8 bits, as zoo eval's reconstructions
    return float(metrics.psnr(rebuilt, heldout).mean())


def part_pca(args: argparse.Namespace) -> tuple[str, dict]:
    data = prepare("mnist")
    train, heldout = to_float(data.images), to_float(load_prepared(data.path, "heldout").images)
    print(f"{'code size':>9} | {'ae PSNR':>8} | {'PCA PSNR':>8} | {'ae SSIM':>7} | steps | train s")
    codes, accuracy = {}, None
    for k in args.codes:
        run, how = run_of(slug("ae", k, *args.train), "ae", "--data", "mnist", "--set", f"latent_dim={k}", *args.train)
        result = evaluated(run, *EVAL_N)
        accuracy = result["extractor_accuracy"]
        codes[str(k)] = {"ae_psnr": result["psnr"], "ae_ssim": result["ssim"],
                         "pca_psnr": pca_baseline(train, heldout, k), "steps": how["steps"], "train": how,
                         "eval_seconds": result["took"]["seconds"]}
        row = codes[str(k)]
        print(f"{k:>9} | {row['ae_psnr']:8.2f} | {row['pca_psnr']:8.2f} | {row['ae_ssim']:7.3f} | "
              f"{row['steps']:>5} | {how.get('seconds', '-')}", flush=True)
    name = slug("autoencoders-pca", "" if args.codes == CODES else "codes-" + "-".join(map(str, args.codes)),
                *args.train)
    return name, {"codes": codes, **({"extractor_accuracy": accuracy} if accuracy is not None else {})}


def part_nll(args: argparse.Namespace) -> tuple[str, dict]:
    run, how = run_of(slug("vae", *args.train), "vae", "--data", "mnist", *args.train)
    print(f"zoo train vae --data mnist {' '.join(args.train)}: {how.get('seconds')} s", flush=True)
    by_k, last = {}, {}
    for k in args.nll_samples:
        last = evaluated(run, "--nll-samples", str(k), "--nll-images", str(args.nll_images), *EVAL_N)
        likelihood = last.get("likelihood", {})
        by_k[str(k)] = {"nll": last["nll"], "bits_per_dim": last["bits_per_dim"],
                        "standard_error": likelihood.get("standard_error"), "nll_elbo": last["nll_elbo"],
                        "images": likelihood.get("images"), "eval_seconds": last["took"]["seconds"],
                        "load_before": last["took"]["load_before"]}
        r = by_k[str(k)]
        print(f"k={k:>5}: NLL {r['nll']:.2f} nats ({r['bits_per_dim']:.4f} bits/dim) +- {r['standard_error']}, "
              f"ELBO bound {r['nll_elbo']:.2f}, active units {last.get('active_units')}/{last.get('latent_dim')}, "
              f"eval {r['eval_seconds']} s", flush=True)
    return slug("autoencoders-nll", *args.train), {"train": how, "by_k": by_k,
                                                   "active_units": last.get("active_units"),
                                                   "latent_dim": last.get("latent_dim")}


def part_versus(args: argparse.Namespace) -> tuple[str, dict]:
    net, judge = heldout_judge("mnist")
    held = load_prepared(prepare("mnist").path, "heldout")
    reference = features(net, to_float(held.images))
    rows, models = {}, {}
    for name in ("vae", "dcgan"):
        run, how = run_of(f"{name}-{args.minutes:g}min", name, "--data", "mnist", "--minutes", f"{args.minutes:g}")
        result = evaluated(run, *EVAL_N)
        model, _ = runs.load_model(runs.find_checkpoint(str(run)))
        models[name] = model
        samples = to_float(to_uint8(torch.cat([model.sample(500, generator=torch.Generator().manual_seed(1000 + i))
                                               for i in range(JUDGED_SAMPLES // 500)])))  # 8-bit, as saved
        probs = predict(net, samples)
        counts = torch.bincount(probs.argmax(1), minlength=10).double()
        share = counts[counts > 0] / counts.sum()
        rows[name] = {"steps": how["steps"], "train": how, **kept(result),
                      "judge_fd": frechet(features(net, samples), reference),
                      "judge_legible": float((probs.max(1).values >= 0.9).float().mean()),
                      "judge_spread_bits": max(0.0, float(-(share * share.log2()).sum()))}
        rows[name]["extractor_accuracy"] = result["extractor_accuracy"]
    keys = ("fid", "precision", "recall", "sharpness", "memorisation", "memorisation_reference", "diversity",
            "judge_fd", "judge_legible")
    print("model | steps | " + " | ".join(keys))
    for name, row in rows.items():
        print(f"{name} | {row['steps']} | " + " | ".join(f"{row[k]:.3f}" for k in keys))
    sheets = [model.sample(64, generator=torch.Generator().manual_seed(0)).view(8, 8, 1, 28, 28)
              for model in models.values()]
    gap = -torch.ones(8, 1, 1, 28, 28)
    path = HERE / "vae-dcgan-mnist.png"
    vae, dcgan = rows["vae"], rows["dcgan"]
    figures.save_grid(torch.cat([sheets[0], gap, sheets[1]], dim=1), path, scale=2,
                      column_labels=["vae", *[""] * 7, "", "dcgan", *[""] * 7],
                      title=f"{args.minutes:g} minutes each: vae FID {vae['fid']:.1f}, sharpness "
                            f"{vae['sharpness']:.2f}; dcgan FID {dcgan['fid']:.1f}, sharpness {dcgan['sharpness']:.2f}")
    print(f"-> {path} (docs/images/vae-dcgan-mnist.png is this picture)")
    return slug("autoencoders-versus", f"{args.minutes:g}min"), {
        "vae": vae, "dcgan": dcgan, "extractor_accuracy": vae["extractor_accuracy"],
        "judge_accuracy": judge["accuracy"], "judge": judge, "judged_samples": JUDGED_SAMPLES}


def part_cvae(args: argparse.Namespace) -> tuple[str, dict]:
    run, how = run_of(slug("cvae", *args.train), "cvae", "--data", "mnist", *args.train)
    result = evaluated(run, *EVAL_N)
    per = result["class_accuracy_per_class"]
    print(f"zoo train cvae --data mnist {' '.join(args.train)}: {how['steps']} steps, {how.get('seconds')} s; "
          f"zoo eval (its classifier reads {result['extractor_accuracy']:.1%} of held-out digits right): sevens "
          f"{per['7']:.1%}, worst {min(per.values()):.1%}, all {result['class_accuracy']:.1%}, FID "
          f"{result['fid']:.2f}", flush=True)
    # The independent judge: the model learns from every other digit, a CNN from the rest.
    # As many steps as the command took on all the digits (its --epochs would give half as many).
    steps = str(how["steps"])
    rest = [a for i, a in enumerate(args.train) if a != "--epochs" and (i == 0 or args.train[i - 1] != "--epochs")]
    rest = [a for i, a in enumerate(rest) if a != "--steps" and (i == 0 or rest[i - 1] != "--steps")]
    half, half_how = run_of(slug("cvae-half", *args.train), "cvae", "--data", "mnist", "--subset", "0::2",
                            "--steps", steps, *rest)
    judge, accuracy = classifier(slice(1, None, 2), slice(0, None, 2))
    held = load_prepared(prepare("mnist").path, "heldout")
    held_accuracy = float((predict(judge, to_float(held.images)).argmax(1) == held.labels).float().mean())
    print(f"judge (trained on the other half): {accuracy:.1%} of the model's half, {held_accuracy:.1%} of the "
          f"held-out digits", flush=True)
    shares = []
    for digit in range(10):
        out = HERE / slug("cvae-half-samples", *args.train) / str(digit)
        shutil.rmtree(out, ignore_errors=True)
        timed("sample", str(half), "--digit", str(digit), "--n", str(args.per_class), "--out", str(out))
        shares.append(float((predict(judge, load_pngs(out)).argmax(1) == digit).float().mean()))
        print(f"  digit {digit}: {shares[-1]:.1%} read as {digit}", flush=True)
    print(f"  worst digit {min(shares):.1%}")
    return slug("autoencoders-cvae", *args.train), {
        "train": how, "eval": {**kept(result), "extractor_accuracy": result["extractor_accuracy"]},
        "half": {"train": half_how, "read_as_asked": shares, "sevens": shares[7], "worst": min(shares),
                 "mean": sum(shares) / 10, "samples_per_digit": args.per_class,
                 "judge_accuracy": accuracy, "judge_heldout_accuracy": held_accuracy,
                 "judge": "a CNN trained on the training digits 1::2, checked on 0::2 (the model's half)"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["pca", "nll", "versus", "cvae"])
    parser.add_argument("--codes", type=lambda s: [int(v) for v in s.split(",")], default=CODES)
    parser.add_argument("--nll-samples", type=lambda s: [int(v) for v in s.split(",")], default=[1, 100, 1000])
    parser.add_argument("--nll-images", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--per-class", type=int, default=1000, help="cvae: samples per digit for the judge")
    parser.add_argument("--train", default="", help="more zoo train arguments, quoted (pca, nll, cvae): '--epochs 20'")
    parser.add_argument("--eval-n", type=int, help="zoo eval -n (default: zoo eval's own, as typed; smoke tests)")
    args = parser.parse_args()
    args.train = args.train.split()
    EVAL_N.extend(["-n", str(args.eval_n)] if args.eval_n else [])
    HERE.mkdir(parents=True, exist_ok=True)
    name, figures_ = {"pca": part_pca, "nll": part_nll, "versus": part_versus, "cvae": part_cvae}[args.part](args)
    settings = {"pca": {"codes": args.codes}, "nll": {"nll_samples": args.nll_samples, "nll_images": args.nll_images},
                "versus": {"minutes": args.minutes}, "cvae": {"samples_per_digit": args.per_class}}[args.part]
    write_result(name, figures_, part=args.part, train_args=args.train, eval_n=args.eval_n, **settings)


if __name__ == "__main__":
    main()
