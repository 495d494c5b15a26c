"""zoo export and zoo card: a trained model to hand on, with a model card that says what it is.

An export holds what drawing needs and nothing else, in the layout the Hugging Face hub
expects:

- ``model.safetensors``: the networks a model draws, translates or encodes with (a GAN's
  moving-average generator, a translator, an upscaler, a VAE's encoder and decoder), without
  the discriminator, the live generator a moving average was kept of, or any optimiser
  state (:meth:`zoo.Model.training_only` names what is left out). It is a zoo checkpoint
  (the same header, marked as an export), so every command that takes a run takes the
  export folder, and :func:`zoo.load` loads it.
- ``config.json``: the model, its config, the data's shape and where the weights came from.
- ``README.md``: the model card (:func:`card`), with YAML front matter the hub reads.
- ``samples.png``: the card's picture (samples, or the run's latest preview).
- ``model.onnx`` with ``--format onnx`` (:mod:`zoo.pipelines.onnx_export`).

Everything is written into a new folder beside ``out`` and moved into place whole: a crash
leaves no half export, and an existing export is replaced only with ``--force``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import zoo
from zoo.data import superres
from zoo.display import figures
from zoo.display.console import make_console
from zoo.errors import UsageError
from zoo.model import Model
from zoo.pipelines.runs_table import duration
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs
from zoo.records.run_info import EVAL_FILE, EVAL_METRICS
from zoo.spec import Capability

FORMATS = ("safetensors", "onnx")
DTYPES = {"float32": torch.float32, "float16": torch.float16}
FORMAT = "zoo-export/1"
PICTURE = "samples.png"
CARD = "README.md"
PIPELINE_TAGS = {Capability.TEXT_CONDITIONAL: "text-to-image", Capability.IMAGE_TO_IMAGE: "image-to-image",
                 Capability.LATENT: "unconditional-image-generation"}
"""The hub's task for each kind of model (the first that applies)."""
RUN_FACTS = ("command", "hardware", "device", "precision", "preset", "data", "seed")
"""What an export keeps of its run's run.json (for its card, and an export of the export)."""
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist",
                "cifar10": "uoft-cs/cifar10", "svhn": "ufldl-stanford/svhn"}


def export(target: str, out: Path, *, which: str = "latest", fmt: str = "safetensors", dtype: str = "float32",
           dropout: str = "off", license: str | None = None, force: bool = False,
           console: Console | None = None) -> Path:
    """Export a run (or an export) into the new folder ``out``; returns it."""
    console = console or make_console()
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    _check_license(license)
    path = runs.find_checkpoint(target, which)
    out = _check_place(out.expanduser(), path.parent)
    model, checkpoint = runs.load_model(path, "cpu", reads_text=False)  # an installed text encoder: by reference
    model.eval()
    if fmt == "onnx":
        from zoo.pipelines import onnx_export

        onnx_export.graphs(model, dropout)  # refused now, before anything is written, if it cannot be
    elif dropout != "off":
        raise UsageError("--dropout is for --format onnx (zoo translate draws with dropout off)")
    _check_out(out, force)

    kept = kept_weights(model, DTYPES[dtype])
    overflowed = [k for k, v in kept.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if overflowed:
        raise UsageError(f"{overflowed[0]} does not fit in {dtype} (a value beyond its range); export in float32")
    run_dir = path.parent
    info = _public(runs.read_run_info(run_dir) if not runs.is_export(run_dir) else _export_info(run_dir))
    evaluation = _public(_evaluation(run_dir))
    record = {k: v for k, v in checkpoint.train.items() if k in ("step", "images", "epoch", "seconds", "seed",
                                                                 "run", "zoo_version", "saved", "precision")}
    if isinstance(checkpoint.train.get("data"), dict):  # how the data was asked for: zoo eval reads it
        record["data"] = _public({k: v for k, v in checkpoint.train["data"].items() if k != "data_dir"})
    record["export"] = {"from": f"{run_dir.name}/{path.name}", "checkpoint": which, "dtype": dtype,
                        "left_out": list(model.training_only())}
    dropped = model.training_only()
    extra = {k: v for k, v in (checkpoint.state.get("extra") or {}).items() if k not in dropped}
    state: dict[str, Any] = {"model": kept, "extra": extra}
    if "text_encoder" in checkpoint.state:
        state["text_encoder"] = checkpoint.state["text_encoder"]
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    scratch.chmod(0o777 & ~_umask())  # a folder as any other the user makes, not mkdtemp's private one
    try:
        weights = scratch / runs.EXPORT_WEIGHTS
        ckpt_io.save(weights, ckpt_io.Checkpoint(checkpoint.plugin, checkpoint.plugin_version, checkpoint.config,
                                                 checkpoint.data, record, state))
        picture = _picture(model, run_dir, scratch / PICTURE)
        onnx = []
        if fmt == "onnx":
            from zoo.pipelines import onnx_export

            onnx = onnx_export.export(model, scratch, dropout)
        config = {
            "library_name": "zoo", "model_type": model.name, "format": FORMAT, "zoo_version": zoo.__version__,
            "plugin": checkpoint.plugin, "plugin_version": checkpoint.plugin_version, "config": checkpoint.config,
            "data": checkpoint.data, "trained": record, "weights": {
                "file": runs.EXPORT_WEIGHTS, "dtype": dtype, "bytes": weights.stat().st_size,
                "parameters": sum(t.numel() for t in kept.values() if t.is_floating_point()),
                "checkpoint_bytes": path.stat().st_size},
            "license": license or "unknown", "onnx": onnx, "evaluation": evaluation,
            "run": {k: info[k] for k in RUN_FACTS if k in info},
        }
        (scratch / runs.EXPORT_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (scratch / CARD).write_text(card_text(model, checkpoint.train, info, evaluation, license,
                                              picture=PICTURE if picture else None, export=config),
                                    encoding="utf-8")
        _replace(out, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    sizes = f"{_mb(config['weights']['bytes'])} of weights ({dtype}; the checkpoint: {_mb(path.stat().st_size)})"
    checked = "".join(f"; {o['file']} checked with onnxruntime (largest difference {o['max_abs_diff']:.1e})"
                      if o["max_abs_diff"] is not None else f"; {o['file']} (dropout on: shapes checked)"
                      for o in onnx)
    console.print(f"exported {model.name} (step {checkpoint.train.get('step', '?')}) -> {out}/: {sizes}{checked}; "
                  f"the card is {out / CARD}", highlight=False)
    return out


def kept_weights(model: Model, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The model's weights drawing needs: all but its training-only networks', floats in ``dtype``."""
    dropped = model.training_only()
    return {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in model.state_dict().items() if not runs._under(k, dropped)}


def card(target: str, *, which: str = "latest", license: str | None = None) -> str:
    """The model card of a run or an export, as Markdown with the hub's YAML front matter."""
    _check_license(license)
    path = runs.find_checkpoint(target, which)
    run_dir = path.parent
    if runs.is_export(run_dir):
        config = _export_info(run_dir)
        card_file = run_dir / CARD
        if card_file.is_file() and license is None:
            return card_file.read_text(encoding="utf-8")
    model, checkpoint = runs.load_model(path, "cpu", reads_text=False)
    info = runs.read_run_info(run_dir) if not runs.is_export(run_dir) else config
    return card_text(model, checkpoint.train, _public(info), _public(_evaluation(run_dir)), license)


def card_text(model: Model, train: dict[str, Any], info: dict[str, Any], evaluation: dict[str, Any],
              license: str | None, *, picture: str | None = None, export: dict[str, Any] | None = None) -> str:
    """The card: what the model is, what it learnt from and how, how well it does (with the
    protocol), how to use it, and what it is not for."""
    from zoo.pipelines.report import changed_config, train_command

    cls = type(model)
    spec = model.spec
    data = (train.get("data") or {}).get("source") or info.get("data") or spec.name
    tag = next((t for cap, t in PIPELINE_TAGS.items() if model.has(cap)), None)
    if tag is None and model.has(Capability.ENCODER):
        tag = "image-feature-extraction"
    front = ["---", f"license: {license or 'unknown'}", "library_name: zoo",
             "tags:", "- zoo", f"- {cls.name}", f"- {cls.family.lower()}"]
    if tag:
        front.append(f"pipeline_tag: {tag}")
    if str(data) in HUB_DATASETS:
        front += ["datasets:", f"- {HUB_DATASETS[str(data)]}"]
    if evaluation:
        front += ["metrics:"] + [f"- {k}" for k in ("fid", "kid", "precision", "recall") if k in evaluation]
    front.append("---")

    lines = [f"# {cls.name} trained on {data}", "",
             f"{cls.summary}. A zoo model ({cls.family}, plugin version {cls.version})"
             f"{f'; paper: {cls.paper}' if cls.paper else ''}.", ""]
    if picture:
        what = "Samples (seed 0)" if model.has(Capability.LATENT) else "The run's latest preview"
        lines += [f"![{what}]({picture})", "", f"*{what}.*", ""]
    shape = f"{spec.channels} x {spec.height} x {spec.width}"
    lines += ["## Model", "", f"- Model: `{cls.name}`: {cls.summary}", f"- Paper: {cls.paper or 'none given'}",
              f"- Images: {shape} (channels x height x width), pixels in [-1, 1]"]
    if spec.class_names and model.has(Capability.CLASS_CONDITIONAL):
        lines.append(f"- Classes: {', '.join(spec.class_names)}")
    if model.has(Capability.LATENT):
        lines.append(f"- Latent: {model.latent_dim} numbers, z ~ {model.prior}")
    if export:
        weights = export["weights"]
        lines.append(f"- Weights: {weights['parameters']:,} numbers in {weights['dtype']} ({_mb(weights['bytes'])});"
                     f" left out: {', '.join(export['trained']['export']['left_out']) or 'nothing'} and the "
                     f"optimiser state (the run's checkpoint: {_mb(weights['checkpoint_bytes'])})")
        for graph in export.get("onnx") or []:
            inputs = ", ".join(f"`{k}` {v}" for k, v in graph["inputs"].items())
            diff = graph["max_abs_diff"]
            checked = f"{diff:.1e}" if diff is not None else "not compared: its dropout draws anew"
            noise = f"; dropout {graph['dropout']}" if any(isinstance(m, torch.nn.Dropout) for m in model.modules()) \
                else ""
            lines.append(f"- ONNX: `{graph['file']}`, inputs {inputs}, output `{graph['output']}`{noise}; "
                         f"onnxruntime against torch on the export's check, largest difference: {checked}")
    changed = changed_config(cls.name, info.get("config") or {})
    if changed:
        lines.append("- Config: " + ", ".join(f"`{k}={json.dumps(v)}`" for k, v in sorted(changed.items())))
    lines += ["", "## Training data", ""]
    record = train.get("data") or {}
    lines.append(f"- Data: `{data}`" + (f", subset {record['subset']}" if record.get("subset") else "")
                 + (f", classes {record['classes']}" if record.get("classes") else ""))
    lines.append("- Held out: zoo trains on the data's training split; `zoo eval` compares samples with the "
                 "held-out split (the test split of MNIST, Fashion-MNIST, CIFAR-10 and SVHN; a seeded tenth of a "
                 "folder), which training never reads.")
    lines += ["", "## Training", ""]
    command = info.get("command") or train_command(info, train)
    lines += [f"```\n{command}\n```", ""]
    if info.get("preset"):
        lines.append(f"- Preset: `{info['preset'].get('name')}` ({info['preset'].get('file', '')})")
    steps, epochs = train.get("step"), train.get("epoch")
    lines.append(f"- Length: {steps:,} steps, {train.get('images', 0):,} images seen"
                 + (f", {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "") if isinstance(steps, int)
                 else "- Length: not recorded")
    lines.append(f"- Time: {duration(train.get('seconds')) or 'not recorded'}"
                 + f" on {info.get('hardware') or info.get('device') or 'an unrecorded device'}"
                 + (f", {info['precision']}" if info.get("precision") else ""))
    lines.append(f"- Seed: {train.get('seed', info.get('seed', '?'))}; zoo {train.get('zoo_version', '?')}")
    lines += ["", "## Evaluation", ""]
    lines += _evaluation_lines(evaluation, train.get("step"))
    lines += ["", "## Use", "", "```python", "import zoo", "", 'model = zoo.load("THIS_FOLDER")']
    lines += [_use_line(model), "```", "", "From the command line, the folder takes the place of a run:", "",
              "```", _command_line(model), "```", "",
              "To put it on the Hugging Face hub (its own client; zoo adds no upload code):", "",
              "```", "hf upload YOUR_NAME/MODEL_NAME THIS_FOLDER", "```", ""]
    draws = model.has(Capability.LATENT)
    lines += ["## Intended use and limits", "",
              "- For teaching, research and demonstration: a baseline to measure against, a model to explore.",
              (f"- It draws only what `{data}` holds" if draws else f"- It translates images like `{data}`'s inputs")
              + f", at {spec.height} x {spec.width} pixels; outside that it gives nothing meaningful, and its "
              "figures hold for this data alone.",
              "- Generated images can be mistaken for real ones: say that they are generated when you show them."]
    if draws:
        lines.append("- A generative model can copy training images; the memorisation figure above (where measured) "
                     "says how often a sample lies nearer a training image than real held-out images do.")
    lines += [
              f"- License: {license or 'unknown (set with zoo export --license)'}; the training data's own "
              "license applies too.", ""]
    return "\n".join(front) + "\n\n" + "\n".join(lines)


def _evaluation_lines(evaluation: dict[str, Any], step: Any) -> list[str]:
    """``zoo eval``'s figures as the card shows them; figures of another step than the weights'
    are said to be so."""
    if not evaluation:
        return ["Not evaluated: `zoo eval RUN` measures it against the held-out split."]
    where = evaluation.get("checkpoint")
    measured = where.get("step") if isinstance(where, dict) else None
    lines = [f"`zoo eval`, protocol `{evaluation.get('protocol', 'not recorded')}`"
             + (f", step {measured:,}" if isinstance(measured, int) else "") + ":", "",
             "| figure | value | meaning |", "|---|---:|---|"]
    if isinstance(measured, int) and isinstance(step, int) and measured != step:
        lines[0:0] = [f"**These figures are of step {measured:,}; the weights here are of step {step:,}** "
                      "(`zoo eval` the run again to measure them).", ""]
    for key, (_, meaning) in EVAL_METRICS.items():
        value = evaluation.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            cell = meaning.replace("|", "\\|")  # "mean |output - target|": a pipe would end the cell
            lines.append(f"| {key} | {figures.number(float(value))} | {cell} |")
    detail = evaluation.get("protocol_detail") or {}
    if detail:
        judge = detail.get("extractor_accuracy")
        lines += ["", f"Features: {detail.get('extractor', '?')}"
                  + (f" (its accuracy on real held-out images: {judge:.1%})" if isinstance(judge, float) else "")
                  + f"; {detail.get('generated', '?')} generated against {detail.get('reference', '?')} held-out "
                  f"images ({detail.get('split', '?')} split)."]
    if isinstance(evaluation.get("memorisation"), (int, float)):
        real = _number(evaluation.get("memorisation_reference"))
        lines += ["", f"Memorisation check: {evaluation['memorisation']:.2%} of samples lie nearer a training image "
                  f"than held-out real images do (real images: {real:.2%})."]
    return lines


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _use_line(model: Model) -> str:
    if model.has(Capability.TEXT_CONDITIONAL):
        return 'images = model.sample(8, seed=0, text="a description")  # PIL images'
    if model.has(Capability.CLASS_CONDITIONAL) and model.has(Capability.LATENT):
        return f'images = model.sample(16, seed=0, classes="{model.spec.class_names[0]}")  # PIL images'
    if model.has(Capability.LATENT):
        return "images = model.sample(16, seed=0)  # PIL images"
    if model.has(Capability.IMAGE_TO_IMAGE):
        if superres.factor_of(model) > 1:
            return 'bigger = model.upscale("photo.png")  # a PIL image'
        return 'output = model.translate("input.png")  # a PIL image'
    return 'again = model.reconstruct("image.png")  # a PIL image'


def _command_line(model: Model) -> str:
    if model.has(Capability.TEXT_CONDITIONAL):
        return 'zoo sample THIS_FOLDER --n 16 --text "a description"'
    if model.has(Capability.LATENT):
        return "zoo sample THIS_FOLDER --n 16"
    if model.has(Capability.IMAGE_TO_IMAGE):
        return "zoo upscale THIS_FOLDER photo.png" if superres.factor_of(model) > 1 \
            else "zoo translate THIS_FOLDER input.png"
    return "zoo reconstruct THIS_FOLDER image.png"


def _picture(model: Model, run_dir: Path, path: Path) -> bool:
    """The card's picture: 16 samples of seed 0 (8 of each class), or the run's latest preview; False if neither."""
    if model.has(Capability.LATENT) and not model.has(Capability.TEXT_CONDITIONAL):
        from zoo.pipelines import sample as sampling

        asked = sampling.request(model, n=16 if not model.has(Capability.CLASS_CONDITIONAL)
                                 else 8 * model.spec.num_classes, seed=0)
        drawn = sampling.draw(model, asked)
        figures.save_grid(drawn.images, path, nrow=drawn.nrow, scale=2 if model.spec.height < 64 else 1)
        return True
    previews = sorted((run_dir / "progress").glob("step-*.png")) if (run_dir / "progress").is_dir() else []
    if previews:
        shutil.copyfile(previews[-1], path)
        return True
    if (run_dir / PICTURE).is_file():  # an export of an export keeps its picture
        shutil.copyfile(run_dir / PICTURE, path)
        return True
    return False


def _evaluation(run_dir: Path) -> dict[str, Any]:
    """The run's eval.json (an export's copy of it), without the paths of the machine it ran on."""
    found = runs.read_json(run_dir / EVAL_FILE)
    if found:
        if isinstance(found.get("checkpoint"), dict):
            found["checkpoint"] = {k: v for k, v in found["checkpoint"].items() if k != "path"}
        return found
    if runs.is_export(run_dir):
        return dict((runs.read_json(run_dir / runs.EXPORT_CONFIG) or {}).get("evaluation") or {})
    return {}


def _export_info(folder: Path) -> dict[str, Any]:
    """What an export's config.json keeps of its run, as run.json would say it."""
    config = runs.read_json(folder / runs.EXPORT_CONFIG) or {}
    return {**(config.get("run") or {}), "config": config.get("config") or {}}


def _check_place(out: Path, run_dir: Path) -> Path:
    """Refuse an OUT that is the working folder, holds it, or holds the run being exported."""
    where, here, source = out.resolve(), Path.cwd().resolve(), run_dir.resolve()
    if where == here or where in here.parents:
        raise UsageError(f"{out} is this folder or holds it; give a new folder for the export (exported/NAME)")
    if where == source or where in source.parents:
        raise UsageError(f"{out} holds the run being exported; give a folder of its own for the export")
    return out


def _check_out(out: Path, force: bool) -> None:
    """OUT is new, empty, or (with --force) an export zoo wrote, holding nothing else."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise UsageError(f"{out} is {'a link' if out.is_symlink() else 'a file'}; give a new folder for the export")
    if not any(out.iterdir()):
        out.rmdir()
        return
    if not force:
        raise UsageError(f"{out} already exists; pick another folder, or pass --force to replace the export in it")
    others = sorted(p.name for p in out.iterdir() if not _export_file(p.name)) if runs.is_export(out) else ["*"]
    if others:
        what = "is not a zoo export" if others == ["*"] else f"holds files zoo export did not write ({others[0]})"
        raise UsageError(f"{out} {what}; --force replaces only an export, whole: pick another folder")


def _export_file(name: str) -> bool:
    return name in (runs.EXPORT_WEIGHTS, runs.EXPORT_CONFIG, CARD, PICTURE) or (
        name.startswith("model") and name.endswith(".onnx"))


def _replace(out: Path, new: Path) -> None:
    """Move the finished export ``new`` to ``out``; an export already there is moved aside first
    and deleted only once the new one is in place (put back if that fails)."""
    if not out.exists():
        new.rename(out)
        return
    old = new.with_name(new.name + ".old")
    out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _check_license(license: str | None) -> None:
    import re

    if license is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}", license):
        raise UsageError(f"--license {license!r}: give an identifier such as mit, apache-2.0 or cc-by-4.0")


def _public(value: Any) -> Any:
    """``value`` with the user's home folder written ``~`` in every string: an export and its card
    are made to be handed on, and need not say where the user keeps their files."""
    home = str(Path.home())
    if isinstance(value, str):
        return value.replace(home, "~") if len(home) > 1 else value
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MB" if n >= 2**17 else f"{n / 1024:.1f} KB"
