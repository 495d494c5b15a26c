"""The ``classifier`` features: a small CNN that zoo trains once per labelled data set.

A Frechet distance in the features of a classifier of the domain is what the field uses
for MNIST-like data, where Inception's ImageNet features say little. zoo trains one on the
data set's *training* split (the images the generator learns from; the held-out split
stays unseen, and measures the classifier's accuracy), caches it under
``$ZOO_CACHE_DIR/features/`` keyed by a hash of the data, and reuses it. Its 128 features
are the last hidden layer's; its logits give class accuracy and the classifier score. (The
Stacked MNIST mode judge is this classifier with the splits swapped: it learns MNIST's held-out
digits and is checked on the training ones, which the stacks a generator learns are made of.)

The network works at any size from 8 px and with 1 or 3 channels: two pairs of 3x3
convolutions, each pair followed by 2x2 max pooling, a fifth convolution and global
average pooling, then a 128-unit hidden layer and the class layer. Training: Adam with a
one-cycle schedule, small random shifts, rotations and scalings of each batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.config import parse_json
from zoo.data.images import to_float
from zoo.data.memory import PreparedData
from zoo.errors import UsageError
from zoo.features import FeatureExtractor, Reference, file_hash
from zoo.records.paths import cache_dir, safe_name

VERSION = "1"
IMAGES_SEEN = 60_000
"""Training length: about this many images shown, in 2 to 10 passes over the data."""
BATCH = 128
WIDTH = 32
"""The first convolutions' channels (the later ones have two and four times as many)."""
CHECK_FRACTION = 0.1
"""Without a held-out split, this share of the training images is kept back to check on."""


class DomainClassifier(nn.Module):
    def __init__(self, channels: int, classes: int, width: int = WIDTH) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(
            *block(channels, width), *block(width, width), nn.MaxPool2d(2),
            *block(width, 2 * width), *block(2 * width, 2 * width), nn.MaxPool2d(2),
            *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Dropout(0.3), nn.Linear(4 * width, 128), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, classes))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images))


class Classifier(FeatureExtractor):
    name = "classifier"

    def __init__(self, data: str, channels: int, classes: int, width: int = 32) -> None:
        super().__init__(data, 128)
        self.net = DomainClassifier(channels, classes, width)
        self.num_classes = classes

    @property
    def classes(self) -> int:
        return self.num_classes

    def features(self, images: Tensor) -> Tensor:
        return self.net.body(images)

    def logits(self, images: Tensor) -> Tensor:
        return self.net(images)


def load(reference: Reference) -> FeatureExtractor:
    """The cached classifier for the reference data, trained first if there is none."""
    train, spec = reference.train, reference.spec
    if not spec.labelled or train.labels is None:
        raise UsageError(f"the classifier features need a labelled data set, and {reference.data} has no "
                         "labels (a folder: data set is labelled by its sub-folders); use --features "
                         "inception:WEIGHTS.safetensors or --features random")
    if spec.height < 8 or spec.width < 8:
        raise UsageError(f"the classifier needs images of at least 8x8 pixels, not {spec.height}x{spec.width}")
    images_seen = int(reference.options.get("images_seen", IMAGES_SEEN))
    seed = int(reference.options.get("seed", 0))
    limit = int(reference.options.get("train_limit", 0))  # the first images only (tests); 0: all
    width = int(reference.options.get("width", WIDTH))  # narrower: faster and less accurate (tests)
    epochs = int(reference.options.get("epochs", 0))  # passes over the data; 0: from images_seen
    key = _data_key(train, reference.heldout, f"v{VERSION}-{images_seen}-{seed}-{limit}"
                    + (f"-w{width}" if width != WIDTH else "") + (f"-e{epochs}" if epochs else ""))
    path = cache_dir() / "features" / f"classifier-{safe_name(reference.data)[:60]}-{key}.safetensors"
    model = Classifier(reference.data, spec.channels, spec.num_classes, width)
    if not _read(model, path):
        _train(model, reference, images_seen, seed, limit, epochs)
        _write(model, path)
    # The tensors' checksum, not the file's bytes: safetensors writes header keys in no fixed order.
    from zoo.records import files

    header = files.read_header(path, "cached classifier", "delete it")
    model.weights_hash = header.get(files.CHECKSUM) or file_hash(path)
    return model


def _train(model: Classifier, reference: Reference, images_seen: int, seed: int, limit: int,
           epochs: int = 0) -> None:
    from rich.console import Console

    from zoo.display.console import progress_bar

    train, heldout = reference.train, reference.heldout
    assert train.labels is not None  # checked by load
    x, y = (train.images[:limit], train.labels[:limit]) if limit else (train.images, train.labels)
    if heldout is not None and heldout.labels is not None and len(heldout):
        check_x, check_y = heldout.images, heldout.labels
    else:  # keep a seeded tenth back
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        cut = max(1, int(len(x) * CHECK_FRACTION))
        check_x, check_y, x, y = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]
    epochs = epochs or min(10, max(2, math.ceil(images_seen / len(x))))
    steps_per_epoch = math.ceil(len(x) / BATCH)
    net = model.net
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in net.modules():  # a fresh, seeded initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                m.reset_parameters()
        optimizer = torch.optim.Adam(net.parameters(), 2e-3)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=epochs * steps_per_epoch)
        started = time.perf_counter()
        say = reference.console
        with progress_bar(say or Console(quiet=True), transient=True, disable=say is None) as bar:
            task = bar.add_task(f"training the classifier features on {len(x):,} {reference.data} images "
                                "(once; cached)", total=epochs * steps_per_epoch)
            net.train()
            for _ in range(epochs):
                for index in torch.randperm(len(x), generator=generator).split(BATCH):
                    optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(net(_jitter(to_float(x[index]), generator)), y[index]).backward()
                    optimizer.step()
                    schedule.step()
                    bar.advance(task)
    net.eval()
    predicted = model.extract(check_x, logits=True).argmax(1)
    model.accuracy = float((predicted == check_y).float().mean())
    if say is not None:
        where = "unseen" if heldout is not None and heldout.labels is not None else "kept-back training"
        say.print(f"classifier features: {epochs} epochs in {time.perf_counter() - started:.0f}s; "
                  f"{model.accuracy:.1%} right on {len(check_x):,} {where} images", highlight=False)


def _jitter(x: Tensor, generator: torch.Generator) -> Tensor:
    """Small random rotations (+-11 degrees), scalings (+-10%) and shifts (+-5%)."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) - 0.5) * 0.4
    scale = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


# -- the cache ---------------------------------------------------------------------------------------

def _data_key(train: PreparedData, heldout: PreparedData | None, settings: str) -> str:
    """A hash of every training image and label (and the held-out ones it is checked on)."""
    digest = hashlib.sha256(settings.encode())
    for part in (train, heldout):
        if part is None:
            continue
        for chunk in part.images.split(4096):  # a chunk at a time: a set mapped from disk stays there
            digest.update(chunk.contiguous().numpy().data)
        if part.labels is not None:
            digest.update(part.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _read(model: Classifier, path: Path) -> bool:
    """Load a cached classifier; False (to train anew) when missing, or damaged: cut off or
    changed since it was written (its checksum tells), which is said, never trusted."""
    from zoo.records import files

    if not path.is_file():
        return False
    try:
        weights, header = files.load_tensors(path, "cached classifier", "training it again")
        meta: dict[str, Any] = parse_json(header.get("zoo", "{}"))
        model.net.load_state_dict(weights)
    except (files.Damaged, ValueError, RuntimeError) as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[yellow]{exc}[/]")
        return False
    model.accuracy = meta.get("accuracy")
    return True


def _write(model: Classifier, path: Path) -> None:
    from zoo.records import files

    meta = {"accuracy": model.accuracy, "data": model.data, "version": VERSION}
    files.save_tensors(path, model.net.state_dict(), {"zoo": json.dumps(meta)}, what="cached classifier")
