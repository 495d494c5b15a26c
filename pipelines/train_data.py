"""The data a run trains on: prepared once (:func:`load_data`), checked against the model,
with the pairs a super-resolution model derives and the text encoder a text-conditional
model reads; :class:`TrainingData` hands out the shuffled batches and the fixed examples the
previews show."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import zoo
from zoo import config as config_io
from zoo.data import superres
from zoo.data.memory import PreparedData, TensorBatches, check_pairs
from zoo.data.sentence_encoder import InstalledEncoder
from zoo.data.superres import Derivation
from zoo.errors import UsageError
from zoo.model import SMALL_DATA
from zoo.pipelines.plan import Plan, TrainOptions, check_pairing, user_config
from zoo.pipelines.prep import prepare
from zoo.records import checkpoint as ckpt_io


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
    check_pairing(p.cls, spec.pairing or ("derived" if "derived" in p.cls.data_pairing else ""), p.data)
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
    """The plan with the model's small-data values for the keys the user (or a preset) left alone."""
    base = {**p.cls.small_data, **p.preset_config}
    config = user_config(p.cls, opts, base, f"{p.cls.name}'s small-data values or the preset's")
    before, after = config_io.to_dict(p.config), config_io.to_dict(config)
    changed = [key for key in after if after[key] != before[key]]
    if changed:
        values = ", ".join(f"{key}={after[key]}" for key in changed)
        console.print(f"note: {count:,} training images is a small data set; using {values} "
                      f"({p.cls.name}'s choice for fewer than {SMALL_DATA:,} images; choose "
                      f"otherwise with --set, e.g. --set {changed[0]}=...)", highlight=False)
    return replace(p, config=config)


def _text_encoder(p: Plan, prepared: PreparedData, console: Console) -> tuple[tuple[Any, str], PreparedData]:
    """A text-conditional model's frozen text encoder, and the data's captions as it embeds
    them: continuing a run (``--resume``) or starting from one (``--init-from``), that run's
    (zoo's own, held by value, or an installed one by reference); else the installed model
    ``--text-encoder`` names; else the one the data was prepared with. Its networks read only
    their encoder's embeddings, so the captions are embedded again when it is not the data's
    (the data was prepared again, is other captioned data, or the encoder is installed);
    before the model is built, as the embeddings' length is the model's ``spec.text_dim``."""
    from zoo.data import sentence_encoder
    from zoo.pipelines.captioned import embedded_by

    encoder, source = prepared.text_encoder()
    earlier = p.resume_from or p.init_from
    saved = ckpt_io.load(earlier).state.get("text_encoder") if earlier is not None else None
    if saved is not None:
        folder = Path(p.text_encoder) if p.text_encoder is not None else None
        if folder is not None and isinstance(saved, dict) and "installed" not in saved:
            raise UsageError(f"--init-from {earlier} reads text with its own encoder, not --text-encoder "
                             f"{p.text_encoder}: its networks know only that one's embeddings; drop one of them")
        encoder = sentence_encoder.encoder_from_state(saved, folder)  # an installed one from the folder the user named
        source = f"{earlier} (fingerprint {encoder.fingerprint()})"
    elif p.text_encoder is not None:
        encoder = sentence_encoder.InstalledEncoder.load(Path(p.text_encoder))
        source = f"{p.text_encoder} (sentence-transformers, fingerprint {encoder.fingerprint()})"
    prepared, again = embedded_by(prepared, encoder)
    if again:
        whose = f"{earlier}'s own encoder" if saved is not None else f"the model in {p.text_encoder}"
        console.print(f"[cyan]note:[/] the {len(prepared):,} images' captions of {p.data} were embedded by {whose} "
                      "(not the encoder they were prepared with)")
    return (encoder, source), prepared
