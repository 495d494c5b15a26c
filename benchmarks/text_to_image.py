"""Issue 17's acceptance: does StackGAN draw what the text says?

Every figure is of runs trained by the commands as a user types them (``zoo train stackgan
--data captions:fashion ...``) and of prompts the model never trained on:

* ``judge``: a Fashion-MNIST classifier (a small CNN of its own, not zoo's) trained here on
  the real training images of captions:fashion (padded to 32 px) and checked on the 10,000
  held-out ones: its own accuracy per class is the ceiling the samples are read against.
* ``measure RUN``: for each held-out item, one of its captions (the 10,000 held-out items'
  captions were never trained on), one sample; the judge reads the class named in the
  prompt in X% of samples, per class. Then attribute pairs: prompts that differ only in
  "dark" vs "light" (or "small" vs "large"), drawn from the same latents; the measured
  attribute (:func:`zoo.data.sources.captions.measure`) must move the right way. Combinations
  never said in training (:data:`zoo.data.sources.captions.WITHHELD`) are reported on their own.
* ``stages RUN1 RUN2``: the same prompts and latents through stage I and stage II, in one
  grid (stage I shown at 32 px, as it gives its images).

    python benchmarks/text_to_image.py judge
    python benchmarks/text_to_image.py measure runs/stackgan-captions_fashion-...
    python benchmarks/text_to_image.py stages RUN_STAGE1 RUN_STAGE2

Results land in benchmarks/runs/text_to_image/ (JSON and pictures).
"""

from __future__ import annotations

import argparse
import json
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

RESULTS = Path(__file__).parent / "runs" / "text_to_image"
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


def judge_path() -> Path:
    return cache_dir() / "benchmarks" / "fashion32-judge.safetensors"


def predict(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return torch.cat([net(x).argmax(1) for x in images.split(1000)])


def per_class(predicted: torch.Tensor, wanted: torch.Tensor) -> list[float]:
    return [float((predicted[wanted == c] == c).float().mean()) for c in range(10)]


def train_judge(epochs: int = 4) -> dict:
    train, held = prepare(DATA), prepare(DATA, split="heldout")
    torch.manual_seed(0)
    net = network()
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    x, y = train.images, train.labels
    assert y is not None and held.labels is not None
    started = time.perf_counter()
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
    predicted = predict(net, to_float(held.images))
    accuracy = per_class(predicted, held.labels)
    judge_path().parent.mkdir(parents=True, exist_ok=True)
    save_file(net.state_dict(), str(judge_path()))
    record = {"heldout_accuracy": float((predicted == held.labels).float().mean()),
              "heldout_per_class": dict(zip(CLASSES, accuracy, strict=True)), "epochs": epochs,
              "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "judge.json").write_text(json.dumps(record, indent=2))
    return record


def load_judge() -> nn.Module:
    if not judge_path().is_file():
        train_judge()
    net = network()
    net.load_state_dict(load_file(str(judge_path())))
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


def measure(run: Path, count: int) -> dict:
    model, checkpoint = runs.load_model(runs.find_checkpoint(str(run)))
    judge = load_judge()
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
    figures.save_grid(samples[:100], RESULTS / f"{run.name}-heldout-prompts.png", nrow=10)

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
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{run.name}.json").write_text(json.dumps(result, indent=2))
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "stages.png"
    figures.save_grid(grid, path, scale=2, row_labels=labels, title="stage I (16 px, shown at 32) and stage II (32 px)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("judge")
    m = sub.add_parser("measure")
    m.add_argument("run", type=Path)
    m.add_argument("--count", type=int, default=5000)
    s = sub.add_parser("stages")
    s.add_argument("run1", type=Path)
    s.add_argument("run2", type=Path)
    args = parser.parse_args()
    if args.command == "judge":
        print(json.dumps(train_judge(), indent=2))
    elif args.command == "measure":
        print(json.dumps(measure(args.run, args.count), indent=2))
    else:
        print(stages(args.run1, args.run2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
