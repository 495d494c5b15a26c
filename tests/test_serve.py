"""zoo serve: the runs a page offers, the models it keeps, the uploads it takes, and the
live server answering over HTTP (the page in a real browser: test_serve_browser.py)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import gradio_client
import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image

from zoo.errors import ZooError

from .conftest import run_cli
from .serving import Live, start, stop


@pytest.fixture(scope="module")
def live(live_server: Live) -> Live:
    return live_server


@pytest.fixture(scope="module")
def client(live: Live) -> Client:
    return Client(live.url, verbose=False)


def picture(path: Path, size: tuple[int, int] = (40, 32), colour: int = 90) -> Path:
    Image.new("RGB", size, (colour, 200 - colour, 30)).save(path)
    return path


def bomb(path: Path, side: int = 100_000) -> Path:
    """A few hundred bytes of PNG whose header claims ``side`` x ``side`` pixels."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # the signature, then IHDR's length and type
    data[ihdr:ihdr + 8] = side.to_bytes(4, "big") * 2
    data[ihdr + 13:ihdr + 17] = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


# -- the runs a browser may choose ------------------------------------------------------------------

def test_a_browser_chooses_runs_by_name_never_by_path(served_runs: Path, tmp_path: Path) -> None:
    from zoo.serve.catalog import Catalog, RunGone

    catalog = Catalog(served_runs)
    assert catalog.resolve("cgan") == served_runs / "cgan"
    for sent in ("../runs/cgan", str(served_runs / "cgan"), "/etc/passwd", "cgan/../dcgan", "", "..", 7, None):
        with pytest.raises(ZooError):
            catalog.resolve(sent)
    # A link in the served folder that leads out of it is no run of the page.
    outside = tmp_path / "elsewhere"
    shutil.copytree(served_runs / "dcgan", outside)
    mixed = tmp_path / "served"
    shutil.copytree(served_runs / "cgan", mixed / "cgan")
    (mixed / "linked").symlink_to(outside, target_is_directory=True)
    catalog = Catalog(mixed)
    with pytest.raises(RunGone):
        catalog.resolve("linked")
    assert catalog.resolve("cgan") == mixed / "cgan"
    # So is a checkpoint that is a link out of it.
    (mixed / "cgan" / "checkpoint.safetensors").unlink()
    (mixed / "cgan" / "checkpoint.safetensors").symlink_to(outside / "checkpoint.safetensors")
    with pytest.raises(RunGone, match="link out of the served folder"):
        catalog.checkpoint("cgan", "latest")


def test_each_tab_offers_the_runs_whose_model_can_do_it(served_runs: Path) -> None:
    from zoo.serve.catalog import Catalog

    catalog = Catalog(served_runs)
    offered = {tab: sorted(c.name for c in catalog.choices(tab))
               for tab in ("sample", "explore", "invert", "translate", "upscale", "reconstruct")}
    assert offered == {"sample": ["cgan", "dcgan", "tiny", "vae"], "explore": ["cgan", "dcgan", "tiny", "vae"],
                       "invert": ["cgan", "dcgan", "tiny", "vae"], "translate": ["pix2pix"],
                       "upscale": ["srresnet"], "reconstruct": ["vae"]}
    one = Catalog(served_runs / "pix2pix")  # zoo serve RUN: that run alone
    assert [c.name for c in one.choices()] == ["pix2pix"]


# -- models in memory ----------------------------------------------------------------------------

def test_models_load_once_and_the_least_recently_used_go_first(served_runs: Path, tmp_path: Path) -> None:
    import os as os_module

    from zoo.serve.models import Models

    def checkpoint(name: str) -> Path:
        return served_runs / name / "checkpoint.safetensors"

    sizes = {name: Models(10**9).get(checkpoint(name)).size for name in ("dcgan", "cgan", "vae")}
    models = Models(sizes["dcgan"] + sizes["cgan"])
    first = models.get(checkpoint("dcgan"))
    models.get(checkpoint("cgan"))
    assert models.get(checkpoint("dcgan")) is first and models.loads == 2  # read once
    models.get(checkpoint("vae"))  # cgan, the least recently used, goes; dcgan stays
    assert models.held_bytes() <= sizes["dcgan"] + sizes["cgan"] and len(models) == 2
    assert models.get(checkpoint("dcgan")) is first and models.loads == 3
    models.get(checkpoint("cgan"))
    assert models.loads == 4
    # A run that saves a newer checkpoint is read again, and its older copy let go.
    run = tmp_path / "training"
    shutil.copytree(served_runs / "dcgan", run)
    old = models.get(run / "checkpoint.safetensors")
    stat = (run / "checkpoint.safetensors").stat()
    os_module.utime(run / "checkpoint.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    new = models.get(run / "checkpoint.safetensors")
    assert new is not old and sum(1 for held in models._held.values() if held is old) == 0


# -- uploads ---------------------------------------------------------------------------------------

def test_uploads_are_refused_by_bytes_pixels_and_content_before_decoding(tmp_path: Path) -> None:
    from zoo.serve.uploads import UploadError, read_upload

    good = picture(tmp_path / "good.png", (40, 32))
    assert read_upload(str(good)).shape == (3, 32, 40)
    assert read_upload(str(good), height=16, width=16).shape == (3, 16, 16)
    assert read_upload({"composite": str(good), "layers": []}).shape == (3, 32, 40)  # the drawing pad's value
    with pytest.raises(UploadError, match="takes images up to 0 MB"):
        read_upload(str(good), most_bytes=10)
    with pytest.raises(UploadError, match="40x32 pixels; this server takes images of up to 100"):
        read_upload(str(good), most_pixels=100)
    with pytest.raises(UploadError, match="12000x12000 pixels"):  # within PIL's limit, beyond the server's
        read_upload(str(bomb(tmp_path / "bomb.png", 12_000)))
    with pytest.raises(UploadError, match="a decompression bomb"):  # beyond PIL's too
        read_upload(str(bomb(tmp_path / "bomb.png", 100_000)))
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(UploadError, match="is not an image zoo can read"):
        read_upload(str(text))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(UploadError):
        read_upload(str(cut))
    for nothing in (None, "", {"composite": None}):
        with pytest.raises(UploadError, match="nothing was sent"):
            read_upload(nothing)
    with pytest.raises(UploadError, match="did not arrive"):
        read_upload(str(tmp_path / "missing.png"))


# -- the page draws what the commands draw ----------------------------------------------------------------

def test_the_page_samples_what_zoo_sample_writes(served_runs: Path, tmp_path: Path) -> None:
    import numpy as np

    import zoo.serve as serving
    from zoo.serve import actions

    server = serving.make_server(serving.Settings(served_runs))
    try:
        made = actions.sample(server, "cgan", n=6, seed=3, class_="7")
        assert "of class 7" in made.caption and len(made.images) == 6
        result = run_cli("sample", str(served_runs / "cgan"), "--digit", "7", "--seed", "3", "--n", "6",
                         "--out", str(tmp_path / "sevens"))
        assert result.exit_code == 0, result.output
        files = sorted((tmp_path / "sevens").glob("7-*.png"))
        for shown, file in zip(made.images, files, strict=True):
            written = np.asarray(Image.open(file))
            assert np.array_equal(np.asarray(shown), written)
    finally:
        server.close()


# -- zoo serve on the command line -------------------------------------------------------------------

@pytest.mark.parametrize(("args", "said"), [
    (["--host", "0.0.0.0"], "--host 0.0.0.0 lets other machines in: give --auth USER:PASSWORD, or --no-auth"),
    (["--auth", "nopassword"], "--auth takes USER:PASSWORD"),
    (["--auth", "me:secret", "--no-auth"], "--auth and --no-auth contradict each other"),
    (["--port", "70000"], "--port"),
    (["--cache-mb", "0"], "--cache-mb"),
    (["nowhere"], "nowhere is not a folder"),
])
def test_zoo_serve_refuses_what_it_cannot_serve_safely(args: list[str], said: str) -> None:
    result = run_cli("serve", *args)
    assert result.exit_code == 2 and said in " ".join(result.output.split()), result.output


def test_another_host_without_a_password_is_served_only_when_asked_and_then_with_a_warning() -> None:
    import zoo.serve as serving

    assert serving.check("127.0.0.1", None, False) == [] and serving.check("localhost", None, False) == []
    assert serving.check("::1", None, False) == []
    assert serving.check("0.0.0.0", ("me", "secret"), False) == []
    warned = serving.check("0.0.0.0", None, True)
    assert len(warned) == 1 and "with no password" in warned[0]
    with pytest.raises(ZooError, match="lets other machines in"):
        serving.check("192.168.1.10", None, False)


def test_without_the_serve_extra_one_line_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                               served_runs: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    result = run_cli("serve", str(served_runs))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "pip install 'zoo-gan[serve]'" in lines[0], result.output


# -- the live server, over HTTP -------------------------------------------------------------------------

def test_sample_a_class_over_http(client: Client) -> None:
    grid, archive, caption = client.predict("cgan", "latest", 8, 5, "7", "", "(the model's)", 0,
                                            api_name="/sample")
    assert Image.open(grid).size[0] > 28 and "of class 7" in caption
    assert png_names(archive) == [f"7-{i:04d}.png" for i in range(8)]  # as zoo sample names its files


def test_a_third_party_plugin_is_on_the_page_with_no_code_of_its_own(client: Client) -> None:
    grid, archive, caption = client.predict("tiny", "latest", 4, 0, None, "", "(the model's)", 0,
                                            api_name="/sample")
    assert len(png_names(archive)) == 4 and caption.endswith("seed 0") and " of tiny," in caption


def test_the_tabs_translate_upscale_reconstruct_explore_and_walk(client: Client, tmp_path: Path) -> None:
    photo = picture(tmp_path / "photo.png", (40, 32))
    before, after, caption = client.predict("pix2pix", "latest", "AtoB", handle_file(str(photo)),
                                            api_name="/translate")
    assert Image.open(after).size == Image.open(before).size and "pix2pix AtoB" in caption
    pair, download, caption = client.predict("srresnet", "latest", handle_file(str(photo)), api_name="/upscale")
    assert Image.open(download).size == (160, 128) and "x4: 40x32 -> 160x128" in caption
    assert Path(download).name == "photo-x4.png"
    before, after, caption = client.predict("vae", "latest", "", handle_file(str(photo)), api_name="/reconstruct")
    assert "PSNR" in caption and Image.open(after).size == Image.open(before).size
    one = client.predict("dcgan", "latest", 0, None, "seed", 0, 1, 2, 3, -2.0, 0.0, 0.0, 0.0,
                         api_name="/explore")
    other = client.predict("dcgan", "latest", 0, None, "seed", 0, 1, 2, 3, 2.0, 0.0, 0.0, 0.0,
                           api_name="/explore")
    assert not torch.equal(_pixels(one), _pixels(other))  # the slider moved the image
    strip, gif, caption = client.predict("cgan", "latest", 0, 1, 5, "3", "8", "", "", api_name="/interpolate")
    with Image.open(gif) as animation:
        assert animation.n_frames == 2 * 5 - 2
    assert "seed 0 -> 1" in caption


def test_invert_an_upload_and_use_its_latent(client: Client, tmp_path: Path) -> None:
    target, fitted, caption = client.predict("dcgan", "latest", handle_file(str(picture(tmp_path / "t.png"))),
                                             20, 2, "", api_name="/invert")
    assert "PSNR" in caption and Image.open(fitted).size == Image.open(target).size


def test_measure_report_and_compare(client: Client) -> None:
    figures, protocol = client.predict("dcgan", api_name="/measure")
    assert "has not been measured: zoo eval dcgan" in protocol
    html = client.predict("dcgan", api_name="/report")
    assert html.startswith("<iframe") and "dcgan" in html
    table, warning = client.predict(["dcgan", "cgan"], api_name="/compare")
    assert [row[0] for row in table["value"]["data"]] == ["dcgan", "cgan"], table


def _pixels(path: str) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.uint8).copy())


# -- what a browser may send: each unsafe input, and a fuzz ------------------------------------------

def app_error(call) -> str:
    with pytest.raises(gradio_client.exceptions.AppError) as error:
        call()
    return str(error.value)


def test_unsafe_requests_get_a_message_and_the_server_goes_on(client: Client, live: Live, tmp_path: Path) -> None:
    for sent in ("../runs/cgan", "/etc/passwd", str(live.server.catalog.root / "cgan")):
        said = app_error(lambda sent=sent: client.predict(sent, "latest", 4, 0, None, "", "(the model's)", 0,
                                                          api_name="/sample"))
        assert "choose one from the list" in said
    said = app_error(lambda: client.predict("srresnet", "latest", handle_file(str(bomb(tmp_path / "b.png"))),
                                            api_name="/upscale"))
    assert "a decompression bomb" in said
    text = tmp_path / "story.png"
    text.write_text("once upon a time")
    said = app_error(lambda: client.predict("pix2pix", "latest", "AtoB", handle_file(str(text)),
                                            api_name="/translate"))
    assert "is not an image zoo can read" in said
    large = picture(tmp_path / "large.png", (600, 600))
    said = app_error(lambda: client.predict("srresnet", "latest", handle_file(str(large)), api_name="/upscale"))
    assert "600x600 pixels" in said
    from zoo.serve import actions

    live.server.most_pixels, limit = 2_000_000, actions.MOST_UPSCALE_PIXELS
    try:  # a photo the server takes, but larger than the page upscales
        actions.MOST_UPSCALE_PIXELS = 500 * 400 - 1
        said = app_error(lambda: client.predict("srresnet", "latest",
                                                handle_file(str(picture(tmp_path / "wide.png", (500, 400)))),
                                                api_name="/upscale"))
        assert "the page upscales photos of up to" in said and "zoo upscale srresnet FILE" in said
    finally:
        live.server.most_pixels, actions.MOST_UPSCALE_PIXELS = 512 * 512, limit
    # A file path a browser sends in place of an upload never reaches the file.
    secret = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}
    call = urllib.request.Request(f"{live.url}/gradio_api/call/translate", method="POST",
                                  headers={"Content-Type": "application/json"},
                                  data=json.dumps({"data": ["pix2pix", "latest", "AtoB", secret]}).encode())
    answer = _stream(call)
    assert "event: error" in answer and "root:" not in answer
    # Nor does a picture outside the served folder, named in place of an upload or a drawing.
    outside = picture(tmp_path / "outside.png", (40, 32))
    for endpoint, data in (("upscale", ["srresnet", "latest"]), ("translate", ["pix2pix", "latest", "AtoB"]),
                           ("translate_drawing", ["pix2pix", "latest", "AtoB"])):
        named = {"path": str(outside), "meta": {"_type": "gradio.FileData"}}
        if endpoint == "translate_drawing":
            named = {"background": None, "layers": [], "composite": named}
        call = urllib.request.Request(f"{live.url}/gradio_api/call/{endpoint}", method="POST",
                                      headers={"Content-Type": "application/json"},
                                      data=json.dumps({"data": [*data, named]}).encode())
        answer = _stream(call)
        assert "event: error" in answer and "event: complete" not in answer, (endpoint, answer[-300:])
    # NaN and Infinity, which Gradio could not write back in its answer (a 500 the fuzz found): a 400.
    for body, kind in ((b"[Infinity]", "application/json"), (b'{"data": ["dcgan", "latest", NaN]}', "Application/JSON"),
                       (b"[-Infinity]", "application/vnd.api+json")):
        refused = urllib.request.Request(f"{live.url}/gradio_api/call/sample", method="POST", data=body,
                                         headers={"Content-Type": kind})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(refused, timeout=60)
        assert error.value.code == 400 and b"must be finite" in error.value.read()
    assert _answers(client)


def test_a_run_deleted_or_half_written_while_served_is_a_message(client: Client, live: Live) -> None:
    root = live.server.catalog.root
    shutil.copytree(root / "dcgan", root / "doomed")
    shutil.copytree(root / "dcgan", root / "broken")
    checkpoint = root / "broken" / "checkpoint.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])  # a save cut short
    said = app_error(lambda: client.predict("broken", "latest", 4, 0, None, "", "(the model's)", 0,
                                            api_name="/sample"))
    assert "broken" in said or "checkpoint" in said
    assert client.predict("doomed", "latest", 4, 0, None, "", "(the model's)", 0, api_name="/sample")
    shutil.rmtree(root / "doomed")
    said = app_error(lambda: client.predict("doomed", "latest", 4, 0, None, "", "(the model's)", 0,
                                            api_name="/sample"))
    assert "no run 'doomed' here" in said
    shutil.rmtree(root / "broken")
    assert _answers(client)


def test_ten_clients_at_once_are_answered_in_turn(live: Live) -> None:
    answers: list[str] = []

    def ask(seed: int) -> None:  # as a browser asks: the call, then its event stream
        data = ["dcgan", "latest", 4, seed, None, "", "(the model's)", 0]
        call = urllib.request.Request(f"{live.url}/gradio_api/call/sample", method="POST",
                                      headers={"Content-Type": "application/json"},
                                      data=json.dumps({"data": data}).encode())
        answers.append(_stream(call))

    threads = [threading.Thread(target=ask, args=(seed,)) for seed in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 10 and all("event: complete" in answer for answer in answers)
    grids = {json.loads(answer.split("data:")[-1])[0]["path"] for answer in answers}
    assert len(grids) == 10  # ten different seeds, ten pictures


def test_fuzzed_requests_never_get_a_500_and_the_server_keeps_answering(live: Live, client: Client) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    endpoints = ["sample", "explore", "interpolate", "invert", "translate", "translate_drawing", "upscale",
                 "reconstruct", "reconstruct_drawing", "measure", "compare", "report", "run", "sample_controls"]
    value = st.recursive(
        st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=30) | st.sampled_from(["dcgan", "cgan", "../cgan", "/etc/passwd", "latest", "best",
                                                  "AtoB", "BtoA", "7", "", "seed", "inverted image"]),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["path", "url", "meta", "composite", "orig_name", "_type"]), inner, max_size=3),
        max_leaves=8)
    statuses: list[int] = []

    @settings(max_examples=int(os.environ.get("ZOO_PROPERTY_EXAMPLES", 0)) or 30, deadline=None, database=None,
              derandomize=not os.environ.get("ZOO_PROPERTY_RANDOM"), suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(endpoints), st.lists(value, max_size=14) | value, st.booleans())
    def check(endpoint: str, data: object, wrapped: bool) -> None:
        body = json.dumps({"data": data} if wrapped else data, allow_nan=True).encode()
        call = urllib.request.Request(f"{live.url}/gradio_api/call/{endpoint}", method="POST", data=body,
                                      headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(call, timeout=60) as answer:
                statuses.append(answer.status)
                event = json.loads(answer.read())["event_id"]
            with urllib.request.urlopen(f"{live.url}/gradio_api/call/{endpoint}/{event}", timeout=120) as stream:
                statuses.append(stream.status)
                stream.read()
        except urllib.error.HTTPError as refused:
            statuses.append(refused.code)
            assert refused.code < 500, f"{endpoint} {body[:200]!r}: {refused.code} {refused.read()[:300]!r}"

    check()
    assert statuses and all(status < 500 for status in statuses)
    assert _answers(client)


def _stream(call: urllib.request.Request) -> str:
    with urllib.request.urlopen(call, timeout=60) as answer:
        event = json.loads(answer.read())["event_id"]
    path = call.full_url.rsplit("/gradio_api/", 1)[1]
    with urllib.request.urlopen(f"{call.full_url.split('/gradio_api/')[0]}/gradio_api/{path}/{event}",
                                timeout=60) as stream:
        return stream.read().decode()


def _answers(client: Client) -> bool:
    """The server still samples."""
    _, archive, _ = client.predict("dcgan", "latest", 2, 0, None, "", "(the model's)", 0, api_name="/sample")
    return len(png_names(archive)) == 2


def png_names(archive: str) -> list[str]:
    import zipfile

    with zipfile.ZipFile(archive) as packed:
        return sorted(packed.namelist())


def test_another_host_asks_for_the_password(served_runs: Path) -> None:
    running = start(served_runs, auth=("me", "secret"))
    try:
        with pytest.raises(ValueError):
            Client(running.url, verbose=False)  # no password
        assert Client(running.url, auth=("me", "secret"), verbose=False).predict(
            "dcgan", "latest", 2, 0, None, "", "(the model's)", 0, api_name="/sample")
    finally:
        stop(running)

