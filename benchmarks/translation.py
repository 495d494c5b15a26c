"""Issue 6's acceptance: pix2pix on edges2fashion, CycleGAN on sneaker <-> ankle boot.

1. **pix2pix** trains on ``paired:edges2fashion`` items 0-49,999 for ``--pix2pix-minutes``
   (at most 15 on this CPU), then translates the edge maps of 2,000 held-out items
   (50,000-51,999). Mean L1 (in [0, 1] units) and SSIM of output against the real item are
   compared with the trivial baseline of returning the edge map itself.
2. **cyclegan** trains on ``unpaired:fashion:sneaker,ankle-boot`` built from Fashion-MNIST
   items 0-49,999, for ``--cyclegan-minutes``. A CNN trained here on real Fashion-MNIST
   (items 0-49,999, all ten classes; checked on 50,000-59,999) classifies the translations
   of the held-out sneakers and ankle boots among items 50,000-59,999: the share called
   the other class, each way (target: at least 70%), and the cycle reconstruction error
   ||F(G(a)) - a||_1.

Runs, sheets and results are kept in benchmarks/runs/translation/.

    python benchmarks/translation.py --pix2pix-minutes 15 --cyclegan-minutes 15
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from digits import classifier, predict  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.display import figures  # noqa: E402
from zoo.measure import metrics  # noqa: E402
from zoo.pipelines.plan import TrainOptions  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.pipelines.train import train  # noqa: E402
from zoo.previews import image_rows  # noqa: E402
from zoo.records import checkpoint as ckpt_io  # noqa: E402
from zoo.records.runs import load_model  # noqa: E402
from zoo.training.engine import evaluating  # noqa: E402

TRAIN, HELD_OUT = "0:50000", "50000:60000"
RESULTS = Path(__file__).parent / "runs" / "translation"
QUIET = Console(file=io.StringIO())


def timed_train(opts: TrainOptions) -> tuple[Path, float, int]:
    started = time.perf_counter()
    run = train(opts, console=QUIET)
    return run, time.perf_counter() - started, ckpt_io.read_meta(run / ckpt_io.FILENAME)["train"]["step"]


@torch.no_grad()
def translated(model, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
    with evaluating(model):
        return torch.cat([model.translate(x, direction) for x in images.split(500)])


def l1(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean() / 2)  # [-1, 1] -> [0, 1] units


def run_pix2pix(minutes: float, sets: list[str]) -> dict:
    run, seconds, steps = timed_train(TrainOptions(
        model="pix2pix", data="paired:edges2fashion", subset=TRAIN, steps=10 ** 7, minutes=minutes,
        wandb="off", out=RESULTS / "pix2pix", sets=sets))
    model, _ = load_model(run / ckpt_io.FILENAME)
    held = prepare("paired:edges2fashion", subset=HELD_OUT)
    edges, items = to_float(held.images[:2000]), to_float(held.targets[:2000])
    outputs = translated(model, edges)
    figures.save_grid(image_rows(edges[:16], outputs[:16], items[:16]), RESULTS / "pix2pix-sheet.png", scale=2)
    result = {
        "steps": steps, "seconds": seconds, "pairs_per_s": steps * model.config.batch_size / seconds,
        "l1": l1(outputs, items), "ssim": float(metrics.ssim(outputs, items).mean()),
        "baseline_l1": l1(edges, items), "baseline_ssim": float(metrics.ssim(edges, items).mean()),
    }
    print(f"pix2pix {' '.join(sets)}: {steps:,} steps in {seconds:.0f}s ({result['pairs_per_s']:.0f} pairs/s); "
          f"on 2,000 held-out pairs: L1 {result['l1']:.4f} vs baseline {result['baseline_l1']:.4f}, "
          f"SSIM {result['ssim']:.3f} vs baseline {result['baseline_ssim']:.3f}")
    return result


def run_cyclegan(minutes: float, sets: list[str]) -> dict:
    net, accuracy = classifier(train=slice(0, 50000), check=slice(50000, None), epochs=3, source="fashion-mnist")
    print(f"judge: CNN on real Fashion-MNIST 0-49,999, accuracy {accuracy:.3f} on 50,000-59,999")
    run, seconds, steps = timed_train(TrainOptions(
        model="cyclegan", data="unpaired:fashion:sneaker,ankle-boot", subset=TRAIN, steps=10 ** 7,
        minutes=minutes, wandb="off", out=RESULTS / "cyclegan", sets=sets))
    model, _ = load_model(run / ckpt_io.FILENAME)
    held = prepare("fashion-mnist", subset=HELD_OUT)
    names = held.meta["class_names"]
    sneaker, boot = names.index("sneaker"), names.index("ankle-boot")
    result = {"steps": steps, "seconds": seconds, "judge_accuracy": accuracy}
    for direction, source, target in (("AtoB", sneaker, boot), ("BtoA", boot, sneaker)):
        images = to_float(held.images[held.labels == source])
        out = translated(model, images, direction)
        back = translated(model, out, "BtoA" if direction == "AtoB" else "AtoB")
        called = predict(net, out).argmax(1)
        result[direction] = {"n": len(images), "called_target": float((called == target).float().mean()),
                             "still_source": float((called == source).float().mean()),
                             "cycle_l1": l1(back, images)}
        figures.save_grid(image_rows(images[:12], out[:12], back[:12]), RESULTS / f"cyclegan-{direction}.png", scale=2)
        r = result[direction]
        print(f"cyclegan {direction} ({names[source]} -> {names[target]}), {r['n']} held-out items: "
              f"{r['called_target']:.1%} called {names[target]} (target 70%), {r['still_source']:.1%} still "
              f"{names[source]}; cycle L1 {r['cycle_l1']:.4f}")
    print(f"cyclegan {' '.join(sets)}: {steps:,} steps in {seconds:.0f}s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pix2pix-minutes", type=float, default=15.0)
    parser.add_argument("--cyclegan-minutes", type=float, default=15.0)
    parser.add_argument("--only", choices=["pix2pix", "cyclegan"])
    parser.add_argument("--pix2pix-set", action="append", default=[])
    parser.add_argument("--cyclegan-set", action="append", default=[])
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, fn, minutes, sets in (("pix2pix", run_pix2pix, args.pix2pix_minutes, args.pix2pix_set),
                                    ("cyclegan", run_cyclegan, args.cyclegan_minutes, args.cyclegan_set)):
        if args.only in (None, name):
            shutil.rmtree(RESULTS / name, ignore_errors=True)
            results[name] = fn(minutes, sets)
    (RESULTS / f"results-{args.only or 'all'}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
