"""The Romanian GAN lab's training code (shared/seeds/000, "Laborator 5"), as written there.

Kept verbatim in substance -- its networks, its numpy Dataset over the raw IDX file, its
DataLoader with batch 128 and shuffle, its 2-logit cross-entropy loop -- as the baseline
that zoo's DCGAN step is timed against. Only tqdm and the plotting are left out, and the
loop is wrapped in a function that runs a given number of batches.

As a script it is the lab's whole process, timed as a user runs it, with its generator
written as a zoo run (the lab's sigmoid output on [0, 1] is exactly zoo's tanh on [-1, 1]
with the last layer's weights halved: 2 sigmoid(x) - 1 = tanh(x / 2)), so that ``zoo eval``
measures it as it measures zoo's own runs:

    python benchmarks/seed_lab.py IDX_FILE --steps 1560 --run runs/lab --template ZOO_RUN
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset


class Discriminator(nn.Module):
    def __init__(self):
        super(Discriminator, self).__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=4, stride=2, padding=1, bias=False)
        self.lrelu1 = nn.LeakyReLU(0.2, inplace=True)
        self.conv2 = nn.Conv2d(in_channels=16, out_channels=32, kernel_size=4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.lrelu2 = nn.LeakyReLU(0.2, inplace=True)
        self.conv3 = nn.Conv2d(in_channels=32, out_channels=64, kernel_size=4, stride=1, padding=0, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.lrelu3 = nn.LeakyReLU(0.2, inplace=True)
        self.conv4 = nn.Conv2d(in_channels=64, out_channels=128, kernel_size=4, stride=1, padding=0, bias=False)
        self.bn4 = nn.BatchNorm2d(128)
        self.lrelu4 = nn.LeakyReLU(0.2, inplace=True)
        self.out = nn.Linear(in_features=128, out_features=2)

    def forward(self, input):
        x = self.conv1(input)
        x = self.lrelu1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = self.lrelu2(x)
        x = self.conv3(x)
        x = self.bn3(x)
        x = self.lrelu3(x)
        x = self.conv4(x)
        x = self.bn4(x)
        x = self.lrelu4(x)
        x = torch.flatten(x, 1, 3)
        x = self.out(x)
        return x


class Generator(nn.Module):
    def __init__(self, dim_zg):
        super(Generator, self).__init__()
        self.tconv1 = nn.ConvTranspose2d(in_channels=dim_zg, out_channels=128, kernel_size=4, stride=1, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(128)
        self.relu1 = nn.ReLU(True)
        self.tconv2 = nn.ConvTranspose2d(in_channels=128, out_channels=64, kernel_size=4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU(True)
        self.tconv3 = nn.ConvTranspose2d(in_channels=64, out_channels=32, kernel_size=4, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(32)
        self.relu3 = nn.ReLU(True)
        self.tconv4 = nn.ConvTranspose2d(in_channels=32, out_channels=1, kernel_size=4, stride=2, padding=3, bias=0)
        self.out = nn.Sigmoid()

    def forward(self, input):
        x = self.tconv1(input)
        x = self.bn1(x)
        x = self.relu1(x)
        x = self.tconv2(x)
        x = self.bn2(x)
        x = self.relu2(x)
        x = self.tconv3(x)
        x = self.bn3(x)
        x = self.relu3(x)
        x = self.tconv4(x)
        return self.out(x)


class DatasetMNIST_GAN(Dataset):
    def __init__(self, cale_catre_date):
        f = open(cale_catre_date, 'r', encoding='latin-1')
        byte = f.read(16)  # 4 bytes magic number, 4 bytes nr_imag, 4 bytes nr linii, 4 bytes nr coloane
        mnist_data = np.fromfile(f, dtype=np.uint8).reshape(-1, 1, 28, 28)
        self.mnist_data = mnist_data.astype(np.float32) / 255

    def __len__(self):
        return len(self.mnist_data)

    def __getitem__(self, idx):
        date = self.mnist_data[idx, :, :, :]
        return date


def make(idx_path: str, seed: int = 999):
    """The lab's set-up: seed, data set, DataLoader, networks, loss, optimisers."""
    torch.manual_seed(seed)
    dataset = DatasetMNIST_GAN(idx_path)
    dataloader = DataLoader(dataset, batch_size=128, shuffle=True)
    dim_zg = 100
    retea_g = Generator(dim_zg)
    retea_d = Discriminator()
    loss_function = nn.CrossEntropyLoss()
    optimizerD = optim.Adam(retea_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = optim.Adam(retea_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return dataloader, retea_g, retea_d, loss_function, optimizerD, optimizerG, dim_zg


def train_epoch(dataloader, retea_g, retea_d, loss_function, optimizerD, optimizerG, dim_zg,
                limit: int | None = None) -> int:
    """One epoch of the lab's loop (or its first ``limit`` batches); returns the number of batches."""
    n = 0
    for data in dataloader:
        if limit is not None and n == limit:
            break
        retea_d.zero_grad()
        label = torch.LongTensor(np.ones(len(data)))
        output = retea_d(data)
        loss_imagini_reale = loss_function(output, label.long())
        loss_imagini_reale.backward()

        vector_generare = torch.randn(len(data), dim_zg, 1, 1)
        imagini_generate = retea_g(vector_generare)
        label = torch.LongTensor(np.zeros(len(data)))
        output = retea_d(imagini_generate.detach())
        loss_imagini_generate = loss_function(output, label.long())
        loss_imagini_generate.backward()
        optimizerD.step()

        retea_g.zero_grad()
        label = torch.LongTensor(np.ones(len(data)))
        output = retea_d(imagini_generate)
        loss_imagini_generate = loss_function(output, label.long())
        loss_imagini_generate.backward()
        optimizerG.step()
        n += 1
    return n


def as_zoo_run(retea_g, retea_d, template: str, run: str) -> None:
    """The lab's networks as a zoo DCGAN run (architecture lab, 2-logit cross-entropy),
    written beside a template run of zoo's (its config, data record and spec)."""
    import shutil
    from pathlib import Path

    from zoo.records import checkpoint as ckpt_io

    source = ckpt_io.load(Path(template) / ckpt_io.FILENAME)
    state = dict(source.state["model"])
    g = {"tconv1": 0, "bn1": 1, "tconv2": 3, "bn2": 4, "tconv3": 6, "bn3": 7, "tconv4": 9}
    for name, value in retea_g.state_dict().items():
        layer, key = name.split(".")
        value = value / 2 if layer == "tconv4" else value  # sigmoid on [0, 1] -> tanh on [-1, 1]
        state[f"generator.body.{g[layer]}.{key}"] = value.clone()
    d = {"conv1": "features.0", "conv2": "features.2", "bn2": "features.3", "conv3": "features.5",
         "bn3": "features.6", "conv4": "features.8", "bn4": "features.9", "out": "head"}
    for name, value in retea_d.state_dict().items():
        layer, key = name.split(".")
        state[f"discriminator.{d[layer]}.{key}"] = value.clone()
    assert state.keys() == source.state["model"].keys()
    out = Path(run)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copy(Path(template) / "run.json", out / "run.json")
    ckpt_io.save(out / ckpt_io.FILENAME, ckpt_io.Checkpoint(
        source.plugin, source.plugin_version, source.config, source.data,
        {**source.train, "run": out.name}, {**source.state, "model": state}))


def main() -> None:
    import argparse
    import time

    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("idx", help="the MNIST images as an uncompressed IDX file")
    parser.add_argument("--steps", type=int, default=1560)
    parser.add_argument("--run", help="write the trained networks as a zoo run here")
    parser.add_argument("--template", help="a zoo dcgan run (architecture=lab, loss=cross_entropy) to copy the format of")
    args = parser.parse_args()
    lab = make(args.idx)
    done = 0
    while done < args.steps:
        done += train_epoch(*lab, limit=args.steps - done)
    print(f"lab loop: {done} steps in {time.perf_counter() - started:.1f} s (whole process)")
    if args.run:
        as_zoo_run(lab[1], lab[2], args.template, args.run)


if __name__ == "__main__":
    main()
