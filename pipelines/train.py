"""Train any model plugin: resolve, load, build, then hand over to the loop.

``train()`` reads top to bottom: resolve the plan (model, config, data, seed, engine;
refuse bad combinations before any work), load the data, claim the run folder (locked
while training), build the model and restore what a resumed run was, then run
:class:`zoo.pipelines.loop.Loop`, which owns everything around the plugin's step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import zoo
from zoo import losses
from zoo.data.memory import TensorBatches
from zoo.display.console import make_console
from zoo.errors import UsageError, ZooError
from zoo.model import Model
from zoo.pipelines.evaluate.training import TrainingEval
from zoo.pipelines.loop import Interrupted, Loop
from zoo.pipelines.plan import Plan, TrainOptions, plan
from zoo.pipelines.train_data import TrainingData, load_data
from zoo.records import checkpoint as ckpt_io
from zoo.records import files, runs
from zoo.training import distributed
from zoo.training.devices import resolve_device
from zoo.training.engine import Engine
from zoo.training.process import set_rng_state

__all__ = ["Interrupted", "Plan", "TrainOptions", "plan", "train"]


def train(opts: TrainOptions, console: Console | None = None) -> Path:
    """Run a training job; returns the run folder. Under torchrun, this is one process of
    several (see :mod:`zoo.training.distributed`): rank 0 writes, every process trains."""
    console = console or make_console()
    p = plan(opts)
    opts = p.options or opts  # with a preset's options filled in where the user gave none
    cluster, device_name = distributed.join(opts.device)
    try:
        return _train(p, opts, cluster, resolve_device(device_name),
                      console if cluster.writer else Console(quiet=True))
    finally:
        distributed.leave()


def _train(p: Plan, opts: TrainOptions, cluster: distributed.Cluster, device: torch.device,
           console: Console) -> Path:
    engine = Engine(p.engine, device)
    with cluster.rank_zero_first():  # rank 0 prepares the data; the others read its cache
        p, data = load_data(p, opts, console)
    model, batches, state = build(p, data, device, engine, console, cluster)
    _check_shares(model, cluster.world)  # refused before a run folder is made
    mixed = losses.penalty_across_images(model)
    if mixed and p.resume_from is None:
        raise UsageError(mixed)
    if mixed:  # a run that began so (before zoo refused it) resumes as it was
        console.print(f"[yellow]warning:[/] {mixed}", highlight=False)
    eval_every, eval_features, checkpoint_every = opts.eval_every, opts.eval_features, opts.checkpoint_every
    if p.resume_from is not None:  # a resumed run keeps its own (plan refused a different --eval-features)
        kept = runs.read_run_info(p.resume_from.parent)
        eval_every = eval_every if eval_every is not None else kept.get("eval_every")
        eval_features = eval_features if eval_features is not None else kept.get("eval_features")
        checkpoint_every = checkpoint_every if checkpoint_every is not None else kept.get("checkpoint_every")
    if eval_every is not None:
        TrainingEval.check(model, data.prepared, eval_features)

    # The run folder: new, or the one being resumed; locked while rank 0 trains it.
    lock: runs.RunLock | None = None
    if p.resume_from is not None:
        run_dir = p.resume_from.parent
        if cluster.writer:
            lock = runs.RunLock(run_dir).acquire()
            files.clear_partial(run_dir)  # what a killed run was writing: never taken for a file, now cleared
    elif cluster.writer:
        run_dir, lock = runs.new_run_dir(p.cls.name, p.data, opts.out, opts.force,
                                         lambda line: console.print(line, highlight=False, markup=False))
    run_dir = Path(cluster.share_text(str(run_dir) if cluster.writer else ""))
    try:
        loop = Loop(p, data, model, batches, state, run_dir, console, steps=opts.steps, epochs=opts.epochs,
                    kimg=opts.kimg, preview_every=opts.preview_every, eval_every=eval_every,
                    eval_features=eval_features, wandb=opts.wandb, checkpoint_every=checkpoint_every)
        return loop.run()
    finally:
        if lock is not None:
            lock.release()


def build(p: Plan, data: TrainingData, device: torch.device, engine: Engine, console: Console,
          cluster: distributed.Cluster | None = None) -> tuple[Model, TensorBatches, dict[str, Any]]:
    """The model on its device, its optimisers and batches, and (resuming) all they were.
    Returns the training state to continue from: step, images, seconds. Every process of a
    torchrun run builds the same weights; each then draws from its own random stream."""
    cluster = cluster or distributed.Cluster()
    _check_memory(p, data.spec, device)
    torch.manual_seed(p.seed)
    model = p.cls(p.config, data.spec).to(device)
    model.engine = engine
    model.train()
    if data.text_encoder is not None:
        encoder, source = data.text_encoder
        model.attach_text_encoder(encoder.to(device), source)
    batches = data.batches(p.config.batch_size, p.seed, device, (cluster.rank, cluster.world))
    state = {"step": 0, "images": 0, "seconds": 0.0}
    if p.init_from is not None:
        _warm_start(model, p.init_from, console)
    if p.resume_from is None:
        engine.prepare(model)
        model.optimizers = model.configure_optimizers()
        engine.tune(model.optimizers)
        _own_stream(p.seed, cluster, 0)
        return model, batches, state

    checkpoint = ckpt_io.load(p.resume_from)
    saved = checkpoint.state
    try:
        # The extra state first: a grown ProGAN adds its layers there, then takes their weights;
        # the optimisers last, for every weight the model now has.
        model.load_extra_state(saved.get("extra", {}))
        ckpt_io.check_kinds(model, saved["model"], p.resume_from)
        model.load_state_dict(saved["model"])
        engine.prepare(model)
        model.optimizers = model.configure_optimizers()
        for name, optimizer in model.optimizers.items():
            optimizer.load_state_dict(saved["optimizers"][name])
        engine.tune(model.optimizers)
        engine.load_state(saved.get("engine", {}))
        batches.load_state(checkpoint.train["batches"])
        set_rng_state(saved["rng"], device)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ZooError(f"{p.resume_from} does not fit this {model.name} model: "
                       f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    train = checkpoint.train
    _own_stream(p.seed, cluster, int(train["step"]))
    return model, batches, {"step": int(train["step"]), "images": int(train["images"]),
                            "seconds": float(train.get("seconds", 0.0))}


def _check_memory(p: Plan, spec: zoo.DataSpec, device: torch.device) -> None:
    """Refuse a config whose networks could never train here (``--set g_width=100000``):
    they are built on the meta device first, which allocates nothing, and their weights,
    with the gradients and Adam's two moments of each, must fit in the device's memory."""
    try:
        with torch.device("meta"):
            probe = p.cls(p.config, spec)
        need = 4 * sum(t.numel() * t.element_size() for t in probe.state_dict().values())
    except RuntimeError as exc:  # a tensor of more elements than int64 counts: too big
        if "overflow" not in str(exc).lower():
            return
        need = 2**63
    except Exception:  # noqa: BLE001 (a plugin that cannot be built on the meta device is built for real)
        return
    have = _memory_of(device)
    if have is not None and need > have:
        amount = f"about {need / 2**30:,.1f} GiB" if need < 2**63 else "more than 8 EiB"
        raise UsageError(f"{p.cls.name}'s networks with this config need {amount} to train (weights, gradients, "
                         f"optimiser state); {device.type} has {have / 2**30:,.1f} GiB: choose smaller widths or "
                         f"sizes (zoo info {p.cls.name} lists the keys)")


def _memory_of(device: torch.device) -> int | None:
    """Bytes of memory of ``device`` (None where unknown)."""
    import os

    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        if device.type == "cpu":
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, RuntimeError, AttributeError):
        return None
    return None


def _check_shares(model: Model, world: int) -> None:
    """Every batch size the model will ask for splits evenly over the processes (ProGAN's
    smaller batches at higher resolutions too), or the run stops now, not hours in."""
    uneven = sorted(size for size in model.batch_sizes() if size % world)
    if uneven:
        raise UsageError(f"{model.name} trains with a batch of {uneven[0]} at some point (batch sizes "
                         f"{', '.join(map(str, sorted(model.batch_sizes())))}), which does not split evenly "
                         f"over {world} processes: choose batch sizes that {world} divides (zoo info "
                         f"{model.name} lists the keys)")


def _own_stream(seed: int, cluster: distributed.Cluster, step: int) -> None:
    """Processes after the first draw their noise from streams of their own (rank 0 keeps
    the one-process stream, which the checkpoint holds)."""
    if cluster.rank:
        torch.manual_seed(distributed.rank_seed(seed, cluster.rank, step))


def _warm_start(model: Model, path: Path, console: Console) -> None:
    source = ckpt_io.load(path)
    copied, fresh = model.warm_start(source.state["model"])
    if not copied:
        raise UsageError(f"--init-from {path}: none of its weights fit {model.name} "
                         f"(it is a {source.plugin} checkpoint)")
    console.print(f"warm start from {path}: {len(copied)} weight tensors copied"
                  + (f", {len(fresh)} left as initialised" if fresh else ""), highlight=False)


# -- helpers ------------------------------------------------------------------------------------


