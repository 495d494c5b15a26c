"""Time zoo's DCGAN training against the seed lab's own loop, on this machine, in one run.

Both train the lab's 28x28 networks on the offline MNIST with batch 128 and the lab's
2-logit cross-entropy. The lab's side is its code as written (a numpy Dataset over the IDX
file and a shuffling DataLoader); zoo's side is (a) the plugin's step over zoo's in-memory
batches, and (b) the whole ``zoo train`` pipeline, progress bar, metrics, preview grids and
checkpoints included. Epochs alternate between the two so that the machine's drift hits
both alike; the median epoch counts.

    python benchmarks/step_speed.py --epochs 5
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import seed_lab  # noqa: E402

import zoo  # noqa: E402
from zoo.data import TensorBatches  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.plugins.dcgan import DCGAN, DCGANConfig  # noqa: E402


def lab_idx_file(folder: Path) -> str:
    """The lab reads an uncompressed IDX file; unpack the offline one."""
    root = Path(os.environ.get("ZOO_DATA_DIR", "../shared/data")) / "mnist"
    out = folder / "images-idx3-ubyte"
    with gzip.open(root / "t10k-images-idx3-ubyte.gz", "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per side (after one warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    with tempfile.TemporaryDirectory() as tmp:
        lab = seed_lab.make(lab_idx_file(Path(tmp)))
        data = prepare("mnist")
        torch.manual_seed(999)
        model = DCGAN(DCGANConfig(architecture="lab", loss="cross_entropy"), data.spec)
        model.optimizers = model.configure_optimizers()
        batches = TensorBatches(data.images, data.labels, 128, seed=0)
        steps = batches.batches_per_epoch

        def zoo_epoch() -> int:
            for step in range(steps):
                metrics = model.train_step(batches, zoo.Progress(step, steps, 0))
                {k: float(v) for k, v in metrics.items()}  # what the pipeline logs each step
            return steps * 128

        def lab_epoch() -> int:
            seed_lab.train_epoch(*lab)
            return len(lab[0].dataset)

        timings: dict[str, list[float]] = {"lab": [], "zoo step": []}
        for epoch in range(args.epochs + 1):
            for name, run in (("lab", lab_epoch), ("zoo step", zoo_epoch)):
                started = time.perf_counter()
                images = run()
                if epoch:  # the first epoch warms up both
                    timings[name].append(images / (time.perf_counter() - started))

        # The whole pipeline, as `zoo train dcgan --data mnist --set loss=cross_entropy` runs it.
        from rich.console import Console

        from zoo.pipelines.train import TrainOptions, train

        started = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            train(TrainOptions(model="dcgan", data="mnist", epochs=args.epochs, wandb="off",
                               sets=["loss=cross_entropy", "architecture=lab"], out=Path(tmp) / "run"),
                  console=Console(file=devnull))
        pipeline = args.epochs * steps * 128 / (time.perf_counter() - started)

    lab_rate = statistics.median(timings["lab"])
    step_rate = statistics.median(timings["zoo step"])
    print(f"machine: {os.cpu_count()} CPU threads, torch {torch.__version__}")
    print(f"{'':28} {'images/s':>10} {'ms/batch of 128':>16}")
    for name, rate in (("seed lab loop", lab_rate), ("zoo step", step_rate), ("zoo train (whole pipeline)", pipeline)):
        print(f"{name:28} {rate:10.0f} {128_000 / rate:16.1f}")
    print(f"ratio zoo step / lab:      {step_rate / lab_rate:.2f}x")
    print(f"ratio zoo pipeline / lab:  {pipeline / lab_rate:.2f}x   (above 1: zoo is faster)")


if __name__ == "__main__":
    main()
