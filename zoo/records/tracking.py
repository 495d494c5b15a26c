"""Weights & Biases logging that can never stop training.

Modes: ``online`` when the user is logged in (``WANDB_API_KEY`` or a netrc entry), otherwise
``offline`` (the run's files are written under the run folder, to ``wandb sync`` later);
``off`` with ``--no-wandb``. ``WANDB_MODE`` in the environment wins over the guess. An
online start that fails falls back to offline; any later W&B error is reported once and
logging stops, while training goes on.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.console import Console

MODES = ("auto", "online", "offline", "off")
STEP = "step"
"""The x axis of every chart: the training step, logged as a metric."""


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def choose_mode(requested: str) -> str:
    """The W&B mode to use: off, online or offline."""
    if requested == "off":
        return "off"
    env = os.environ.get("WANDB_MODE", "").lower()
    if env in ("disabled", "off"):
        return "off"
    if env in ("online", "offline"):
        return env
    if requested in ("online", "offline"):
        return requested
    return "online" if has_credentials() else "offline"


def _init_timeout() -> float:
    """Seconds to wait for the W&B server before falling back to offline."""
    return _seconds("WANDB_INIT_TIMEOUT", 30.0)


def _finish_timeout() -> float:
    """Seconds the end of a run waits for W&B's uploads (a server that hangs must not hang
    training's end); what is not uploaded stays in RUN/wandb/ for ``wandb sync``."""
    return _seconds("WANDB_FINISH_TIMEOUT", 60.0)


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class Tracker:
    """A W&B run, or nothing. Every method is safe to call whatever happens to W&B."""

    def __init__(self, run: Any = None, console: Console | None = None) -> None:
        self._run = run
        self._console = console or Console(stderr=True)

    @property
    def enabled(self) -> bool:
        return self._run is not None

    @property
    def run_id(self) -> str | None:
        return self._run.id if self._run is not None else None

    @property
    def mode(self) -> str:
        if self._run is None:
            return "off"
        return "offline" if self._run.settings.mode == "offline" else "online"

    def log(self, data: Mapping[str, Any], step: int) -> None:
        """Log against the training step as a metric of its own (``step``), not W&B's own
        step counter, which must only rise: after a resume the steps since the checkpoint
        are logged again, and W&B would silently drop them."""
        self._safe(lambda: self._run.log({**data, STEP: step}))

    def log_image(self, key: str, path: Path, step: int, caption: str = "") -> None:
        def go() -> None:
            import wandb

            self._run.log({key: wandb.Image(str(path), caption=caption or None), STEP: step})

        self._safe(go)

    def log_gif(self, key: str, path: Path, step: int) -> None:
        def go() -> None:
            import wandb

            self._run.log({key: wandb.Video(str(path), format="gif"), STEP: step})

        self._safe(go)

    def log_checkpoint(self, path: Path, name: str, metadata: Mapping[str, Any]) -> None:
        def go() -> None:
            import wandb

            artifact = wandb.Artifact(name, type="model", metadata=dict(metadata))
            artifact.add_file(str(path))
            self._run.log_artifact(artifact)

        self._safe(go)

    def summary(self, values: Mapping[str, Any]) -> None:
        """Figures that describe the whole run (its evaluation), shown in the runs table."""
        self._safe(lambda: self._run.summary.update(dict(values)))

    def samples_table(self, key: str, pictures: list[Path], per_class: Mapping[str, Any] | None = None,
                      strips: Mapping[str, Path] | None = None) -> None:
        """A W&B table of sample sheets and, for class-conditional models, one row per class:
        its accuracy and a strip of its samples."""
        def go() -> None:
            import wandb

            table = wandb.Table(columns=["picture", "image"])
            for path in pictures:
                table.add_data(path.stem, wandb.Image(str(path)))
            data = {key: table}
            if per_class:
                classes = wandb.Table(columns=["class", "accuracy", "samples"])
                for name, value in per_class.items():
                    strip = (strips or {}).get(name)
                    classes.add_data(name, value, wandb.Image(str(strip)) if strip is not None else None)
                data[f"{key}_per_class"] = classes
            self._run.log(data)

        self._safe(go)

    def finish(self, exit_code: int = 0) -> None:
        self._safe(lambda: self._run.finish(exit_code=exit_code))
        self._run = None

    def _safe(self, action) -> None:
        if self._run is None:
            return
        try:
            action()
        except Exception as exc:  # W&B must never end a training run
            self._console.print(f"[yellow]warning:[/] W&B logging stopped: {exc}")
            self._run = None


def open_tracker(requested: str, run_dir: Path, name: str, config: Mapping[str, Any],
                 console: Console, run_id: str | None = None, tags: list[str] | None = None) -> Tracker:
    """Start (or resume, given ``run_id``) a W&B run that writes under ``run_dir``."""
    mode = choose_mode(requested)
    if mode == "off":
        return Tracker(None, console)
    try:
        import wandb
    except ImportError:
        console.print("[yellow]warning:[/] wandb is not installed; logging to W&B is off")
        return Tracker(None, console)
    for attempt in ("online", "offline") if mode == "online" else ("offline",):
        try:
            run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "zoo"),
                name=name,
                id=run_id,
                resume="allow" if run_id else None,
                # Absolute: W&B's service process may have another working directory.
                dir=str(run_dir.resolve()),
                config=dict(config),
                tags=[t[:64] for t in tags or []],
                group=f"{config.get('model', '')}-{config.get('data', '')}"[:128],
                mode=attempt,
                settings=wandb.Settings(silent=True, console="off", init_timeout=_init_timeout(),
                                        finish_timeout=_finish_timeout(),
                                        save_code=False, disable_git=True,
                                        x_disable_stats=True),
            )
            run.define_metric(STEP)
            run.define_metric("*", step_metric=STEP)
            if attempt != mode:
                console.print("[yellow]warning:[/] W&B server unreachable; logging offline "
                              f"under {run_dir / 'wandb'} (sync later with `wandb sync`)")
            return Tracker(run, console)
        except Exception as exc:  # unreachable server, bad credentials, ...
            last = exc
    console.print(f"[yellow]warning:[/] W&B could not start ({last}); training without it")
    return Tracker(None, console)
