"""``zoo serve``: every trained model on a local web page, to see and to play with.

The page (:mod:`zoo.serve.page`, built with Gradio, the optional ``serve`` extra) shows the
runs of a folder and, on a tab per capability, samples, latent sliders and walks,
inversion, translation from a drawing pad, upscaling and reconstruction, and the figures
``zoo eval`` measured. Each tab calls the pipeline functions the commands call
(:mod:`zoo.serve.actions`). Models are loaded once and kept in a cache bounded in bytes
(:mod:`zoo.serve.models`); requests wait their turn in a bounded queue.

Safety: the server listens on 127.0.0.1 unless told otherwise, and another host needs
``--auth`` (or an explicit ``--no-auth``). Browsers choose runs by name from the server's
own listing (:mod:`zoo.serve.catalog`), never by path, and uploads are limited in bytes
and pixels and read as ``zoo prep`` reads files (:mod:`zoo.serve.uploads`).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError

DEFAULT_PORT = 7860
LOCAL = "127.0.0.1"
EXTRA = "pip install 'zoo-gan[serve]' (or make serve)"


@dataclass(frozen=True)
class Settings:
    """How a server runs: where, for whom, and within which bounds."""

    root: Path
    host: str = LOCAL
    port: int = DEFAULT_PORT
    auth: tuple[str, str] | None = None
    cache_mb: int = 2048
    queue: int = 64
    workers: int = 1
    max_upload_mb: int = 20
    max_upload_pixels: int = 4096 * 4096
    device: str = "auto"


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``USER:PASSWORD`` as a pair; refused when either part is empty."""
    if value is None:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise UsageError("--auth takes USER:PASSWORD, e.g. --auth me:secret")
    return user, password


def is_local(host: str) -> bool:
    """Whether ``host`` is reachable from this machine alone (a loopback address or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(host: str, auth: tuple[str, str] | None, no_auth: bool) -> list[str]:
    """Refuse a server open to other machines without a password unless asked for in so many
    words; returns the warnings to print."""
    if auth is not None and no_auth:
        raise UsageError("--auth and --no-auth contradict each other; give one")
    if is_local(host):
        return []
    if auth is None and not no_auth:
        raise UsageError(f"--host {host} lets other machines in: give --auth USER:PASSWORD, or --no-auth to "
                         "serve every run to anyone who can reach this machine")
    if no_auth:
        return [f"anyone who can reach this machine at {host} can use every model served, with no password"]
    return []


def require_gradio() -> None:
    """One line saying what to install, where the serve extra is not."""
    if importlib.util.find_spec("gradio") is None:
        raise ZooError(f"zoo serve needs the serve extra (Gradio): {EXTRA}")


def make_server(settings: Settings) -> Any:
    """The actions' shared state (:class:`zoo.serve.actions.Server`) for ``settings``."""
    from zoo.serve.actions import Server
    from zoo.serve.catalog import Catalog
    from zoo.serve.models import Models
    from zoo.training.devices import resolve_device

    return Server(Catalog(settings.root), Models(settings.cache_mb * 2**20, resolve_device(settings.device)),
                  most_bytes=settings.max_upload_mb * 2**20, most_pixels=settings.max_upload_pixels)


def launch(settings: Settings, block: bool = True, quiet: bool = False) -> tuple[Any, Any]:
    """Build the page and start serving it; returns (the Gradio app, the server). With
    ``block`` False the call returns once the server listens (tests, benchmarks)."""
    require_gradio()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    from zoo.serve import page

    server = make_server(settings)
    app = page.build(server, title=f"zoo: {settings.root.name or settings.root}")
    app.queue(default_concurrency_limit=settings.workers, max_size=settings.queue)
    try:
        app.launch(server_name=settings.host, server_port=settings.port, auth=settings.auth,
                   max_file_size=settings.max_upload_mb * 2**20, allowed_paths=[str(server.scratch)],
                   prevent_thread_lock=not block, quiet=quiet, show_error=True, ssr_mode=False,
                   theme=page.theme(), inbrowser=False, share=False)
    except OSError as exc:
        server.close()
        raise ZooError(f"cannot listen on {settings.host}:{settings.port} ({str(exc).splitlines()[0][:120]}); "
                       "is another server there? choose another --port") from None
    finally:
        if block:
            server.close()
    return app, server
