"""Noise priors: the distribution a latent model draws z from (seed 003's experiment).

A prior is written ``KIND`` or ``KIND:P1,P2`` on the command line and in configs::

    normal              normal:MEAN,STD        (default normal:0,1)
    uniform:LOW,HIGH    (default uniform:-1,1)
    gamma:SHAPE,SCALE   (default gamma:2,1)
    laplace:LOC,SCALE   (default laplace:0,1)

Every draw can take a CPU ``torch.Generator`` so that the same seed gives the same latents
everywhere. Truncation keeps z in the likely part of the prior: within ``t`` standard
deviations of the mean for normal (sampled exactly, by inverting the CDF), within the
middle fraction ``t`` of the range for uniform. It is not defined for the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from zoo.errors import UsageError

KINDS: dict[str, tuple[tuple[str, float], ...]] = {
    "normal": (("mean", 0.0), ("std", 1.0)),
    "uniform": (("low", -1.0), ("high", 1.0)),
    "gamma": (("shape", 2.0), ("scale", 1.0)),
    "laplace": (("loc", 0.0), ("scale", 1.0)),
}


@dataclass(frozen=True)
class Prior:
    kind: str
    params: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{p:g}' for p in self.params)}"

    @property
    def gaussian(self) -> bool:
        return self.kind == "normal"

    @property
    def truncatable(self) -> bool:
        return self.kind in ("normal", "uniform")

    def sample(self, n: int, dim: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, truncation: float | None = None) -> Tensor:
        """``n`` x ``dim`` draws. With a generator they are made on the CPU, then moved."""
        where = "cpu" if generator is not None else device
        shape = (n, dim)
        if truncation is not None:
            check_truncation(self, truncation)
        if self.kind == "normal":
            mean, std = self.params
            if truncation is None:
                z = torch.randn(shape, generator=generator, device=where)
            else:  # exact truncated normal: uniform over the CDF's middle, then inverted
                edge = 0.5 * (1 + math.erf(-truncation / math.sqrt(2)))
                u = edge + (1 - 2 * edge) * torch.rand(shape, generator=generator, device=where)
                z = math.sqrt(2) * torch.erfinv((2 * u - 1).clamp(-1 + 1e-7, 1 - 1e-7))
            z = mean + std * z
        elif self.kind == "uniform":
            low, high = self.params
            if truncation is not None:
                middle, half = (low + high) / 2, (high - low) / 2 * truncation
                low, high = middle - half, middle + half
            z = low + (high - low) * torch.rand(shape, generator=generator, device=where)
        elif self.kind == "gamma":
            shape_k, scale = self.params
            z = scale * _standard_gamma(shape_k, shape, generator, where)
        elif self.kind == "laplace":
            loc, scale = self.params
            u = torch.rand(shape, generator=generator, device=where).clamp(1e-7, 1 - 1e-7) - 0.5
            z = loc - scale * u.sign() * torch.log1p(-2 * u.abs())
        else:  # parse() admits only the kinds above
            raise AssertionError(self.kind)
        return z.to(device) if device is not None else z

    def log_density_penalty(self, z: Tensor) -> Tensor:
        """A penalty that grows as z leaves the likely region of the prior (for inversion):
        the negative log density up to a constant, averaged over each latent vector's
        elements (one value per row)."""
        if self.kind == "normal":
            mean, std = self.params
            return (((z - mean) / std) ** 2).mean(-1) / 2
        if self.kind == "uniform":
            low, high = self.params
            return (torch.relu(low - z) + torch.relu(z - high)).pow(2).mean(-1)
        if self.kind == "gamma":
            shape_k, scale = self.params
            positive = z.clamp_min(1e-6)
            return ((positive / scale - (shape_k - 1) * torch.log(positive)).mean(-1)
                    + torch.relu(-z).pow(2).mean(-1))
        loc, scale = self.params
        return ((z - loc).abs() / scale).mean(-1)


def parse(text: str) -> Prior:
    """A prior from ``KIND`` or ``KIND:P1,P2``; a clear error for anything else."""
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise UsageError(f"unknown noise prior {kind!r}; choose one of: {describe()}")
    names = [name for name, _ in KINDS[kind]]
    if not rest.strip():
        params = tuple(default for _, default in KINDS[kind])
    else:
        try:
            params = tuple(float(p) for p in rest.split(","))
        except ValueError:
            raise UsageError(f"noise prior {text!r}: parameters must be numbers "
                             f"({kind}:{','.join(names).upper()})") from None
        if len(params) != len(names):
            raise UsageError(f"noise prior {text!r}: {kind} takes {len(names)} numbers, "
                             f"{kind}:{','.join(names).upper()}")
    if not all(math.isfinite(p) for p in params):
        raise UsageError(f"noise prior {text!r}: parameters must be finite")
    problem = {
        "normal": params[1] <= 0 and "std must be positive",
        "uniform": params[0] >= params[1] and "low must be below high",
        "gamma": (params[0] <= 0 or params[1] <= 0) and "shape and scale must be positive",
        "laplace": params[1] <= 0 and "scale must be positive",
    }[kind]
    if problem:
        raise UsageError(f"noise prior {text!r}: {problem}")
    return Prior(kind, params)


def check_truncation(prior: Prior, truncation: float) -> None:
    if not prior.truncatable:
        raise UsageError(f"truncation is defined for normal and uniform priors, not {prior.kind}")
    if prior.kind == "normal" and not 0 < truncation < math.inf:
        raise UsageError(f"--truncation for a normal prior is a finite number of standard deviations > 0, "
                         f"got {truncation}")
    if prior.kind == "uniform" and not 0 < truncation <= 1:
        raise UsageError(f"--truncation for a uniform prior is the kept fraction of its range, in (0, 1], "
                         f"got {truncation}")


def describe() -> str:
    return ", ".join(f"{k}:{','.join(n.upper() for n, _ in params)}" for k, params in KINDS.items())


def _standard_gamma(k: float, shape: tuple[int, ...], generator: torch.Generator | None,
                    device) -> Tensor:
    """Gamma(k, 1) by Marsaglia & Tsang (2000), from the generator's normal and uniform
    draws, so seeded draws repeat (torch's own gamma sampler takes no generator)."""
    if k < 1:  # Gamma(k) = Gamma(k + 1) * U^(1/k)
        u = torch.rand(shape, generator=generator, device=device).clamp_min(1e-12)
        return _standard_gamma(k + 1, shape, generator, device) * u.pow(1 / k)
    d = k - 1 / 3
    c = 1 / math.sqrt(9 * d)
    out = torch.empty(shape, device=device)
    todo = torch.ones(shape, dtype=torch.bool, device=device)
    while todo.any():
        x = torch.randn(shape, generator=generator, device=device)
        v = (1 + c * x) ** 3
        u = torch.rand(shape, generator=generator, device=device)
        ok = (v > 0) & (torch.log(u.clamp_min(1e-12)) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-12)))
        take = ok & todo
        out[take] = (d * v)[take]
        todo &= ~ok
    return out
