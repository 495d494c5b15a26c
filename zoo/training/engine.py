"""The mechanics of an update, owned by the loop: the one seam every plugin steps through.

A plugin decides what a step is (five critic updates, two generators, a gradient penalty)
and calls :meth:`zoo.Model.update` (or :meth:`~zoo.Model.manual_backward` then
:meth:`~zoo.Model.optimizer_step`) for each update. Those go through an :class:`Engine`,
which the train pipeline configures once, so that

* **mixed precision**: forward passes run under autocast (bf16 on the CPU and on recent
  GPUs, fp16 with a dynamic loss scaler on older GPUs),
* **gradient clipping** by global norm, per optimiser,
* **gradient averaging across processes** under torchrun: one all-reduce of all of an
  optimiser's gradients per update (:mod:`zoo.training.distributed`),
* **speed**: channels-last memory for convolutional networks, ``torch.compile`` per
  network (``--compile``), fused Adam and TF32 with cuDNN autotuning on CUDA

are written here once, for every plugin, with no plugin code for any of them (the idea of
Lightning's manual optimisation: ``manual_backward`` and ``optimizer.step``). Gradient
penalties (:mod:`zoo.losses`) run their inner forward pass in full precision.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from zoo.errors import UsageError
from zoo.training import distributed


class Networks(Protocol):
    """What :meth:`Engine.prepare` needs of a model (a :class:`zoo.Model` is one)."""

    @property
    def name(self) -> str: ...

    def uncompiled(self) -> dict[str, str]: ...

    def named_children(self) -> Iterator[tuple[str, nn.Module]]: ...

    def modules(self) -> Iterator[nn.Module]: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

PRECISIONS = ("fp32", "bf16", "fp16")
COMPILE_BACKEND = "inductor"
"""torch.compile's backend for --compile (the tests capture graphs with ``eager`` or
``aot_eager`` instead of inductor's minutes of code generation)."""


@dataclass(frozen=True)
class EngineOptions:
    """How updates are made: the train pipeline's ``--precision`` and ``--clip-grad``."""

    precision: str = "fp32"
    clip_grad: float = 0.0
    """Largest global gradient norm per optimiser; 0 = no clipping."""
    compile: bool = False
    """torch.compile each network (``--compile``)."""
    channels_last: bool = True
    """Convolutional networks' weights in channels-last memory (``--no-channels-last`` to turn
    off); their activations follow, and oneDNN's and cuDNN's fast convolutions use it without
    reordering."""
    tf32: bool = True
    """On CUDA, float32 matrix products and convolutions in TF32 (``--no-tf32`` for full fp32)."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not 0 <= self.clip_grad < math.inf:  # NaN fails too: it would make every gradient NaN
            raise UsageError(f"--clip-grad must be 0 (off) or a positive finite number, got {self.clip_grad}")


class Engine:
    """Backward passes and optimiser steps for one model on one device (and, under torchrun,
    one process of several)."""

    def __init__(self, options: EngineOptions | None = None, device: torch.device | str = "cpu") -> None:
        self.options = options or EngineOptions()
        self.device = torch.device(device)
        precision = self.options.precision
        if precision == "fp16" and self.device.type != "cuda":
            raise UsageError("--precision fp16 needs a CUDA GPU (its loss scaler is CUDA's); "
                             "use --precision bf16 on this device")
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self._overflow_checks: list[dict[str, Any]] = []
        """The loss scaler's record of each update of this training step (see :meth:`step`)."""
        self.cluster = distributed.current()
        self.applied: list[str] = []
        """What :meth:`prepare` did, for the run's record."""
        self.notes: list[str] = []
        """What :meth:`prepare` could not do, for the user."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # autotune each convolution's algorithm once
            torch.backends.cuda.matmul.allow_tf32 = self.options.tf32
            torch.backends.cudnn.allow_tf32 = self.options.tf32

    @property
    def distributed(self) -> bool:
        return self.cluster.distributed

    # -- set-up, once per model -----------------------------------------------------------------

    def prepare(self, model: Networks) -> list[str]:
        """The model's memory format and compiled networks; returns what was done (also kept
        in :attr:`applied`, for the run's record): ``channels-last``, ``compiled (inductor):
        generator, discriminator``."""
        done = self.applied = []
        if self.options.channels_last and uses_convolutions(model):
            model.to(memory_format=torch.channels_last)
            done.append("channels-last")
        if self.options.compile:
            eager = model.uncompiled()
            self.notes += [f"--compile: {model.name}'s {name} runs eagerly ({reason})"
                           for name, reason in eager.items()]
            names = [name for name, child in model.named_children()
                     if name not in eager and any(True for _ in child.parameters())]
            for name in names:
                getattr(model, name).compile(backend=COMPILE_BACKEND, dynamic=False)
            done.append(f"compiled ({COMPILE_BACKEND}): {', '.join(names) or 'none'}")
        return done

    def tune(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Fused Adam(W) on CUDA, where it is one kernel for all the weights (on the CPU it
        is no faster: benchmarks/step_options.py)."""
        for optimizer in optimizers.values():
            if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
                continue
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if params and all(p.is_cuda and p.is_floating_point() for p in params):
                for group in optimizer.param_groups:
                    group["foreach"], group["fused"] = False, True
                # A state loaded from an unfused optimiser (a CPU run, an older one) keeps its step
                # counters on the host; the fused kernel wants them beside the weights, as float32.
                for p, state in optimizer.state.items():
                    if "step" in state:
                        state["step"] = torch.as_tensor(state["step"], dtype=torch.float32).to(p.device)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward passes of a step run in this context (a no-op in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: Tensor) -> None:
        """Gradients of ``loss``, scaled first when a loss scaler is in use (by the scale of
        this training step: it changes only in :meth:`end_step`)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> Tensor | None:
        """Average gradients across processes, unscale, clip, then step; returns the gradient
        norm before clipping when clipping is on."""
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.cluster.average_gradients(params)
        norm = None
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if self.options.clip_grad and params:
            norm = torch.nn.utils.clip_grad_norm_(params, self.options.clip_grad)
        if self.scaler is not None:
            self.scaler.step(optimizer)  # skipped if a gradient overflowed
            # GradScaler allows one step per optimiser between two update()s, and an update()
            # between two updates of one optimiser (a critic's n_critic) would change the scale
            # under gradients made with the old one: the next update's, or another optimiser's
            # made earlier in the step, would be divided by the new scale (half of it after a
            # growth). So the scale stays fixed for the whole training step: the scaler's
            # record of this update (did a gradient overflow?) is set aside, which leaves the
            # optimiser ready to step again, and end_step hands every record to one update().
            self._overflow_checks.append(self.scaler._per_optimizer_states.pop(id(optimizer)))
        else:
            optimizer.step()
        return norm

    def end_step(self) -> None:
        """Once per training step, after every optimiser has stepped: the loss scaler adapts,
        shrinking the scale if any update of the step overflowed (that update was skipped),
        growing it after ``growth_interval`` steps without one."""
        if self.scaler is not None and self._overflow_checks:
            records = self.scaler._per_optimizer_states
            for i, record in enumerate(self._overflow_checks):
                records[-1 - i] = record  # keyed by optimiser ids, which are never negative
            self.scaler.update()
        self._overflow_checks.clear()

    def state(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])


def uses_convolutions(module: Modules) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively: a GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (elsewhere oneDNN emulates bf16, many times slower than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: no fast bf16 either
        return False


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """No autocast within a block (previews and sampling are drawn in float32)."""
    with contextlib.ExitStack() as stack:
        for device_type in ("cpu", "cuda"):
            if device_type == "cuda" and not torch.cuda.is_available():
                continue
            stack.enter_context(torch.autocast(device_type, enabled=False))
        yield


class Modules(Protocol):
    """What :func:`evaluating` needs: an ``nn.Module``, or a model's view of one."""

    def modules(self) -> Iterator[nn.Module]: ...

    def eval(self) -> Any: ...


@contextlib.contextmanager
def evaluating(module: Modules) -> Iterator[None]:
    """Put a module in eval mode for a block, then restore each submodule's own mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
