"""Choosing where tensors live: auto picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from zoo.errors import UsageError

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


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device`` (a device named without an index means its current one),
    without waiting for it: a host tensor bound for a GPU goes through pinned memory,
    asynchronously. A plain copy from pageable memory makes the host wait until the GPU has
    done all it was given, every batch; the caching host allocator keeps the pinned block
    until its copy is done."""
    if tensor.device.type == device.type and device.index in (None, tensor.device.index):
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        return (tensor if tensor.is_pinned() else tensor.pin_memory()).to(device, non_blocking=True)
    return tensor.to(device)


def cpu_model() -> str:
    """The CPU's name as the system gives it (Linux's /proc/cpuinfo), else the platform's."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device | str) -> str:
    """What a device is, for a run's record and a model card: the GPU's name, or the CPU's
    and how many cores this process may use."""
    import os

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model()}, {cores} cores (CPU)"
