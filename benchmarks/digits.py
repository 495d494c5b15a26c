"""A small CNN classifier of 28 x 28 gray images (MNIST digits, Fashion-MNIST items), trained on
real images, for judging generated ones; kept (as safetensors) in zoo's cache so later
benchmarks reuse it.

A judge must never have seen the generator's data: :func:`heldout_judge` learns from the data
set's held-out split only (the images ``zoo train`` never trains on) and is checked on the
training images, which it never sees; :func:`classifier` learns from a slice of the training
images (for split designs: the generator learns from one part, the judge from another) and is
checked on another slice.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.data.images import to_float
from zoo.pipelines.prep import prepare
from zoo.records.paths import cache_dir


def network() -> nn.Sequential:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(1, 32), *block(32, 32), nn.MaxPool2d(2),     # 14
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),    # 7
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, 10),
    )


def augment(x: torch.Tensor) -> torch.Tensor:
    """Small random rotations, scalings and shifts: handwriting varies, and so do GAN digits."""
    n = x.shape[0]
    angle = (torch.rand(n) - 0.5) * 0.4          # +-11 degrees
    scale = 1 + (torch.rand(n) - 0.5) * 0.2      # +-10 %
    shift = (torch.rand(n, 2) - 0.5) * 0.2       # +-1.4 px
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def classifier(train: slice = slice(0, 8000), check: slice = slice(8000, None), epochs: int = 4,
               seed: int = 0, source: str = "mnist") -> tuple[nn.Module, float]:
    """A classifier trained on the real images ``train`` (a slice of the offline MNIST, or of
    another 28 x 28 gray data set such as fashion-mnist), and its accuracy on ``check``."""
    data = prepare(source)
    key = f"v3-{train.start}-{train.stop}-{check.start}-{check.stop}-{epochs}-{seed}"
    if train.step or check.step:
        key += f"-steps{train.step}-{check.step}"
    name = "digits" if source == "mnist" else source
    path = cache_dir() / "benchmarks" / f"{name}-{key}.safetensors"
    images, labels = to_float(data.images), data.labels
    net = network()
    if path.exists():
        state = load_file(str(path))
        accuracy = float(state.pop("_accuracy"))
        net.load_state_dict(state)
        return net.eval(), accuracy
    torch.manual_seed(seed)
    x, y = images[train], labels[train]
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    batches = (len(x) + 63) // 64
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * batches)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            F.cross_entropy(net(augment(x[idx])), y[idx]).backward()
            opt.step()
            schedule.step()
    net.eval()
    accuracy = float((predict(net, images[check]).argmax(1) == labels[check]).float().mean())
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({**net.state_dict(), "_accuracy": torch.tensor(accuracy)}, str(path))
    return net, accuracy


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


def heldout_judge(source: str = "mnist", epochs: int = 30, seed: int = 0) -> tuple[nn.Module, dict[str, object]]:
    """A judge that never saw a generator's data: trained on the data set's *held-out* images
    only (the split zoo never trains on: MNIST's 1,000, Fashion-MNIST's 10,000 test images),
    with augmentation, and checked on the training images, which it never sees. Returns it and
    its accuracy on those real images (in all and per class), cached in zoo's cache like
    :func:`classifier`. ``source="fashion-mnist"`` (about 10 epochs suffice on its 10,000) is
    the Fashion-MNIST judge."""
    from zoo.data.memory import load_prepared

    data = prepare(source)
    heldout = load_prepared(data.path, split="heldout")
    name = "digits" if source == "mnist" else source
    path = cache_dir() / "benchmarks" / f"{name}-heldout-judge-v1-{len(heldout.images)}-{epochs}-{seed}.safetensors"
    net = network()
    if path.exists():
        net.load_state_dict(load_file(str(path)))
        net.eval()
    else:
        torch.manual_seed(seed)
        x, y = to_float(heldout.images), heldout.labels
        opt = torch.optim.Adam(net.parameters(), 2e-3)
        batches = (len(x) + 63) // 64
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * batches)
        for _ in range(epochs):
            net.train()
            for idx in torch.randperm(len(x)).split(64):
                opt.zero_grad()
                F.cross_entropy(net(augment(x[idx])), y[idx]).backward()
                opt.step()
                schedule.step()
        net.eval()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(net.state_dict(), str(path))
    read = predict(net, to_float(data.images)).argmax(1)
    right = read == data.labels
    per_class = [float(right[data.labels == c].float().mean()) for c in range(int(data.labels.max()) + 1)]
    return net, {"trained_on": f"the {len(heldout.images):,} held-out images of {source}",
                 "checked_on": f"the {len(data.images):,} training images (never seen by the judge)",
                 "accuracy": float(right.float().mean()), "accuracy_per_class": per_class, "epochs": epochs}
