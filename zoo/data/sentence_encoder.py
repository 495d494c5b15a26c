"""A sentence encoder the user already has: a sentence-transformers model read from a folder
they name (``--text-encoder``), never downloaded, held by a checkpoint by reference (its
folder and a fingerprint of its files) rather than by value; zoo's own encoder is in
:mod:`zoo.data.text`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.data.text import UNKNOWN, TextEncoder, words
from zoo.errors import UsageError, ZooError


class InstalledEncoder(nn.Module):
    """A sentence-transformers model the user already has in a folder (one that
    ``SentenceTransformer.save(FOLDER)`` wrote, or a downloaded snapshot), used instead of
    zoo's own encoder by ``zoo train ... --text-encoder FOLDER``. It is read from that folder
    only, with the Hugging Face hub off: zoo never downloads one. Checkpoints hold it by
    reference (its folder and a fingerprint of its files), not by value: it may be hundreds of
    megabytes, and its weights are its authors'. Any word reads (its tokenizer splits words it
    does not know), so a prompt is refused only when it has no words."""

    KIND = "sentence-transformers"

    model: Any
    """The SentenceTransformer (an nn.Module, so it moves with the model it is attached to)."""

    def __init__(self, model: Any, folder: Path, fingerprint: str) -> None:
        super().__init__()
        self.model = model
        self.folder = folder
        self._fingerprint = fingerprint
        measure = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._dim = int(measure() or self._encode(["a"]).shape[1])

    @classmethod
    def load(cls, folder: Path, what: str = "--text-encoder") -> InstalledEncoder:
        import os

        folder = folder.expanduser()
        if not folder.is_dir():
            raise UsageError(f"{what} {folder} is not a folder; give the folder of a sentence-transformers model "
                             "you have (one that model.save(FOLDER) wrote): zoo never downloads one")
        fingerprint = folder_fingerprint(folder)
        quiet = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",  # the folder only: no hub, whatever it names
                 "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}  # read at import
        saved = {key: os.environ.get(key) for key in quiet}
        os.environ.update(quiet)
        try:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                hint = " (or leave it out to use zoo's own text encoder)" if what == "--text-encoder" else \
                    f" (this model reads text with the one in {folder})"
                raise UsageError(f"{what} needs the sentence-transformers package: pip install "
                                 f"'zoo-gan[text]'{hint}") from None
            try:
                model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
            except Exception as exc:  # noqa: BLE001 (a stranger's folder fails in many ways: each is one line)
                raise ZooError(f"{folder} could not be read as a sentence-transformers model ({type(exc).__name__}"
                               f"{': ' + str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return cls(model, folder.resolve(), fingerprint)

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: Sequence[str]) -> Tensor:
        device = next(iter(self.model.parameters()), torch.empty(0)).device
        out = self.model.encode(list(texts), batch_size=256, convert_to_tensor=True, normalize_embeddings=True,
                                show_progress_bar=False, device=str(device))
        return torch.as_tensor(out).float().reshape(len(texts), -1)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], what: str = "--text") -> Tensor:
        """Embeddings (N x dim) of prompts; one without words is refused."""
        for text in texts:
            if not words(text):
                raise UsageError(f"{what} {text!r} has no words to read; write a sentence, like \"a dark sneaker\"")
        return self._encode([" ".join(words(text)) for text in texts])  # as the captions were: lower case, words

    @torch.no_grad()
    def embed_tokens(self, tokens: Tensor, words: Sequence[str], chunk: int = 4096) -> Tensor:
        """Embeddings of a prepared data set's captions (token ids over its ``words``), each
        caption given to the model as its words."""
        flat = tokens.reshape(-1, tokens.shape[-1]).long()
        sentences = [" ".join(words[i] for i in row if i > UNKNOWN) for row in flat.tolist()]  # no <pad>, <unk>
        unique = sorted(set(sentences))  # a data set says the same caption many times
        where = {sentence: k for k, sentence in enumerate(unique)}
        table = torch.cat([self._encode(unique[k:k + chunk]).cpu() for k in range(0, len(unique), chunk)]) \
            if unique else torch.empty(0, self.dim)
        picked = table[torch.tensor([where[sentence] for sentence in sentences], dtype=torch.int64)] \
            if sentences else torch.empty(0, self.dim)
        return picked.view(*tokens.shape[:-1], self.dim)

    def fingerprint(self) -> str:
        return self._fingerprint

    def to_state(self) -> dict[str, Any]:
        """By reference: the folder, and its files' fingerprint."""
        return {"installed": self.KIND, "folder": str(self.folder), "fingerprint": self._fingerprint}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], folder: Path | None = None) -> InstalledEncoder:
        """The installed model a checkpoint names, read from ``folder``, the one the user
        names with ``--text-encoder``, and only if its fingerprint is the checkpoint's. The
        folder the checkpoint records is said, never read: a stranger's checkpoint may name
        ``/`` or a home folder, every file of which the fingerprint would read."""
        try:
            kind, recorded, fingerprint = str(state["installed"]), str(state["folder"]), str(state["fingerprint"])
        except KeyError as exc:
            raise ZooError(f"the text encoder recorded here is not one zoo wrote (no {exc})") from None
        if kind != cls.KIND:
            raise ZooError(f"this model reads text with a {_cut(kind)} model, which this zoo cannot load")
        if folder is None:
            raise UsageError(f"this model reads text with a sentence-transformers model (trained in {_cut(recorded)}, "
                             f"fingerprint {_cut(fingerprint)}), which zoo reads only from a folder you name: give "
                             "--text-encoder FOLDER")
        encoder = cls.load(Path(folder))
        if encoder.fingerprint() != fingerprint:
            raise UsageError(f"--text-encoder {folder} is not the sentence-transformers model this model trained with "
                             f"(fingerprint {encoder.fingerprint()}; it trained with {_cut(fingerprint)}, in "
                             f"{_cut(recorded)}): give that folder, its files as they were")
        return encoder.requires_grad_(False).eval()


def _cut(text: str, most: int = 120) -> str:
    """Text from a checkpoint, for a message: printable, and cut short when long."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= most else f"{shown[:most - 3]}..."


FOLDER_FILES = 10_000
"""The most files a model's folder holds (a sentence-transformers model has a few dozen):
a folder with more is not one, and is not read through."""


def folder_fingerprint(folder: Path) -> str:
    """A short hash of every visible file under ``folder`` (names and bytes): an installed
    model's identity. Hidden ones (``.git/``, ``.cache/``) change when nothing the model reads does.
    A folder of more than :data:`FOLDER_FILES` files (``/``, a home folder) is refused unread."""
    import os

    found = []
    for root, folders, names in os.walk(folder):  # links to folders are not followed
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            path = Path(root) / name
            if name.startswith(".") or not path.is_file():
                continue
            found.append(path)
            if len(found) > FOLDER_FILES:
                raise UsageError(f"{folder} holds more than {FOLDER_FILES:,} files: it is not the folder of a "
                                 "sentence-transformers model (one that model.save(FOLDER) wrote)")
    digest = hashlib.sha256()
    for path in sorted(found):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def encoder_from_state(state: Mapping[str, Any], folder: Path | None = None) -> TextEncoder | InstalledEncoder:
    """The text encoder a checkpoint records: zoo's own by value; an installed one by
    reference, read from the ``folder`` the user names with ``--text-encoder`` (never from
    the folder the checkpoint names: see :meth:`InstalledEncoder.from_state`)."""
    if not isinstance(state, Mapping):
        raise ZooError("the text encoder recorded here is not one zoo wrote")
    if "installed" in state:
        return InstalledEncoder.from_state(state, folder)
    if folder is not None:
        raise UsageError(f"--text-encoder {folder}: this model reads text with zoo's own encoder, which its "
                         "checkpoint holds; drop --text-encoder")
    return TextEncoder.from_state(state)
