"""What a training process does around a step: a Ctrl-C (or a scheduler's SIGTERM) held until
the step is whole, the random state saved and restored bit for bit, and running out of
memory recognised on any device."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from zoo.errors import ZooError


@contextmanager
def deferred_interrupts(same_within: float = 0.0) -> Iterator[threading.Event]:
    """Ctrl-C (or SIGTERM: a scheduler's pre-emption, torchrun stopping its processes) during
    a step is held until the step ends (a checkpoint never holds half an update); a second
    stops at once, keeping the last checkpoint. Under torchrun one Ctrl-C arrives twice (from
    the terminal, then forwarded by torchrun): a second signal ``same_within`` seconds of the
    first is the same one."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    first: list[float] = []

    def handler(signum: int, frame: Any) -> None:
        if interrupted.is_set() and time.monotonic() - first[0] > same_within:
            raise KeyboardInterrupt
        if not interrupted.is_set():
            first.append(time.monotonic())
        interrupted.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupted
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].to(torch.uint8))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8), device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"].to(torch.uint8))


class OutOfMemory(ZooError):
    """Training ran out of device (or host) memory; the message names a batch size to try."""


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA or MPS out-of-memory error, or the CPU allocator's failure."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())
