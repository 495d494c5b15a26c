"""Train any model plugin: resolve, load, build, then hand over to the loop.

``train()`` reads top to bottom: resolve the plan (model, config, data, seed, engine;
refuse bad combinations before any work), load the data, claim the run folder (locked
while training), build the model and restore what a resumed run was, then run
:class:`zoo.pipelines.loop.Loop`, which owns everything around the plugin's step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import zoo
from zoo import config as config_io
from zoo import losses, registry
from zoo.data import superres
from zoo.data.memory import PreparedData, TensorBatches, check_pairs
from zoo.data.sources.pairs import check_direction, folder_of, pairing_of
from zoo.data.superres import Derivation
from zoo.data.text import InstalledEncoder
from zoo.display.console import make_console
from zoo.errors import UsageError, ZooError
from zoo.model import SMALL_DATA, Model
from zoo.pipelines.evaluate import TrainingEval
from zoo.pipelines.loop import Interrupted, Loop, set_rng_state
from zoo.pipelines.prep import FULL, parse_size, prepare
from zoo.records import checkpoint as ckpt_io
from zoo.records import files, runs
from zoo.spec import Capability, DataSpec
from zoo.training import distributed
from zoo.training.devices import resolve_device
from zoo.training.engine import Engine, EngineOptions

__all__ = ["Interrupted", "Plan", "TrainOptions", "plan", "train"]

MOST_STEPS, MOST_KIMG, MOST_MINUTES = 10**9, 1e9, 1e7
"""The longest run --steps (or --epochs, or an every-N), --kimg and --minutes ask for: past
them a length is a typo (or infinite), refused before anything is written."""


@dataclass
class TrainOptions:
    model: str
    data: str | None = None
    epochs: int | None = None
    steps: int | None = None
    kimg: float | None = None
    minutes: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    device: str = "auto"
    out: Path | None = None
    sets: list[str] = field(default_factory=list)
    config_file: Path | None = None
    resume: str | None = None
    init_from: str | None = None
    force: bool = False
    """Replace the run already in ``out``, deleting everything in its folder (--replace)."""
    wandb: str = "auto"
    size: int | str | None = None
    channels: int | None = None
    data_dir: Path | None = None
    classes: str | None = None
    subset: str | None = None
    direction: str | None = None
    noise: str | None = None
    text_encoder: Path | None = None
    """A sentence-transformers model's folder, for text-conditional models (None: zoo's own encoder)."""
    precision: str | None = None
    """fp32, bf16 or fp16; None: fp32, or what a resumed run used."""
    clip_grad: float | None = None
    preview_every: int | None = None
    eval_every: int | None = None
    """Steps between the quick evaluations that keep best.safetensors; None: none (a resumed
    run keeps its own)."""
    eval_features: str | None = None
    checkpoint_every: int | None = None
    """Steps between checkpoints besides the time cadence; None: none (a resumed run keeps its own)."""
    compile: bool = False
    """torch.compile each network; a speed option of this process, not kept by the run."""
    channels_last: bool = True
    tf32: bool = True


@dataclass
class Plan:
    """Everything resolved before training starts."""

    cls: type[Model]
    config: zoo.Config
    data: str
    size: int | str | None
    channels: int | None
    seed: int
    classes: str | None = None
    subset: str | None = None
    data_dir: str | None = None
    direction: str | None = None
    minutes: float | None = None
    engine: EngineOptions = field(default_factory=EngineOptions)
    resume_from: Path | None = None
    resume_train: dict[str, Any] = field(default_factory=dict)
    init_from: Path | None = None
    text_encoder: str | None = None
    """--text-encoder: an installed sentence-transformers model's folder (None: zoo's own)."""

    @property
    def data_record(self) -> dict[str, Any]:
        """How the data was asked for, as the checkpoint keeps it for --resume."""
        record = {"source": self.data, "size": self.size, "channels": self.channels, "classes": self.classes,
                  "subset": self.subset, "data_dir": self.data_dir, "direction": self.direction}
        return record | ({"text_encoder": self.text_encoder} if self.text_encoder is not None else {})


def plan(opts: TrainOptions) -> Plan:
    """Resolve model, config, data and seed; refuse bad combinations before any work."""
    lengths = [flag for flag, v in (("--epochs", opts.epochs), ("--steps", opts.steps), ("--kimg", opts.kimg))
               if v is not None]
    if len(lengths) > 1:
        raise UsageError(f"give one of --epochs, --steps and --kimg, not {' and '.join(lengths)}")
    for flag, value in (("--epochs", opts.epochs), ("--steps", opts.steps), ("--preview-every", opts.preview_every),
                        ("--eval-every", opts.eval_every), ("--checkpoint-every", opts.checkpoint_every)):
        config_io.within(flag, value, 1, MOST_STEPS)
    config_io.within("--kimg", opts.kimg, 0.001, MOST_KIMG)  # one image at least: less would train forever
    config_io.within("--minutes", opts.minutes, 0, MOST_MINUTES, above=True)
    config_io.check_seed(opts.seed)
    cls = registry.get(opts.model)
    if opts.resume is None:
        _check_eval_features(opts, {})
    init_from = _init_from(opts, cls)
    data_dir = str(opts.data_dir.expanduser().resolve()) if opts.data_dir is not None else None
    text_encoder = _text_encoder_option(opts, cls)
    if opts.resume is None:
        if opts.data is None:
            raise UsageError(f"--data is required: which data set should {opts.model} learn? "
                             f"(e.g. zoo train {opts.model} --data mnist)")
        if opts.noise is not None:
            _require_noise_key(cls)
        # The kind of data is known from its name: refuse a mismatch before preparing anything.
        _check_pairing(cls, pairing_of(opts.data) or ("derived" if "derived" in cls.data_pairing else ""),
                       opts.data)
        size = _size_text(parse_size(opts.size))
        config = _user_config(cls, opts)
        derivation = superres.derivation_of(cls, config)
        if size is None and derivation is not None and derivation.crop and (
                not pairing_of(opts.data) or (pairing_of(opts.data) == "paired" and folder_of(opts.data))):
            size = "full"  # crops come from the photos whole, not from photos shrunk to one size
        engine = _engine_options(opts, opts.precision or "fp32", opts.clip_grad or 0.0)  # refused now if bad
        direction = check_direction(opts.data, opts.direction)  # one spelling: AtoB or BtoA
        return Plan(cls, config, opts.data, size, opts.channels,
                    0 if opts.seed is None else opts.seed, opts.classes, opts.subset, data_dir,
                    direction, opts.minutes, engine, init_from=init_from, text_encoder=text_encoder)

    # Resuming: everything comes from the checkpoint; a flag that disagrees is refused.
    if init_from is not None:
        raise UsageError("--init-from starts a new run from another run's weights; --resume continues "
                         "one: give one of them")
    path = runs.find_checkpoint(opts.resume)
    meta = ckpt_io.read_meta(path)
    if meta["plugin"] != cls.name:
        raise UsageError(f"--resume {opts.resume}: that checkpoint is from {meta['plugin']}, not {cls.name}")
    if str(meta["plugin_version"]) != str(cls.version):
        raise UsageError(f"--resume {opts.resume}: that checkpoint was written by {cls.name} version "
                         f"{meta['plugin_version']}; the installed plugin is version {cls.version}. Start a "
                         f"new run from its weights: zoo train {cls.name} --data DATA --init-from {opts.resume}")
    saved = meta["train"]
    if "images" in saved:
        ckpt_io.check_resumable(saved, path)
    else:
        raise UsageError(f"--resume {opts.resume}: that checkpoint was written by zoo "
                         f"{saved.get('zoo_version', '0.1')} before training counted images; it samples "
                         f"as before but cannot resume. Start a new run from its weights: zoo train "
                         f"{cls.name} --data {saved['data']['source']} --init-from {opts.resume}")
    if opts.sets or opts.config_file or opts.batch_size is not None or opts.noise is not None:
        raise UsageError("a resumed run keeps its config; drop --set/--config/--batch-size/--noise, "
                         "or start a new run to change them")
    _check_eval_features(opts, runs.read_run_info(path.parent), resume=opts.resume)
    data = saved["data"]
    direction = check_direction(data["source"], opts.direction) if opts.direction is not None else None
    _require_named_encoder(data, text_encoder, f"--resume {opts.resume}")
    named = text_encoder if data.get("text_encoder") is not None else None  # any folder: its fingerprint decides
    given: dict[str, tuple[Any, Any]] = {"--data": (opts.data, data["source"]), "--seed": (opts.seed, saved["seed"]),
             "--classes": (opts.classes, data.get("classes")), "--subset": (opts.subset, data.get("subset")),
             "--channels": (opts.channels, data.get("channels")), "--data-dir": (data_dir, data.get("data_dir")),
             "--direction": (direction, data.get("direction")),
             "--text-encoder": (text_encoder, named),
             "--precision": (opts.precision, saved.get("precision", "fp32")),
             "--clip-grad": (opts.clip_grad, saved.get("clip_grad", 0.0))}
    size = _size_text(parse_size(opts.size))
    if size is not None:
        given["--size"] = (size, data.get("size"))
    for flag, (value, kept) in given.items():
        if value is not None and value != kept:
            raise UsageError(f"--resume: that run trained with {flag} {kept if kept is not None else '(none)'}, "
                             f"not {value}; drop {flag}, or start a new run")
    config = config_io.from_dict(cls.Config, meta["config"], source=str(path))
    runs.check_size(cls, config, _spec_of(meta, path), path)
    # --minutes is the run's total, counted across resumes; a new length without one drops it.
    minutes = opts.minutes
    if minutes is None and opts.steps is None and opts.epochs is None and opts.kimg is None:
        minutes = saved.get("minutes")
    if minutes is not None and saved.get("seconds", 0.0) >= minutes * 60:
        raise UsageError(f"--resume: that run has used its --minutes {minutes:g} budget; give a larger "
                         "total with --minutes (it counts the time already trained), or --steps N")
    engine = _engine_options(opts, saved.get("precision", "fp32"), saved.get("clip_grad", 0.0))
    return Plan(cls, config, data["source"], data["size"], data["channels"], int(saved["seed"]),
                data.get("classes"), data.get("subset"), data.get("data_dir"), data.get("direction"),
                minutes, engine, resume_from=path, resume_train=saved, text_encoder=text_encoder)


def _require_named_encoder(data: Any, text_encoder: str | None, what: str) -> None:
    """Refuse to resume, or start from, a run that reads text with an installed model
    unless ``--text-encoder`` names its folder: the folder its checkpoint records is never
    read (a stranger's may name ``/``, every file of which the fingerprint would read)."""
    recorded = data.get("text_encoder") if isinstance(data, dict) else None
    if recorded is not None and text_encoder is None:
        raise UsageError(f"{what}: that run reads text with a sentence-transformers model (trained in "
                         f"{str(recorded)[:120]}), which zoo reads only from a folder you name: give "
                         "--text-encoder FOLDER")


def _check_eval_features(opts: TrainOptions, kept: dict[str, Any], resume: str | None = None) -> None:
    """--eval-features only with --eval-every (the run's own, resuming); and a resumed run
    measures in the features it always has: its best.safetensors is the best in them, and a
    figure in others cannot be compared with it. (Refused rather than starting a new best:
    that would drop the run's best checkpoint, or keep two bests no command could tell
    apart; a new run from its weights, --init-from, measures in others.)"""
    if opts.eval_features is None:
        return
    if opts.eval_every is None and not kept.get("eval_every"):
        raise UsageError("--eval-features chooses the features of --eval-every's figures; give --eval-every N "
                         "too (to measure a trained run: zoo eval RUN --features NAME)")
    recorded = kept.get("eval_features")
    if resume is not None and recorded is not None and opts.eval_features != recorded:
        raise UsageError(f"--resume: that run measures --eval-every's figures in --eval-features {recorded}, not "
                         f"{opts.eval_features}, and its best.safetensors is the best in those; drop "
                         f"--eval-features, or start a new run from its weights with --init-from {resume}")


def _text_encoder_option(opts: TrainOptions, cls: type[Model]) -> str | None:
    """--text-encoder's folder, resolved; refused for a model that reads no text."""
    if opts.text_encoder is None:
        return None
    if not cls.has(zoo.Capability.TEXT_CONDITIONAL):
        raise UsageError(f"--text-encoder is for models that draw from text (like stackgan); {cls.name} reads none")
    folder = opts.text_encoder.expanduser()
    if not folder.is_dir():
        raise UsageError(f"--text-encoder {opts.text_encoder} is not a folder; give the folder of a "
                         "sentence-transformers model you have (one that model.save(FOLDER) wrote)")
    return str(folder.resolve())


def _engine_options(opts: TrainOptions, precision: str, clip_grad: float) -> EngineOptions:
    """The run's precision and clipping (kept by the run) with this process's speed options."""
    return EngineOptions(precision, clip_grad, compile=opts.compile, channels_last=opts.channels_last,
                         tf32=opts.tf32)


def _spec_of(meta: dict[str, Any], path: Path) -> DataSpec:
    try:
        return DataSpec.from_dict(meta["data"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ZooError(f"{path} is not a checkpoint zoo wrote: its data spec is unreadable ({exc})") from None


def _size_text(dims: tuple[int, int] | None) -> int | str | None:
    """--size as the checkpoint records it: 64, "64x128", "full" or None."""
    if dims is None:
        return None
    if dims == FULL:
        return "full"
    return dims[0] if dims[0] == dims[1] else f"{dims[0]}x{dims[1]}"


def _init_from(opts: TrainOptions, cls: type[Model]) -> Path | None:
    if opts.init_from is None:
        return None
    path = runs.find_checkpoint(opts.init_from)
    meta = ckpt_io.read_meta(path)  # a damaged or foreign file is refused now
    if cls.has(zoo.Capability.TEXT_CONDITIONAL):
        folder = str(opts.text_encoder.expanduser().resolve()) if opts.text_encoder is not None else None
        _require_named_encoder(meta["train"].get("data"), folder, f"--init-from {opts.init_from}")
    return path


def _user_config(cls: type[Model], opts: TrainOptions, base: dict[str, Any] | None = None,
                 base_source: str = "") -> zoo.Config:
    """The config from the defaults, ``base``, then what the user gave: a config file,
    --set, and the flags that are config keys."""
    return config_io.resolve(cls.Config, config_file=opts.config_file, sets=opts.sets,
                             flags={"batch_size": opts.batch_size, "noise": opts.noise},
                             base=base, base_source=base_source)


# -- the data -------------------------------------------------------------------------------------

@dataclass
class TrainingData:
    prepared: PreparedData
    spec: zoo.DataSpec
    """What the model is built for: the prepared data's, or the derived pairs'."""
    derivation: Derivation | None = None
    text_encoder: tuple[Any, str] | None = None
    """A text-conditional model's frozen encoder, and where it came from (see :func:`_text_encoder`)."""

    def batches(self, batch_size: int, seed: int, device: torch.device,
                share: tuple[int, int] = (0, 1)) -> TensorBatches:
        d = self.prepared
        crops = self.derivation is not None and self.derivation.crop
        return TensorBatches(d.images, d.labels, batch_size, seed, device, targets=d.targets,
                             paired=self.spec.pairing != "unpaired", conditions=d.conditions,
                             derive=self.derivation, photos=d.photos if crops else None,
                             target_photos=d.target_photos if crops else None, share=share)

    def examples(self, n: int, seed: int, device: torch.device) -> zoo.Batch:
        """A fixed, seeded batch of training examples, for the previews that show inputs:
        drawn as training draws them (pairs, unpaired domains, derived pairs, conditions)."""
        d = self.prepared
        size = n if d.photos is not None and self.derivation is not None and self.derivation.crop else \
            min(n, len(d.images), len(d.targets) if d.targets is not None else n)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # a derivation's random crops
            batches = self.batches(size, seed, device)
            batch = batches.next()
        if d.tokens is not None:  # captioned: each example's first caption, and its words for the labels
            index = batches.order[:size].cpu()
            batch.conditions[zoo.Condition.TEXT.value] = d.conditions[zoo.Condition.TEXT.value][index, 0].float().to(
                batch.images.device)
            batch.captions = [d.caption(int(i)) for i in index]
        return batch


def load_data(p: Plan, opts: TrainOptions, console: Console) -> tuple[Plan, TrainingData]:
    """The prepared data, checked against the model; the plan with any small-data values."""
    prepared = prepare(p.data, size=p.size, channels=p.channels,
                       data_dir=Path(p.data_dir) if p.data_dir else None, classes=p.classes,
                       subset=p.subset, direction=p.direction, console=console)
    text_encoder = None
    if p.cls.has(zoo.Capability.TEXT_CONDITIONAL) and prepared.tokens is not None:
        text_encoder, prepared = _text_encoder(p, prepared, console)
        if isinstance(text_encoder[0], InstalledEncoder):  # kept by the run (an --init-from's too) for --resume
            p = replace(p, text_encoder=str(text_encoder[0].folder))
    spec = prepared.spec
    for condition in p.cls.needs():
        if not spec.has(condition):
            if condition is zoo.Condition.CLASS:
                raise UsageError(f"{p.cls.name} is class-conditional and needs labelled data; {p.data} has no "
                                 "labels (for folder: data, put each class's images in its own sub-folder)")
            if condition is zoo.Condition.TEXT:
                raise UsageError(f"{p.cls.name} draws images from text and needs captioned data; {p.data} has no "
                                 "captions (use captions:fashion, or captions:PATH: a folder of images with a .txt "
                                 "of captions beside each)")
            raise UsageError(f"{p.cls.name} is {condition.value}-conditional and needs data with a "
                             f"{condition.value} for each image; {p.data} has none")
    _check_pairing(p.cls, spec.pairing or ("derived" if "derived" in p.cls.data_pairing else ""), p.data)
    if p.resume_from is None and len(prepared) < SMALL_DATA and p.cls.small_data:
        p = _small_data_config(p, opts, len(prepared), console)
    # Pairs derived on the fly (super-resolution): the model sees the derived shapes.
    derivation = superres.derivation_of(p.cls, p.config)
    if derivation is not None and spec.pairing == "paired":
        _check_resolution_pairs(p.cls.name, derivation, prepared, p.data)
        spec = derivation.paired_spec(spec)
    elif derivation is not None:
        spec = derivation.spec(spec)
    p.cls.check_data(p.config, spec)
    return p, TrainingData(prepared, spec, derivation, text_encoder)


def _check_resolution_pairs(model: str, derivation: Derivation, prepared: PreparedData, data: str) -> None:
    """Paired data for an upscaler: low-resolution photos (A) and high-resolution ones (B),
    each B ``factor`` times its A, kept at full size so that crops of both align."""
    factor = derivation.factor
    if prepared.photos is None or prepared.target_photos is None or not derivation.crop:
        raise UsageError(f"{model} trains on paired data as low- and high-resolution photos at full size: "
                         f"paired:PATH with A/ (low) and B/ (high, {factor}x larger) and --size full")
    check_pairs(prepared.photos, prepared.target_photos, factor, data, model)


def _small_data_config(p: Plan, opts: TrainOptions, count: int, console: Console) -> Plan:
    """The plan with the model's small-data values for the keys the user left alone."""
    config = _user_config(p.cls, opts, p.cls.small_data, f"{p.cls.name}'s small-data values")
    before, after = config_io.to_dict(p.config), config_io.to_dict(config)
    changed = [key for key in after if after[key] != before[key]]
    if changed:
        values = ", ".join(f"{key}={after[key]}" for key in changed)
        console.print(f"note: {count:,} training images is a small data set; using {values} "
                      f"({p.cls.name}'s choice for fewer than {SMALL_DATA:,} images; choose "
                      f"otherwise with --set, e.g. --set {changed[0]}=...)", highlight=False)
    return replace(p, config=config)


# -- the run ----------------------------------------------------------------------------------------

def train(opts: TrainOptions, console: Console | None = None) -> Path:
    """Run a training job; returns the run folder. Under torchrun, this is one process of
    several (see :mod:`zoo.training.distributed`): rank 0 writes, every process trains."""
    console = console or make_console()
    p = plan(opts)
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


def _text_encoder(p: Plan, prepared: PreparedData, console: Console) -> tuple[tuple[Any, str], PreparedData]:
    """A text-conditional model's frozen text encoder, and the data's captions as it embeds
    them: continuing a run (``--resume``) or starting from one (``--init-from``), that run's
    (zoo's own, held by value, or an installed one by reference); else the installed model
    ``--text-encoder`` names; else the one the data was prepared with. Its networks read only
    their encoder's embeddings, so the captions are embedded again when it is not the data's
    (the data was prepared again, is other captioned data, or the encoder is installed);
    before the model is built, as the embeddings' length is the model's ``spec.text_dim``."""
    from zoo.data import text
    from zoo.pipelines.captioned import embedded_by

    encoder, source = prepared.text_encoder()
    earlier = p.resume_from or p.init_from
    saved = ckpt_io.load(earlier).state.get("text_encoder") if earlier is not None else None
    if saved is not None:
        folder = Path(p.text_encoder) if p.text_encoder is not None else None
        if folder is not None and isinstance(saved, dict) and "installed" not in saved:
            raise UsageError(f"--init-from {earlier} reads text with its own encoder, not --text-encoder "
                             f"{p.text_encoder}: its networks know only that one's embeddings; drop one of them")
        encoder = text.encoder_from_state(saved, folder)  # an installed one from the folder the user named
        source = f"{earlier} (fingerprint {encoder.fingerprint()})"
    elif p.text_encoder is not None:
        encoder = text.InstalledEncoder.load(Path(p.text_encoder))
        source = f"{p.text_encoder} (sentence-transformers, fingerprint {encoder.fingerprint()})"
    prepared, again = embedded_by(prepared, encoder)
    if again:
        whose = f"{earlier}'s own encoder" if saved is not None else f"the model in {p.text_encoder}"
        console.print(f"[cyan]note:[/] the {len(prepared):,} images' captions of {p.data} were embedded by {whose} "
                      "(not the encoder they were prepared with)")
    return (encoder, source), prepared


def _warm_start(model: Model, path: Path, console: Console) -> None:
    source = ckpt_io.load(path)
    copied, fresh = model.warm_start(source.state["model"])
    if not copied:
        raise UsageError(f"--init-from {path}: none of its weights fit {model.name} "
                         f"(it is a {source.plugin} checkpoint)")
    console.print(f"warm start from {path}: {len(copied)} weight tensors copied"
                  + (f", {len(fresh)} left as initialised" if fresh else ""), highlight=False)


# -- helpers ------------------------------------------------------------------------------------

def _require_noise_key(cls: type[Model]) -> None:
    if not cls.has(Capability.LATENT):
        able = ", ".join(registry.registry().with_capability(Capability.LATENT))
        raise UsageError(f"--noise: {cls.name} draws no latent vector (models that do: {able})")
    if "noise" not in {f.name for f in config_io.describe(cls.Config)}:
        raise UsageError(f"--noise: {cls.name} has a fixed N(0, 1) prior (its config has no noise key)")


def _check_pairing(cls: type[Model], pairing: str, data: str) -> None:
    """Two-domain data for the models that translate, one-domain data for the rest."""
    if pairing in cls.data_pairing or not (pairing or cls.data_pairing):
        return
    if not pairing:
        kinds = " or ".join(f"{k}:..." for k in cls.data_pairing if k != "derived")
        raise UsageError(f"{cls.name} translates images and trains on two-domain data ({kinds}), "
                         f"e.g. --data paired:edges2fashion or unpaired:fashion:sneaker,ankle-boot; "
                         f"{data} is one set of images")
    able = registry.registry().trained_on(pairing)
    if not cls.data_pairing:
        raise UsageError(f"{cls.name} learns from one set of images; {data} is two-domain data for "
                         f"image-to-image models ({', '.join(able) or 'none installed'})")
    raise UsageError(f"{cls.name} needs {' or '.join(cls.data_pairing)} data; {data} is {pairing} "
                     f"(models for it: {', '.join(able) or 'none installed'})")
