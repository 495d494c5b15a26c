"""Issue 12's acceptance: does `zoo eval` rank models as an independent judge does, and how fast is it?

DCGAN learns from every other training digit of the offline MNIST (``--subset 0::2``,
4,500 digits) for 100, 300, 1,000 and 3,000 steps, plus a deliberately collapsed run: the
same model trained for 1,000 steps on the ones of that half alone (``--classes 1``), which
draws good ones and no other digit. Each run is measured twice on the 1,000 held-out
digits that no network here ever trained on:

* ``zoo eval RUN --data mnist`` as a user types it (10,000 samples; the classifier
  features zoo trains once on the MNIST training split; ``--data mnist`` so that every run,
  the collapsed one too, is judged against every digit in the same features), timed as a
  whole process;
* the judge: a CNN of another design (benchmarks/digits.py) trained on the *other* half of
  the training digits (``1::2``), which neither the GANs nor zoo's classifier saw; its
  Frechet distance between the same number of samples and the held-out digits, in its
  128 penultimate features.

Reported: both columns, Spearman's rank correlation between them, the judge's accuracy on
the held-out digits, the one-time classifier training and the evaluation times.

    python benchmarks/eval_ranking.py              # results in benchmarks/runs/eval_ranking/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from digits import augment, network  # noqa: E402
from wasserstein import features, frechet  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.data.memory import load_prepared  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records.runs import load_model  # noqa: E402

RESULTS = Path(__file__).parent / "runs" / "eval_ranking"
RUNS = [("steps-100", ["--steps", "100"]), ("steps-300", ["--steps", "300"]),
        ("steps-1000", ["--steps", "1000"]), ("steps-3000", ["--steps", "3000"]),
        ("collapsed-ones", ["--steps", "1000", "--classes", "1"])]


def zoo(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled"})
    if done.returncode:
        raise SystemExit(f"zoo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stdout


def judge(epochs: int = 6, seed: int = 0) -> tuple[torch.nn.Module, float]:
    """A CNN trained on the odd-numbered training digits only; its held-out accuracy."""
    path = RESULTS / f"judge-{epochs}-{seed}.safetensors"
    net = network()
    heldout = load_prepared(prepare("mnist").path, "heldout")
    if path.exists():
        from safetensors.torch import load_file

        state = load_file(str(path))
        accuracy = float(state.pop("_accuracy"))
        net.load_state_dict(state)
        return net.eval(), accuracy
    data = prepare("mnist", subset="1::2")
    x, y = to_float(data.images), data.labels
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    steps = epochs * ((len(x) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(augment(x[idx])), y[idx]).backward()
            opt.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        predicted = torch.cat([net(c).argmax(1) for c in to_float(heldout.images).split(500)])
    accuracy = float((predicted == heldout.labels).float().mean())
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({**net.state_dict(), "_accuracy": torch.tensor(accuracy)}, str(path))
    return net, accuracy


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(values: list[float]) -> list[int]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0] * len(values)
        for rank, i in enumerate(order):
            out[i] = rank
        return out

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb, strict=True)) / (n * (n * n - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per evaluation")
    parser.add_argument("--keep", action="store_true", help="reuse the runs of an earlier call")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs_dir = RESULTS / "runs"
    net, judge_accuracy = judge()
    heldout = load_prepared(prepare("mnist", subset="0::2").path, "heldout")
    real = features(net, to_float(heldout.images))

    # The one-time classifier training, timed as its own process on an empty features cache.
    cache = Path(os.environ.get("ZOO_CACHE_DIR", Path.home() / ".cache" / "zoo")) / "features"
    rows = []
    for name, extra in RUNS:
        run = runs_dir / name
        if not (args.keep and (run / "checkpoint.safetensors").exists()):
            shutil.rmtree(run, ignore_errors=True)
            zoo("train", "dcgan", "--data", "mnist", "--subset", "0::2", *(a.format(runs=runs_dir) for a in extra),
                "--out", str(run), "--no-wandb")
        if not rows and not args.keep:
            for stale in cache.glob("classifier-mnist-*"):
                stale.unlink()
            first, _ = zoo("eval", str(run), "--n", str(args.n), "--data", "mnist", "--wandb", "off")
            print(f"first zoo eval (training the classifier features once): {first:.1f}s")
        elif not rows:
            first = float("nan")
        seconds, _ = zoo("eval", str(run), "--n", str(args.n), "--data", "mnist", "--wandb", "off")
        result = json.loads((run / "eval.json").read_text())
        model, _ = load_model(run / "checkpoint.safetensors")
        samples = torch.cat([model.sample(500, generator=torch.Generator().manual_seed(100 + i))
                             for i in range(args.n // 500)])
        judged = frechet(real, features(net, samples))
        rows.append({"run": name, "zoo_fid": result["fid"], "judge_fd": judged, "precision": result["precision"],
                     "recall": result["recall"], "eval_seconds": seconds, "timings": result.get("timings"),
                     "protocol": result["protocol"], "classifier_accuracy": result["protocol_detail"][
                         "extractor_accuracy"]})
        print(f"{name:16s} zoo eval FID {result['fid']:9.2f}   judge FD {judged:9.2f}   "
              f"precision {result['precision']:.3f} recall {result['recall']:.3f}   zoo eval {seconds:.1f}s")
    rho = spearman([r["zoo_fid"] for r in rows], [r["judge_fd"] for r in rows])
    summary = {"rows": rows, "spearman": rho, "judge_heldout_accuracy": judge_accuracy,
               "first_eval_seconds": first, "n": args.n}
    (RESULTS / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"Spearman rank correlation {rho:.3f}; the judge reads {judge_accuracy:.1%} of the held-out digits right; "
          f"zoo's classifier {rows[0]['classifier_accuracy']:.1%}")


if __name__ == "__main__":
    main()
