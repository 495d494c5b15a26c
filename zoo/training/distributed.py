"""Training on many processes, launched by PyTorch's own ``torchrun``.

``torchrun --nproc_per_node 8 -m zoo train dcgan --data cifar10`` starts eight copies of
``zoo train``; torchrun's rendezvous gives each its ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``, and :func:`join` opens the process group from them (NCCL between GPUs,
gloo on CPUs). What zoo does with it, for every plugin and with no plugin code:

* **batches**: the config's ``batch_size`` is the global batch; each process draws its
  share of every batch (``batch_size / world`` images, its slice of one shuffled order)
  and its noise from a random stream of its own (rank 0's is the one-process stream);
* **gradients** are averaged across processes by the engine, once per optimiser step
  (one all-reduce of all the gradients; stylegan2-ada's way, which holds for gradient
  penalties and for several optimisers per step, where wrapping networks in DDP breaks);
* **batch norm** normalises over each process's share (as DDP without SyncBatchNorm); the
  running statistics are averaged across processes before every preview, checkpoint and
  evaluation, so the saved model is one model;
* **decisions** that depend on the clock or on Ctrl-C (time budgets, checkpoint cadence,
  stopping) are agreed every step over a small CPU (gloo) channel, so every process takes
  the same steps, and no GPU waits for it;
* **writes**: rank 0 alone writes the run folder, previews, metrics, W&B and checkpoints,
  all of it in global terms (steps, images), so a run resumes at any world size;
* **failure**: a process that dies makes the others stop at their next exchange with a
  one-line error; the last checkpoint, written atomically, stays as it was.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from zoo.errors import UsageError, ZooError

TIMEOUT = datetime.timedelta(minutes=30)
"""How long a process waits for the others at one exchange before it gives up: rank 0's
slow moments included (a checkpoint, ``--eval-every``'s figures, training their feature
extractor on first use)."""


class PeerLost(ZooError):
    """Another process of the run stopped (it crashed, was killed, or lost its node)."""


@dataclass(frozen=True)
class Cluster:
    """This process's place among the processes of one run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def writer(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    # -- exchanges (all no-ops on one process) -----------------------------------------------

    def agree(self, values: list[float]) -> list[float]:
        """The largest of each value across processes (seconds trained, a stop asked for):
        the same numbers everywhere, so that every process decides alike. Over the CPU
        channel: no GPU synchronisation."""
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        self._collective(lambda: torch.distributed.all_reduce(t, torch.distributed.ReduceOp.MAX, group=_control()))
        return t.tolist()

    def mean(self, t: Tensor) -> Tensor:
        """``t`` averaged across processes (in place; on its own device)."""
        if self.distributed:
            self._collective(lambda: torch.distributed.all_reduce(t))
            t.div_(self.world)
        return t

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Every gradient averaged across processes, in one all-reduce per dtype."""
        if not self.distributed:
            return
        by_dtype: dict[torch.dtype, list[Tensor]] = {}
        for p in params:
            if p.grad is not None:
                by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
        for grads in by_dtype.values():
            flat = self.mean(torch.cat([g.reshape(-1) for g in grads]))
            for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
                g.copy_(part.view(g.shape))

    def average_buffers(self, module: nn.Module) -> None:
        """Floating-point buffers (batch norm's running statistics) averaged across processes."""
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if self.distributed and buffers:
            flat = self.mean(torch.cat([b.reshape(-1).float() for b in buffers]))
            for b, part in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
                b.copy_(part.view(b.shape))

    def check_same(self, module: nn.Module) -> None:
        """Refuse to go on if the processes' weights have drifted apart (they must not:
        every process applies the same averaged gradients to the same weights)."""
        if not self.distributed:
            return
        params = list(module.parameters())
        if not params:
            return
        sums = torch.stack([p.detach().double().sum() for p in params])
        spread = torch.stack([sums, -sums])  # the largest and (negated) smallest of each sum
        self._collective(lambda: torch.distributed.all_reduce(spread, torch.distributed.ReduceOp.MAX))
        if not torch.equal(spread[0], -spread[1]):
            raise ZooError("the training processes' weights have drifted apart (every process must apply "
                           "the same averaged updates: does the plugin update a network on some processes "
                           "only?); stopping rather than saving a mixture of models")

    def gather(self, t: Tensor) -> Tensor:
        """Every process's ``t`` (the same shape but for the first dimension), concatenated in
        rank order, on every process."""
        if not self.distributed:
            return t
        sizes = torch.tensor([t.shape[0]], device=t.device)
        counts = [torch.zeros_like(sizes) for _ in range(self.world)]
        self._collective(lambda: torch.distributed.all_gather(counts, sizes))
        biggest = int(max(int(c) for c in counts))
        padded = torch.zeros((biggest, *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[:t.shape[0]] = t
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        self._collective(lambda: torch.distributed.all_gather(parts, padded))
        return torch.cat([part[:int(c)] for part, c in zip(parts, counts, strict=True)])

    def share_text(self, text: str) -> str:
        """Rank 0's ``text`` (the run folder it made), on every process."""
        if not self.distributed:
            return text
        data = torch.tensor(list(text.encode()), dtype=torch.uint8)
        size = torch.tensor([data.numel()], dtype=torch.int64)
        self._collective(lambda: torch.distributed.broadcast(size, 0, group=_control()))
        if self.rank:
            data = torch.zeros(int(size), dtype=torch.uint8)
        self._collective(lambda: torch.distributed.broadcast(data, 0, group=_control()))
        return bytes(data.tolist()).decode()

    def barrier(self) -> None:
        if self.distributed:
            self._collective(lambda: torch.distributed.barrier(group=_control()))

    @contextlib.contextmanager
    def rank_zero_first(self) -> Iterator[None]:
        """The first process of each node runs the block before the others do: it fills the
        node's caches (prepared data, a trained feature extractor) that they then read,
        instead of all writing them at once."""
        if self.local_rank:
            self.barrier()
        yield
        if not self.local_rank:
            self.barrier()

    def _collective(self, run: Callable[[], object]) -> None:
        try:
            run()
        except (RuntimeError, torch.distributed.DistError) as exc:  # gloo: "Connection closed by peer"
            text = str(exc).strip()
            first = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0]) if text else type(exc).__name__
            first = first.split(". ")[0]
            global _BROKEN
            _BROKEN = True
            if threading.current_thread() is threading.main_thread():
                # torchrun now stops the survivors with SIGTERM: say what happened and exit first.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise PeerLost(f"process {self.rank} of {self.world}: another process of this run stopped "
                           f"({first[:120]})") from None


_CONTROL: torch.distributed.ProcessGroup | None = None
_CLUSTER = Cluster()
_BROKEN = False
"""A peer was lost: the group cannot be closed in order (that would wait for the dead)."""


def _control() -> torch.distributed.ProcessGroup | None:
    return _CONTROL


def current() -> Cluster:
    """The cluster this process joined (one process: rank 0 of 1)."""
    return _CLUSTER


def launched() -> bool:
    """Whether torchrun (or another launcher that sets its variables) started this process
    as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: str) -> tuple[Cluster, str]:
    """Open the process group torchrun describes, once; returns the cluster and the device
    this process uses (``cuda:LOCAL_RANK`` on GPUs)."""
    global _CLUSTER, _CONTROL
    if not launched() or _CLUSTER.distributed:
        return _CLUSTER, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    requested = device.lower()
    use_cuda = torch.cuda.is_available() and requested in ("auto", "cuda")
    if requested.startswith("cuda:"):
        raise UsageError("under torchrun each process uses the GPU of its LOCAL_RANK: give --device cuda "
                         "(or auto), not one GPU")
    if requested == "mps":
        raise UsageError("torchrun training runs on CUDA GPUs or CPUs; --device mps is one device")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise UsageError(f"process {rank} has LOCAL_RANK {local}, but this node has "
                             f"{torch.cuda.device_count()} GPU(s): lower --nproc_per_node")
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    torch.distributed.init_process_group("nccl" if use_cuda else "gloo", timeout=TIMEOUT,
                                         device_id=torch.device(device) if use_cuda else None)
    # Agreement about the clock travels between CPUs (gloo), so no GPU waits on it.
    control = torch.distributed.new_group(backend="gloo", timeout=TIMEOUT) if use_cuda else None
    _CONTROL = control if isinstance(control, torch.distributed.ProcessGroup) else None
    _CLUSTER = Cluster(rank, world, local)
    return _CLUSTER, device


def leave() -> None:
    """Close the process group (at the end of a command)."""
    global _CLUSTER, _CONTROL, _BROKEN
    if _CLUSTER.distributed and torch.distributed.is_initialized() and not _BROKEN:
        torch.distributed.destroy_process_group()
    _CLUSTER, _CONTROL, _BROKEN = Cluster(), None, False


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The seed of process ``rank``'s random stream from ``step`` on (rank 0 keeps the
    one-process stream and never uses this)."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63 - 1)
