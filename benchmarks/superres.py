"""Issue 15's acceptance: SRResNet and SRGAN x4 on real photos, at the commands a user types.

The photos are scikit-image's (``pip install scikit-image``): the colour and gray sample
photos, split by subject so that no held-out photo has a near twin in training (the two
motorcycle shots, a stereo pair, both train). Held out: chelsea (the cat), coffee, rocket; and
zoo's own seeded tenth of the training folder (the moon), which ``--split test`` measures.
Every command runs as a whole process, timed, with the load average before it.

* ``train``: ``zoo train srresnet --data folder:photos/train --set scale=4 --set crop=48
  --minutes M``; then ``zoo train srgan ... --init-from`` that run, once per content loss
  (pixel, random; vgg19 when $ZOO_VGG19_WEIGHTS names a weights file);
* ``measure``: (training first if need be) ``zoo eval RUN --data folder:photos/test --split
  train`` for each run (PSNR and SSIM on Y with the border cropped, against bicubic, and the
  Laplacian energy and grid artefact), and ``zoo upscale RUN photos/test --compare`` for the
  close-ups side by side, gathered into superres-crops.png in the runs folder (the picture for
  docs/images/superres-crops.png);
* ``upscale``: ``zoo upscale`` of a held-out photo larger than any crop and not square (the
  rocket, 640 x 427), timed, tiled (the default) and whole (one tile), with the largest
  difference between them;
* ``defaults``: the README's first two commands as typed (``zoo train srresnet --data
  folder:photos/train --set scale=4``, then ``zoo train srgan ... --init-from`` it; their
  default lengths), each measured on the held-out photos, and by ``zoo eval RUN --split test``
  on the moon.

    python benchmarks/superres.py train --minutes 10     # about 32 minutes here
    python benchmarks/superres.py measure                # after train: about 5 minutes
    python benchmarks/superres.py upscale                # about 6 minutes
    python benchmarks/superres.py defaults               # about 25 minutes
    python benchmarks/superres.py measure --minutes 0.2; python benchmarks/superres.py defaults --steps 2  # smoke

Writes benchmarks/results/superres-{M}min.json (``figures.MODEL`` for srresnet, srgan-pixel,
srgan-random: psnr_y, ssim_y, laplacian_energy, grid_artefact, per_image_psnr_y, the bicubic
and original figures beside them, crops, steps, train; ``figures.bicubic_per_image_psnr_y``),
superres-upscale[-{M}min].json (``figures``: tiled_seconds, whole_seconds, load_before,
max_abs_difference_8bit, pixels_that_differ, input, output) and superres-defaults.json
(``figures.srresnet`` and ``.srgan``: crops, steps, train, the held-out photos' figures, and
``moon``: zoo eval --split test's psnr_y, bicubic_psnr_y, ssim_y, grid_artefact,
original_grid_artefact). Runs are kept in benchmarks/runs/superres/ (a run that is there is
measured, not retrained).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import commands  # noqa: E402
from commands import evaluated, load, slug, training  # noqa: E402
from record import RUNS, write_result  # noqa: E402

from zoo.data.images import as_uint8, read_image, to_float  # noqa: E402
from zoo.display import figures  # noqa: E402

HERE = RUNS / "superres"
PHOTOS = HERE / "photos"
TRAIN = ["astronaut.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png", "motorcycle_right.png",
         "retina.jpg", "camera.png", "brick.png", "grass.png", "gravel.png", "coins.png", "moon.png"]
TEST = ["chelsea.png", "coffee.png", "rocket.jpg"]
KEYS = ("psnr_y", "bicubic_psnr_y", "ssim_y", "bicubic_ssim_y", "laplacian_energy", "bicubic_laplacian_energy",
        "original_laplacian_energy", "grid_artefact", "original_grid_artefact")


def photos() -> Path:
    import skimage.data

    source = Path(skimage.data.__file__).parent
    for part, names in (("train", TRAIN), ("test", TEST)):
        (PHOTOS / part).mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (PHOTOS / part / name).exists():
                shutil.copy(source / name, PHOTOS / part / name)
    return PHOTOS


def contents() -> list[str]:
    return ["pixel", "random"] + (["vgg19"] if os.environ.get("ZOO_VGG19_WEIGHTS") else [])


def trained(name: str, *args: str) -> Path:
    return commands.trained(HERE, name, *args)


def runs(minutes: float) -> dict[str, Path]:
    data = f"folder:{photos() / 'train'}"
    common = ["--data", data, "--set", "scale=4", "--set", "crop=48", "--minutes", f"{minutes:g}"]
    base = trained(f"srresnet-{minutes:g}min", "srresnet", *common)
    out = {"srresnet": base}
    for content in contents():
        out[f"srgan-{content}"] = trained(f"srgan-{content}-{minutes:g}min", "srgan", *common,
                                          "--set", f"content={content}", "--init-from", str(base))
    return out


def part_train(args: argparse.Namespace) -> None:
    for name, run in runs(args.minutes).items():
        how = training(run)
        print(f"{name}: {how['images']:,} crops in {how['steps']:,} steps, {how.get('seconds', '-')} s "
              f"(python benchmarks/superres.py measure --minutes {args.minutes:g} writes the result)")


def held_out_figures(run: Path, *args: str) -> dict:
    """``zoo eval RUN ARGS``: the super-resolution figures, per image too, and its time."""
    result = evaluated(run, *args)
    per_image = json.loads((run / "eval.json").read_text()).get("per_image", {})
    return {**{k: result[k] for k in KEYS if k in result}, "per_image_psnr_y": per_image.get("psnr_y"),
            "bicubic_per_image_psnr_y": per_image.get("bicubic_psnr_y"), "eval_seconds": result["took"]["seconds"]}


def part_measure(args: argparse.Namespace) -> None:
    table: dict = {}
    test = photos() / "test"
    shown: dict[str, list[torch.Tensor]] = {}
    for name, run in runs(args.minutes).items():
        how = training(run)
        table[name] = {**held_out_figures(run, "--data", f"folder:{test}", "--split", "train"),
                       "crops": how["images"], "steps": how["steps"], "train": how}
        out = HERE / f"upscaled-{name}"
        commands.zoo("upscale", str(run), str(test), "--compare", "--out", str(out), "--force")
        shown[name] = [window(out / f"{Path(n).stem}.png") for n in TEST]
    table["bicubic_per_image_psnr_y"] = table["srresnet"].get("bicubic_per_image_psnr_y")
    print(json.dumps(table, indent=2))
    write_result(slug("superres", f"{args.minutes:g}min"), table, minutes=args.minutes, contents=contents(),
                 train_photos=TRAIN, heldout_photos=TEST,
                 zoo_command="zoo train srresnet --data folder:photos/train --set scale=4 --set crop=48 "
                             f"--minutes {args.minutes:g}; zoo train srgan ... --set content=C --init-from it")
    # Close-ups side by side: bicubic | each model | the original, a row per held-out photo.
    from zoo.data import superres

    bicubic, original = [], []
    for n in TEST:
        picture = read_image(test / n, 0, 0)[0].unsqueeze(0)
        high, low = superres.shrink(picture, 4)
        bicubic.append(crop(as_uint8(superres.bicubic(to_float(low), 4))[0]))
        original.append(crop(high[0]))
    columns = [torch.stack(bicubic), *[torch.stack(v) for v in shown.values()], torch.stack(original)]
    path = HERE / f"superres-crops-{args.minutes:g}min.png"
    figures.save_grid(torch.stack([to_float(c) for c in columns], dim=1), path,
                      column_labels=["bicubic", *shown, "original"], scale=2,
                      title="x4 on held-out photos (96 px close-ups)")
    print(f"-> {path} (docs/images/superres-crops.png is the 10-minute one)")


WINDOW = 96
def crop(image: torch.Tensor) -> torch.Tensor:
    """A WINDOW-pixel close-up just above each photo's centre (the cat's eyes, the cup, the rocket)."""
    h, w = image.shape[-2:]
    top, left = int(h * 0.45) - WINDOW // 2, int(w * 0.5) - WINDOW // 2
    return image[..., top:top + WINDOW, left:left + WINDOW]


def window(path: Path) -> torch.Tensor:
    return crop(read_image(path, 0, 0)[0])


def part_upscale(args: argparse.Namespace) -> None:
    run = runs(args.minutes)["srresnet"]
    photo = photos() / "test" / args.photo
    figures_: dict = {}
    for label, tile in (("tiled", "128"), ("whole", "100000")):
        out = HERE / f"upscaled-{label}"
        shutil.rmtree(out, ignore_errors=True)
        figures_[f"{label}_load_before"] = load()
        started = time.perf_counter()
        commands.zoo("upscale", str(run), str(photo), "--out", str(out), "--tile", tile)
        figures_[f"{label}_seconds"] = round(time.perf_counter() - started, 1)
    a = read_image(HERE / "upscaled-tiled" / f"{photo.stem}.png", 0, 0)[0].int()
    b = read_image(HERE / "upscaled-whole" / f"{photo.stem}.png", 0, 0)[0].int()
    source = read_image(photo, 0, 0)[0]
    figures_ |= {"input": f"{photo.name} {source.shape[2]}x{source.shape[1]}", "output": f"{a.shape[2]}x{a.shape[1]}",
                 "max_abs_difference_8bit": int((a - b).abs().max()), "pixels_that_differ": int((a != b).any(0).sum()),
                 "pixels": int(a.shape[1] * a.shape[2])}
    print(json.dumps(figures_, indent=2))
    default = args.minutes == 10 and args.photo == "rocket.jpg"
    write_result(slug("superres-upscale", "" if default else f"{args.minutes:g}min",
                      "" if args.photo == "rocket.jpg" else Path(args.photo).stem), figures_,
                 minutes=args.minutes, photo=args.photo, tile=128,
                 zoo_command=f"zoo upscale RUN {args.photo} [--tile 128 | --tile 100000]")


def part_defaults(args: argparse.Namespace) -> None:
    data = f"folder:{photos() / 'train'}"
    length = ["--steps", str(args.steps)] if args.steps else []  # a smoke test's; the defaults have none
    tag = f"{args.steps}steps" if args.steps else ""
    base = trained(slug("default-srresnet", tag), "srresnet", "--data", data, "--set", "scale=4", *length)
    gan = trained(slug("default-srgan", tag), "srgan", "--data", data, "--set", "scale=4", "--init-from", str(base),
                  *length)
    test = photos() / "test"
    table = {}
    for name, run in (("srresnet", base), ("srgan", gan)):
        how = training(run)
        held = held_out_figures(run, "--data", f"folder:{test}", "--split", "train")
        moon = held_out_figures(run, "--split", "test")
        table[name] = {"crops": how["images"], "steps": how["steps"], "train": how, **held, "moon": moon}
    print(json.dumps(table, indent=2))
    write_result(slug("superres-defaults", tag), table, steps=args.steps, train_photos=TRAIN, heldout_photos=TEST,
                 zoo_command="zoo train srresnet --data folder:photos/train --set scale=4; "
                             "zoo train srgan --data folder:photos/train --set scale=4 --init-from it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["train", "measure", "upscale", "defaults"])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--photo", default="rocket.jpg", help=f"upscale: the held-out photo, of {', '.join(TEST)}")
    parser.add_argument("--steps", type=int, help="defaults: --steps for both commands (a smoke test only)")
    args = parser.parse_args()
    {"train": part_train, "measure": part_measure, "upscale": part_upscale, "defaults": part_defaults}[args.part](args)


if __name__ == "__main__":
    main()
