"""The captions of captioned data, prepared: words, the text encoder, the embeddings.

``zoo prep`` calls :func:`encode_captions` for data whose source gave captions. It builds
the vocabulary from the training captions, trains zoo's text encoder on the training
images and their captions (:mod:`zoo.data.text`; the held-out part only measures it), and
encodes every caption once. The prepared files then hold, per image, its captions' token
ids (``text.tokens``, K x L: each image's captions cycled to K) and their embeddings
(``condition.text``, K x D, float16): batches draw one of the K at random.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

from zoo.data import sentence_encoder, text
from zoo.data.memory import CONDITION_PREFIX, TOKENS_KEY, PreparedData
from zoo.data.sources import RawData
from zoo.display.console import progress_bar
from zoo.errors import ZooError
from zoo.records import files
from zoo.records.paths import cache_dir
from zoo.spec import Condition


@dataclass
class Captioned:
    """What captions add to a prepared data set: tensors per split, and the meta record."""

    train: dict[str, torch.Tensor]
    heldout: dict[str, torch.Tensor]
    meta: dict[str, Any]
    encoder: text.TextEncoder
    record: dict[str, Any]


def token_table(captions: list[list[str]], vocabulary: text.Vocabulary, per_image: int, length: int) -> torch.Tensor:
    """N x K x L token ids: each image's captions in turn, cycled to ``per_image``."""
    out = torch.zeros(len(captions), per_image, length, dtype=torch.int32)
    for i, own in enumerate(captions):
        cycled = [own[k % len(own)] for k in range(per_image)]
        out[i] = vocabulary.encode(cycled, length).to(torch.int32)
    return out


def encode_captions(raw: RawData, console: Console, schedule: text.MatchingSchedule | None = None) -> Captioned:
    """Vocabulary, text encoder and embeddings for captioned ``raw`` data (and its held-out part)."""
    assert raw.captions is not None
    held = raw.heldout if raw.heldout is not None and raw.heldout.captions else None
    vocabulary = text.Vocabulary.build(c for own in raw.captions for c in own)
    if len(vocabulary) <= len(text.SPECIALS):
        raise ZooError("the captions hold no words zoo can read; give each image a caption with words")
    every = raw.captions + (held.captions if held is not None and held.captions else [])
    per_image = max(len(own) for own in every)
    length = max(1, min(text.MAX_WORDS, max(len(text.words(c)) for own in every for c in own)))
    tokens = token_table(raw.captions, vocabulary, per_image, length)
    held_tokens = token_table(held.captions, vocabulary, per_image, length) if held is not None and held.captions \
        else None
    with progress_bar(console, TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[loss]}"),
                      TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("training the text encoder", total=None, loss="")

        def advance(step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps, loss=f"loss {loss:.3f}")

        encoder, record = text.train_encoder(
            raw.images, tokens, vocabulary, schedule=schedule or text.MatchingSchedule(),
            heldout=(held.images, held_tokens) if held is not None and held_tokens is not None else None,
            progress=advance)
    record["fingerprint"] = encoder.fingerprint()
    top1 = record.get("heldout_top1_of_100")
    console.print(f"text encoder: {len(vocabulary) - len(text.SPECIALS)} words, {record['steps']} steps in "
                  f"{record['seconds']}s" + (f"; held out, {top1:.1%} of images pick their own caption of 100"
                                             if top1 is not None else ""))

    def tensors(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        return {TOKENS_KEY: tokens.contiguous(),
                CONDITION_PREFIX + Condition.TEXT.value: encoder.encode_tokens(tokens).to(torch.float16).contiguous()}

    meta = {"vocabulary": vocabulary.words[len(text.SPECIALS):], "per_image": per_image, "words": length,
            "encoder": record, "encoder_file": text.FILENAME}
    return Captioned(tensors(tokens), tensors(held_tokens) if held_tokens is not None else {}, meta, encoder, record)


def embedded_by(prepared: PreparedData, encoder: text.TextEncoder | sentence_encoder.InstalledEncoder,
                ) -> tuple[PreparedData, bool]:
    """The data's captions as ``encoder`` embeds them, and whether that meant re-embedding:
    as stored when it is the encoder they were embedded with at prep; else each caption
    again from its words (a run resumed, started from, or evaluated on data prepared again,
    or on other captioned data, or an installed encoder chosen with ``--text-encoder``: a
    model reads only its own encoder's embeddings). An installed encoder's are cached
    (:func:`installed_embeddings`)."""
    if prepared.tokens is None or Condition.TEXT.value not in prepared.conditions:
        return prepared, False
    if prepared.meta["text"]["encoder"].get("fingerprint") == encoder.fingerprint():
        return prepared, False
    words = [*text.SPECIALS, *prepared.meta["text"]["vocabulary"]]
    if isinstance(encoder, sentence_encoder.InstalledEncoder):
        embedded = installed_embeddings(prepared.tokens, words, encoder)
    else:  # zoo's own encoder is small: embedding again takes seconds
        embedded = encoder.embed_tokens(prepared.tokens, words).to(torch.float16)
    return dataclasses.replace(prepared, conditions={**prepared.conditions, Condition.TEXT.value: embedded}), True


EMBEDDINGS = "embeddings"
"""The folder of zoo's cache that holds installed encoders' embeddings of prepared captions."""
EMBEDDINGS_FORMAT = "zoo-embeddings/1"
"""Part of every cache key: bump it when how captions become sentences for an encoder changes."""


def installed_embeddings(tokens: torch.Tensor, words: list[str],
                         encoder: sentence_encoder.InstalledEncoder) -> torch.Tensor:
    """An installed encoder's embeddings (float16) of captions given as token ids over
    ``words``, from zoo's cache when that encoder (by its fingerprint) has embedded these very
    captions before: a sentence-transformers model takes minutes on a CPU for a caption set
    of CUB's size, which would otherwise be paid at every run's start, resume and evaluation.
    A damaged or unreadable cache file is embedded again; a cache that cannot be written is
    only slower."""
    import sentence_transformers

    version = getattr(sentence_transformers, "__version__", "")
    digest = hashlib.sha256(f"{EMBEDDINGS_FORMAT}|{version}|{encoder.fingerprint()}|{tuple(tokens.shape)}|"
                            f"{tokens.dtype}|".encode())
    digest.update("\n".join(words).encode())
    digest.update(tokens.cpu().contiguous().numpy().tobytes())
    folder = cache_dir() / EMBEDDINGS
    path = folder / f"{digest.hexdigest()[:40]}.safetensors"
    wanted = (*tokens.shape[:-1], encoder.dim)
    try:
        cached = files.load_tensors(path, "cached caption embeddings", "they are embedded again")[0].get("text") \
            if path.is_file() else None
    except (OSError, files.Damaged):
        cached = None
    if cached is not None and tuple(cached.shape) == wanted and cached.dtype == torch.float16:
        return cached
    embedded = encoder.embed_tokens(tokens, words).to(torch.float16)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files.clear_partial(folder)  # what writers killed mid-write left
        files.save_tensors(path, {"text": embedded}, {"encoder": str(encoder.folder)}, what="cached caption embeddings")
    except Exception:  # noqa: BLE001 (any failure to keep a cache only costs the next run the embedding)
        pass
    return embedded


def save_encoder(captioned: Captioned, folder: Path) -> None:
    text.save_encoder(captioned.encoder, folder / text.FILENAME, captioned.record)
