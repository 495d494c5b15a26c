"""Do the plain commands of wgan-gp and cgan draw good digits? Two checks of their defaults,
each training through the ``zoo`` command line exactly as a user types it (whole process
timed, the load average before it kept), on the offline MNIST (9,000 training digits, 1,000
held out).

The judge is benchmarks/digits.py's ``heldout_judge``: a CNN trained on the 1,000 *held-out*
digits only (``--judge-epochs`` passes), which no model here trains on, so it never saw the
generators' data; its accuracy is measured on the 9,000 training digits, which it never sees.
(Until 2026-12 the judge learnt from training digits 0-7,999, which the generators learn from
too.)

* ``wgan``: ``zoo train dcgan --data mnist --minutes M`` and ``zoo train wgan-gp --data mnist
  --minutes M`` (one core: run with OMP_NUM_THREADS=1), then ``--samples`` images each. Score:
  the Frechet distance (benchmarks/wasserstein.py) between the samples and the 1,000 held-out
  digits, which no generator trained on, in the judge's 128 penultimate features; the floor is
  2,000 real training digits against the same held-out ones. Target: wgan-gp's FD at most
  1.5 x dcgan's. And ``zoo eval RUN`` as typed (FID, precision, recall in its classifier's
  features; ``--no-eval`` leaves it out, for screening runs).
* ``cgan``: the README's ``zoo train cgan --data mnist --epochs 20`` (``--seed S`` for another
  training seed), then ``--per-class`` samples of every digit (what ``zoo sample cgan --digit D``
  draws: the latest checkpoint, the moving average of G when the config keeps one, 8-bit
  images). Score: the share the judge reads as the digit asked for. Targets: sevens >= 95%,
  every digit >= 90%.

``--set MODEL:key=value`` adds a config key to one model's command (a screening run); ``--tag``
names the result file. Run folders go to ``--runs`` (benchmarks/runs/quality_defaults/).

    OMP_NUM_THREADS=1 python benchmarks/quality_defaults.py wgan --minutes 5     # about 16 minutes
    OMP_NUM_THREADS=1 python benchmarks/quality_defaults.py cgan [--seed 1]      # about 5 minutes
    OMP_NUM_THREADS=1 python benchmarks/quality_defaults.py wgan --minutes 2 --models wgan-gp \\
        --set wgan-gp:beta1=0.5 --tag beta1 --no-eval                            # a screening run
    OMP_NUM_THREADS=1 python benchmarks/quality_defaults.py wgan --minutes 0.1 --samples 500 --eval-n 500  # smoke

Writes benchmarks/results/quality-wgan-{M}min[-TAG].json (``figures.models.MODEL``: steps,
whole_seconds, load_before, train_seconds, fd, eval (zoo eval's fid, precision, recall,
density, coverage); ``figures.floor_fd``, ``figures.fd_ratio_wgan_gp_to_dcgan`` and
``fid_ratio_wgan_gp_to_dcgan`` when both ran, ``figures.judge_accuracy``) and
benchmarks/results/quality-cgan-epochs20-seed{S}[-TAG].json (``figures``: steps, whole_seconds,
load_before, train_seconds, per_digit, sevens, worst, mean, judge_accuracy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import evaluated, slug, timed  # noqa: E402
from digits import heldout_judge, predict  # noqa: E402
from record import RUNS, write_result  # noqa: E402
from wasserstein import features, frechet  # noqa: E402

from zoo.data.images import to_float, to_uint8  # noqa: E402
from zoo.data.memory import load_prepared  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402
from zoo.records import runs  # noqa: E402
from zoo.spec import class_condition  # noqa: E402

HERE = RUNS / "quality_defaults"
FLOOR_IMAGES = 2000


def zoo_train(model: str, length: list[str], sets: list[str], out: Path) -> tuple[Path, dict, dict]:
    """``zoo train MODEL --data mnist LENGTH --set ...`` in its own process: the run folder, the
    whole command's time (with the load before it), and the checkpoint's record."""
    shutil.rmtree(out, ignore_errors=True)
    args = ["train", model, "--data", "mnist", *length, *[a for s in sets for a in ("--set", s)]]
    print("$ zoo", " ".join(args), flush=True)
    took = timed(*args, "--no-wandb", "--out", str(out))
    return out, took, ckpt_io.read_meta(out / ckpt_io.FILENAME)


def draw(run: Path, n: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples of the run's latest checkpoint as ``zoo sample`` writes them (8-bit)."""
    model, _ = runs.load_model(run / ckpt_io.FILENAME)
    generator = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, 500):
        part = None if labels is None else labels[start:start + 500]
        size = min(500, n - start)
        chunks.append(model.sample(size, generator=generator, conditions=class_condition(part)))
    return to_float(to_uint8(torch.cat(chunks)))


CONFIG_KEYS = ("d_norm", "lr", "beta1", "beta2", "n_critic", "batch_size", "loss", "gp_weight")
CONFIGS: dict[str, dict] = {}
"""Each trained model's resolved config (as its checkpoint keeps it): settings, kept beside the figures."""


def wgan(args: argparse.Namespace, net: torch.nn.Module) -> tuple[str, dict]:
    data = prepare("mnist")
    heldout = features(net, to_float(load_prepared(data.path, split="heldout").images))
    floor = frechet(features(net, to_float(data.images[:FLOOR_IMAGES])), heldout)
    print(f"FD floor (real training digits 0-{FLOOR_IMAGES - 1} vs held-out): {floor:.2f}")
    rows = {}
    for model in args.models.split(","):
        sets = [s.split(":", 1)[1] for s in args.sets if s.split(":", 1)[0] == model]
        run, took, meta = zoo_train(model, ["--minutes", f"{args.minutes:g}"], sets,
                                    args.runs / slug(model, args.tag))
        images = draw(run, args.samples, seed=1)
        fd = frechet(features(net, images), heldout)
        row = {"command": took["command"].split(" --no-wandb")[0], "steps": meta["train"]["step"],
               "whole_seconds": took["seconds"], "load_before": took["load_before"],
               "train_seconds": round(meta["train"].get("seconds", 0.0), 1), "fd": fd}
        CONFIGS[model] = {k: meta["config"][k] for k in CONFIG_KEYS if k in meta["config"]}
        if args.eval:  # zoo eval RUN as typed: 10,000 samples, its classifier's features
            result = evaluated(run, *(["-n", str(args.eval_n)] if args.eval_n else []))
            row["eval"] = {k: result.get(k) for k in ("fid", "precision", "recall", "density", "coverage", "protocol",
                                                      "extractor_accuracy")} | {"seconds": result["took"]["seconds"]}
        rows[model] = row
        print(f"{model} {' '.join(sets)}: {row['steps']:,} steps in {row['train_seconds']}s of training "
              f"({row['whole_seconds']}s whole command), FD {fd:.2f}", flush=True)
    figures: dict = {"models": rows, "floor_fd": floor}
    if "dcgan" in rows and "wgan-gp" in rows:
        figures["fd_ratio_wgan_gp_to_dcgan"] = rows["wgan-gp"]["fd"] / rows["dcgan"]["fd"]
        print(f"wgan-gp / dcgan FD: {figures['fd_ratio_wgan_gp_to_dcgan']:.2f} (target <= 1.5)")
        if args.eval:
            figures["fid_ratio_wgan_gp_to_dcgan"] = rows["wgan-gp"]["eval"]["fid"] / rows["dcgan"]["eval"]["fid"]
            print(f"wgan-gp / dcgan zoo eval FID: {figures['fid_ratio_wgan_gp_to_dcgan']:.2f}")
    return slug("quality-wgan", f"{args.minutes:g}min", args.tag), figures


def cgan(args: argparse.Namespace, net: torch.nn.Module) -> tuple[str, dict]:
    sets = [s.split(":", 1)[1] for s in args.sets if s.split(":", 1)[0] == "cgan"]
    length = ["--epochs", str(args.epochs)] if args.steps is None else ["--steps", str(args.steps)]
    seed = ["--seed", str(args.seed)] if args.seed else []  # seed 0 is the command's default
    name = slug("quality-cgan", "".join(length).lstrip("-"), f"seed{args.seed}", args.tag)
    took: dict = {}
    if args.run is None:
        run, took, meta = zoo_train("cgan", [*length, *seed], sets, args.runs / slug("cgan", f"seed{args.seed}",
                                                                                      args.tag))
    else:  # a run trained elsewhere: judge it only
        run, meta = args.run, ckpt_io.read_meta(args.run / ckpt_io.FILENAME)
        name = slug("quality-cgan", args.run.name, args.tag)
    CONFIGS["cgan"] = meta["config"]
    shares = []
    for digit in range(10):
        labels = torch.full((args.per_class,), digit)
        read = predict(net, draw(run, args.per_class, seed=digit, labels=labels)).argmax(1)
        shares.append(float((read == digit).float().mean()))
    print(f"cgan {' '.join(length + sets)}: {meta['train']['step']:,} steps, {took.get('seconds', 0):.0f}s whole "
          f"command | sevens {shares[7]:.1%} (target 95%), worst digit {min(shares):.1%} (target 90%) | "
          + " ".join(f"{d}:{s:.1%}" for d, s in enumerate(shares)), flush=True)
    return name, {"command": took.get("command", "").split(" --no-wandb")[0] or None, "steps": meta["train"]["step"],
                  "whole_seconds": took.get("seconds"), "load_before": took.get("load_before"),
                  "train_seconds": round(meta["train"].get("seconds", 0.0), 1), "per_digit": shares,
                  "sevens": shares[7], "worst": min(shares), "mean": sum(shares) / 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["wgan", "cgan"])
    parser.add_argument("--minutes", type=float, default=5.0, help="wgan: training minutes per model")
    parser.add_argument("--models", default="dcgan,wgan-gp", help="wgan: models to compare")
    parser.add_argument("--samples", type=int, default=2000, help="wgan: samples per model for the FD")
    parser.add_argument("--eval", action=argparse.BooleanOptionalAction, default=True,
                        help="wgan: also zoo eval each run as typed (--no-eval for screening runs)")
    parser.add_argument("--eval-n", type=int, help="wgan: zoo eval -n (default: its own 10,000; smoke tests)")
    parser.add_argument("--epochs", type=int, default=20, help="cgan: --epochs (the README's 20)")
    parser.add_argument("--steps", type=int, help="cgan: --steps instead of --epochs")
    parser.add_argument("--seed", type=int, default=0, help="cgan: the training seed (0: the command's default)")
    parser.add_argument("--per-class", type=int, default=1000, help="cgan: samples per digit")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="MODEL:key=value")
    parser.add_argument("--run", type=Path, help="cgan: judge this run folder instead of training one")
    parser.add_argument("--tag", default="", help="suffix of the result file and run folders")
    parser.add_argument("--judge-epochs", type=int, default=30, help="passes of the held-out judge's training")
    parser.add_argument("--runs", type=Path, default=HERE, help="where the run folders go")
    args = parser.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: OMP_NUM_THREADS is not 1; timings are for all cores", file=sys.stderr)
    args.runs.mkdir(parents=True, exist_ok=True)
    net, judge = heldout_judge("mnist", epochs=args.judge_epochs)
    print(f"judge: {judge['trained_on']}; {judge['accuracy']:.2%} right on {judge['checked_on']}", flush=True)
    name, figures = wgan(args, net) if args.check == "wgan" else cgan(args, net)
    figures["judge_accuracy"] = judge["accuracy"]
    settings = ({"minutes": args.minutes, "models": args.models.split(","), "samples": args.samples}
                if args.check == "wgan" else
                {"epochs": args.epochs if args.steps is None else None, "steps": args.steps, "seed": args.seed,
                 "per_class": args.per_class})
    write_result(name, figures, **settings, sets=args.sets, threads=os.environ.get("OMP_NUM_THREADS"),
                 configs=CONFIGS, judge=judge)


if __name__ == "__main__":
    main()
