"""``zoo`` under torchrun for tests/test_distributed.py, with two test hooks.

    torchrun --nproc_per_node 2 tests/distributed_worker.py DUMP_DIR train dcgan --data ...

runs ``zoo train ...`` and, before the run finishes, has every process write its own
weights to ``DUMP_DIR/rankN.safetensors`` (so the test can compare what each process holds,
not what rank 0 saved). ``DUMP_DIR ARGS --then DUMP_DIR2 ARGS2 ...`` runs several commands
one after the other in the same processes (one launch: torch's import and the rendezvous
once), each dumping into its own folder. ``ZOO_TEST_KILL=RANK:STEP`` SIGKILLs process RANK after its step
STEP. It also registers ``toy``: a deterministic autoencoder with no batch norm (its decoder
is the generator), whose training draws no random numbers, so that a run on two processes
must match a run on one.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo import registry
from zoo.pipelines import loop


@dataclass
class ToyConfig(zoo.Config):
    batch_size: int = zoo.option(16, "images per batch")
    latent_dim: int = zoo.option(8, "length of the code")
    lr: float = zoo.option(1e-3, "Adam learning rate")


class Toy(zoo.Model):
    name = "toy"
    Config = ToyConfig
    capabilities = frozenset({zoo.Capability.LATENT})

    def __init__(self, config: ToyConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        pixels = spec.channels * spec.height * spec.width
        self.encoder = nn.Sequential(nn.Conv2d(spec.channels, 4, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(4 * (spec.height // 2) * (spec.width // 2), config.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(config.latent_dim, pixels), nn.Tanh())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"autoencoder": torch.optim.Adam(self.parameters(), self.config.lr)}

    def generate(self, z: torch.Tensor, conditions: zoo.Conditions | None = None) -> torch.Tensor:
        return self.decoder(z).view(-1, self.spec.channels, self.spec.height, self.spec.width)

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        real = batches.next().images
        loss = F.mse_loss(self.generate(self.encoder(real)), real)
        self.update("autoencoder", loss)
        return {"loss": loss.detach()}


def main() -> None:
    commands: list[list[str]] = [[]]
    for arg in sys.argv[1:]:
        if arg == "--then":
            commands.append([])
        else:
            commands[-1].append(arg)
    dump = Path(commands[0][0])
    toy = metadata.EntryPoint(name="toy", value=f"{__name__}:Toy", group=registry.GROUP)
    registry.entry_point_source = lambda: [toy]
    rank = int(os.environ.get("RANK", "0"))

    finish = loop.Loop._finish

    def dumped(self: loop.Loop, status: str, elapsed: float):  # type: ignore[no-untyped-def]
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(dump / f"rank{self.cluster.rank}.safetensors"))
        return finish(self, status, elapsed)

    loop.Loop._finish = dumped  # type: ignore[method-assign]

    kill = os.environ.get("ZOO_TEST_KILL")
    if kill:
        victim, at = (int(v) for v in kill.split(":"))
        after = loop.Loop._after_step

        def killing(self: loop.Loop, last: bool) -> None:
            after(self, last)
            if rank == victim and self.step == at:
                os.kill(os.getpid(), signal.SIGKILL)

        loop.Loop._after_step = killing  # type: ignore[method-assign]

    from zoo.cli import app

    if len(commands) > 1:  # one process group for all the commands: a second rendezvous in a process hangs
        init, destroy = torch.distributed.init_process_group, torch.distributed.destroy_process_group
        torch.distributed.init_process_group = (  # type: ignore[assignment]
            lambda *a, **k: None if torch.distributed.is_initialized() else init(*a, **k))
        torch.distributed.destroy_process_group = lambda *a, **k: None  # type: ignore[assignment]
    for command in commands:
        dump = Path(command[0])
        dump.mkdir(parents=True, exist_ok=True)
        code = app(command[1:], prog_name="zoo", standalone_mode=False)  # an exit code when it fails
        if isinstance(code, int) and code:
            sys.exit(code)
    if len(commands) > 1 and torch.distributed.is_initialized():
        destroy()


if __name__ == "__main__":
    main()
