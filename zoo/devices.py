"""Choosing where tensors live: auto picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from .errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(requested: str) -> torch.device:
    requested = requested.lower()
    if requested.startswith("cuda:"):
        index = requested.split(":", 1)[1]
        if not torch.cuda.is_available():
            raise UsageError(f"--device {requested}: no CUDA GPU is available here; use --device cpu")
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise UsageError(f"--device {requested}: there are {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(requested)
    if requested not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got {requested!r}")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
    return torch.device(requested)
