"""Issue 12's acceptance: does `zoo eval` rank models as an independent judge does, and how fast is it?

DCGAN learns from every other training digit of the offline MNIST (``--subset 0::2``,
4,500 digits) for 100, 300, 1,000 and 3,000 steps (``--steps``), plus a deliberately collapsed
run: the same model trained for 1,000 steps (``--collapse-steps``) on the ones of that half
alone (``--classes 1``), which draws good ones and no other digit. Each run is measured twice
on the 1,000 held-out digits that no network here ever trained on:

* ``zoo eval RUN --data mnist`` as a user types it (10,000 samples; the classifier
  features zoo trains once on the MNIST training split; ``--data mnist`` so that every run,
  the collapsed one too, is judged against every digit in the same features), timed as a
  whole process, with the load average before it; the first evaluation also in a fresh cache
  (its prepared data shared), so that it trains the classifier features once, as a user's
  first ``zoo eval`` does: the difference is that one-time training;
* the judge: a CNN of another design (benchmarks/digits.py) trained on the *other* half of
  the training digits (``1::2``), which neither the GANs saw (zoo's classifier did); its
  Frechet distance between the same number of samples and the held-out digits, in its
  128 penultimate features. Its accuracy on the held-out digits, which it never saw, is kept.

    python benchmarks/eval_ranking.py                  # about 25 minutes here
    python benchmarks/eval_ranking.py --steps 5,10 --collapse-steps 5 --n 500   # a smoke test

Writes benchmarks/results/eval-ranking.json (``--steps``/``--n`` other than the defaults:
eval-ranking-STEPS-nN.json): ``figures.runs.NAME`` (steps-100, ..., collapsed-ones) each with
zoo_fid, judge_fd, precision, recall, eval_seconds, load_before, timings (sampling, features,
metrics); ``figures.spearman``; ``figures.judge_heldout_accuracy``;
``figures.classifier_accuracy`` (zoo's, on the held-out digits); ``figures.first_eval_seconds``
and ``figures.classifier_training_seconds``. Runs are kept in benchmarks/runs/eval_ranking/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import slug, timed  # noqa: E402
from digits import augment, network  # noqa: E402
from record import RUNS, write_result  # noqa: E402
from wasserstein import features, frechet  # noqa: E402

from zoo.data.images import to_float  # noqa: E402
from zoo.data.memory import load_prepared  # noqa: E402
from zoo.pipelines.prep import prepare  # noqa: E402
from zoo.records.paths import cache_dir  # noqa: E402
from zoo.records.runs import load_model  # noqa: E402

HERE = RUNS / "eval_ranking"
STEPS = [100, 300, 1000, 3000]
COLLAPSE_STEPS = 1000


def judge(epochs: int = 6, seed: int = 0) -> tuple[torch.nn.Module, float]:
    """A CNN trained on the odd-numbered training digits only; its held-out accuracy."""
    path = HERE / f"judge-{epochs}-{seed}.safetensors"
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


def fresh_cache() -> Path:
    """An empty zoo cache that shares the prepared data: a first ``zoo eval`` there trains the
    classifier features again, without touching the user's cache."""
    cache = HERE / "fresh-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    (cache / "prepared").symlink_to(cache_dir() / "prepared", target_is_directory=True)
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="samples per evaluation")
    parser.add_argument("--steps", type=lambda s: [int(v) for v in s.split(",")], default=STEPS,
                        help="the DCGAN runs' lengths (100,300,1000,3000)")
    parser.add_argument("--collapse-steps", type=int, default=COLLAPSE_STEPS, help="the collapsed run's length")
    parser.add_argument("--keep", action="store_true", help="reuse the runs of an earlier call")
    args = parser.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    runs_dir = HERE / "runs"
    net, judge_accuracy = judge()
    heldout = load_prepared(prepare("mnist", subset="0::2").path, "heldout")
    real = features(net, to_float(heldout.images))
    print(f"judge: a CNN on the real digits 1::2, {judge_accuracy:.1%} right on the 1,000 held-out digits",
          flush=True)

    plan = [(f"steps-{n}", ["--steps", str(n)]) for n in args.steps]
    plan.append(("collapsed-ones", ["--steps", str(args.collapse_steps), "--classes", "1"]))
    rows: dict[str, dict] = {}
    first: dict = {}
    for name, extra in plan:
        run = runs_dir / name
        if not (args.keep and (run / "checkpoint.safetensors").exists()):
            shutil.rmtree(run, ignore_errors=True)
            timed("train", "dcgan", "--data", "mnist", "--subset", "0::2", *extra, "--out", str(run), "--no-wandb")
        if not first:
            # The one-time classifier training, in a cache of its own so that the user's stays.
            first = timed("eval", str(run), "--n", str(args.n), "--data", "mnist", "--wandb", "off",
                          env={"ZOO_CACHE_DIR": str(fresh_cache())})
            print(f"first zoo eval (training the classifier features once): {first['seconds']:.1f}s", flush=True)
        took = timed("eval", str(run), "--n", str(args.n), "--data", "mnist", "--wandb", "off")
        result = json.loads((run / "eval.json").read_text())
        model, _ = load_model(run / "checkpoint.safetensors")
        samples = torch.cat([model.sample(min(500, args.n - start), generator=torch.Generator().manual_seed(100 + i))
                             for i, start in enumerate(range(0, args.n, 500))])
        judged = frechet(real, features(net, samples))
        rows[name] = {"zoo_fid": result["fid"], "judge_fd": judged, "precision": result["precision"],
                      "recall": result["recall"], "steps": result["checkpoint"]["step"],
                      "eval_seconds": took["seconds"], "load_before": took["load_before"],
                      "timings": result.get("timings"), "protocol": result["protocol"],
                      "classifier_accuracy": result["protocol_detail"]["extractor_accuracy"]}
        print(f"{name:16s} zoo eval FID {result['fid']:9.2f}   judge FD {judged:9.2f}   "
              f"precision {result['precision']:.3f} recall {result['recall']:.3f}   zoo eval {took['seconds']:.1f}s",
              flush=True)
    values = list(rows.values())
    rho = spearman([r["zoo_fid"] for r in values], [r["judge_fd"] for r in values])
    first_name = plan[0][0]
    figures = {"runs": rows, "spearman": rho, "judge_heldout_accuracy": judge_accuracy,
               "classifier_accuracy": values[0]["classifier_accuracy"],
               "first_eval_seconds": first["seconds"], "first_eval_load_before": first["load_before"],
               "classifier_training_seconds": round(first["seconds"] - rows[first_name]["eval_seconds"], 1)}
    default = args.steps == STEPS and args.collapse_steps == COLLAPSE_STEPS and args.n == 10_000
    name = "eval-ranking" if default else slug("eval-ranking", "steps", *args.steps, "collapse",
                                               args.collapse_steps, f"n{args.n}")
    write_result(name, figures, samples=args.n, steps=args.steps, collapse_steps=args.collapse_steps,
                 gan_data="mnist --subset 0::2", judge={"trained_on": "the real training digits 1::2 (4,500)",
                                                        "checked_on": "the 1,000 held-out digits"})
    print(f"Spearman rank correlation {rho:.3f}; the judge reads {judge_accuracy:.1%} of the held-out digits right; "
          f"zoo's classifier {figures['classifier_accuracy']:.1%}")


if __name__ == "__main__":
    main()
