"""A stand-in for the sentence-transformers package, with the interface zoo uses
(``SentenceTransformer(folder, device=, local_files_only=)``, ``encode``,
``get_embedding_dimension``): tests install it as ``sentence_transformers`` to check
``--text-encoder`` without the package or a model download. Its model is a hashed bag of
words, read from the folder's ``config.json`` ({"dim": D})."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

LOADED: list[dict] = []
"""Each load: the folder, local_files_only, and HF_HUB_OFFLINE as the loader saw them."""
ENCODED: list[str] = []
"""Every sentence the model was given."""


def make_model(folder: Path, dim: int = 24) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"dim": dim}))
    return folder


class SentenceTransformer(nn.Module):
    def __init__(self, model_name_or_path: str, device: str | None = None, local_files_only: bool = False) -> None:
        super().__init__()
        LOADED.append({"folder": model_name_or_path, "local_files_only": local_files_only,
                       "offline": os.environ.get("HF_HUB_OFFLINE")})
        self.dim = int(json.loads((Path(model_name_or_path) / "config.json").read_text())["dim"])
        self.scale = nn.Parameter(torch.ones(()), requires_grad=False)

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, sentences: list[str], batch_size: int = 32, convert_to_tensor: bool = False,
               normalize_embeddings: bool = False, show_progress_bar: bool | None = None,
               device: str | None = None) -> torch.Tensor:
        ENCODED.extend(sentences)
        out = torch.zeros(len(sentences), self.dim)
        for row, sentence in enumerate(sentences):
            for word in sentence.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        out = out * self.scale
        return F.normalize(out, dim=1) if normalize_embeddings else out
