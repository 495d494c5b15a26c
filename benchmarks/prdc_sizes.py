"""Precision, recall, density and coverage on sets of one size: what the change moves.

``zoo eval`` used to measure these four with every sample (10,000 by default) against the
whole reference split (1,000 held-out digits on the offline MNIST); their papers
(Kynkaanniemi et al. 2019, Naeem et al. 2020) compare sets of one size, and at 10 samples
to each real image the real images' neighbourhoods hold several samples each, so coverage
climbs towards 1 whatever the model. ``zoo eval`` now cuts the larger set to the smaller's
size (``fid10k+prdc1k/...``).

This measures both ways on the same features: a DCGAN trained on MNIST for 1,500 steps
(``--run``: an existing run instead), and the real training digits themselves in the
model's place (a model as good as the data: all 9,000 against the 1,000 held-out digits,
then 1,000 of them), in zoo's classifier features. ``zoo eval`` is run as a user runs it,
and its figures must be the script's equal-size ones.

    python benchmarks/prdc_sizes.py                       # trains into benchmarks/runs/prdc_sizes/
    python benchmarks/prdc_sizes.py --run runs/dcgan-mnist-XXXX
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from record import RUNS, write_result  # noqa: E402

from zoo.measure import metrics  # noqa: E402
from zoo.pipelines.evaluate import DC_K  # noqa: E402
from zoo.pipelines.evaluate.reference import load_extractor, reference_data  # noqa: E402
from zoo.pipelines.evaluate.samplers import PR_K, draw, equal_sets  # noqa: E402
from zoo.records.runs import find_checkpoint, load_model  # noqa: E402

STEPS, N, SEED = 1500, 10_000, 0


def zoo(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled", "COLUMNS": "200"})
    if done.returncode:
        raise SystemExit(f"zoo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def prdc(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    precision, recall = metrics.precision_recall(real, fake, PR_K)
    density, coverage = metrics.density_coverage(real, fake, DC_K)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "density": round(density, 4),
            "coverage": round(coverage, 4), "generated": len(fake), "reference": len(real)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a trained unconditional run (default: train one)")
    args = parser.parse_args()
    run = args.run
    if run is None:
        run = RUNS / "prdc_sizes" / "dcgan"
        if not (run / "checkpoint.safetensors").is_file():
            zoo("train", "dcgan", "--data", "mnist", "--steps", str(STEPS), "--no-wandb", "--out", str(run), "--force")
    zoo("eval", str(run), "--n", str(N), "--seed", str(SEED), "--wandb", "off")
    evaluated = json.loads((run / "eval.json").read_text())

    model, ckpt = load_model(find_checkpoint(str(run)))
    model.eval()
    if model.needs():
        raise SystemExit(f"{model.name} is conditional; this benchmark draws unconditional samples")
    reference = reference_data(ckpt.train["data"], "heldout")
    extractor = load_extractor(None, reference, None)
    with torch.no_grad():
        fake = extractor.extract(draw(model, N, {}, SEED))
    real = extractor.extract(reference.split.images)
    train = extractor.extract(reference.train.images)

    figures = {
        "dcgan": {"all_samples": prdc(real, fake), "equal_sets": prdc(*equal_sets(real, fake, None, SEED))},
        "real_training_digits": {"all_samples": prdc(real, train),
                                 "equal_sets": prdc(*equal_sets(real, train[torch.randperm(
                                     len(train), generator=torch.Generator().manual_seed(SEED))], None, SEED))},
    }
    for key in ("precision", "recall", "density", "coverage"):  # zoo eval measured what this script did
        if abs(evaluated[key] - figures["dcgan"]["equal_sets"][key]) > 1e-4:
            raise SystemExit(f"zoo eval's {key} {evaluated[key]} differs from this script's "
                             f"{figures['dcgan']['equal_sets'][key]}")
    figures["dcgan"]["fid"] = round(evaluated["fid"], 3)
    for name, both in figures.items():
        print(name, json.dumps(both))
    write_result("prdc-sizes", figures, run=str(run), steps=ckpt.train.get("step"), samples=N, seed=SEED,
                 protocol=evaluated["protocol"],
                 notes="all_samples: every sample against every held-out digit (zoo eval before this change); "
                       "equal_sets: the larger set cut to the smaller's size (zoo eval now). "
                       "real_training_digits: the training digits in a model's place, shuffled (seeded).")


if __name__ == "__main__":
    main()
