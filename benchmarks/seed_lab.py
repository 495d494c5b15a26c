"""The Romanian GAN lab's training code (shared/seeds/000, "Laborator 5"), as written there.

Kept verbatim in substance -- its networks, its numpy Dataset over the raw IDX file, its
DataLoader with batch 128 and shuffle, its 2-logit cross-entropy loop -- as the baseline
that zoo's DCGAN step is timed against. Only tqdm and the plotting are left out, and the
loop is wrapped in a function that runs a given number of batches.
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


def train_epoch(dataloader, retea_g, retea_d, loss_function, optimizerD, optimizerG, dim_zg) -> int:
    """One epoch of the lab's loop; returns the number of batches."""
    n = 0
    for data in dataloader:
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
