"""The hot path around a training step: drawing batches, and what a step waits for.

    python benchmarks/hot_path.py compare --before a5b9bbe   # that commit's code against this tree's
    python benchmarks/hot_path.py measure srresnet           # one measurement, as JSON (compare runs these)

Two cases, through the train pipeline's own plan, data and build:

* **srresnet** on full-size photos (``--size full``: scikit-image's sample photos, written
  once to benchmarks/runs/hot-path/photos; ``pip install scikit-image``), its default
  config: batches of 16 random 48 px crops of the photos, flipped, and their 12 px
  downsamples.
* **stackgan** on ``captions:fashion``, its default stage I config (batches of 64 images
  with one of each image's caption embeddings, a mismatched caption picked per image).

For each: training images/s (``--steps`` steps after ``--warmup``, metrics read every 10
steps as the loop reads them), the time to draw one batch alone (``--draws`` batches), and
the time of the part of the hot path that changed, alone: srresnet's crops of a batch of
photos (``crop_ms``), stackgan's choice of mismatched captions (``mismatch_ms``). On a GPU
the point of the change is that none of them waits for the device; on a CPU they can only
show that nothing got slower.
``compare`` alternates the old code and this tree's (old, new, old, new, ...: ``--rounds``
of each), each measurement a process of its own, and reports medians; the old code is
``git archive``d from ``--before`` and laid out as installed (zoo, zoo.plugins,
zoo.pipelines) on PYTHONPATH. Results go to benchmarks/results/hot-path.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
WORK = HERE / "runs" / "hot-path"
PHOTOS = WORK / "photos"
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                 "colorwheel", "camera", "coins", "moon", "brick", "grass", "gravel")
CASES = {"srresnet": ("srresnet", f"folder:{PHOTOS}", "full"), "stackgan": ("stackgan", "captions:fashion", None)}


def sample_photos() -> Path:
    """scikit-image's sample photos as PNG files at their own sizes (gray ones in three channels)."""
    if PHOTOS.is_dir() and any(PHOTOS.glob("*.png")):
        return PHOTOS
    try:
        import numpy as np
        import skimage.data
        from PIL import Image
    except ImportError:
        raise SystemExit("the srresnet case needs scikit-image's sample photos: pip install scikit-image") from None
    PHOTOS.mkdir(parents=True, exist_ok=True)
    for name in SAMPLE_PHOTOS:
        pixels = np.asarray(getattr(skimage.data, name)())
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        Image.fromarray(pixels[..., :3].astype(np.uint8)).save(PHOTOS / f"{name}.png")
    return PHOTOS


def measure(case: str, steps: int, warmup: int, draws: int, device_name: str) -> dict[str, float]:
    """Training images/s and milliseconds per batch drawn, for one case, in this process."""
    import torch
    from rich.console import Console

    import zoo
    from zoo.pipelines.plan import TrainOptions, plan
    from zoo.pipelines.train import build
    from zoo.pipelines.train_data import load_data
    from zoo.training.devices import resolve_device
    from zoo.training.engine import Engine

    model_name, data, size = CASES[case]
    if case == "srresnet":
        sample_photos()
    device = resolve_device(device_name)
    console = Console(quiet=True)
    p = plan(TrainOptions(model_name, data=data, size=size, steps=steps, seed=0, device=device_name, wandb="off"))
    p, training = load_data(p, TrainOptions(model_name, data=data), console)
    model, batches, _ = build(p, training, device, Engine(p.engine, device), console)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    pending: list[zoo.Metrics] = []
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            started = time.perf_counter()
        with model.engine.autocast():
            pending.append(model.train_step(batches, zoo.Progress(i, warmup + steps, 0)))
        model.engine.end_step()
        if len(pending) == 10:  # as the loop reads them: every 10 steps
            [float(v) for m in pending for v in m.values()]
            pending = []
    [float(v) for m in pending for v in m.values()]
    sync()
    images = steps * batches.batch_size * model.batches_per_step() / (time.perf_counter() - started)

    sync()
    started = time.perf_counter()
    for _ in range(draws):
        batch = batches.next()
    float(batch.images.sum())  # the last batch is whole
    sync()
    batch_ms = (time.perf_counter() - started) / draws * 1000
    return {"images_per_s": images, "batch_ms": batch_ms, **part(case, model, batches, draws, sync)}


def part(case: str, model, batches, draws: int, sync) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The piece of the hot path each case's change is in, timed alone: srresnet's crops of a
    batch of photos; stackgan's choice of mismatched captions for a batch."""
    import torch

    if case == "srresnet":
        index = torch.randint(0, len(batches.photos), (batches.batch_size,))
        work = lambda: batches.photos.random_crops(index, model.config.crop)  # noqa: E731
        name = "crop_ms"
    else:
        from zoo.plugins.stackgan import mismatched

        embedding = batches.next().conditions["text"]
        work = lambda: mismatched(embedding, model.config.mismatch_below)  # noqa: E731
        name = "mismatch_ms"
    for _ in range(10):
        work()
    sync()
    started = time.perf_counter()
    for _ in range(draws):
        out = work()
    float(out.float().sum())
    sync()
    return {name: (time.perf_counter() - started) / draws * 1000}


def old_code(revision: str, into: Path) -> Path:
    """``revision``'s zoo, plugins and pipelines laid out as installed, for PYTHONPATH."""
    archive = into / "old.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), revision, "zoo", "plugins", "pipelines"],
                   cwd=HERE.parent, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    tree = into / "tree"
    shutil.move(tree / "plugins", tree / "zoo" / "plugins")
    shutil.move(tree / "pipelines", tree / "zoo" / "pipelines")
    return tree


def one_run(case: str, args: argparse.Namespace, pythonpath: Path | None) -> dict[str, float]:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, __file__, "measure", case, "--steps", str(args.steps), "--warmup",
                           str(args.warmup), "--draws", str(args.draws), "--device", args.device],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"measure {case} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = str(pythonpath) if pythonpath is not None else str(HERE.parent)
    if not result["code"].startswith(expected):
        raise SystemExit(f"measured {result['code']}, not the code under {expected}")
    return result


def compare(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    from record import write_result

    figures: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        before = old_code(args.before, Path(tmp))
        for case in args.cases:
            runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            for i in range(args.rounds):
                for label, path in (("before", before), ("after", None)):
                    runs[label].append(one_run(case, args, path))
                    print(f"{case} round {i + 1} {label}: " + ", ".join(
                        f"{k} {v:.3f}" for k, v in runs[label][-1].items() if k != "code"), flush=True)
            row: dict[str, object] = {}
            for label, done in runs.items():
                for key in (k for k in done[0] if k != "code"):
                    row[f"{label}_{key}"] = round(statistics.median(r[key] for r in done), 3)
                row[f"{label}_runs"] = [{k: round(v, 3) for k, v in r.items() if k != "code"} for r in done]
            figures[case] = row
            print(f"{case} (medians of {args.rounds}): " + ", ".join(
                f"{key} {row[f'before_{key}']} -> {row[f'after_{key}']}" for key in runs["after"][0] if key != "code"))
    write_result("hot-path", figures, before=args.before, device=args.device, steps=args.steps,
                 warmup=args.warmup, draws=args.draws, rounds=args.rounds,
                 threads=os.environ.get("OMP_NUM_THREADS", "default"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("compare", "measure"):
        p = sub.add_parser(name)
        if name == "measure":
            p.add_argument("case", choices=list(CASES))
        else:
            p.add_argument("--before", required=True, help="the git revision whose code to time against this tree's")
            p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
            p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--steps", type=int, default=20)
        p.add_argument("--warmup", type=int, default=3)
        p.add_argument("--draws", type=int, default=50)
        p.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.what == "measure":
        import zoo

        result: dict[str, object] = {**measure(args.case, args.steps, args.warmup, args.draws, args.device),
                                     "code": str(Path(zoo.__file__).resolve().parents[1])}
        print(json.dumps(result))
    else:
        compare(args)


if __name__ == "__main__":
    main()
