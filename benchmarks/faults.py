"""The heavy fault loops of issue 18, run by hand (the single faults are tests/test_faults.py).

``python benchmarks/faults.py kill-train [--kills 100] [--steps 2000] [--window-factor 1.15]``:
one DCGAN run on MNIST, killed with SIGKILL at random moments (while it starts, trains, draws
previews, writes checkpoints) and resumed each time, until it finishes; after every kill the run
folder must be whole (run.json and each metrics line readable, the checkpoint loads, no half-
written file where a good one should be). The final weights are compared bit for bit with an
uninterrupted run of the same command (deterministic on the CPU).

``python benchmarks/faults.py kill-prep [--kills 30] [--photos]``: ``zoo prep`` of a folder of
images, killed at random moments and rerun; the cache is always either absent or whole, and the
last run's equals an uninterrupted prep. ``--photos``: 300 photos of 400 to 800 pixels a side
at their own sizes (``--size full``), killed only while the prep is at work (between the moments
its work folder appeared and went in the uninterrupted prep: not while Python imports, nor
while it draws its pictures once the folder is in place).

``python benchmarks/faults.py kill-eval [--kills 20]``: ``zoo eval`` killed and rerun: eval.json
is absent or whole, never half-written.

``python benchmarks/faults.py many-files [--files 200000] [--size 16]``: ``zoo prep`` of a folder
of that many small images; its peak memory against the prepared pixels' own size.

Full lengths, and what each takes here: ``kill-train --kills 100 --steps 2000 --window-factor 1.15``
(about 25 minutes), ``kill-prep`` (about 5), ``kill-eval`` (about 10), ``many-files --files 200000``
(about 15). Smoke tests: ``kill-train --kills 2 --steps 20``, ``kill-prep --kills 2``,
``kill-eval --kills 2``, ``many-files --files 200``.

Writes benchmarks/results/faults-kill-train-{K}kills.json, faults-kill-prep-{K}kills[-photos].json,
faults-kill-eval-{K}kills.json and faults-many-files-{N}files.json (the other settings are
fields of the file): kill-train: kills, attempts, kills_with_problems, partial_files_seen,
final_weights_identical, weights_compared, uninterrupted_seconds, checkpoint_steps_seen;
kill-prep: kills, kills_from_second, kills_to_second, states (absent/whole/...),
kills_leaving_progress_to_resume_from, leftovers_after_a_kill,
leftovers_after_the_next_prep, final_cache_equal, whole_prep_seconds; kill-eval: kills,
states, whole_eval_seconds; many-files: files, prep_seconds, pixels_mib,
imports_only_peak_mib, prep_peak_mib, peak_over_imports_per_pixel_byte. Each with the load
average before its timed parts. Working folders are temporary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from zoo.data.memory import load_prepared
from zoo.records import checkpoint as ckpt_io
from zoo.records import files, runs

sys.path.insert(0, str(Path(__file__).parent))

from commands import load, slug  # noqa: E402
from record import write_result  # noqa: E402

TINY = ["--set", "g_width=8", "--set", "d_width=8", "--set", "latent_dim=16", "--batch-size", "32"]


def zoo(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zoo", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "WANDB_MODE": "disabled", "COLUMNS": "200"})


def kill_at_random(process: subprocess.Popen, low: float, high: float, rng: random.Random) -> bool:
    """SIGKILL after a random wait; False if the process ended first (it finished)."""
    deadline = time.monotonic() + rng.uniform(low, high)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return True


def check_run(run: Path) -> dict:
    """A killed run folder must be whole: what is there reads."""
    problems = []
    partial = [p.name for p in run.rglob("*") if files.is_partial(p)]
    if (run / runs.RUN_FILE).exists():
        try:
            json.loads((run / runs.RUN_FILE).read_text())
        except ValueError:
            problems.append("run.json unreadable")
    metrics = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    for line in metrics[:-1]:  # the last may be cut: a resume drops it
        try:
            json.loads(line)
        except ValueError:
            problems.append("a metrics line unreadable")
    step = None
    if (run / ckpt_io.FILENAME).exists():
        try:
            step = ckpt_io.load(run / ckpt_io.FILENAME).train["step"]
        except Exception as exc:  # noqa: BLE001 (any failure here is the finding)
            problems.append(f"checkpoint: {exc}")
    for picture in run.rglob("*.png"):
        from PIL import Image

        try:
            with Image.open(picture) as im:
                im.load()
        except OSError:
            problems.append(f"{picture.name} unreadable")
    return {"problems": problems, "partial_files": partial, "step": step}


def kill_train(kills: int, steps: int, seed: int, window_factor: float = 2.0) -> dict:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="zoo-kill-"))
    command = ["train", "dcgan", "--data", "mnist", *TINY, "--steps", str(steps), "--no-wandb"]
    before = load()
    started = time.perf_counter()
    whole = zoo(*command, "--out", str(work / "whole"))
    out, _ = whole.communicate()
    assert whole.returncode == 0, out
    uninterrupted = time.perf_counter() - started
    started = time.perf_counter()
    first = zoo(*command[:-3], "--steps", "10", "--no-wandb", "--out", str(work / "start"))
    first.communicate()
    # a 10-step run's whole life, times the factor: start-up is most of it, so a factor near 1 kills
    # in start-up, resume or the first few dozen steps, many kills before the run can finish
    window = window_factor * (time.perf_counter() - started)
    run = work / "killed"
    args = [*command, "--checkpoint-every", "10", "--out", str(run)]
    records, done, attempts = [], False, 0
    while not done:
        attempts += 1
        process = zoo(*args) if not (run / ckpt_io.FILENAME).exists() else zoo(
            "train", "dcgan", "--resume", str(run), "--no-wandb")
        # anywhere from its start to a while into training; after enough kills, let it finish
        killed = len(records) < kills and kill_at_random(process, 0.5, window, rng)
        if killed:
            state = check_run(run)
            records.append(state)
            print(f"kill {len(records)}: checkpoint at step {state['step']}, problems {state['problems']}",
                  flush=True)
            if not (run / ckpt_io.FILENAME).exists() and run.exists():
                shutil.rmtree(run)  # killed before its first checkpoint: nothing to resume, start again
            continue
        out, _ = process.communicate()
        if process.returncode != 0 and "already finished" not in out:
            raise SystemExit(f"a resume failed:\n{out}")
        done = True
    final, reference = load_file(str(run / ckpt_io.FILENAME)), load_file(str(work / "whole" / ckpt_io.FILENAME))
    weights = [k for k in reference if k.startswith("model.")]
    same = all(k in final and bool((final[k] == reference[k]).all()) for k in weights)
    result = {"kills": len(records), "attempts": attempts, "steps": steps, "kill_window_seconds": round(window, 1),
              "uninterrupted_seconds": round(uninterrupted, 1), "load_before": before,
              "kills_with_problems": sum(bool(r["problems"]) for r in records),
              "partial_files_seen": sum(len(r["partial_files"]) for r in records),
              "checkpoint_steps_seen": sorted({r["step"] for r in records if r["step"] is not None}),
              "final_weights_identical": same, "weights_compared": len(weights),
              "problems": [p for r in records for p in r["problems"]][:20]}
    shutil.rmtree(work, ignore_errors=True)
    return result


def leftovers_of(cache: Path, partial: bool = False) -> list[str]:
    """A prep's temporary or replaced folders still beside its cache (and with ``partial`` its
    work folder: none may be left once a prep has run through)."""
    return [p.name for p in cache.parent.iterdir()
            if ".tmp-" in p.name or ".old-" in p.name or (partial and p.name.endswith(".partial"))]


def kill_prep(kills: int, seed: int, photos: bool = False) -> dict:
    """``photos``: 300 photos of 400 to 800 pixels a side prepared at their own sizes (``--size
    full``, read one photo at a time) instead of 1,200 small images fitted to 16 x 16."""
    from PIL import Image

    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="zoo-kill-prep-"))
    folder = work / "photos"
    for c in range(3):
        (folder / f"class{c}").mkdir(parents=True)
        for i in range(100 if photos else 400):
            if photos:
                size = (400 + (37 * i) % 400, 400 + (53 * i) % 400)
                image = Image.effect_noise(size, 40 + c).convert("RGB")
            else:
                image = Image.new("RGB", (48 + i % 7, 40), (i % 255, 40 * c, 90))
            image.save(folder / f"class{c}" / f"{i}.png")
    size = ["--size", "full" if photos else "16"]
    os.environ["ZOO_CACHE_DIR"] = str(work / "cache")
    before = load()
    started = time.perf_counter()
    process = zoo("prep", f"folder:{folder}", *size)
    at_work: list[float] = []  # photos: while the prep's work folder is there (imports and listing done)
    while process.poll() is None:
        if list((work / "cache" / "prepared").glob("*.partial")):
            at_work.append(time.perf_counter() - started)
        time.sleep(0.01)
    process.communicate()
    whole_seconds = time.perf_counter() - started
    cache = next((work / "cache" / "prepared").glob("folder-photos-*[!l]"))  # (not its .partial)
    earliest, latest = (at_work[0], at_work[-1]) if photos and at_work else (0.3, whole_seconds)

    def pixels() -> list[torch.Tensor]:
        prepared = load_prepared(cache)
        photos = [prepared.photos.pixels.clone(), prepared.photos.shapes.clone()] if prepared.photos is not None else []
        return [prepared.images.clone(), *([prepared.labels.clone()] if prepared.labels is not None else []), *photos]

    reference = pixels()

    def same() -> bool:
        return all(torch.equal(a, b) for a, b in zip(pixels(), reference, strict=True))

    records = []
    for k in range(kills):
        process = zoo("prep", f"folder:{folder}", *size, "--force")
        kill_at_random(process, earliest, latest, rng)
        state = "absent"
        if (cache / "meta.json").exists():
            try:
                state = "whole" if same() else "different"
            except files.Damaged as exc:
                state = f"damaged: {exc.problem}"
        leftovers = leftovers_of(cache)
        resumable = (cache.with_name(cache.name + ".partial") / "progress.json").exists()
        records.append({"state": state, "leftovers": leftovers, "resumable": resumable})
        print(f"prep kill {k + 1}: cache {state}, leftovers {leftovers}, progress kept to resume from: {resumable}",
              flush=True)
    process = zoo("prep", f"folder:{folder}", *size)
    out, _ = process.communicate()
    final_same = same()
    leftovers = leftovers_of(cache, partial=True)
    result = {"kills": kills, "whole_prep_seconds": round(whole_seconds, 1), "load_before": before,
              "kills_from_second": round(earliest, 2), "kills_to_second": round(latest, 2),
              "states": {s: sum(r["state"] == s for r in records) for s in {r["state"] for r in records}},
              "kills_leaving_progress_to_resume_from": sum(r["resumable"] for r in records),
              "leftovers_after_a_kill": sum(bool(r["leftovers"]) for r in records),
              "leftovers_after_the_next_prep": leftovers, "final_cache_equal": final_same}
    shutil.rmtree(work, ignore_errors=True)
    return result


def kill_eval(kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="zoo-kill-eval-"))
    run = work / "run"
    process = zoo("train", "dcgan", "--data", "mnist", *TINY, "--steps", "20", "--no-wandb", "--out", str(run))
    process.communicate()
    before = load()
    started = time.perf_counter()
    process = zoo("eval", str(run), "--n", "500", "--features", "random")
    out, _ = process.communicate()
    assert process.returncode == 0, out
    whole_seconds = time.perf_counter() - started
    states = []
    for k in range(kills):
        process = zoo("eval", str(run), "--n", "500", "--features", "random")
        kill_at_random(process, 0.3, whole_seconds, rng)
        try:
            json.loads((run / "eval.json").read_text())
            state = "whole"
        except ValueError:
            state = "half-written"
        partial = [p.name for p in run.rglob("*") if files.is_partial(p)]
        states.append(state if not partial else f"{state}, partial files {partial}")
        print(f"eval kill {k + 1}: eval.json {states[-1]}", flush=True)
    result = {"kills": kills, "whole_eval_seconds": round(whole_seconds, 1), "load_before": before,
              "states": {s: states.count(s) for s in set(states)}}
    shutil.rmtree(work, ignore_errors=True)
    return result


def many_files(count: int, size: int, seed: int) -> dict:
    """``zoo prep`` of a folder of ``count`` small images (10 class folders): its peak memory
    (the process's maximum resident set) against the prepared pixels' own size and against
    a process that only imports what prep imports."""
    import resource

    from PIL import Image

    rng = np.random.default_rng(seed)
    work = Path(tempfile.mkdtemp(prefix="zoo-many-"))
    folder = work / "many"
    started = time.perf_counter()
    for c in range(10):
        (folder / f"class{c}").mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"class{i % 10}" / f"{i}.png")
    made_seconds = time.perf_counter() - started
    os.environ["ZOO_CACHE_DIR"] = str(work / "cache")

    def peak_of(*command: str) -> tuple[float, float, str]:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "COLUMNS": "200"})
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(out)
        # RUSAGE_CHILDREN's peak is the largest of the children waited for: measure the small one first
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - started, out

    before = load()
    imports, _, _ = peak_of(sys.executable, "-c", "import torch, zoo.pipelines.prep, zoo.data.sources")
    peak, seconds, out = peak_of(sys.executable, "-m", "zoo", "prep", f"folder:{folder}", "--size", str(size))
    pixels = count * 3 * size * size / 2**20
    result = {"files": count, "size": size, "making_the_files_seconds": round(made_seconds, 1),
              "prep_seconds": round(seconds, 1), "load_before": before, "pixels_mib": round(pixels, 1),
              "imports_only_peak_mib": round(imports, 1), "prep_peak_mib": round(peak, 1),
              "peak_over_imports_per_pixel_byte": round((peak - imports) / pixels, 2),
              "prep_said": out.strip().splitlines()[-3:]}
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("loop", choices=["kill-train", "kill-prep", "kill-eval", "many-files"])
    parser.add_argument("--kills", type=int, default=None)
    parser.add_argument("--steps", type=int, default=600, help="kill-train: the run's length")
    parser.add_argument("--window-factor", type=float, default=2.0,
                        help="kill-train: kill within this many times a 10-step run's life (1.15 for 100+ kills)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=200_000, help="many-files: how many")
    parser.add_argument("--size", type=int, default=16, help="many-files: prep's --size")
    parser.add_argument("--photos", action="store_true", help="kill-prep: photos at their own sizes (--size full)")
    args = parser.parse_args()
    kills = args.kills or {"kill-train": 100, "kill-prep": 30, "kill-eval": 20}.get(args.loop)
    if args.loop == "kill-train":
        result = kill_train(kills, args.steps, args.seed, args.window_factor)
        settings = {"kills": kills, "steps": args.steps, "window_factor": args.window_factor}
    elif args.loop in ("kill-prep", "kill-eval"):
        result = kill_prep(kills, args.seed, args.photos) if args.loop == "kill-prep" else kill_eval(kills, args.seed)
        settings = {"kills": kills, **({"photos": True} if args.photos else {})}
    else:
        result, settings = many_files(args.files, args.size, args.seed), {"files": args.files, "size": args.size}
    print(json.dumps(result, indent=2))
    problems = result.pop("problems", None)
    result.pop("prep_said", None)  # prep's own last lines, printed above: not a figure
    size = f"{args.files}files" + ("" if args.size == 16 else f"-{args.size}px") if args.loop == "many-files" \
        else f"{kills}kills" + ("-photos" if args.photos else "")
    name = slug("faults", args.loop, size, "" if args.seed == 0 else f"seed{args.seed}")
    write_result(name, result, **settings, seed=args.seed, **({"problems": problems} if problems is not None else {}))


if __name__ == "__main__":
    main()
