"""Judge generated digits: what a real-MNIST classifier makes of a folder of samples.

    zoo sample dcgan --n 1000 --out samples/check
    python benchmarks/sample_quality.py samples/check

Prints the classifier's held-out accuracy on real digits, then for the samples: the
histogram of predicted classes, the mean top probability, and the share of samples the
classifier is confident (p > 0.9) about. Recognisable digits of all ten classes show as a
spread-out histogram with high confidence; mode collapse as a spike; noise as low confidence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from digits import classifier, load_pngs, predict  # noqa: E402


def report(images: torch.Tensor) -> dict:
    net, accuracy = classifier()
    probs = predict(net, images)
    top, label = probs.max(1)
    counts = torch.bincount(label, minlength=10).tolist()
    return {
        "classifier_accuracy_on_real": accuracy,
        "samples": len(images),
        "histogram": counts,
        "mean_confidence": float(top.mean()),
        "confident_share": float((top > 0.9).float().mean()),
        "classes_present": sum(c > 0 for c in counts),
        "smallest_class_share": min(counts) / len(images),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("samples", type=Path, help="folder of sample PNGs written by `zoo sample`")
    args = parser.parse_args()
    r = report(load_pngs(args.samples))
    print(f"classifier accuracy on held-out real digits: {r['classifier_accuracy_on_real']:.3f}")
    print(f"{r['samples']} samples; predicted class histogram:")
    for digit, count in enumerate(r["histogram"]):
        print(f"  {digit}: {count:5d}  {'#' * round(60 * count / max(r['histogram']))}")
    print(f"classes present: {r['classes_present']}/10, smallest class {r['smallest_class_share']:.1%}")
    print(f"mean top probability {r['mean_confidence']:.3f}; confident (p > 0.9): {r['confident_share']:.1%}")


if __name__ == "__main__":
    main()
