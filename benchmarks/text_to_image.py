"""Issue 17's acceptance: does StackGAN draw what the text says?

Every figure is of runs trained by the commands as a user types them (``zoo train stackgan
--data captions:fashion ...``) and of prompts the model never trained on:

* ``judge``: a Fashion-MNIST classifier (a small CNN of its own, not zoo's) trained here on the
  10,000 *held-out* images of captions:fashion only (padded to 32 px; the split zoo never trains
  on, so the judge never saw an image a generator learnt from) and checked on the 60,000
  training images, which it never sees: its own accuracy per class is the ceiling the samples
  are read against; and the same on those images shrunk to stage I's 16 px and given at 32,
  as stage I gives its images. (Until 2026-12 the judge learnt from the training images, the
  generators' own data.)
* ``measure RUN``: for each of ``--count`` held-out items, one of its captions (the 10,000
  held-out items' captions were never trained on), one sample; the judge reads the class
  named in the prompt in X% of samples, per class. Then attribute pairs: prompts that differ
  only in "dark" vs "light" (or "small" vs "large"), drawn from the same latents; the measured
  attribute (:func:`zoo.data.sources.captions.measure`) must move the right way. Combinations never
  said in training (:data:`zoo.data.sources.captions.WITHHELD`) are reported on their own.
* ``stages RUN1 RUN2``: the same prompts and latents through stage I and stage II, in one
  grid (stage I shown at 32 px, as it gives its images); a picture, no figures.
* ``defaults OUT``: the README's commands as typed, at their default lengths, each a whole
  process, timed (with the load average before it): ``zoo prep captions:fashion``
  (``--fresh-prep``: with ``--force``, the first time's cost: the text encoder's training),
  ``zoo train stackgan --data captions:fashion --set stage=1``, then ``--set stage=2
  --init-from`` it; then ``measure`` and ``zoo eval`` of both stages, and ``stages``.
  ``--seed N`` trains both with ``--seed N``; ``--set key=value`` adds a config key to both
  commands (e.g. d_projection=false). benchmarks/text_to_image_defaults.sh runs this.

    python benchmarks/text_to_image.py judge                          # about 5 minutes here
    python benchmarks/text_to_image.py measure runs/stackgan-captions_fashion-...   # about 5 minutes
    python benchmarks/text_to_image.py stages RUN_STAGE1 RUN_STAGE2
    python benchmarks/text_to_image.py defaults OUT --fresh-prep [--seed 1]   # about 45 minutes
    python benchmarks/text_to_image.py defaults OUT --steps 3 --count 200 --eval-n 500 --judge-epochs 1   # smoke

Writes benchmarks/results/stackgan-judge.json (``figures``: accuracy, accuracy_per_class,
accuracy_at_16px_per_class), stackgan-measure-RUN.json (or ``--name``; ``figures``:
class_read_mean, class_read_worst, class_read_per_class, tone_pairs_right, size_pairs_right,
their per-class and unseen figures, unseen_class_read, judge_accuracy) and
stackgan-defaults[-seedN][-SETS].json (``figures.prep``: seconds, load_before, cached,
encoder (steps, seconds, heldout_top1_of_100), encoder_bytes; ``figures.stage1`` and
``.stage2``: train (seconds, load_before, steps), measure (as above), eval (zoo eval's fid,
precision, recall, coverage, sharpness, class_accuracy, ...); ``figures.judge``). Pictures and
runs go to benchmarks/runs/text_to_image/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.data.images import to_float
from zoo.data.sources import captions as fashion
from zoo.display import figures
from zoo.pipelines.prep import prepare
from zoo.records import runs
from zoo.records.paths import cache_dir

sys.path.insert(0, str(Path(__file__).parent))

from commands import evaluated, load, slug, timed, training  # noqa: E402
from record import RUNS, write_result  # noqa: E402

HERE = RUNS / "text_to_image"
DATA = "captions:fashion"
CLASSES = list(fashion.NOUNS)
TEMPLATES = ("a {w} {noun}", "this {noun} is {w}", "a picture of a {w} {noun}")
PAIRS = {"tone": ("dark", "light"), "size": ("small", "large")}
SEEDS = 20


def network() -> nn.Sequential:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 8 * 8, 128), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(128, 10))


JUDGE_EPOCHS = 20


def judge_path(epochs: int) -> Path:
    return cache_dir() / "benchmarks" / f"fashion32-heldout-judge-v1-{epochs}.safetensors"


def predict(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return torch.cat([net(x).argmax(1) for x in images.split(1000)])


def per_class(predicted: torch.Tensor, wanted: torch.Tensor) -> list[float]:
    return [float((predicted[wanted == c] == c).float().mean()) for c in range(10)]


def train_judge(epochs: int = JUDGE_EPOCHS) -> dict:
    """Train the judge on the held-out images only and check it on the training images; the
    weights and this record are cached."""
    checked = judge_path(epochs).with_suffix(".json")
    if judge_path(epochs).is_file() and checked.is_file():
        return json.loads(checked.read_text())
    train, held = prepare(DATA), prepare(DATA, split="heldout")
    assert train.labels is not None and held.labels is not None
    started = time.perf_counter()
    net = network()
    if judge_path(epochs).is_file():
        net.load_state_dict(load_file(str(judge_path(epochs))))
    else:
        torch.manual_seed(0)
        optimizer = torch.optim.Adam(net.parameters(), 1e-3)
        x, y = held.images, held.labels
        steps = epochs * (len(x) // 128)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
        for _ in range(epochs):
            net.train()
            order = torch.randperm(len(x))
            for i in range(0, len(x) - 127, 128):
                index = order[i:i + 128]
                images = to_float(x[index])
                shift = torch.randint(-2, 3, (2,)).tolist()  # small translations
                images = torch.roll(images, shifts=shift, dims=(2, 3))
                loss = F.cross_entropy(net(images), y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        judge_path(epochs).parent.mkdir(parents=True, exist_ok=True)
        save_file(net.state_dict(), str(judge_path(epochs)))
    real = to_float(train.images)
    predicted = predict(net, real)
    # As stage I gives its images: 16 px (the mean of each 2 x 2), drawn again at 32 px.
    small = F.interpolate(F.avg_pool2d(real, 2), size=real.shape[-2:], mode="bilinear", align_corners=False)
    record = {"trained_on": f"the {len(held):,} held-out images of {DATA}", "epochs": epochs,
              "checked_on": f"the {len(train):,} training images (never seen by the judge)",
              "accuracy": float((predicted == train.labels).float().mean()),
              "accuracy_per_class": dict(zip(CLASSES, per_class(predicted, train.labels), strict=True)),
              "accuracy_at_16px_per_class": dict(zip(CLASSES, per_class(predict(net, small), train.labels),
                                                     strict=True)),
              "seconds": round(time.perf_counter() - started, 1)}
    checked.write_text(json.dumps(record, indent=2) + "\n")
    return record


def load_judge(epochs: int = JUDGE_EPOCHS) -> nn.Module:
    if not judge_path(epochs).is_file():
        train_judge(epochs)
    net = network()
    net.load_state_dict(load_file(str(judge_path(epochs))))
    return net.eval()


def draw(model, prompts: list[str], seeds: list[int]) -> torch.Tensor:
    """One sample per (prompt, seed): the seed fixes the latents, so equal seeds share them."""
    out = []
    for start in range(0, len(prompts), 500):
        chunk = prompts[start:start + 500]
        z = torch.cat([model.sample_latent(1, torch.Generator().manual_seed(s)) for s in seeds[start:start + 500]])
        with torch.no_grad():
            model.eval()
            out.append(model.generate(z, {"text": model.encode_text(chunk)}).cpu())
    return torch.cat(out)


def measure(run: Path, count: int, judge_epochs: int = JUDGE_EPOCHS) -> dict:
    model, checkpoint = runs.load_model(runs.find_checkpoint(str(run)))
    judge = load_judge(judge_epochs)
    held = prepare(DATA, split="heldout")
    assert held.labels is not None and held.tokens is not None
    g = torch.Generator().manual_seed(0)
    items = torch.randperm(len(held), generator=g)[:count]
    picks = torch.randint(0, held.tokens.shape[1], (count,), generator=g)
    prompts = [held.caption(int(i), int(k)) for i, k in zip(items, picks, strict=True)]
    samples = draw(model, prompts, list(range(count)))
    wanted = held.labels[items]
    read = per_class(predict(judge, samples), wanted)
    result: dict = {"run": str(run), "step": checkpoint.train.get("step"), "samples": count,
                    "class_read_per_class": dict(zip(CLASSES, read, strict=True)),
                    "class_read_mean": sum(read) / 10, "class_read_worst": min(read)}
    HERE.mkdir(parents=True, exist_ok=True)
    figures.save_grid(samples[:100], HERE / f"{run.name}-heldout-prompts.png", nrow=10)

    for attribute, (low, high) in PAIRS.items():
        rows, unseen = [], []
        per: dict[str, float] = {}
        for name, nouns in fashion.NOUNS.items():
            prompts_low, prompts_high, seeds = [], [], []
            for noun in nouns:
                for template in TEMPLATES:
                    for seed in range(SEEDS):
                        prompts_low.append(template.format(w=low, noun=noun))
                        prompts_high.append(template.format(w=high, noun=noun))
                        seeds.append(seed)
            a = fashion.measure(((draw(model, prompts_low, seeds) + 1) * 127.5).round().to(torch.uint8))[attribute]
            b = fashion.measure(((draw(model, prompts_high, seeds) + 1) * 127.5).round().to(torch.uint8))[attribute]
            right = (a < b).float()
            per[name] = float(right.mean())
            withheld = (name, low) in fashion.WITHHELD or (name, high) in fashion.WITHHELD
            (unseen if withheld else rows).append(right)
        result[f"{attribute}_pairs_right"] = float(torch.cat(rows).mean())
        result[f"{attribute}_per_class"] = per
        if unseen:
            result[f"{attribute}_unseen_pairs_right"] = float(torch.cat(unseen).mean())
    # The unseen combinations drawn and read: is "a dark sandal" still a sandal?
    combos = [(name, word) for name, word in sorted(fashion.WITHHELD)]
    prompts = [f"a {word} {fashion.NOUNS[name][0]}" for name, word in combos for _ in range(200)]
    samples = draw(model, prompts, [s for _ in combos for s in range(200)])
    labels = torch.tensor([CLASSES.index(name) for name, _ in combos for _ in range(200)])
    predicted = predict(judge, samples)
    result["unseen_class_read"] = {f"{word} {name}": float((predicted[labels == CLASSES.index(name)]
                                                             == CLASSES.index(name)).float().mean())
                                   for name, word in combos}
    return result


def stages(run1: Path, run2: Path) -> Path:
    one, _ = runs.load_model(runs.find_checkpoint(str(run1)))
    two, _ = runs.load_model(runs.find_checkpoint(str(run2)))
    prompts = ["a dark ankle boot", "a light sneaker", "a patterned dress", "a large bag", "a pair of trousers",
               "a light pullover", "a dark sandal", "a small t-shirt"]
    seeds = list(range(6))
    rows = []
    for prompt in prompts:
        rows += [draw(one, [prompt] * len(seeds), seeds), draw(two, [prompt] * len(seeds), seeds)]
    grid = torch.stack(rows)
    labels = [f"{p} ({stage})" for p in prompts for stage in ("I", "II")]
    HERE.mkdir(parents=True, exist_ok=True)
    path = HERE / f"stages-{run2.name}.png"
    figures.save_grid(grid, path, scale=2, row_labels=labels, title="stage I (16 px, shown at 32) and stage II (32 px)")
    return path


def defaults(args: argparse.Namespace) -> dict:
    """The README's commands as typed, timed, then measured (see the module's docstring)."""
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    seed = ["--seed", str(args.seed)] if args.seed is not None else []
    sets = [a for s in args.sets for a in ("--set", s)]
    length = ["--steps", str(args.steps)] if args.steps else []  # a smoke test's; the defaults have none
    cached = any((cache_dir() / "prepared").glob("captions-fashion-*/meta.json"))
    prep = timed("prep", DATA, *(["--force"] if args.fresh_prep else []))
    meta = json.loads((prepare(DATA).path / "meta.json").read_text())
    encoder = {k: v for k, v in meta.get("text", {}).get("encoder", {}).items() if k != "fingerprint"}
    encoder_file = prepare(DATA).path / meta.get("text", {}).get("encoder_file", "text_encoder.safetensors")
    result: dict = {"prep": {"seconds": prep["seconds"], "load_before": prep["load_before"],
                             "cached": bool(cached and not args.fresh_prep), "encoder": encoder,
                             "encoder_bytes": encoder_file.stat().st_size if encoder_file.is_file() else None}}
    stage1, stage2 = out / "stackgan-stage1", out / "stackgan-stage2"
    for run in (stage1, stage2):
        shutil.rmtree(run, ignore_errors=True)
    train1 = timed("train", "stackgan", "--data", DATA, "--set", "stage=1", *sets, *length, *seed, "--out", str(stage1),
                   "--no-wandb")
    train2 = timed("train", "stackgan", "--data", DATA, "--set", "stage=2", "--init-from", str(stage1), *sets, *length,
                   *seed, "--out", str(stage2), "--no-wandb")
    judge = train_judge(args.judge_epochs)
    for key, run, took in (("stage1", stage1, train1), ("stage2", stage2, train2)):
        how = training(run)
        result[key] = {"train": {"command": took["command"].split(" --out")[0], "seconds": took["seconds"],
                                 "load_before": took["load_before"], "steps": how["steps"],
                                 "train_seconds": how["train_seconds"]},
                       "measure": measure(run, args.count, args.judge_epochs),
                       "eval": evaluated(run, *(["-n", str(args.eval_n)] if args.eval_n else []))}
        m, e = result[key]["measure"], result[key]["eval"]
        print(f"{key}: {how['steps']:,} steps in {took['seconds']:.0f}s; class read {m['class_read_mean']:.1%} "
              f"(worst {m['class_read_worst']:.1%}); zoo eval FID {e.get('fid', float('nan')):.2f}", flush=True)
    print(f"-> {stages(stage1, stage2)}")
    result["judge"] = judge
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    j = sub.add_parser("judge")
    m = sub.add_parser("measure")
    m.add_argument("run", type=Path)
    m.add_argument("--count", type=int, default=5000)
    m.add_argument("--name", help="the result file's name (default: stackgan-measure-RUN)")
    s = sub.add_parser("stages")
    s.add_argument("run1", type=Path)
    s.add_argument("run2", type=Path)
    d = sub.add_parser("defaults")
    d.add_argument("out", type=Path, help="a folder for the runs")
    d.add_argument("--seed", type=int, help="--seed for both stages (default: the commands' own)")
    d.add_argument("--set", dest="sets", action="append", default=[], help="key=value for both stages")
    d.add_argument("--fresh-prep", action="store_true", help="zoo prep --force: time the first preparation")
    d.add_argument("--count", type=int, default=5000, help="held-out prompts measured per stage")
    d.add_argument("--steps", type=int, help="--steps for both stages (a smoke test only)")
    d.add_argument("--eval-n", type=int, help="zoo eval -n (default: zoo eval's own, as typed; smoke tests)")
    for p in (j, m, d):
        p.add_argument("--judge-epochs", type=int, default=JUDGE_EPOCHS,
                       help="passes of the judge's training over the 10,000 held-out images")
    args = parser.parse_args()
    if args.command == "judge":
        judge = train_judge(args.judge_epochs)
        print(json.dumps(judge, indent=2))
        write_result(slug("stackgan-judge", "" if args.judge_epochs == JUDGE_EPOCHS else f"{args.judge_epochs}epochs"),
                     {k: judge[k] for k in ("accuracy", "accuracy_per_class", "accuracy_at_16px_per_class")},
                     judge=judge)
    elif args.command == "measure":
        before = load()
        result = measure(args.run, args.count, args.judge_epochs)
        print(json.dumps(result, indent=2))
        judge = train_judge(args.judge_epochs)
        write_result(args.name or slug("stackgan-measure", args.run.name),
                     {**result, "judge_accuracy": judge["accuracy"]},
                     run=str(args.run), count=args.count, load_before=before, judge=judge)
    elif args.command == "stages":
        print(stages(args.run1, args.run2))
    else:
        result = defaults(args)
        print(json.dumps({k: result[k] for k in ("prep",)}, indent=2))
        write_result(slug("stackgan-defaults", "" if args.seed is None else f"seed{args.seed}", *args.sets,
                          f"{args.steps}steps" if args.steps else ""), result,
                     seed=args.seed, sets=args.sets, fresh_prep=args.fresh_prep, count=args.count, steps=args.steps,
                     eval_n=args.eval_n,
                     out=str(args.out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
