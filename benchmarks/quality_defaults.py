"""Do the plain commands of wgan-gp and cgan draw good digits? Two checks of their defaults,
each training through the ``zoo`` command line exactly as a user types it (whole process
timed), on the offline MNIST (9,000 training digits, 1,000 held out).

The judge is benchmarks/digits.py's CNN, trained on the first 8,000 *training* digits
(``--judge-epochs`` passes); its accuracy is reported on the 1,000 held-out digits, which
it never sees.

* ``wgan``: ``zoo train dcgan`` and ``zoo train wgan-gp`` for the same ``--minutes`` of
  training (one core: run with OMP_NUM_THREADS=1), then ``--samples`` images each. Score:
  the Frechet distance (benchmarks/wasserstein.py) between the samples and the held-out
  digits in the judge's 128 penultimate features; the floor is 2,000 real training digits
  against the same held-out ones. Target: wgan-gp's FD at most 1.5 x dcgan's.
* ``cgan``: the README's ``zoo train cgan --data mnist --epochs 20``, then ``--per-class``
  samples of every digit (what ``zoo sample cgan --digit D`` draws: the latest checkpoint,
  the moving average of G when the config keeps one, 8-bit images). Score: the share the
  judge reads as the digit asked for. Targets: sevens >= 95%, every digit >= 90%.

``--set MODEL:key=value`` adds a config key to one model's command (a screening run);
``--tag`` names the result file. Results: benchmarks/runs/quality_defaults/*.json;
run folders go to ``--runs``.

    OMP_NUM_THREADS=1 python benchmarks/quality_defaults.py wgan --minutes 5
    OMP_NUM_THREADS=1 python benchmarks/quality_defaults.py cgan
    OMP_NUM_THREADS=1 python benchmarks/quality_defaults.py wgan --minutes 2 --models wgan-gp \\
        --set wgan-gp:beta1=0.5 --tag beta1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from digits import classifier, predict  # noqa: E402
from wasserstein import features, frechet  # noqa: E402

from zoo.data.images import to_float, to_uint8  # noqa: E402
from zoo.data.memory import load_prepared  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402
from zoo.records import runs  # noqa: E402
from zoo.spec import class_condition  # noqa: E402

RESULTS = Path(__file__).parent / "runs" / "quality_defaults"
JUDGE_TRAIN, JUDGE_CHECK = slice(0, 8000), slice(8000, None)
FLOOR_IMAGES = 2000


def judge(epochs: int) -> tuple[torch.nn.Module, dict[str, float]]:
    """The CNN judge (trained on training digits 0-7,999 only) and its accuracies."""
    net, check_accuracy = classifier(train=JUDGE_TRAIN, check=JUDGE_CHECK, epochs=epochs)
    heldout = load_prepared(prepare("mnist").path, split="heldout")
    read = predict(net, to_float(heldout.images)).argmax(1)
    accuracy = float((read == heldout.labels).float().mean())
    return net, {"heldout_accuracy": accuracy, "training_8000_8999_accuracy": check_accuracy}


def zoo_train(model: str, length: list[str], sets: list[str], out: Path) -> tuple[Path, float, dict]:
    """``zoo train MODEL --data mnist LENGTH --set ...`` in its own process: the run folder,
    the seconds the whole command took, and the checkpoint's training record."""
    command = [str(Path(sys.executable).parent / "zoo"), "train", model, "--data", "mnist", *length,
               "--no-wandb", "--force", "--out", str(out)]
    for item in sets:
        command += ["--set", item]
    print("$", " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    meta = ckpt_io.read_meta(out / ckpt_io.FILENAME)
    return out, seconds, meta


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


def wgan(args: argparse.Namespace, net: torch.nn.Module, info: dict) -> dict:
    data = prepare("mnist")
    heldout = features(net, to_float(load_prepared(data.path, split="heldout").images))
    floor = frechet(features(net, to_float(data.images[:FLOOR_IMAGES])), heldout)
    print(f"FD floor (real training digits 0-{FLOOR_IMAGES - 1} vs held-out): {floor:.2f}")
    rows = []
    for model in args.models.split(","):
        sets = [s.split(":", 1)[1] for s in args.sets if s.split(":", 1)[0] == model]
        run, seconds, meta = zoo_train(model, ["--steps", "1000000", "--minutes", str(args.minutes)], sets,
                                       args.runs / f"{model}{args.tag and '-' + args.tag}")
        images = draw(run, args.samples, seed=1)
        fd = frechet(features(net, images), heldout)
        row = {"model": model, "sets": sets, "steps": meta["train"]["step"], "seconds": round(seconds, 1),
               "train_seconds": round(meta["train"].get("seconds", 0.0), 1), "fd": fd,
               "config": {k: meta["config"][k] for k in ("d_norm", "lr", "beta1", "beta2", "n_critic",
                                                         "batch_size", "loss", "gp_weight")}}
        rows.append(row)
        print(f"{model} {' '.join(sets)}: {row['steps']:,} steps in {row['train_seconds']}s of training "
              f"({row['seconds']}s whole command), FD {fd:.2f}", flush=True)
    by_model = {row["model"]: row["fd"] for row in rows}
    if "dcgan" in by_model and "wgan-gp" in by_model:
        ratio = by_model["wgan-gp"] / by_model["dcgan"]
        print(f"wgan-gp / dcgan FD: {ratio:.2f} (target <= 1.5)")
    return {"minutes": args.minutes, "samples": args.samples, "floor_fd": floor, **info, "rows": rows}


def cgan(args: argparse.Namespace, net: torch.nn.Module, info: dict) -> dict:
    sets = [s.split(":", 1)[1] for s in args.sets if s.split(":", 1)[0] == "cgan"]
    length = ["--epochs", str(args.epochs)] if args.steps is None else ["--steps", str(args.steps)]
    if args.run is None:
        run, seconds, meta = zoo_train("cgan", length, sets, args.runs / f"cgan{args.tag and '-' + args.tag}")
    else:  # a run trained elsewhere: judge it only
        run, seconds, meta = args.run, float("nan"), ckpt_io.read_meta(args.run / ckpt_io.FILENAME)
    shares = []
    for digit in range(10):
        labels = torch.full((args.per_class,), digit)
        read = predict(net, draw(run, args.per_class, seed=digit, labels=labels)).argmax(1)
        shares.append(float((read == digit).float().mean()))
    print(f"cgan {' '.join(length + sets)}: {meta['train']['step']:,} steps, {seconds:.0f}s whole command | "
          f"sevens {shares[7]:.1%} (target 95%), worst digit {min(shares):.1%} (target 90%) | "
          + " ".join(f"{d}:{s:.1%}" for d, s in enumerate(shares)), flush=True)
    return {"command": length + sets, "steps": meta["train"]["step"], "seconds": round(seconds, 1),
            "train_seconds": round(meta["train"].get("seconds", 0.0), 1),
            "config": meta["config"], "per_digit": shares, "sevens": shares[7], "worst": min(shares), **info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["wgan", "cgan"])
    parser.add_argument("--minutes", type=float, default=5.0, help="wgan: training minutes per model")
    parser.add_argument("--models", default="dcgan,wgan-gp", help="wgan: models to compare")
    parser.add_argument("--samples", type=int, default=2000, help="wgan: samples per model for the FD")
    parser.add_argument("--epochs", type=int, default=20, help="cgan: --epochs (the README's 20)")
    parser.add_argument("--steps", type=int, help="cgan: --steps instead of --epochs")
    parser.add_argument("--per-class", type=int, default=1000, help="cgan: samples per digit")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="MODEL:key=value")
    parser.add_argument("--run", type=Path, help="cgan: judge this run folder instead of training one")
    parser.add_argument("--tag", default="", help="suffix of the result file and run folders")
    parser.add_argument("--judge-epochs", type=int, default=10)
    parser.add_argument("--runs", type=Path, default=RESULTS / "runs", help="where the run folders go")
    args = parser.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: OMP_NUM_THREADS is not 1; timings are for all cores", file=sys.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    net, info = judge(args.judge_epochs)
    print(f"judge: CNN on training digits 0-7,999, accuracy {info['heldout_accuracy']:.2%} on the 1,000 "
          f"held-out digits", flush=True)
    result = wgan(args, net, info) if args.check == "wgan" else cgan(args, net, info)
    name = f"{args.check}{args.tag and '-' + args.tag}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(f"-> {RESULTS / name}")


if __name__ == "__main__":
    main()
