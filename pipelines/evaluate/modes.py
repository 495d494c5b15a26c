"""Mode coverage on Stacked MNIST, counted as the papers count it (Metz et al. 2017; Lin et al.
2018, PacGAN; Huang et al. 2024, R3GAN).

Each of 26,000 samples has its three channels read by zoo's MNIST classifier, one digit each;
the three digits name one of 1,000 modes. The figures are how many modes the samples reach
(of 1,000) and the KL divergence from the samples' mode histogram to the uniform one that the
data follows: KL = sum_m p(m) log(p(m) / (1/1000)), 0 for a generator that draws every mode
equally often, log(1000) = 6.9 for one that draws a single mode.

The judge never saw the generator's data: it is trained on MNIST's *held-out* digits only (the
ones the held-out stacks are built from; no training stack holds one), and checked on what it
never saw: its accuracy on MNIST's training digits, and the share of the training stacks whose
three digits it reads all right. The modes and KL it reads in 10,000 of those real stacks are
reported beside the samples' as the floor (10,000 real images over 1,000 modes are not exactly
uniform either, and the judge misreads a few): the held-out stacks would not do, as the judge
learnt their digits.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor

from zoo import features as features_io
from zoo.data.images import to_float
from zoo.data.memory import PreparedData, load_prepared
from zoo.data.sources import stacked
from zoo.display.console import progress_bar
from zoo.model import Model
from zoo.pipelines.evaluate.reference import Reference

MODE_SAMPLES = 26_000
"""Samples whose modes are counted: the papers' 26,000 (Metz et al.; PacGAN; R3GAN)."""
MODES = 1000
DIGIT_SIZE = 28
"""The judge reads MNIST's own 28 px digits: stacks of another size are resized to it first."""
JUDGE_EPOCHS = 30
"""Passes of the judge over its digits: MNIST's held-out split is small (1,000 offline, 10,000
online), and the usual ten passes leave it short of what it reads with thirty."""
CHECK_STACKS = 10_000
"""Training stacks the judge's accuracy and the real floor are measured on (as many as are held out)."""


def coverage(modes: Tensor, count: int = MODES) -> tuple[int, float]:
    """How many of ``count`` modes the mode ids ``modes`` reach, and the KL divergence from their
    histogram to the uniform one (natural log)."""
    histogram = torch.bincount(modes.flatten().long(), minlength=count).double()
    p = histogram / histogram.sum()
    seen = p > 0
    return int(seen.sum()), float((p[seen] * torch.log(p[seen] * count)).sum())


def read_modes(classifier: features_io.FeatureExtractor, images: Tensor, batch_size: int) -> Tensor:
    """Each 3-channel image's mode: its red, green and blue channels read as digits, 100r + 10g + b."""
    n = images.shape[0]
    channels = images.reshape(n * 3, 1, *images.shape[-2:])  # every channel a grey digit of its own
    if tuple(channels.shape[-2:]) != (DIGIT_SIZE, DIGIT_SIZE):  # stacks prepared at another --size
        channels = F.interpolate(to_float(channels) if not channels.is_floating_point() else channels,
                                 size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    digits = classifier.extract(channels, batch_size, logits=True).argmax(1).view(n, 3)
    return 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


def judge(data_dir: Path | None, console: Console, options: dict[str, Any] | None = None,
          ) -> tuple[features_io.FeatureExtractor, dict[str, Any]]:
    """The judge that reads each channel as a digit: zoo's MNIST classifier trained on MNIST's
    held-out digits only (cached), and what it was trained and checked on, with its accuracy on
    the training digits, which it never saw."""
    from zoo.pipelines.prep import prepare

    digits = prepare("mnist", data_dir=data_dir, console=console)  # MNIST at its own 28 px, grey
    seen, unseen = load_prepared(digits.path, "heldout"), load_prepared(digits.path, "train")
    classifier = features_io.load("classifier", features_io.Reference(
        "mnist", seen, unseen, console=console, options={"epochs": JUDGE_EPOCHS, **(options or {})}))
    return classifier, {"tag": classifier.tag, "trained_on": f"MNIST's {len(seen):,} held-out digits",
                        "mnist_train_accuracy": classifier.accuracy, "checked_on": f"MNIST's {len(unseen):,} "
                        "training digits and the first training stacks, none of which it saw"}


def real_stacks(classifier: features_io.FeatureExtractor, stacks: PreparedData, batch_size: int) -> dict[str, Any]:
    """The judge's reading of the first :data:`CHECK_STACKS` of ``stacks`` (real training stacks,
    labelled with their modes, whose digits it never saw): the share it reads all right, and the
    modes and KL of what it reads, the floor the samples' figures are set beside."""
    check = stacks.images[:CHECK_STACKS]
    read = read_modes(classifier, check, batch_size)
    modes, kl = coverage(read)
    right = float((read == stacks.labels[:len(check)]).double().mean()) if stacks.labels is not None else math.nan
    return {"stacks": len(check), "stacks_read_right": right, "modes": modes, "modes_kl": kl}


def mode_figures(model: Model, reference: Reference, seed: int, batch_size: int, console: Console,
                 result: dict[str, Any], details: dict[str, Any], data_dir: Path | None = None,
                 options: dict[str, Any] | None = None, samples: int | None = None) -> None:
    """Modes covered and KL to uniform for ``samples`` of ``model``, with the judge's accuracy
    on real images it never saw and real training stacks' own figures."""
    from zoo.pipelines.evaluate.samplers import draw

    samples = samples or MODE_SAMPLES
    classifier, about = judge(data_dir, console, options)
    classifier = classifier.to(model.device)
    with progress_bar(console, transient=True) as bar:
        task = bar.add_task(f"drawing {samples:,} samples of {model.name} for the mode count", total=samples)
        drawn = draw(model, samples, {}, seed + 1, lambda k: bar.advance(task, k))
    result["modes"], result["modes_kl"] = coverage(read_modes(classifier, drawn, batch_size))
    real = real_stacks(classifier, reference.train, batch_size)
    result["modes_reference"], result["modes_kl_reference"] = real["modes"], real["modes_kl"]
    details["modes_protocol"] = {
        "samples": samples, "modes": MODES, "kl": "KL(samples' mode histogram || uniform), natural log",
        "judge": {**about, "stacks_read_right": real["stacks_read_right"], "stacks": real["stacks"]},
        "reference": f"the first {real['stacks']:,} real training stacks of {stacked.NAME}, read by the judge, "
                     "which never saw their digits",
        "papers": "Metz et al. 2017; PacGAN (Lin et al. 2018); R3GAN (Huang et al. 2024): 26,000 samples"}
