"""Speed: zoo's training against the seed lab's loop, and images/s per plugin and option.

    python benchmarks/step_speed.py whole [--repeats 3]  # the lab's and `zoo train`'s processes (~8 min a repeat)
    python benchmarks/step_speed.py quality         # + zoo eval of both: time to the lab's FID (~15 min)
    python benchmarks/step_speed.py reach -- --preset quick  # one zoo train command against the lab's FID (~4 min)
    python benchmarks/step_speed.py plugins [--compile]  # images/s per plugin, precision and option (~10 min)
    python benchmarks/step_speed.py torchrun [--repeats 3]  # 2 processes x 1 thread against 1 x 2 (~4 min a repeat)
    python benchmarks/step_speed.py make-test      # `make test` as a whole process (the full suite)
    python benchmarks/step_options.py --profile    # inside one process: where a step's time goes

``whole`` times, as a user runs them, the lab's script (benchmarks/seed_lab.py: its
networks, numpy Dataset and DataLoader) and ``zoo train dcgan --data mnist --steps 1560``
at the same steps and batch (128), both on zoo's 9,000 training images of the offline MNIST
(the lab's file is written from them, so neither sees the 1,000 held out), alternating
lab / zoo ``--repeats`` times, with the load average before each. ``quality`` then measures
the lab's final generator and zoo's at a quarter, half, three quarters and all of the steps
with ``zoo eval`` (10,000 samples against the held-out images, zoo's MNIST classifier's
features), and reports when zoo first reaches the lab's final FID, in whole-process seconds
(zoo's reached by resuming, each resume a new process: startup counted every time).
``reach`` trains once with the flags given (``zoo train dcgan --data mnist FLAGS``, one
whole process, as typed), evaluates it as ``quality`` does, and says whether it reached the
lab's final FID and in what share of the lab's time: the figure for a recipe (issue 33's
target: half the lab's time or less).
``plugins`` times training steps inside one process (after a warm-up, reported apart: the
compile time with ``--compile``). ``torchrun`` times ``torchrun --nproc_per_node 2 -m zoo train
dcgan --data mnist --steps 300`` against the same command in one process, alternating.

Smoke tests: ``whole --steps 5``, ``quality --steps 8 --eval-n 500``, ``plugins dcgan-28 --steps 2 --warmup 1``,
``torchrun --steps 5``, ``make-test --target lint``.

Writes benchmarks/results/speed-whole.json (``figures``: lab_seconds, zoo_seconds (each run),
lab_median, zoo_median, speed_up, load_before), speed-quality.json (``figures.lab``: steps,
seconds, fid; ``figures.zoo``: a point per quarter with steps, seconds, fid;
time_to_lab_fid, share_of_lab_time), speed-plugins[-DEVICE][-compile].json
(``figures.CASE.OPTION``: images_per_s, warmup_s, load_before; OPTION one of fp32,
fp32_channels_last, bf16_channels_last, fp16_channels_last, fp32_channels_last_compile,
bf16_channels_last_compile), speed-reach-FLAGS.json (``figures.lab``: seconds, fid;
``figures.zoo``: steps, seconds, fid; reached, share_of_lab_time), speed-torchrun.json (``figures``: torchrun_seconds,
one_process_seconds, medians, ratio) and speed-make-test.json (``figures``: seconds, passed).
Other steps or flags than the defaults add them to the name. Working files go to
benchmarks/runs/speed/.
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

from commands import load, slug, zoo  # noqa: E402
from record import RUNS, write_result  # noqa: E402

HERE = RUNS / "speed"
LAB = Path(__file__).with_name("seed_lab.py")
STEPS = 1560
TORCHRUN_STEPS = 300


def lab_idx_file(path: Path) -> Path:
    """zoo's MNIST training images as the uncompressed IDX file the lab reads."""
    from zoo.pipelines.prep import prepare

    images = prepare("mnist").images.numpy()
    n, _, h, w = images.shape
    header = (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + h.to_bytes(4, "big") + w.to_bytes(4, "big")
    path.write_bytes(header + images.tobytes())
    return path


def timed(command: list[str], check: bool = True, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled", **(env or {})})
    if done.returncode and check:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def whole_name(args: argparse.Namespace) -> str:
    return slug("speed-whole", "" if args.steps == STEPS else f"{args.steps}steps", *args.zoo_args)


def whole(args: argparse.Namespace) -> dict[str, object]:
    HERE.mkdir(parents=True, exist_ok=True)
    idx = lab_idx_file(HERE / "mnist-train-idx3-ubyte")
    template = HERE / "template"
    if not (template / "checkpoint.safetensors").exists():
        zoo("train", "dcgan", "--data", "mnist", "--steps", "1", "--set", "architecture=lab",
            "--set", "loss=cross_entropy", "--no-wandb", "--out", str(template), "--force")
    times: dict[str, list[float]] = {"lab": [], "zoo": []}
    loads: dict[str, list[float]] = {"lab": [], "zoo": []}
    for i in range(args.repeats):
        loads["lab"].append(load())
        times["lab"].append(round(timed([sys.executable, str(LAB), str(idx), "--steps", str(args.steps),
                                         "--run", str(HERE / "lab"), "--template", str(template)]), 1))
        loads["zoo"].append(load())
        times["zoo"].append(round(zoo("train", "dcgan", "--data", "mnist", "--steps", str(args.steps), "--no-wandb",
                                      "--out", str(HERE / "zoo"), "--force", *args.zoo_args), 1))
        print(f"repeat {i + 1}: lab {times['lab'][-1]:.1f} s, zoo {times['zoo'][-1]:.1f} s "
              f"(load before {loads['lab'][-1]}, {loads['zoo'][-1]})", flush=True)
    lab, mine = statistics.median(times["lab"]), statistics.median(times["zoo"])
    figures = {"lab_seconds": times["lab"], "zoo_seconds": times["zoo"], "lab_median": lab, "zoo_median": mine,
               "speed_up": round(lab / mine, 3), "load_before": loads}
    print(f"lab {lab:.1f} s, zoo {mine:.1f} s (medians of {args.repeats}): zoo is {lab / mine:.2f}x as fast")
    # For quality and reach, which reuse the lab's run:
    (HERE / "whole.json").write_text(json.dumps({**figures, "steps": args.steps}, indent=2))
    write_result(whole_name(args), figures, steps=args.steps, batch=128, repeats=args.repeats, zoo_args=args.zoo_args,
                 threads=torch.get_num_threads(),
                 zoo_command=f"zoo train dcgan --data mnist --steps {args.steps} {' '.join(args.zoo_args)}".strip(),
                 lab_command=f"python benchmarks/seed_lab.py IDX --steps {args.steps}")
    return figures


def evaluated(run: Path, n: int | None = None, again: bool = True) -> float:
    """``zoo eval RUN``'s FID; with ``again`` False, the one eval.json already holds if it
    is of the same protocol (the lab's run is evaluated once for every recipe)."""
    done = run / "eval.json"
    if again or not done.exists() or json.loads(done.read_text()).get("n") != n:
        zoo("eval", str(run), "--wandb", "off", *(["-n", str(n)] if n else []))
        done.write_text(json.dumps({**json.loads(done.read_text()), "n": n}, indent=2))
    return float(json.loads(done.read_text())["fid"])


def quality(args: argparse.Namespace) -> None:
    if not (HERE / "lab" / "checkpoint.safetensors").exists() or not (HERE / "whole.json").exists() or args.rerun:
        whole(args)
    lab_fid = evaluated(HERE / "lab", args.eval_n)
    lab_seconds = statistics.median(json.loads((HERE / "whole.json").read_text())["lab_seconds"])
    run = HERE / "zoo-steps"
    points = []
    seconds = 0.0
    for k in (1, 2, 3, 4):
        steps = args.steps * k // 4
        flags = ["--out", str(run), "--force"] if k == 1 else ["--resume", str(run)]
        before = load()
        seconds += zoo("train", "dcgan", *(["--data", "mnist"] if k == 1 else []), "--steps", str(steps),
                       "--no-wandb", *flags, *(args.zoo_args if k == 1 else []))
        fid = evaluated(run, args.eval_n)
        points.append({"steps": steps, "seconds": round(seconds, 1), "fid": fid, "load_before": before})
        print(f"zoo at {steps} steps ({seconds:.0f} s of whole processes): FID {fid:.2f}", flush=True)
    reached = next((p for p in points if p["fid"] <= lab_fid), None)
    figures = {"lab": {"steps": args.steps, "seconds": lab_seconds, "fid": lab_fid}, "zoo": points,
               "time_to_lab_fid": reached and reached["seconds"],
               "share_of_lab_time": reached and round(reached["seconds"] / lab_seconds, 3)}
    print(f"lab: FID {lab_fid:.2f} after {lab_seconds:.0f} s; zoo reaches it "
          + (f"at {reached['steps']} steps, {reached['seconds']:.0f} s ({reached['seconds'] / lab_seconds:.2f} "
             "of the lab's time)" if reached else "not within the lab's steps"))
    write_result(slug("speed-quality", "" if args.steps == STEPS else f"{args.steps}steps", *args.zoo_args,
                      f"n{args.eval_n}" if args.eval_n else ""), figures,
                 steps=args.steps, zoo_args=args.zoo_args, eval_n=args.eval_n,
                 eval="zoo eval RUN (10,000 samples unless eval_n says, against the held-out digits)")


def reach(args: argparse.Namespace) -> None:
    """One ``zoo train dcgan --data mnist FLAGS`` as typed, against the lab's final FID (of
    ``whole``'s run of the lab, at the lab's 1,560 steps, on this machine)."""
    timed_lab = json.loads((HERE / "whole.json").read_text()) if (HERE / "whole.json").exists() else {}
    if not (HERE / "lab" / "checkpoint.safetensors").exists() or timed_lab.get("steps") != STEPS:
        raise SystemExit(f"reach compares with the lab's run of {STEPS} steps: run `python benchmarks/step_speed.py "
                         "whole` first (on this machine, idle)")
    lab_fid = evaluated(HERE / "lab", args.eval_n, again=False)
    lab_seconds = statistics.median(timed_lab["lab_seconds"])
    run = HERE / "reach"
    before = load()
    seconds = zoo("train", "dcgan", "--data", "mnist", "--no-wandb", "--out", str(run), "--replace", *args.zoo_args)
    steps = json.loads((run / "run.json").read_text())["step"]
    fid = evaluated(run, args.eval_n)
    figures = {"lab": {"steps": STEPS, "seconds": lab_seconds, "fid": lab_fid},
               "zoo": {"steps": steps, "seconds": round(seconds, 1), "fid": fid, "load_before": before},
               "reached": fid <= lab_fid, "share_of_lab_time": round(seconds / lab_seconds, 3)}
    print(f"lab: FID {lab_fid:.2f} after {lab_seconds:.0f} s; zoo train dcgan --data mnist {' '.join(args.zoo_args)}: "
          f"FID {fid:.2f} after {seconds:.0f} s ({seconds / lab_seconds:.2f} of the lab's time, {steps} steps)")
    write_result(slug("speed-reach", *args.zoo_args, f"n{args.eval_n}" if args.eval_n else ""), figures,
                 zoo_args=args.zoo_args, eval_n=args.eval_n, threads=torch.get_num_threads(),
                 zoo_command=f"zoo train dcgan --data mnist {' '.join(args.zoo_args)}".strip(),
                 eval="zoo eval RUN (10,000 samples unless eval_n says, against the held-out digits)")


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
    HERE.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, dict]] = {}
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
            before = load()
            images, warm = rate(case, precision, cl, comp, steps, args.warmup, args.device, args.batch_size)
            label = "_".join([precision, *(["channels_last"] if cl else []), *(["compile"] if comp else [])])
            rows.setdefault(case, {})[label] = {"images_per_s": round(images, 1), "warmup_s": round(warm, 1),
                                                "steps": steps, "load_before": before}
            print(f"{case:10} {label:28} {images:9.1f} images/s   warm-up {warm:6.1f} s", flush=True)
    default = not args.cases and args.steps == 20 and args.warmup == 3 and args.batch_size is None
    name = slug("speed-plugins", "" if args.device == "cpu" else args.device.replace(":", ""),
                "compile" if args.compile else "",
                *([] if default else [*args.cases, f"{args.steps}steps", f"batch{args.batch_size}" if args.batch_size
                                      else ""]))
    write_result(name, rows, device=args.device, steps=args.steps, warmup=args.warmup, batch_size=args.batch_size,
                 threads=torch.get_num_threads(), cases={k: {"model": v[0], "data": v[1], "batch": v[3]}
                                                         for k, v in CASES.items()})


def torchrun(args: argparse.Namespace) -> None:
    """``torchrun --nproc_per_node 2 -m zoo train ...`` (one thread a process, torchrun's
    default) against the same command in one process with a thread per core, alternating."""
    HERE.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    command = ["train", "dcgan", "--data", "mnist", "--steps", str(args.steps), "--no-wandb", "--force"]
    times: dict[str, list[float]] = {"torchrun": [], "one_process": []}
    loads: dict[str, list[float]] = {"torchrun": [], "one_process": []}
    for i in range(args.repeats):
        loads["torchrun"].append(load())
        times["torchrun"].append(round(timed([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                                              str(args.processes), "-m", "zoo", *command, "--out",
                                              str(HERE / "torchrun")], env={"OMP_NUM_THREADS": "1"}), 1))
        loads["one_process"].append(load())
        times["one_process"].append(round(zoo(*command, "--out", str(HERE / "one-process"),
                                              env={"OMP_NUM_THREADS": str(cores)}), 1))
        print(f"repeat {i + 1}: torchrun {times['torchrun'][-1]:.1f} s, one process "
              f"{times['one_process'][-1]:.1f} s", flush=True)
    a, b = statistics.median(times["torchrun"]), statistics.median(times["one_process"])
    figures = {"torchrun_seconds": times["torchrun"], "one_process_seconds": times["one_process"],
               "torchrun_median": a, "one_process_median": b, "torchrun_over_one_process": round(a / b, 3),
               "load_before": loads}
    print(f"torchrun {a:.1f} s, one process {b:.1f} s (medians of {args.repeats})")
    write_result(slug("speed-torchrun", "" if args.steps == TORCHRUN_STEPS else f"{args.steps}steps",
                      "" if args.processes == 2 else f"{args.processes}processes"), figures,
                 steps=args.steps, processes=args.processes, repeats=args.repeats,
                 zoo_command=f"torchrun --nproc_per_node {args.processes} -m zoo {' '.join(command[:-2])}",
                 threads_per_torchrun_process=1, one_process_threads=cores)


def make_test(args: argparse.Namespace) -> None:
    """``make TARGET`` in the repository as a whole process (the suite's own set-up included)."""
    repo = Path(__file__).resolve().parents[1]
    before = load()
    started = time.perf_counter()
    done = subprocess.run(["make", args.target], cwd=repo, capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    print(done.stdout[-1500:])
    print(f"make {args.target}: {seconds:.0f} s, exit status {done.returncode}")
    write_result(slug("speed-make", args.target), {"seconds": seconds, "passed": done.returncode == 0,
                                                   "load_before": before},
                 make_command=f"make {args.target}", tail=done.stdout.strip().splitlines()[-3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("whole", "quality", "reach"):
        p = sub.add_parser(name)
        p.add_argument("--steps", type=int, default=STEPS)
        p.add_argument("--repeats", type=int, default=1)
        p.add_argument("--rerun", action="store_true", help="quality: time the processes again")
        p.add_argument("--eval-n", type=int, help="quality: zoo eval -n (default: its own 10,000; smoke tests)")
        p.add_argument("zoo_args", nargs="*", help="more zoo train flags (after --)")
    p = sub.add_parser("torchrun")
    p.add_argument("--steps", type=int, default=TORCHRUN_STEPS)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--processes", type=int, default=2)
    p = sub.add_parser("make-test")
    p.add_argument("--target", default="test", help="the make target to time")
    p = sub.add_parser("plugins")
    p.add_argument("cases", nargs="*", help=f"of {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="also torch.compile (minutes of compiling)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=int, help="instead of each case's own (the issue's GPU target: 512)")
    args = parser.parse_args()
    {"whole": whole, "quality": quality, "reach": reach, "plugins": plugins, "torchrun": torchrun,
     "make-test": make_test}[args.what](args)


if __name__ == "__main__":
    main()
