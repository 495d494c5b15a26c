"""Issue 15's acceptance: SRResNet and SRGAN x4 on real photos, at the commands a user types.

The photos are scikit-image's (``pip install scikit-image``): the colour and gray sample
photos, split by subject so that no held-out photo has a near twin in training (the two
motorcycle shots, a stereo pair, both train). Held out: chelsea (the cat), coffee, rocket.

* ``train``: ``zoo train srresnet --data folder:photos/train --set crop=48 --minutes M``;
  then ``zoo train srgan ... --init-from`` that run, once per content loss (pixel, random;
  vgg19 when $ZOO_VGG19_WEIGHTS names a weights file);
* ``measure``: ``zoo eval RUN --data folder:photos/test --split train`` for each run (PSNR
  and SSIM on Y with the border cropped, against bicubic, and the Laplacian energy), and
  ``zoo upscale RUN photos/test --compare`` for the close-ups side by side, gathered into
  docs/images/superres-crops.png;
* ``upscale``: ``zoo upscale`` of a held-out photo larger than any crop and not square,
  timed, tiled (the default) and whole (one tile), with the largest difference between them;
* ``defaults``: the README's first two commands as typed (``zoo train srresnet --data
  folder:photos/train --set scale=4``, then ``zoo train srgan ... --init-from`` it; their
  default lengths), each measured on the held-out photos.

    python benchmarks/superres.py train --minutes 10
    python benchmarks/superres.py measure
    python benchmarks/superres.py upscale
    python benchmarks/superres.py defaults

Runs are kept in benchmarks/runs/superres/ (a run that is there is measured, not retrained).
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
from commands import zoo  # noqa: E402

from zoo.data.images import as_uint8, read_image, to_float  # noqa: E402
from zoo.display import figures  # noqa: E402

RESULTS = Path(__file__).parent / "runs" / "superres"
PHOTOS = RESULTS / "photos"
IMAGES = Path(__file__).parents[1] / "docs" / "images"
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
    return commands.trained(RESULTS, name, *args)


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
        info = json.loads((run / "run.json").read_text())
        print(f"{name}: {info.get('images'):,} crops in {info.get('step'):,} steps")


def part_measure(args: argparse.Namespace) -> None:
    table = {}
    test = photos() / "test"
    shown: dict[str, list[torch.Tensor]] = {}
    for name, run in runs(args.minutes).items():
        zoo("eval", str(run), "--data", f"folder:{test}", "--split", "train", "--wandb", "off")
        result = json.loads((run / "eval.json").read_text())
        table[name] = {k: result[k] for k in KEYS} | {"per_image_psnr_y": result["per_image"]["psnr_y"]}
        out = RESULTS / f"upscaled-{name}"
        zoo("upscale", str(run), str(test), "--compare", "--out", str(out), "--force")
        shown[name] = [window(out / f"{Path(n).stem}.png") for n in TEST]
    table["bicubic_per_image_psnr_y"] = result["per_image"]["bicubic_psnr_y"]
    (RESULTS / "measure.json").write_text(json.dumps(table, indent=2))
    print(json.dumps(table, indent=2))
    # Close-ups side by side: bicubic | each model | the original, a row per held-out photo.
    from zoo.data import superres

    bicubic, original = [], []
    for n in TEST:
        picture = read_image(test / n, 0, 0)[0].unsqueeze(0)
        high, low = superres.shrink(picture, 4)
        bicubic.append(crop(as_uint8(superres.bicubic(to_float(low), 4))[0]))
        original.append(crop(high[0]))
    columns = [torch.stack(bicubic), *[torch.stack(v) for v in shown.values()], torch.stack(original)]
    IMAGES.mkdir(parents=True, exist_ok=True)
    figures.save_grid(torch.stack([to_float(c) for c in columns], dim=1), IMAGES / "superres-crops.png",
                      column_labels=["bicubic", *shown, "original"], scale=2,
                      title="x4 on held-out photos (96 px close-ups)")
    print(f"-> {IMAGES / 'superres-crops.png'}")


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
    rocket = photos() / "test" / "rocket.jpg"
    timings = {}
    for label, tile in (("tiled", "128"), ("whole", "100000")):
        out = RESULTS / f"rocket-{label}"
        started = time.perf_counter()
        zoo("upscale", str(run), str(rocket), "--out", str(out), "--force", "--tile", tile)
        timings[label] = round(time.perf_counter() - started, 1)
    a = read_image(RESULTS / "rocket-tiled" / "rocket.png", 0, 0)[0].int()
    b = read_image(RESULTS / "rocket-whole" / "rocket.png", 0, 0)[0].int()
    print(json.dumps({"input": "rocket.jpg 640x427", "output": f"{a.shape[2]}x{a.shape[1]}", "seconds": timings,
                      "max_abs_difference_8bit": int((a - b).abs().max()),
                      "pixels_that_differ": int((a != b).any(0).sum())}, indent=2))


def part_defaults(args: argparse.Namespace) -> None:
    data = f"folder:{photos() / 'train'}"
    base = trained("default-srresnet", "srresnet", "--data", data, "--set", "scale=4")
    gan = trained("default-srgan", "srgan", "--data", data, "--set", "scale=4", "--init-from", str(base))
    test = photos() / "test"
    table = {}
    for name, run in (("srresnet", base), ("srgan", gan)):
        zoo("eval", str(run), "--data", f"folder:{test}", "--split", "train", "--wandb", "off")
        result = json.loads((run / "eval.json").read_text())
        info = json.loads((run / "run.json").read_text())
        table[name] = {"crops": info["images"], "steps": info["step"], **{k: result[k] for k in KEYS}}
    (RESULTS / "defaults.json").write_text(json.dumps(table, indent=2))
    print(json.dumps(table, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["train", "measure", "upscale", "defaults"])
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    {"train": part_train, "measure": part_measure, "upscale": part_upscale, "defaults": part_defaults}[args.part](args)


if __name__ == "__main__":
    main()
