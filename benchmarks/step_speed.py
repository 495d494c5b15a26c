"""Speed: zoo's training against the seed lab's loop, and images/s per plugin and option.

    python benchmarks/step_speed.py whole            # whole processes: the lab's and `zoo train`'s
    python benchmarks/step_speed.py quality          # + zoo eval of both: time to the lab's FID
    python benchmarks/step_speed.py plugins          # images/s per plugin, precision and option
    python benchmarks/step_options.py --profile      # inside one process: where a step's time goes

``whole`` times, as a user runs them, the lab's script (benchmarks/seed_lab.py: its
networks, numpy Dataset and DataLoader) and ``zoo train dcgan --data mnist --steps 1560``
at the same steps and batch (128), both on zoo's 9,000 training images of the offline MNIST
(the lab's file is written from them, so neither sees the 1,000 held out), alternating
lab / zoo ``--repeats`` times. ``quality`` then measures the lab's final generator and zoo's
at a quarter, half, three quarters and all of the steps with ``zoo eval`` (10,000 samples
against the held-out images, zoo's MNIST classifier's features), and reports when zoo first
reaches the lab's final FID, in whole-process seconds (zoo's reached by resuming, each
resume a new process: startup counted every time). Results go to benchmarks/runs/speed/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import zoo  # noqa: E402

RESULTS = Path(__file__).parent / "runs" / "speed"
LAB = Path(__file__).with_name("seed_lab.py")
STEPS = 1560


def lab_idx_file(path: Path) -> Path:
    """zoo's MNIST training images as the uncompressed IDX file the lab reads."""
    from zoo.pipelines.prep import prepare

    images = prepare("mnist").images.numpy()
    n, _, h, w = images.shape
    header = (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + h.to_bytes(4, "big") + w.to_bytes(4, "big")
    path.write_bytes(header + images.tobytes())
    return path


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"})
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def whole(args: argparse.Namespace) -> dict[str, object]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    idx = lab_idx_file(RESULTS / "mnist-train-idx3-ubyte")
    template = RESULTS / "template"
    if not (template / "checkpoint.safetensors").exists():
        zoo("train", "dcgan", "--data", "mnist", "--steps", "1", "--set", "architecture=lab",
            "--set", "loss=cross_entropy", "--no-wandb", "--out", str(template), "--force")
    times: dict[str, list[float]] = {"lab": [], "zoo": []}
    for i in range(args.repeats):
        lab_run = RESULTS / "lab"
        times["lab"].append(timed([sys.executable, str(LAB), str(idx), "--steps", str(args.steps),
                                   "--run", str(lab_run), "--template", str(template)]))
        times["zoo"].append(zoo("train", "dcgan", "--data", "mnist", "--steps", str(args.steps), "--no-wandb",
                                "--out", str(RESULTS / "zoo"), "--force", *args.zoo_args))
        print(f"repeat {i + 1}: lab {times['lab'][-1]:.1f} s, zoo {times['zoo'][-1]:.1f} s", flush=True)
    lab, mine = statistics.median(times["lab"]), statistics.median(times["zoo"])
    result = {"steps": args.steps, "batch": 128, "lab_seconds": times["lab"], "zoo_seconds": times["zoo"],
              "zoo_args": args.zoo_args, "speed-up": round(lab / mine, 3),
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(f"lab {lab:.1f} s, zoo {mine:.1f} s (medians of {args.repeats}): zoo is {lab / mine:.2f}x as fast")
    (RESULTS / "whole.json").write_text(json.dumps(result, indent=2))
    return result


def evaluated(run: Path) -> float:
    zoo("eval", str(run))
    return float(json.loads((run / "eval.json").read_text())["fid"])


def quality(args: argparse.Namespace) -> None:
    if not (RESULTS / "lab" / "checkpoint.safetensors").exists() or args.rerun:
        whole(args)
    lab_fid = evaluated(RESULTS / "lab")
    lab_seconds = statistics.median(json.loads((RESULTS / "whole.json").read_text())["lab_seconds"])
    run = RESULTS / "zoo-steps"
    points = []
    seconds = 0.0
    for k in (1, 2, 3, 4):
        steps = args.steps * k // 4
        flags = ["--out", str(run), "--force"] if k == 1 else ["--resume", str(run)]
        seconds += zoo("train", "dcgan", *(["--data", "mnist"] if k == 1 else []), "--steps", str(steps),
                       "--no-wandb", *flags, *(args.zoo_args if k == 1 else []))
        fid = evaluated(run)
        points.append({"steps": steps, "seconds": round(seconds, 1), "fid": fid})
        print(f"zoo at {steps} steps ({seconds:.0f} s of whole processes): FID {fid:.2f}", flush=True)
    reached = next((p for p in points if p["fid"] <= lab_fid), None)
    result = {"lab": {"steps": args.steps, "seconds": lab_seconds, "fid": lab_fid}, "zoo": points,
              "time_to_lab_fid": reached and reached["seconds"],
              "share_of_lab_time": reached and round(reached["seconds"] / lab_seconds, 3)}
    print(f"lab: FID {lab_fid:.2f} after {lab_seconds:.0f} s; zoo reaches it "
          + (f"at {reached['steps']} steps, {reached['seconds']:.0f} s ({reached['seconds'] / lab_seconds:.2f} "
             "of the lab's time)" if reached else "not within the lab's steps"))
    (RESULTS / "quality.json").write_text(json.dumps(result, indent=2))


# -- images/s per plugin ------------------------------------------------------------------------------

CASES = {
    "dcgan-28": ("dcgan", "mnist", {}, 128),
    "dcgan-64": ("dcgan", "cifar10-like-64", {}, 128),
    "wgan-gp": ("wgan-gp", "mnist", {}, 64),
    "pix2pix": ("pix2pix", "pairs-64", {}, 4),
}


def _case_data(kind: str):  # type: ignore[no-untyped-def]
    """A plugin's data, as tensors of the right shape (speed needs no real images)."""
    import zoo as z

    if kind == "mnist":
        from zoo.pipelines.prep import prepare

        d = prepare("mnist")
        return d.spec, d.images, None
    if kind == "cifar10-like-64":
        return z.DataSpec("random-64", 3, 64, 64), torch.randint(0, 256, (1024, 3, 64, 64), dtype=torch.uint8), None
    spec = z.DataSpec("pairs-64", 3, 64, 64, pairing="paired")
    return spec, torch.randint(0, 256, (256, 3, 64, 64), dtype=torch.uint8), \
        torch.randint(0, 256, (256, 3, 64, 64), dtype=torch.uint8)


def rate(case: str, precision: str, channels_last: bool, compile: bool, steps: int, warmup: int,
         device: str = "cpu", batch_size: int | None = None) -> tuple[float, float]:
    import zoo as z
    from zoo import registry
    from zoo.data.memory import TensorBatches
    from zoo.training.engine import Engine, EngineOptions

    name, kind, sets, batch = CASES[case]
    batch = batch_size or batch
    spec, images, targets = _case_data(kind)
    cls = registry.get(name)
    torch.manual_seed(0)
    config = cls.Config(**{**sets, "batch_size": batch})  # type: ignore[call-arg]
    where = torch.device(device)
    model = cls(config, spec).to(where)
    model.engine = Engine(EngineOptions(precision, channels_last=channels_last, compile=compile), where)
    model.engine.prepare(model)
    model.optimizers = model.configure_optimizers()
    model.engine.tune(model.optimizers)
    batches = TensorBatches(images, None, batch, seed=0, device=where, targets=targets)

    def sync() -> None:
        if where.type == "cuda":
            torch.cuda.synchronize(where)

    started, warm = time.perf_counter(), 0.0
    pending = []
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            warm, started = time.perf_counter() - started, time.perf_counter()
        with model.engine.autocast():
            metrics = model.train_step(batches, z.Progress(i, warmup + steps, 0))
        model.engine.end_step()
        pending.append(metrics)
        if len(pending) == 10:  # as the loop reads them: every 10 steps
            [float(v) for m in pending for v in m.values()]
            pending = []
    [float(v) for m in pending for v in m.values()]
    sync()
    return steps * batch * model.batches_per_step() / (time.perf_counter() - started), warm


def plugins(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    options = [("fp32", False, False), ("fp32", True, False), ("bf16", True, False), ("fp32", True, True)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; images/s of training (batches drawn)")
    if args.device.startswith("cuda"):  # every option, fp16 too, each with channels-last
        options = [("fp32", False, False), ("fp32", True, False), ("bf16", True, False), ("fp16", True, False),
                   ("bf16", True, True)]
    for case in args.cases or list(CASES):
        for precision, cl, comp in options:
            if comp and not args.compile:
                continue
            emulated = precision == "bf16" and args.device == "cpu"
            steps = max(2, args.steps // 10) if emulated else args.steps
            images, warm = rate(case, precision, cl, comp, steps, args.warmup, args.device, args.batch_size)
            label = f"{precision}{' channels-last' if cl else ''}{' compile' if comp else ''}"
            rows.append({"case": case, "option": label, "images_per_s": round(images, 1), "warmup_s": round(warm, 1)})
            print(f"{case:10} {label:28} {images:9.1f} images/s   warm-up {warm:6.1f} s", flush=True)
    (RESULTS / f"plugins-{args.device.replace(':', '')}.json").write_text(json.dumps(rows, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("whole", "quality"):
        p = sub.add_parser(name)
        p.add_argument("--steps", type=int, default=STEPS)
        p.add_argument("--repeats", type=int, default=1)
        p.add_argument("--rerun", action="store_true", help="quality: time the processes again")
        p.add_argument("zoo_args", nargs="*", help="more zoo train flags (after --)")
    p = sub.add_parser("plugins")
    p.add_argument("cases", nargs="*", help=f"of {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="also torch.compile (minutes of compiling)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=int, help="instead of each case's own (the issue's GPU target: 512)")
    args = parser.parse_args()
    {"whole": whole, "quality": quality, "plugins": plugins}[args.what](args)


if __name__ == "__main__":
    main()
