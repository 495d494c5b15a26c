"""Judge generated digits: what a real-MNIST classifier makes of a folder of samples.

    zoo sample dcgan --n 1000 --out samples/check
    python benchmarks/sample_quality.py samples/check [--name NAME]

The judge is benchmarks/digits.py's ``heldout_judge``: a CNN trained on the 1,000 held-out
digits only, which no ``zoo train --data mnist`` run learns from, so it never saw the
generator's data; its accuracy on the 9,000 training digits, which it never sees, is printed
and kept. For the samples: the histogram of predicted classes, the mean top probability, and
the share of samples the judge is confident (p > 0.9) about. Recognisable digits of all ten
classes show as a spread-out histogram with high confidence; mode collapse as a spike; noise
as low confidence.

Writes benchmarks/results/sample-quality-FOLDER.json (or ``--name``): ``figures``: samples,
histogram, mean_confidence, confident_share, classes_present, smallest_class_share,
judge_accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from commands import slug  # noqa: E402
from digits import heldout_judge, load_pngs, predict  # noqa: E402
from record import write_result  # noqa: E402


def report(images: torch.Tensor) -> tuple[dict, dict]:
    """The judge's reading of ``images``, and the judge's own record."""
    net, judge = heldout_judge("mnist")
    probs = predict(net, images)
    top, label = probs.max(1)
    counts = torch.bincount(label, minlength=10).tolist()
    return {
        "samples": len(images),
        "histogram": counts,
        "mean_confidence": float(top.mean()),
        "confident_share": float((top > 0.9).float().mean()),
        "classes_present": sum(c > 0 for c in counts),
        "smallest_class_share": min(counts) / len(images),
        "judge_accuracy": judge["accuracy"],
    }, judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("samples", type=Path, help="folder of sample PNGs written by `zoo sample`")
    parser.add_argument("--name", help="the result file's name (default: sample-quality-FOLDER)")
    args = parser.parse_args()
    r, judge = report(load_pngs(args.samples))
    print(f"judge: {judge['trained_on']}; {r['judge_accuracy']:.2%} right on {judge['checked_on']}")
    print(f"{r['samples']} samples; predicted class histogram:")
    for digit, count in enumerate(r["histogram"]):
        print(f"  {digit}: {count:5d}  {'#' * round(60 * count / max(r['histogram']))}")
    print(f"classes present: {r['classes_present']}/10, smallest class {r['smallest_class_share']:.1%}")
    print(f"mean top probability {r['mean_confidence']:.3f}; confident (p > 0.9): {r['confident_share']:.1%}")
    write_result(args.name or slug("sample-quality", args.samples.resolve().name), r, samples=str(args.samples),
                 judge=judge)


if __name__ == "__main__":
    main()
