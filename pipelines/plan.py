"""What a training run is, resolved before any work: the options a user gave
(:class:`TrainOptions`) become a :class:`Plan` (model class, config, data, seed, engine), for
a new run from the defaults and what the user set, or for a resumed run from its checkpoint,
where a flag that disagrees with it is refused. Every bad combination is refused here, in
one line, before anything is prepared or written."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zoo
from zoo import config as config_io
from zoo import presets, registry
from zoo.data import superres
from zoo.data.sources.pairs import check_direction, folder_of, pairing_of
from zoo.errors import UsageError, ZooError
from zoo.model import Model
from zoo.pipelines.prep import FULL, parse_size
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs
from zoo.spec import Capability, DataSpec
from zoo.training.engine import EngineOptions

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
    augment: str | None = None
    """The ``augment`` config key (ada, or a DiffAugment policy), for models that have it."""
    mirror: bool = False
    """The ``mirror`` config key on: x-flips of the real images."""
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
    preset: str | None = None
    """A named recipe of the model's (``--preset``): its options and config keys, under what
    the user gives."""
    command: str | None = None
    """The command line that asked for this run, as typed (kept in run.json for its model card)."""


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
    command: str | None = None
    preset: dict[str, Any] | None = None
    """The preset a new run was made from: its name, file and where each value came from."""
    options: TrainOptions | None = None
    """The options the run trains with: the user's, and a preset's where the user gave none
    (the train pipeline reads its length, previews and evaluation from them)."""
    preset_config: dict[str, Any] = field(default_factory=dict)
    """The config keys the preset set: they stand over the model's small-data values."""

    @property
    def data_record(self) -> dict[str, Any]:
        """How the data was asked for, as the checkpoint keeps it for --resume."""
        record = {"source": self.data, "size": self.size, "channels": self.channels, "classes": self.classes,
                  "subset": self.subset, "data_dir": self.data_dir, "direction": self.direction}
        return record | ({"text_encoder": self.text_encoder} if self.text_encoder is not None else {})


def plan(opts: TrainOptions) -> Plan:
    """Resolve model, config, data and seed; refuse bad combinations before any work."""
    preset = None
    if opts.preset is not None:
        if opts.resume is not None:
            raise UsageError("--preset starts a new run; --resume continues one as it was: give one of them")
        preset = presets.get(registry.get(opts.model), opts.preset)
        options, sources = presets.apply(preset, {k: getattr(opts, k) for k in presets.OPTIONS})
        opts = dataclasses.replace(opts)
        for key in presets.OPTIONS:
            setattr(opts, key, options.get(key))
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
    init_from = _init_from(opts, cls)
    data_dir = str(opts.data_dir.expanduser().resolve()) if opts.data_dir is not None else None
    text_encoder = _text_encoder_option(opts, cls)
    if opts.resume is None:
        made = _new_run(opts, cls, init_from, data_dir, text_encoder, preset)
        made.command, made.options = opts.command, opts
        if preset is not None:
            made.preset, made.preset_config = presets.record(preset, sources, opts.sets), dict(preset.config)
        return made
    if init_from is not None:
        raise UsageError("--init-from starts a new run from another run's weights; --resume continues "
                         "one: give one of them")
    return _resumed_run(opts, opts.resume, cls, data_dir, text_encoder)


def _new_run(opts: TrainOptions, cls: type[Model], init_from: Path | None, data_dir: str | None,
             text_encoder: str | None, preset: presets.Preset | None = None) -> Plan:
    """A new run: the model's defaults and what the user set, for the data named."""
    _check_eval_features(opts, {})
    if opts.data is None:
        raise UsageError(f"--data is required: which data set should {opts.model} learn? "
                         f"(e.g. zoo train {opts.model} --data mnist)")
    if opts.noise is not None:
        _require_noise_key(cls)
    for flag, key, given in (("--augment", "augment", opts.augment is not None), ("--mirror", "mirror", opts.mirror)):
        if given:
            _require_key(cls, flag, key)
    # The kind of data is known from its name: refuse a mismatch before preparing anything.
    check_pairing(cls, pairing_of(opts.data) or ("derived" if "derived" in cls.data_pairing else ""), opts.data)
    size = _size_text(parse_size(opts.size))
    config = user_config(cls, opts, *((preset.config, f"preset {preset.name} ({preset.file})") if preset else ()))
    derivation = superres.derivation_of(cls, config)
    if size is None and derivation is not None and derivation.crop and (
            not pairing_of(opts.data) or (pairing_of(opts.data) == "paired" and folder_of(opts.data))):
        size = "full"  # crops come from the photos whole, not from photos shrunk to one size
    engine = _engine_options(opts, opts.precision or "fp32", opts.clip_grad or 0.0)  # refused now if bad
    direction = check_direction(opts.data, opts.direction)  # one spelling: AtoB or BtoA
    return Plan(cls, config, opts.data, size, opts.channels, 0 if opts.seed is None else opts.seed, opts.classes,
                opts.subset, data_dir, direction, opts.minutes, engine, init_from=init_from,
                text_encoder=text_encoder)


def _resumed_run(opts: TrainOptions, resume: str, cls: type[Model], data_dir: str | None,
                 text_encoder: str | None) -> Plan:
    """A resumed run: everything comes from its checkpoint; a flag that disagrees is refused."""
    path = runs.find_checkpoint(resume)
    meta = ckpt_io.read_meta(path)
    if meta["plugin"] != cls.name:
        raise UsageError(f"--resume {resume}: that checkpoint is from {meta['plugin']}, not {cls.name}")
    if str(meta["plugin_version"]) != str(cls.version):
        raise UsageError(f"--resume {resume}: that checkpoint was written by {cls.name} version "
                         f"{meta['plugin_version']}; the installed plugin is version {cls.version}. Start a "
                         f"new run from its weights: zoo train {cls.name} --data DATA --init-from {resume}")
    saved = meta["train"]
    if "images" in saved:
        ckpt_io.check_resumable(saved, path)
    else:
        raise UsageError(f"--resume {resume}: that checkpoint was written by zoo "
                         f"{saved.get('zoo_version', '0.1')} before training counted images; it samples "
                         f"as before but cannot resume. Start a new run from its weights: zoo train "
                         f"{cls.name} --data {saved['data']['source']} --init-from {resume}")
    if (opts.sets or opts.config_file or opts.batch_size is not None or opts.noise is not None
            or opts.augment is not None or opts.mirror):
        raise UsageError("a resumed run keeps its config; drop --set/--config/--batch-size/--noise/--augment/--mirror, "
                         "or start a new run to change them")
    _check_eval_features(opts, runs.read_run_info(path.parent), resume=resume)
    data = saved["data"]
    direction = check_direction(data["source"], opts.direction) if opts.direction is not None else None
    _require_named_encoder(data, text_encoder, f"--resume {resume}")
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
    if "export" in meta["train"]:
        raise UsageError(f"--init-from {opts.init_from} is an export, which keeps only the networks drawing needs "
                         "(a GAN's moving average, not the generator it averages); start from the run it came from")
    if cls.has(zoo.Capability.TEXT_CONDITIONAL):
        folder = str(opts.text_encoder.expanduser().resolve()) if opts.text_encoder is not None else None
        _require_named_encoder(meta["train"].get("data"), folder, f"--init-from {opts.init_from}")
    return path


def user_config(cls: type[Model], opts: TrainOptions, base: dict[str, Any] | None = None,
                 base_source: str = "") -> zoo.Config:
    """The config from the defaults, ``base``, then what the user gave: a config file,
    --set, and the flags that are config keys."""
    return config_io.resolve(cls.Config, config_file=opts.config_file, sets=opts.sets,
                             flags={"batch_size": opts.batch_size, "noise": opts.noise, "augment": opts.augment,
                                    "mirror": True if opts.mirror else None},
                             base=base, base_source=base_source)


def _require_key(cls: type[Model], flag: str, key: str) -> None:
    """Refuse a flag that sets a config key the model does not have, naming the models that do."""
    if key not in {f.name for f in config_io.describe(cls.Config)}:
        able = [e.name for e in registry.registry().entries()
                if e.model is not None and key in {f.name for f in config_io.describe(e.model.Config)}]
        raise UsageError(f"{flag}: {cls.name} has no {key} key in its config (models that do: {', '.join(able)})")


def _require_noise_key(cls: type[Model]) -> None:
    if not cls.has(Capability.LATENT):
        able = ", ".join(registry.registry().with_capability(Capability.LATENT))
        raise UsageError(f"--noise: {cls.name} draws no latent vector (models that do: {able})")
    if "noise" not in {f.name for f in config_io.describe(cls.Config)}:
        raise UsageError(f"--noise: {cls.name} has a fixed N(0, 1) prior (its config has no noise key)")


def check_pairing(cls: type[Model], pairing: str, data: str) -> None:
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
