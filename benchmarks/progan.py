"""Issue 14's acceptance: ProGAN, measured at the commands a user types.

* ``versus``: ``zoo train progan|dcgan --data fashion-mnist --size 32 --minutes M``, one after
  the other (each has the whole machine; whole processes, timed, with the load average before
  each), then ``zoo eval`` of each: 10,000 samples against the 10,000 held-out test images, in
  the features of zoo's own Fashion-MNIST classifier (trained on the training split only; its
  accuracy on the held-out images is kept), with Karras et al.'s sliced Wasserstein distance
  and MS-SSIM; and a picture of 64 samples of each, side by side (in the runs folder).
  ``--default-length``: the same commands without ``--minutes`` (each model's default length:
  progan's schedule once through, 105 kimg at 32 px). ``--progan-set key=value``: a config key
  for progan's command (e.g. fmap_base=512).
* ``resume``: the default progan at real size, trained straight for N steps and, separately,
  interrupted in the middle of a fade and resumed to N: every tensor of the two checkpoints
  compared bit for bit.
* ``growth``: the versus progan run's previews as a GIF, each frame captioned with the step,
  resolution and alpha it was drawn at (the picture for docs/images/progan-growth.gif), and
  where the run reached full size.

    python benchmarks/progan.py versus --minutes 20      # about 45 minutes here
    python benchmarks/progan.py versus --default-length  # about 30 minutes
    python benchmarks/progan.py resume                   # about 2 minutes
    python benchmarks/progan.py growth                   # after versus; seconds
    python benchmarks/progan.py versus --minutes 0.2 --eval-n 500; python benchmarks/progan.py growth --minutes 0.2

Writes benchmarks/results/progan-versus-{M}min[-SETS].json (or progan-versus-default[-SETS]):
``figures.progan`` and ``figures.dcgan`` each with steps, images, train (the command's
whole_seconds, load_before, train_seconds), fid, kid, swd, swd_per_level, swd_reference,
precision, recall, ms_ssim, ms_ssim_reference, diversity, sharpness, eval_seconds;
``figures.extractor_accuracy``. progan-resume.json: tensors, tensors_differ, identical, and
where the split run stopped (step, resolution, alpha, images). progan-growth-{M}min.json:
frames, full_size_from_step, steps, steps_at_full_size, images_at_full_size. Runs and pictures are kept in
benchmarks/runs/progan/ (a run that is there is measured again, not retrained).
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
from commands import evaluated, slug, timed, training  # noqa: E402
from record import RUNS, write_result  # noqa: E402

from zoo.display import figures  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402
from zoo.records import runs  # noqa: E402

HERE = RUNS / "progan"
KEYS = ("fid", "kid", "swd", "swd_per_level", "swd_reference", "precision", "recall", "ms_ssim", "ms_ssim_reference",
        "diversity", "sharpness", "protocol")


def length_name(args: argparse.Namespace) -> str:
    return "default" if args.default_length else f"{args.minutes:g}min"


def trained(name: str, *args: str) -> Path:
    return commands.trained(HERE, name, *args)


def part_versus(args: argparse.Namespace) -> None:
    rows = {}
    length = [] if args.default_length else ["--minutes", f"{args.minutes:g}"]
    for name in ("progan", "dcgan"):
        sets = [a for s in args.progan_set for a in ("--set", s)] if name == "progan" else []
        run = trained(slug(name, length_name(args), *(args.progan_set if name == "progan" else [])),
                      name, "--data", "fashion-mnist", "--size", "32", *length, *sets)
        result = evaluated(run, *(["-n", str(args.eval_n)] if args.eval_n else []))
        how = training(run)
        rows[name] = {"steps": how["steps"], "images": how["images"], "train": how,
                      **{k: result[k] for k in KEYS if k in result}, "eval_seconds": result["took"]["seconds"],
                      "eval_load_before": result["took"]["load_before"],
                      "extractor_accuracy": result["extractor_accuracy"], "run": run}
    print("model | steps | images | " + " | ".join(KEYS[:-1]))
    for name, row in rows.items():
        print(f"{name} | {row['steps']:,} | {row['images']:,} | "
              + " | ".join(f"{row[k]:.4g}" if isinstance(row.get(k), float) else "-" for k in KEYS[:-1]))
    sheets = []
    for row in rows.values():
        model, _ = runs.load_model(runs.find_checkpoint(str(row.pop("run"))))
        sheets.append(model.sample(64, generator=torch.Generator().manual_seed(0)).view(8, 8, 1, 32, 32))
    gap = -torch.ones(8, 1, 1, 32, 32)
    path = HERE / slug("progan-dcgan-fashion", length_name(args), *args.progan_set)
    path = path.with_name(path.name + ".png")
    p, d = rows["progan"], rows["dcgan"]
    said = "default length" if args.default_length else f"{args.minutes:g} minutes each"
    figures.save_grid(torch.cat([sheets[0], gap, sheets[1]], dim=1), path, scale=2,
                      column_labels=["progan", *[""] * 7, "", "dcgan", *[""] * 7],
                      title=f"{said}: progan FID {p['fid']:.1f}, SWD {p['swd']:.0f}; "
                            f"dcgan FID {d['fid']:.1f}, SWD {d['swd']:.0f}")
    print(f"-> {path} (docs/images/progan-dcgan-fashion.png is the 20-minute one)")
    write_result(slug("progan-versus", length_name(args), *args.progan_set),
                 {"progan": p, "dcgan": d, "extractor_accuracy": p["extractor_accuracy"]},
                 minutes=None if args.default_length else args.minutes, progan_sets=args.progan_set, eval_n=args.eval_n,
                 data="fashion-mnist --size 32", eval_reference="the 10,000 held-out (test) images")


def part_resume(args: argparse.Namespace) -> None:
    common = ["progan", "--data", "fashion-mnist", "--size", "32", "--seed", "11", "--no-wandb",
              "--set", "stage_kimg=0.64", "--set", "fade_kimg=1.28"]  # 10 steps a stage, 20 a fade
    folder = HERE / "resume"
    shutil.rmtree(folder, ignore_errors=True)
    straight, split = folder / "straight", folder / "split"
    took = timed("train", *common, "--steps", str(args.steps), "--out", str(straight))
    timed("train", *common, "--steps", str(args.stop), "--out", str(split))
    extra = ckpt_io.load(split / ckpt_io.FILENAME).state["extra"]
    timed("train", "progan", "--no-wandb", "--resume", str(split), "--steps", str(args.steps))
    a, b = load_file(str(straight / ckpt_io.FILENAME)), load_file(str(split / ckpt_io.FILENAME))
    different = [k for k in a if k not in b or not torch.equal(a[k], b[k])]
    print(f"interrupted after {args.stop} steps at {extra['resolution']} px, alpha {extra['alpha']:.3f} "
          f"({extra['images']:,} images); resumed to {args.steps} steps (straight run {took['seconds']:.0f} s)")
    print(f"{len(a)} tensors compared: {len(different)} differ{(': ' + ', '.join(different[:5])) if different else ''}")
    write_result("progan-resume" if (args.steps, args.stop) == (60, 47) else slug("progan-resume", args.steps,
                                                                                   "stop", args.stop),
                 {"tensors": len(a), "tensors_differ": len(different), "identical": not different,
                  "differing": different[:20], "stopped_at": {"step": args.stop, "resolution": extra["resolution"],
                                                              "alpha": extra["alpha"], "images": extra["images"]},
                  "straight_seconds": took["seconds"]},
                 zoo_command="zoo train " + " ".join(common), steps=args.steps, stop=args.stop)


def part_growth(args: argparse.Namespace) -> None:
    """The run's previews, the first 4 x 4 samples of each, doubled in size, each frame
    captioned with the step and the resolution and alpha it was drawn at (metrics.jsonl)."""
    from PIL import Image, ImageDraw

    run = HERE / slug("progan", length_name(args), *args.progan_set)
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
    target = HERE / slug("progan-growth", length_name(args), *args.progan_set)
    target = target.with_name(target.name + ".gif")
    frames[0].save(target, save_all=True, append_images=frames[1:] + [frames[-1]] * 5, duration=300, loop=0,
                   optimize=True)
    print(f"-> {target}: {len(frames)} frames, {target.stat().st_size / 1024:.0f} KiB "
          "(docs/images/progan-growth.gif is the 20-minute one)")
    info = json.loads((run / "run.json").read_text())
    final = int(info["data_spec"]["height"])  # full size: the data's
    full = min((step for step, (resolution, alpha) in stage.items() if resolution == final and alpha >= 1),
               default=None)
    steps = training(run)["steps"]
    at_full_size = None if full is None else steps - full + 1
    batch = info["config"]["batch_size"]  # the batch up to 32 px
    write_result(slug("progan-growth", length_name(args), *args.progan_set),
                 {"frames": len(frames), "full_size": final, "full_size_from_step": full, "steps": steps,
                  "steps_at_full_size": at_full_size,
                  "images_at_full_size": None if at_full_size is None or final > 32 else at_full_size * batch},
                 run=str(run.relative_to(RUNS.parent.parent)), gif=str(target.relative_to(RUNS.parent.parent)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["versus", "resume", "growth"])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--default-length", action="store_true", help="versus, growth: no --minutes")
    parser.add_argument("--progan-set", action="append", default=[], help="versus, growth: --set for progan")
    parser.add_argument("--eval-n", type=int, help="versus: zoo eval -n (default: zoo eval's own; smoke tests)")
    parser.add_argument("--steps", type=int, default=60, help="resume: the length of both runs")
    parser.add_argument("--stop", type=int, default=47, help="resume: where the split run is interrupted")
    args = parser.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    {"versus": part_versus, "resume": part_resume, "growth": part_growth}[args.part](args)


if __name__ == "__main__":
    main()
