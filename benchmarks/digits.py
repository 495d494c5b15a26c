"""A small CNN digit classifier, trained on real MNIST, for judging generated digits.

Trained on the first ``train_count`` images of the prepared MNIST and checked on the rest,
then kept (as safetensors) in zoo's cache so later benchmarks reuse it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.data import to_float
from zoo.paths import cache_dir
from zoo.pipelines.prep import prepare


def network() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # 14
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 7
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def classifier(train: slice = slice(0, 8000), check: slice = slice(8000, None), epochs: int = 4,
               seed: int = 0) -> tuple[nn.Module, float]:
    """A classifier trained on the real digits ``train`` (a slice of the offline MNIST), and its
    accuracy on the real digits ``check``."""
    data = prepare("mnist")
    key = f"{train.start}-{train.stop}-{check.start}-{check.stop}-{epochs}-{seed}"
    path = cache_dir() / "benchmarks" / f"digits-{key}.safetensors"
    images, labels = to_float(data.images), data.labels
    net = network()
    if path.exists():
        state = load_file(str(path))
        accuracy = float(state.pop("_accuracy"))
        net.load_state_dict(state)
        return net.eval(), accuracy
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, y = images[train], labels[train]
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            # a little shift augmentation makes it robust to off-centre generated digits
            batch = torch.roll(x[idx], shifts=tuple(torch.randint(-2, 3, (2,)).tolist()), dims=(2, 3))
            F.cross_entropy(net(batch), y[idx]).backward()
            opt.step()
    net.eval()
    accuracy = float((predict(net, images[check]).argmax(1) == labels[check]).float().mean())
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({**net.state_dict(), "_accuracy": torch.tensor(accuracy)}, str(path))
    return net, accuracy


def diversity(images: torch.Tensor, reference: torch.Tensor, pairs: int = 2000, seed: int = 0) -> float:
    """Mean pixel distance between random pairs of ``images``, over the same for ``reference``
    (real images of the same kind): about 1 as varied as the data, near 0 a collapsed mode."""
    g = torch.Generator().manual_seed(seed)

    def spread(x: torch.Tensor) -> float:
        a, b = torch.randint(len(x), (2, pairs), generator=g)
        keep = a != b
        return float((x[a[keep]] - x[b[keep]]).flatten(1).norm(dim=1).mean())

    return spread(images) / spread(reference)


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities for float images in [-1, 1], N x 1 x 28 x 28."""
    return torch.cat([net(chunk).softmax(1) for chunk in images.split(500)])


def load_pngs(folder: Path) -> torch.Tensor:
    """The individual sample PNGs that `zoo sample` wrote, as floats in [-1, 1]."""
    import numpy as np
    from PIL import Image

    files = sorted(p for p in folder.glob("*.png") if p.name != "grid.png")
    arrays = [np.asarray(Image.open(p).convert("L"), dtype=np.uint8) for p in files]
    return to_float(torch.from_numpy(np.stack(arrays)).unsqueeze(1))
