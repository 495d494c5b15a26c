"""Stacked MNIST: three MNIST digits drawn independently, one per colour channel.

The data set on which GAN papers count modes (Metz et al. 2017, "Unrolled Generative
Adversarial Networks"; Lin et al. 2018, PacGAN; Huang et al. 2024, R3GAN): each image is one
of 10 x 10 x 10 = 1,000 combinations of digits, all equally likely, so a generator that
covers the data draws all 1,000 about equally often, and one that collapses draws a few.
An image's class is its three digits read red, green, blue ("307": a 3 in red, a 0 in green,
a 7 in blue).

The held-out images are stacked from MNIST's held-out digits only (its test split, or the
seeded tenth zoo keeps apart when only one split is on disk), and the training images from
its training digits only: no digit of an evaluation image was ever seen in training.
The draws are seeded: every prep of the same MNIST files builds the same images.
"""

from __future__ import annotations

import torch

from zoo.data.sources.raw import RawData

NAME = "stacked-mnist"
TRAIN_COUNT = 60_000
"""Training images, as many as MNIST's training split (the papers stack 25,600 to 128,000)."""
HELDOUT_COUNT = 10_000
SEED = 0
VERSION = 1
"""Part of the prepared data's name: a change to how images are stacked prepares them anew."""
CLASSES = [f"{i:03d}" for i in range(1000)]


def key() -> str:
    """How the images are stacked, for the prepared data's name: another way is another set."""
    return f"v{VERSION}-{TRAIN_COUNT}-{HELDOUT_COUNT}"


def stack(digits: RawData, count: int, seed: int) -> RawData:
    """``count`` images whose red, green and blue channels are three digits of ``digits``,
    each drawn uniformly at random (with replacement) from all of them."""
    assert digits.labels is not None and digits.images.shape[1] == 1  # MNIST: grey, labelled
    picks = torch.randint(len(digits.images), (count, 3), generator=torch.Generator().manual_seed(seed))
    images = torch.cat([digits.images[picks[:, channel]] for channel in range(3)], dim=1)
    labels = 100 * digits.labels[picks[:, 0]] + 10 * digits.labels[picks[:, 1]] + digits.labels[picks[:, 2]]
    return RawData(images, labels, list(CLASSES), f"{NAME} from {digits.origin}", digits.split)


def from_mnist(mnist: RawData) -> RawData:
    """Stacked MNIST from MNIST whose held-out part is already set apart (see
    ``zoo.pipelines.prep.hold_out``): training images from training digits, held-out images
    from held-out digits."""
    assert mnist.heldout is not None  # MNIST has thousands of digits: always some held out
    note = (f"{TRAIN_COUNT:,} images stacked from {len(mnist.images):,} training digits, {HELDOUT_COUNT:,} "
            f"held-out images from {len(mnist.heldout.images):,} held-out digits (seed {SEED})")
    train = stack(mnist, TRAIN_COUNT, SEED)
    held = stack(mnist.heldout, HELDOUT_COUNT, SEED + 1)
    held.split = "heldout" if mnist.heldout.split == "heldout" else "test"
    train.notes = [*mnist.notes, note]
    train.heldout = held
    return train
