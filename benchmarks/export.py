"""zoo export as typed, for every built-in: sizes, half precision, and ONNX against torch.

    python benchmarks/export.py --runs DIR      # DIR/NAME: a trained run of each built-in
                                                # (missing ones are trained for --steps with defaults)

For each model, three whole processes as a user types them: ``zoo export RUN OUT``, the same
with ``--dtype float16``, and with ``--format onnx`` (pix2pix also with ``--dropout on``).
Measured: the run's checkpoint and the export's weights in bytes (and their ratio), the
seconds each command took, onnxruntime's largest difference from torch on the export's own
check (fixed inputs, two batch sizes; for upscalers, two image sizes), and the float16
export's images against float32's (64 samples of seed 0, or 16 translated held-out-style
inputs), as the largest and mean difference in 8-bit grey levels. Writes
benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import record  # noqa: E402

ZOO = str(Path(sys.executable).with_name("zoo"))
TRAIN_DATA = {"ae": ["--data", "mnist"], "cvae": ["--data", "mnist"],
              "stackgan": ["--data", "captions:fashion"]}
GANS = ("dcgan", "cgan", "wgan", "wgan-gp", "progan", "pix2pix", "cyclegan", "srgan", "stackgan")


def timed(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([ZOO, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"zoo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return round(time.perf_counter() - started, 2)


def half_against_full(full: Path, half: Path) -> dict[str, float]:
    """How far the float16 export's images are from the float32 export's, in 8-bit grey levels."""
    import zoo

    a, b = zoo.load(full, device="cpu"), zoo.load(half, device="cpu")
    if "latent" in a.capabilities:
        kwargs: dict = {"classes": a.classes[0]} if a.classes else {}
        if "text-conditional" in a.capabilities:
            kwargs = {"text": "a dark shirt"}
        x, y = a.sample(64, seed=0, as_tensor=True, **kwargs), b.sample(64, seed=0, as_tensor=True, **kwargs)
    elif "image-to-image" in a.capabilities:
        c, h, w = a.image_size
        images = torch.rand(16, c, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
        if a.name in ("srresnet", "srgan"):
            x, y = a.upscale(images[:4], as_tensor=True), b.upscale(images[:4], as_tensor=True)
            x, y = torch.stack(x), torch.stack(y)
        else:
            x, y = a.translate(images, as_tensor=True), b.translate(images, as_tensor=True)
    else:
        c, h, w = a.image_size
        images = torch.rand(16, c, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
        x, y = a.reconstruct(images, as_tensor=True), b.reconstruct(images, as_tensor=True)
    levels = (x - y).abs() * 127.5
    return {"max_grey_levels": round(float(levels.max()), 3), "mean_grey_levels": round(float(levels.mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="a folder holding a run of each built-in, by name")
    parser.add_argument("--steps", type=int, default=20, help="steps for a missing run (sizes do not depend on it)")
    parser.add_argument("--only", nargs="*", help="these models only")
    args = parser.parse_args()
    from zoo.registry import registry

    work = record.RUNS / "export"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    names = [n for n in registry().names() if n != "tiny" and (not args.only or n in args.only)]
    figures: dict = {}
    for name in names:
        run = args.runs / name
        trained_here = not (run / "checkpoint.safetensors").is_file()
        if trained_here:
            run = work / f"run-{name}"
            timed("train", name, *TRAIN_DATA.get(name, ["--data", "mnist"]), "--steps", str(args.steps),
                  "--no-wandb", "--out", str(run))
        full, half, onnx = work / name, work / f"{name}-half", work / f"{name}-onnx"
        took = {"export": timed("export", str(run), str(full)),
                "export_float16": timed("export", str(run), str(half), "--dtype", "float16"),
                "export_onnx": timed("export", str(run), str(onnx), "--format", "onnx")}
        config = json.loads((onnx / "config.json").read_text())
        checkpoint = (run / "checkpoint.safetensors").stat().st_size
        weights = (full / "model.safetensors").stat().st_size
        halved = (half / "model.safetensors").stat().st_size
        row = {"checkpoint_bytes": checkpoint, "export_bytes": weights, "export_float16_bytes": halved,
               "smaller_by": round(checkpoint / weights, 2), "smaller_by_float16": round(checkpoint / halved, 2),
               "onnx_bytes": sum(o["bytes"] for o in config["onnx"]),
               "onnx_max_abs_diff": max(o["max_abs_diff"] for o in config["onnx"]),
               "onnx_files": [o["file"] for o in config["onnx"]],
               "float16_against_float32": half_against_full(full, half), "seconds": took,
               "gan": name in GANS, "run": f"trained here, defaults, {args.steps} steps" if trained_here
               else str(args.runs / name), "step": config["trained"].get("step")}
        if name == "pix2pix":
            paper = work / f"{name}-onnx-dropout"
            row["seconds"]["export_onnx_dropout_on"] = timed("export", str(run), str(paper), "--format", "onnx",
                                                             "--dropout", "on")
        figures[name] = row
        print(name, {k: v for k, v in row.items() if k not in ("onnx_files", "run")}, flush=True)
    gans = [r for r in figures.values() if r["gan"]]
    figures["summary"] = {
        "gans_smallest_ratio": min(r["smaller_by"] for r in gans),
        "gans_smallest_ratio_float16": min(r["smaller_by_float16"] for r in gans),
        "largest_onnx_diff": max(r["onnx_max_abs_diff"] for r in figures.values() if isinstance(r, dict)
                                 and "onnx_max_abs_diff" in r)}
    record.write_result("export", figures, runs=str(args.runs), steps_for_missing=args.steps,
                        notes="Each command timed as a whole process (python start and torch import included).")


if __name__ == "__main__":
    main()
