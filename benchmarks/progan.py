"""Issue 14's acceptance: ProGAN, measured at the commands a user types.

* ``versus``: ``zoo train progan|dcgan --data fashion-mnist --size 32 --minutes M``, one after
  the other (each has the whole machine), then ``zoo eval`` of each: 10,000 samples against
  the 10,000 held-out test images, in the features of zoo's own Fashion-MNIST classifier
  (trained on the training split only), with Karras et al.'s sliced Wasserstein distance and
  MS-SSIM; and a picture of 64 samples of each, side by side.
* ``resume``: the default progan at real size, trained straight for N steps and, separately,
  interrupted in the middle of a fade and resumed to N: every tensor of the two checkpoints
  compared bit for bit.
* ``growth``: the progan run's training GIF, copied to docs/images/ for the README.

    python benchmarks/progan.py versus --minutes 20
    python benchmarks/progan.py resume
    python benchmarks/progan.py growth

Runs are kept in benchmarks/runs/progan/ (a run that is there is measured again, not
retrained).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))

import commands  # noqa: E402
from commands import zoo  # noqa: E402

from zoo.display import figures  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402
from zoo.records import runs  # noqa: E402

RESULTS = Path(__file__).parent / "runs" / "progan"
IMAGES = Path(__file__).parents[1] / "docs" / "images"
KEYS = ("fid", "kid", "swd", "swd_reference", "precision", "recall", "ms_ssim", "ms_ssim_reference", "diversity",
        "sharpness")


def trained(name: str, *args: str) -> Path:
    return commands.trained(RESULTS, name, *args)


def part_versus(args: argparse.Namespace) -> None:
    rows = {}
    for name in ("progan", "dcgan"):
        run = trained(f"{name}-{args.minutes:g}min", name, "--data", "fashion-mnist", "--size", "32",
                      "--minutes", f"{args.minutes:g}")
        if not (run / "eval.json").is_file():
            zoo("eval", str(run), "--wandb", "off")
        rows[name] = json.loads((run / "eval.json").read_text())
    print("model | steps | images | " + " | ".join(KEYS))
    for name, result in rows.items():
        where = result["checkpoint"]
        print(f"{name} | {where['step']:,} | {where['images']:,} | "
              + " | ".join(f"{result[k]:.4g}" if k in result else "-" for k in KEYS))
    for name, result in rows.items():
        print(f"{name}: SWD per level {result.get('swd_per_level')}; eval {result['seconds']:.0f} s")
    print(f"protocol: {rows['progan']['protocol']}; {json.dumps(rows['progan'].get('karras'))}")
    sheets = []
    for name in rows:
        model, _ = runs.load_model(runs.find_checkpoint(str(RESULTS / f"{name}-{args.minutes:g}min")))
        sheets.append(model.sample(64, generator=torch.Generator().manual_seed(0)).view(8, 8, 1, 32, 32))
    gap = -torch.ones(8, 1, 1, 32, 32)
    path = IMAGES / "progan-dcgan-fashion.png"
    p, d = rows["progan"], rows["dcgan"]
    figures.save_grid(torch.cat([sheets[0], gap, sheets[1]], dim=1), path, scale=2,
                      column_labels=["progan", *[""] * 7, "", "dcgan", *[""] * 7],
                      title=f"{args.minutes:g} minutes each: progan FID {p['fid']:.1f}, SWD {p['swd']:.0f}; "
                            f"dcgan FID {d['fid']:.1f}, SWD {d['swd']:.0f}")
    print(f"-> {path}")


def part_resume(args: argparse.Namespace) -> None:
    common = ["progan", "--data", "fashion-mnist", "--size", "32", "--seed", "11", "--no-wandb",
              "--set", "stage_kimg=0.64", "--set", "fade_kimg=1.28"]  # 10 steps a stage, 20 a fade
    folder = RESULTS / "resume"
    shutil.rmtree(folder, ignore_errors=True)
    straight, split = folder / "straight", folder / "split"
    t = zoo("train", *common, "--steps", str(args.steps), "--out", str(straight))
    zoo("train", *common, "--steps", str(args.stop), "--out", str(split))
    extra = ckpt_io.load(split / ckpt_io.FILENAME).state["extra"]
    zoo("train", "progan", "--no-wandb", "--resume", str(split), "--steps", str(args.steps))
    a, b = load_file(str(straight / ckpt_io.FILENAME)), load_file(str(split / ckpt_io.FILENAME))
    different = [k for k in a if k not in b or not torch.equal(a[k], b[k])]
    print(f"interrupted after {args.stop} steps at {extra['resolution']} px, alpha {extra['alpha']:.3f} "
          f"({extra['images']:,} images); resumed to {args.steps} steps (straight run {t:.0f} s)")
    print(f"{len(a)} tensors compared: {len(different)} differ{(': ' + ', '.join(different[:5])) if different else ''}")


def part_growth(args: argparse.Namespace) -> None:
    """The run's previews, the first 4 x 4 samples of each, doubled in size, each frame
    captioned with the step and the resolution and alpha it was drawn at (metrics.jsonl)."""
    from PIL import Image, ImageDraw

    run = RESULTS / f"progan-{args.minutes:g}min"
    stage = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "resolution" in record:
            stage[record["step"]] = (int(record["resolution"]), record["alpha"])
    cell = 32 + 2  # the preview grid: 32 px images, 2 px apart
    frames = []
    for path in sorted((run / "progress").glob("step-*.png")):
        step = int(path.stem.split("-")[1])
        resolution, alpha = stage[step]
        grid = Image.open(path).convert("L").crop((0, 0, 4 * cell + 2, 4 * cell + 2))
        grid = grid.resize((grid.width * 2, grid.height * 2), Image.NEAREST)
        frame = Image.new("L", (grid.width, grid.height + 18), 255)
        frame.paste(grid, (0, 18))
        said = f"step {step:,}: {resolution} px" + (f", fading in {alpha:.2f}" if alpha < 1 else "")
        ImageDraw.Draw(frame).text((4, 3), said, fill=0)
        frames.append(frame.quantize(16))  # 16 grays: a small file, the samples unchanged to the eye
    target = IMAGES / "progan-growth.gif"
    frames[0].save(target, save_all=True, append_images=frames[1:] + [frames[-1]] * 5, duration=300, loop=0,
                   optimize=True)
    print(f"-> {target}: {len(frames)} frames, {target.stat().st_size / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["versus", "resume", "growth"])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--steps", type=int, default=60, help="resume: the length of both runs")
    parser.add_argument("--stop", type=int, default=47, help="resume: where the split run is interrupted")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    {"versus": part_versus, "resume": part_resume, "growth": part_growth}[args.part](args)


if __name__ == "__main__":
    main()
