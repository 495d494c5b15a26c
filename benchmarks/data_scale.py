"""Data of any size: prep and training in bounded memory, measured at the commands a user types.

    python benchmarks/data_scale.py make                 # 300,000 64x64 RGB images as 30 tar shards
    python benchmarks/data_scale.py memory               # prep + 200 steps at batch 256: peak RssAnon
    python benchmarks/data_scale.py torchrun --steps 20  # two processes from one prepared set: their memory
    python benchmarks/data_scale.py speed                # images/s: mapped shards vs the set in memory
    python benchmarks/data_scale.py loader --shards 3    # batches from the maps: zoo's thread vs DataLoader workers
    python benchmarks/data_scale.py kills --kills 10     # a prep killed 10 times gives the same files
    python benchmarks/data_scale.py memory --data folder:DIR --label folder   # a folder of the same images
    python benchmarks/data_scale.py memory --zoo-path SITE --data folder:DIR --label before   # another zoo
    python benchmarks/data_scale.py photos               # 600 photos at 1200x900, --size full: srresnet
    python benchmarks/data_scale.py photos --zoo-path SITE --label before
    python benchmarks/data_scale.py pairs                # those photos as B/, x4 smaller as A/: paired:, --size full
    python benchmarks/data_scale.py pairs --zoo-path SITE --label before

Each command runs zoo in its own process, as a user would, and samples that process's
anonymous memory (RssAnon in /proc: what it holds itself, not the page cache of the files it
maps) every 50 ms; the peak is the figure. The images are smooth random pictures (noise at
8 x 8, enlarged), PNG-coded; the set's pixels are 300,000 x 3 x 64 x 64 bytes = 3.7 GB.
Training uses narrow networks (widths 16) so that the data path, not the convolutions, is
what is timed; the results go to benchmarks/results/data-scale-*.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from record import RUNS, write_result

ROOT = RUNS / "data-scale"
SHARD_IMAGES = 10_000
TRAIN = ["--size", "64", "--batch-size", "256", "--set", "g_width=16", "--set", "d_width=16", "--no-wandb"]


def pattern(shards: int) -> str:
    return f"shards:{ROOT / 'shards'}/{{0000..{shards - 1:04d}}}.tar"


def _write_shard(task: tuple[int, int]) -> str:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    index, count = task
    path = ROOT / "shards" / f"{index:04d}.tar"
    if path.is_file():
        return str(path)
    generator = torch.Generator().manual_seed(index)
    low = torch.rand(count, 3, 8, 8, generator=generator)
    tmp = path.with_suffix(".tar.tmp")
    with tarfile.open(tmp, "w") as tar:
        for start in range(0, count, 1000):
            pictures = F.interpolate(low[start:start + 1000], size=64, mode="bicubic", align_corners=False)
            pixels = (pictures.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for i, picture in enumerate(pixels):
                out = io.BytesIO()
                Image.fromarray(np.ascontiguousarray(picture)).save(out, "PNG", compress_level=1)
                key = f"{index:04d}{start + i:05d}"
                for name, data in ((f"{key}.png", out.getvalue()), (f"{key}.cls", str((start + i) % 10).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    tmp.rename(path)
    return str(path)


def make(images: int) -> None:
    (ROOT / "shards").mkdir(parents=True, exist_ok=True)
    tasks = [(i, min(SHARD_IMAGES, images - i * SHARD_IMAGES)) for i in range(-(-images // SHARD_IMAGES))]
    started = time.perf_counter()
    with multiprocessing.Pool(os.cpu_count() or 1) as pool:
        for done, path in enumerate(pool.imap(_write_shard, tasks), 1):
            print(f"{done}/{len(tasks)} {path}", flush=True)
    size = sum(p.stat().st_size for p in (ROOT / "shards").glob("*.tar"))
    print(f"{images:,} images in {len(tasks)} shards, {size / 1e9:.2f} GB, {time.perf_counter() - started:.0f} s")


PHOTOS = ROOT / "photos"
PHOTO_SIZE = (900, 1200)
"""Height and width of the photos ``photos`` makes: 3.24 MB of pixels each."""
SR_TRAIN = ["--set", "blocks=2", "--set", "width=16", "--batch-size", "16", "--no-wandb"]


def _write_photo(index: int) -> None:
    import torch
    import torch.nn.functional as F
    from PIL import Image

    path = PHOTOS / f"{index:05d}.png"
    if path.is_file():
        return
    generator = torch.Generator().manual_seed(index)
    low = torch.rand(1, 3, PHOTO_SIZE[0] // 50, PHOTO_SIZE[1] // 50, generator=generator)
    smooth = F.interpolate(low, size=PHOTO_SIZE, mode="bicubic", align_corners=False)
    pixels = (smooth[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path.with_suffix(".tmp.png"))
    path.with_suffix(".tmp.png").rename(path)


def photos(count: int, steps: int, zoo_path: str | None, label: str) -> None:
    """``count`` photos (made once), prepared at their own sizes and trained on by srresnet:
    both commands' peak RssAnon."""
    PHOTOS.mkdir(parents=True, exist_ok=True)
    with multiprocessing.Pool(os.cpu_count() or 1) as pool:
        pool.map(_write_photo, range(count))
    full_size("photos", f"folder:{PHOTOS}", steps, zoo_path, label, photos=count,
              pixels_gb=round(count * 3 * PHOTO_SIZE[0] * PHOTO_SIZE[1] / 1e9, 2))


def full_size(part: str, data: str, steps: int, zoo_path: str | None, label: str, **figures: Any) -> None:
    """``zoo prep DATA --size full``, then srresnet trained on it: both commands' peak RssAnon
    and times, with ``figures``, in data-scale-PART-LABEL.json."""
    prep, train, run = prep_then_train(f"{part}-{label}", ["prep", data, "--size", "full"],
                                       ["train", "srresnet", "--data", data, "--size", "full", *SR_TRAIN,
                                        "--steps", str(steps)], zoo_path)
    write_result(f"data-scale-{part}-{label}", {
        "prep_peak_rss_anon_mb": prep["peak_rss_anon_mb"], "prep_seconds": prep["seconds"],
        "train_peak_rss_anon_mb": train["peak_rss_anon_mb"], "train_seconds": train["seconds"],
        "train_images_per_second": images_per_second(run), "steps": steps, **figures,
        "photo_size": list(PHOTO_SIZE), "data": data, "train_args": SR_TRAIN, "zoo": zoo_path or "this commit"})


PAIRS = ROOT / "pairs"


def _write_pair(index: int) -> None:
    """Photo ``index`` as pair ``index``: B/ the photo (linked), A/ it at a quarter of its
    size (bicubic), srresnet's x4."""
    from PIL import Image

    photo, low, high = PHOTOS / f"{index:05d}.png", PAIRS / "A" / f"{index:05d}.png", PAIRS / "B" / f"{index:05d}.png"
    if not high.exists():
        os.link(photo, high)
    if not low.is_file():
        with Image.open(photo) as im:
            small = im.resize((PHOTO_SIZE[1] // 4, PHOTO_SIZE[0] // 4), Image.Resampling.BICUBIC)
        small.save(low.with_suffix(".tmp.png"))
        low.with_suffix(".tmp.png").rename(low)


def pairs(count: int, steps: int, zoo_path: str | None, label: str) -> None:
    """``count`` pairs of photos (low-resolution A/, four times as large B/: 1.06 times the
    photos' pixels), prepared at their own sizes and trained on by srresnet: both commands' peak RssAnon."""
    for side in "AB":
        (PAIRS / side).mkdir(parents=True, exist_ok=True)
    with multiprocessing.Pool(os.cpu_count() or 1) as pool:
        pool.map(_write_photo, range(count))
        pool.map(_write_pair, range(count))
    full_size("pairs", f"paired:{PAIRS}", steps, zoo_path, label, pairs=count,
              pixels_gb=round(count * 3 * PHOTO_SIZE[0] * PHOTO_SIZE[1] * 17 / 16 / 1e9, 2))


def rss_anon_kb(pid: int) -> int:
    """A process's anonymous resident memory in kB (0 once it has ended)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("RssAnon:")), 0)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (torchrun's workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def watched(command: list[str], env: dict[str, str], kill_after: float | None = None) -> dict[str, Any]:
    """Run ``command``; its wall time, exit code and peak RssAnon (MB, sampled every 50 ms:
    the sum over the process and its children, as torchrun's workers are), or killed with
    SIGKILL after ``kill_after`` seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "WANDB_MODE": "disabled", **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], sum(rss_anon_kb(pid) for pid in descendants(process.pid)))
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    if kill_after is not None:
        try:
            process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
    output, _ = process.communicate()
    watcher.join()
    return {"seconds": round(time.perf_counter() - started, 1), "returncode": process.returncode,
            "peak_rss_anon_mb": round(peak[0] / 1024, 1), "output_tail": output[-1500:]}


def zoo_command(args: list[str], zoo_path: str | None) -> list[str]:
    return [sys.executable, "-m", "zoo", *args] if zoo_path is None else \
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {zoo_path!r}); from zoo.cli import app; "
         f"sys.argv[0] = 'zoo'; app()", *args]


def checked(result: dict[str, Any], what: str) -> dict[str, Any]:
    if result["returncode"]:
        raise SystemExit(f"{what} failed:\n{result['output_tail']}")
    print(f"{what}: {result['seconds']} s, peak RssAnon {result['peak_rss_anon_mb']} MB", flush=True)
    return result


def images_per_second(run: Path) -> float:
    from zoo.records import checkpoint

    train = checkpoint.read_meta(run / checkpoint.FILENAME)["train"]
    return round(train["images"] / train["seconds"], 1)


def prep_then_train(name: str, prep_args: list[str], train_args: list[str],
                    zoo_path: str | None) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """``zoo PREP_ARGS`` then ``zoo TRAIN_ARGS --out runs/run-NAME``, each watched, in a fresh
    cache (cache-NAME): the two results and the run folder."""
    cache, run = ROOT / f"cache-{name}", ROOT / f"run-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    env = {"ZOO_CACHE_DIR": str(cache)}
    prep = checked(watched(zoo_command(prep_args, zoo_path), env), "prep")
    train = checked(watched(zoo_command([*train_args, "--out", str(run)], zoo_path), env), "train")
    return prep, train, run


def memory(shards: int, steps: int, zoo_path: str | None, data: str | None, label: str) -> None:
    data = data or pattern(shards)
    prep, train, run = prep_then_train(label, ["prep", data, "--size", "64"],
                                       ["train", "dcgan", "--data", data, *TRAIN, "--steps", str(steps)], zoo_path)
    write_result(f"data-scale-memory-{label}", {
        "prep_peak_rss_anon_mb": prep["peak_rss_anon_mb"], "prep_seconds": prep["seconds"],
        "train_peak_rss_anon_mb": train["peak_rss_anon_mb"], "train_seconds": train["seconds"],
        "train_images_per_second": images_per_second(run), "steps": steps,
        "images": shards * SHARD_IMAGES, "pixels_gb": round(shards * SHARD_IMAGES * 3 * 64 * 64 / 1e9, 2),
        "data": data, "zoo": zoo_path or "this commit"})


def torchrun(shards: int, steps: int) -> None:
    """Two processes on this machine training from the shards (already prepared by
    ``memory``): their summed peak RssAnon against the set's size."""
    data = pattern(shards)
    run = ROOT / "run-torchrun"
    shutil.rmtree(run, ignore_errors=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "zoo",
               "train", "dcgan", "--data", data, *TRAIN, "--steps", str(steps), "--out", str(run)]
    result = checked(watched(command, {"ZOO_CACHE_DIR": str(ROOT / "cache-shards"), "OMP_NUM_THREADS": "1"}),
                     "torchrun, 2 processes")
    write_result("data-scale-torchrun", {
        "processes": 2, "summed_peak_rss_anon_mb": result["peak_rss_anon_mb"], "seconds": result["seconds"],
        "train_images_per_second": images_per_second(run), "steps": steps, "images": shards * SHARD_IMAGES,
        "pixels_gb": round(shards * SHARD_IMAGES * 3 * 64 * 64 / 1e9, 2), "data": data})


def speed(shards: int, steps: int, repeats: int) -> None:
    """The same training on a set that fits in memory: read whole (the default for it) and
    read through memory maps (``ZOO_IN_MEMORY_MB=0``), alternated, each ``repeats`` times."""
    data = pattern(shards)
    env = {"ZOO_CACHE_DIR": str(ROOT / "cache-speed")}
    checked(watched(zoo_command(["prep", data, "--size", "64"], None), env), "prep")
    figures: dict[str, list[float]] = {"in_memory": [], "mapped": []}
    for _ in range(repeats):
        for kind, extra in (("in_memory", {}), ("mapped", {"ZOO_IN_MEMORY_MB": "0"})):
            run = ROOT / f"speed-{kind}"
            shutil.rmtree(run, ignore_errors=True)
            checked(watched(zoo_command(["train", "dcgan", "--data", data, *TRAIN, "--steps", str(steps),
                                         "--out", str(run)], None), {**env, **extra}), f"train ({kind})")
            figures[kind].append(images_per_second(run))
    medians = {k: sorted(v)[len(v) // 2] for k, v in figures.items()}
    write_result("data-scale-speed", {
        "in_memory_images_per_second": medians["in_memory"], "mapped_images_per_second": medians["mapped"],
        "mapped_over_in_memory": round(medians["mapped"] / medians["in_memory"], 3),
        "runs": figures, "steps": steps, "images": shards * SHARD_IMAGES, "data": data})


def loader(shards: int, batches: int, repeats: int) -> None:
    """Batches of 256 gathered from the mapped shards (the set of ``speed``, read through the
    maps): zoo's way (the next batch gathered in a thread while this one is used) against
    torch's DataLoader with 1 and 2 worker processes gathering the same batches from the same
    maps (the batch's indices to each worker, its images back through shared memory), each
    batch made floats as training takes it; zoo's way also with torch on one thread, as each
    DataLoader worker runs. Images delivered a second over one pass at most,
    worker start-up included, and after the first batch (the workers started); alternated
    ``repeats`` times; nothing else runs, so this is the most each way can feed a training
    step."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from zoo.data.images import to_float
    from zoo.data.memory import TensorBatches
    from zoo.pipelines.prep import prepare

    data = pattern(shards)
    env = {"ZOO_CACHE_DIR": str(ROOT / "cache-speed")}
    checked(watched(zoo_command(["prep", data, "--size", "64"], None), env), "prep")
    os.environ.update({**env, "ZOO_IN_MEMORY_MB": "0"})
    prepared = prepare(data, size=64)  # the prep above's cache, read through the maps
    images, labels, size = prepared.images, prepared.labels, 256
    batches = min(batches, len(images) // size)  # one pass at most

    class Batches(Dataset):
        """The i-th batch of a seeded order, as one item: a worker gathers the whole batch."""

        def __init__(self) -> None:
            self.order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))

        def __len__(self) -> int:
            return batches

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            index = self.order[i * size:(i + 1) * size]
            return images.rows(index), labels[index]

    def zoo_way(threads: int) -> list[float]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        started = time.perf_counter()
        drawn = TensorBatches(images, labels, size, seed=0)
        times = []
        for _ in range(batches):
            drawn.next()
            times.append(time.perf_counter() - started)
        if drawn._pool is not None:  # its batch gathered ahead is not the next way's time
            drawn._pool.shutdown(wait=True)
        torch.set_num_threads(before)
        return times

    def data_loader(workers: int) -> list[float]:
        started = time.perf_counter()
        times = []
        for batch, _ in DataLoader(Batches(), batch_size=None, num_workers=workers,
                                   prefetch_factor=2 if workers else None):
            to_float(batch)  # as zoo's batches come: floats in [-1, 1]
            times.append(time.perf_counter() - started)
        return times

    ways = {"zoo_thread": lambda: zoo_way(torch.get_num_threads()), "zoo_thread_1_torch_thread": lambda: zoo_way(1),
            "dataloader_1_worker": lambda: data_loader(1), "dataloader_2_workers": lambda: data_loader(2),
            "no_prefetch": lambda: data_loader(0)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    first: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, way in ways.items():
            times = way()
            seconds[name].append(round(times[-1], 3))
            first[name].append(round(times[0], 3))
            print(f"{name}: {batches * size / times[-1]:,.0f} images/s, the first batch after {times[0]:.3f} s",
                  flush=True)

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    rates = {name: round(batches * size / median(v), 1) for name, v in seconds.items()}
    after_first = {name: round((batches - 1) * size / median([a - b for a, b in zip(v, first[name], strict=True)]), 1)
                   for name, v in seconds.items()}
    write_result("data-scale-loader", {
        "images_per_second": rates, "images_per_second_after_the_first_batch": after_first,
        "first_batch_seconds": {name: median(v) for name, v in first.items()}, "seconds": seconds,
        "batches": batches, "batch_size": size,
        "repeats": repeats, "images": len(images), "data": data, "torch_threads": torch.get_num_threads(),
        "dataloader_worker_threads": 1,
        "what": "batches gathered from the mapped shards and made floats, worker start-up included; no training"})


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.safetensors"))}


def kills(shards: int, count: int, seed: int) -> None:
    """Prep once straight through, then again killed ``count`` times at random moments (each
    start resuming the last), then to its end: the files must be the same. Shards of 16 MB
    (``ZOO_SHARD_MB``), so that a prep of a few shards' images makes many."""
    data = pattern(shards)
    shutil.rmtree(ROOT / "cache-straight", ignore_errors=True)
    small = {"ZOO_SHARD_MB": "16"}
    straight = checked(watched(zoo_command(["prep", data, "--size", "64"], None),
                               {"ZOO_CACHE_DIR": str(ROOT / "cache-straight"), **small}), "uninterrupted prep")
    expected = digest(next((ROOT / "cache-straight" / "prepared").glob("shards-*")))
    cache = ROOT / "cache-killed"
    shutil.rmtree(cache, ignore_errors=True)
    draw = random.Random(seed)
    moments, resumed, killed = [], 0, 0
    for _ in range(count):
        moment = round(draw.uniform(5.0, 12.0), 2)  # past the start (imports, listing: about 5 s), before the end
        result = watched(zoo_command(["prep", data, "--size", "64"], None), {"ZOO_CACHE_DIR": str(cache), **small},
                         kill_after=moment)
        moments.append(moment)
        resumed += "resuming an interrupted prep" in result["output_tail"]
        killed += result["returncode"] == -signal.SIGKILL
        print(f"killed at {moment} s (exit {result['returncode']})", flush=True)
    checked(watched(zoo_command(["prep", data, "--size", "64"], None), {"ZOO_CACHE_DIR": str(cache), **small}),
            "prep after the kills")
    final = digest(next(p for p in (cache / "prepared").glob("shards-*") if not p.name.endswith(".partial")))
    write_result("data-scale-kills", {
        "kills": count, "killed_before_the_end": killed, "starts_that_resumed": resumed,
        "same_files": final == expected,
        "shard_files": len(final), "kill_moments_seconds": moments,
        "uninterrupted_seconds": straight["seconds"], "images": shards * SHARD_IMAGES, "data": data})
    print(json.dumps({"same_files": final == expected, "resumed": resumed}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["make", "memory", "torchrun", "speed", "loader", "kills", "photos",
                                         "pairs"])
    parser.add_argument("--photos", type=int, default=600,
                        help="photos, pairs: how many photos (pairs) to make and prepare")
    parser.add_argument("--images", type=int, default=300_000)
    parser.add_argument("--shards", type=int, help="use the first N shards (default: all the images make wrote)")
    parser.add_argument("--steps", type=int, help="training steps (default: 200; photos: 50)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=400, help="loader: batches of 256 drawn each way (one pass "
                        "at most)")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zoo-path", help="run another zoo (a folder holding its zoo package, e.g. an older commit)")
    parser.add_argument("--data", help="memory: what to prep and train on (default: the shards)")
    parser.add_argument("--label", help="memory, photos, pairs: the result's name, data-scale-PART-LABEL "
                        "(default: shards, streamed)")
    args = parser.parse_args()
    shards = args.shards or -(-args.images // SHARD_IMAGES)
    steps = args.steps or 200
    if args.part == "make":
        make(args.images)
    elif args.part == "memory":
        memory(shards, steps, args.zoo_path, args.data, args.label or "shards")
    elif args.part == "torchrun":
        torchrun(shards, steps)
    elif args.part == "photos":
        photos(args.photos, args.steps or 50, args.zoo_path, args.label or "streamed")
    elif args.part == "pairs":
        pairs(args.photos, args.steps or 50, args.zoo_path, args.label or "streamed")
    elif args.part == "speed":
        speed(shards, steps, args.repeats)
    elif args.part == "loader":
        loader(shards, args.batches, args.repeats)
    else:
        kills(shards, args.kills, args.seed)


if __name__ == "__main__":
    main()
