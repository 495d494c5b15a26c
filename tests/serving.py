"""What the tests of ``zoo serve`` share: a runs folder with one small trained run of each kind
the page shows (the third-party plugin's among them), and a live server on it."""

from __future__ import annotations

import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conftest import TINY, run_cli
from .test_superres import photo_folder
from .test_translation import side_by_side

TINY_AE = ["--set", "encoder_width=4", "--set", "decoder_width=4", "--set", "latent_dim=4", "--batch-size", "16"]
TINY_SR4 = ["--set", "blocks=1", "--set", "width=4", "--set", "crop=16", "--set", "scale=4", "--batch-size", "4"]

RUNS = {
    "dcgan": ["dcgan", *TINY, "--data", "mnist", "--subset", "0:64", "--steps", "2"],
    "cgan": ["cgan", *TINY, "--set", "embed_dim=4", "--data", "mnist", "--subset", "0:64", "--steps", "2"],
    "vae": ["vae", *TINY_AE, "--data", "mnist", "--subset", "0:64", "--steps", "2"],
    "tiny": ["tiny", "--set", "hidden=8", "--batch-size", "4", "--data", "mnist", "--subset", "0:16", "--steps", "2"],
}
"""Runs trained on MNIST; pix2pix and srresnet train on pictures the fixture draws."""


def train_runs(root: Path, scratch: Path) -> Path:
    """A runs folder holding each kind of run the page has a tab for."""
    pairs = side_by_side(scratch / "pairs", n=8)
    photos = photo_folder(scratch / "photos", [(40, 32), (48, 48), (64, 40)])
    commands = {**RUNS,
                "pix2pix": ["pix2pix", "--data", f"paired:{pairs}", "--size", "32", "--set", "g_width=4",
                            "--set", "d_width=4", "--batch-size", "4", "--steps", "2"],
                "srresnet": ["srresnet", "--data", f"folder:{photos}", *TINY_SR4, "--steps", "2"]}
    for name, args in commands.items():
        result = run_cli("train", *args, "--no-wandb", "--out", str(root / name))
        assert result.exit_code == 0, result.output
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Live:
    """A server started by the tests: its address, the actions' state and Gradio's app."""

    url: str
    server: Any
    app: Any


def start(root: Path, **settings: Any) -> Live:
    import zoo.serve as serving

    port = free_port()
    app, server = serving.launch(serving.Settings(root, port=port, **settings), block=False, quiet=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=5).read()
            break
        except OSError:
            time.sleep(0.1)
    return Live(url, server, app)


def stop(live: Live) -> None:
    live.app.close()
    live.server.close()
