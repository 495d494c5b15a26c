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


def check_port(host: str, port: int) -> None:
    """One clear line when the address cannot be listened on (a port taken), before anything starts."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ZooError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another server there? "
                       "choose another --port") from None


class FiniteJSON:
    """ASGI middleware: a JSON request holding NaN or Infinity is refused with a 400. Python's
    JSON reader takes them, and Gradio, answering such a request's error, could not write them
    back (a 500: the property-based fuzz of the page's API found it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ()) if scope["type"] == "http" else {}
        if scope["type"] != "http" or scope.get("method") != "POST" \
                or b"json" not in headers.get(b"content-type", b"").lower():
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _non_finite(body):
            answer = b'{"error": "numbers in a request must be finite (no NaN or Infinity)"}'
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(answer)).encode())]})
            await send({"type": "http.response.body", "body": answer})
            return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _non_finite(body: bytes) -> bool:
    import json

    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(body, parse_constant=refuse)
    except ValueError as exc:
        return str(exc) in ("NaN", "Infinity", "-Infinity")
    except RecursionError:
        return False
    return False


@dataclass
class Running:
    """A server started by :func:`launch`: stop it with :meth:`close`."""

    server: Any
    thread: Any

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(30)


def launch(settings: Settings, block: bool = True, quiet: bool = False) -> tuple[Any, Any]:
    """Build the page and serve it; returns (the running server, the actions' state). With
    ``block`` False the call returns once the server listens (tests, benchmarks)."""
    require_gradio()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    import threading
    import time

    import fastapi
    import gradio as gr
    import uvicorn

    from zoo.serve import page

    check_port(settings.host, settings.port)
    server = make_server(settings)
    blocks = page.build(server, title=f"zoo: {settings.root.name or settings.root}")
    blocks.queue(default_concurrency_limit=settings.workers, max_size=settings.queue)
    app = fastapi.FastAPI()
    app = gr.mount_gradio_app(app, blocks, path="", auth=settings.auth, allowed_paths=[str(server.scratch)],
                              max_file_size=settings.max_upload_mb * 2**20, show_error=True, ssr_mode=False,
                              theme=page.theme())
    # Gradio checks that a file a request names was uploaded to it only for blocks it launched
    # itself; these are mounted, so they are marked launched: no path a request names is read.
    blocks.has_launched = True
    config = uvicorn.Config(FiniteJSON(app), host=settings.host, port=settings.port,
                            log_level="warning" if quiet else "info", timeout_graceful_shutdown=5)
    web = uvicorn.Server(config)
    if block:
        try:
            web.run()
        finally:
            server.close()
        return Running(web, None), server
    thread = threading.Thread(target=web.run, daemon=True, name="zoo-serve")
    thread.start()
    for _ in range(600):
        if web.started or not thread.is_alive():
            break
        time.sleep(0.05)
    if not web.started:
        raise ZooError(f"zoo serve did not start on {settings.host}:{settings.port}")
    return Running(web, thread), server
