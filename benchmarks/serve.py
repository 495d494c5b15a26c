"""zoo serve's page on this machine: the time from a request to its picture, and a class at once.

    python benchmarks/serve.py                    # trains the runs it needs once, then measures
    python benchmarks/serve.py --requests 100 --upscale-requests 100

The server runs as a user starts it (``zoo serve FOLDER --port P`` in a process of its own).
Each request goes as the page's own go, through Gradio's HTTP API (an upload first where
there is one, the call, its event stream, then the picture fetched), and is timed from the
first byte sent to the picture's last byte received. Gradio's Python client
(``gradio_client``, what a notebook would use) adds its own overhead: the grid is timed
through it too (``grid_python_client``). The runs are each model's *default* networks at the page's
sizes (a model's latency is its networks', whatever they learnt; trained for a few steps
here, on the data they are made for):

* **grid**: 16 images of the 28 px DCGAN on MNIST (the issue's target: p50 under 200 ms);
* **translate**: a 256 px pix2pix translation of an uploaded photo (trained on pairs of
  scikit-image's photos and their edges at 256 px);
* **upscale**: srresnet x4 of a 256 px photo (in tiles, as the page does);
* **slider**: one move of a latent slider of the DCGAN (a 1-image draw).

Then ``--clients`` clients at once, each asking for ``--load-requests`` grids: every
request must be answered, and the server's peak resident memory (``VmHWM``) is read from
/proc. Results: benchmarks/results/serve.json (p50, p95, mean, requests, peak MB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

from record import RUNS, write_result

HERE = Path(__file__).parent
WORK = RUNS / "serve"
ROOT = WORK / "runs"
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                 "camera", "coins", "moon", "brick", "grass", "gravel")
NO_PRIOR = "(the model's)"


def zoo(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "zoo", *args], check=True, env={**os.environ, "WANDB_MODE": "disabled"})


def photos() -> Path:
    """scikit-image's sample photos at their own sizes, and pix2pix pairs of their edges and them at 256 px."""
    import numpy as np
    from PIL import Image, ImageFilter, ImageOps

    try:
        import skimage.data
    except ImportError:
        raise SystemExit("benchmarks/serve.py uses scikit-image's sample photos: pip install scikit-image") from None
    folder, pairs = WORK / "photos", WORK / "pairs"
    if folder.is_dir() and pairs.is_dir():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pairs.mkdir(parents=True, exist_ok=True)
    for name in SAMPLE_PHOTOS:
        pixels = np.asarray(getattr(skimage.data, name)())
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        photo = Image.fromarray(pixels[..., :3].astype(np.uint8))
        photo.save(folder / f"{name}.png")
        square = ImageOps.fit(photo, (256, 256))
        edges = ImageOps.invert(square.convert("L").filter(ImageFilter.FIND_EDGES)).convert("RGB")
        both = Image.new("RGB", (512, 256))
        both.paste(edges, (0, 0))
        both.paste(square, (256, 0))
        both.save(pairs / f"{name}.png")
    return folder


def train_runs(cgan: Path | None) -> None:
    """The default networks of each case, trained a few steps (once; kept in benchmarks/runs/serve),
    and a copy of the lab's trained cgan run when there is one (the page serves no link out of its folder)."""
    if cgan is not None and (cgan / "checkpoint.safetensors").is_file() and not (ROOT / "cgan-lab").is_dir():
        shutil.copytree(cgan, ROOT / "cgan-lab")
    folder = photos()
    wanted = {"dcgan": ["dcgan", "--data", "mnist", "--steps", "20"],
              "pix2pix": ["pix2pix", "--data", f"paired:{WORK / 'pairs'}", "--size", "256", "--batch-size", "4",
                          "--steps", "2"],
              "srresnet": ["srresnet", "--data", f"folder:{folder}", "--size", "full", "--steps", "2"]}
    for name, args in wanted.items():
        if not (ROOT / name / "checkpoint.safetensors").is_file():
            shutil.rmtree(ROOT / name, ignore_errors=True)
            zoo("train", *args, "--no-wandb", "--out", str(ROOT / name))


def sevens(url: str, count: int = 256) -> dict[str, float]:
    """The lab's cgan asked for digit 7 on the page's Sample tab (``count`` images, seeds 0, 1,
    ...: 64 a request), read by a judge that never saw its training digits."""
    import io

    import numpy as np
    import torch
    from digits import heldout_judge, predict
    from PIL import Image

    from zoo.data.images import to_float

    net, judge = heldout_judge("mnist")
    read: list[torch.Tensor] = []
    for seed in range(count // 64):
        call = urllib.request.Request(f"{url}/gradio_api/call/sample", method="POST",
                                      headers={"Content-Type": "application/json"},
                                      data=json.dumps({"data": ["cgan-lab", "latest", 64, seed, "7", "", NO_PRIOR, 0]
                                                       }).encode())
        with urllib.request.urlopen(call, timeout=120) as answer:
            event = json.loads(answer.read())["event_id"]
        with urllib.request.urlopen(f"{url}/gradio_api/call/sample/{event}", timeout=600) as stream:
            lines = stream.read().decode().splitlines()
        archive = json.loads([line for line in lines if line.startswith("data:")][-1][5:])[1]
        with urllib.request.urlopen(archive["url"], timeout=120) as zipped, \
                zipfile.ZipFile(io.BytesIO(zipped.read())) as packed:
            pictures = [np.asarray(Image.open(io.BytesIO(packed.read(name))).convert("L"))
                        for name in sorted(packed.namelist())]
        images = to_float(torch.from_numpy(np.stack(pictures)).unsqueeze(1))
        with torch.no_grad():
            read.append(predict(net, images).argmax(1))
    labels = torch.cat(read)
    return {"images": len(labels), "read_as_7": round(float((labels == 7).float().mean()), 4),
            "judge_accuracy_on_real": judge["accuracy"]}


def screenshot(url: str, path: Path) -> None:
    """The Sample tab with the lab's cgan drawing sevens, in Debian's headless Chromium (the
    picture in the README)."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1120"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        time.sleep(4)
        driver.find_element("xpath", "//button[@role='tab' and normalize-space()='Sample']").click()
        for box, value in (("sample-run", "cgan-lab"), ("sample-class", "7")):
            time.sleep(1.5)
            driver.find_element("css selector", f"#{box} input").click()
            time.sleep(0.5)
            [item for item in driver.find_elements("css selector", "li[data-testid='dropdown-option']")
             if (item.get_attribute("aria-label") or "").split("  (")[0] == value][0].click()
        time.sleep(1.5)
        driver.find_element("css selector", "#sample-draw").click()
        time.sleep(4)
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
    print(f"screenshot: {path}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def upload(url: str, path: Path) -> dict:
    """A file sent as the page sends one (multipart, to Gradio's upload route); its reference."""
    boundary = f"zoo{time.time_ns()}"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    sent = urllib.request.Request(f"{url}/gradio_api/upload", data=body, method="POST",
                                  headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(sent, timeout=120) as answer:
        stored = json.loads(answer.read())[0]
    return {"path": stored, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def picture(url: str, endpoint: str, data: list, output: int = 0) -> bytes:
    """Call an endpoint, read its event stream to the end, fetch output ``output``'s picture."""
    call = urllib.request.Request(f"{url}/gradio_api/call/{endpoint}", data=json.dumps({"data": data}).encode(),
                                  headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(call, timeout=120) as answer:
        event = json.loads(answer.read())["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{endpoint}/{event}", timeout=600) as stream:
        lines = stream.read().decode().splitlines()
    if "event: complete" not in lines:
        raise RuntimeError(f"{endpoint}: {lines[-3:]}")
    outputs = json.loads([line for line in lines if line.startswith("data:")][-1][5:])
    found = outputs[output]
    found = found[0] if isinstance(found, list) else found  # the upscale's slider holds two pictures
    with urllib.request.urlopen(found["url"], timeout=120) as image:
        return image.read()


def timed(call, count: int) -> list[float]:
    """Milliseconds of ``count`` calls, one after another."""
    took = []
    for i in range(count):
        started = time.perf_counter()
        call(i)
        took.append((time.perf_counter() - started) * 1000)
    return took


def summary(took: list[float]) -> dict[str, float]:
    ordered = sorted(took)
    return {"p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
            "mean_ms": round(statistics.fmean(ordered), 1), "requests": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="timed requests of each kind (after 3 warm-ups)")
    parser.add_argument("--upscale-requests", type=int, default=100, help="timed x4 upscales (seconds each)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--load-requests", type=int, default=25, help="grids each client asks for at once")
    parser.add_argument("--cgan", type=Path, default=RUNS / "as_typed" / "cgan-seed0",
                        help="the lab's trained cgan run (python benchmarks/as_typed.py cgan) whose sevens, asked "
                             "for on the page, a held-out judge reads")
    parser.add_argument("--screenshot", type=Path, help="save the Sample tab with that cgan's sevens here")
    args = parser.parse_args()

    from gradio_client import Client
    from PIL import Image, ImageOps

    train_runs(args.cgan)
    photo = WORK / "upload-256.png"
    ImageOps.fit(Image.open(WORK / "photos" / "astronaut.png").convert("RGB"), (256, 256)).save(photo)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "zoo", "serve", str(ROOT), "--port", str(port)],
                              env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        client = None
        started = time.perf_counter()
        while client is None and time.perf_counter() - started < 120:
            try:
                client = Client(f"http://127.0.0.1:{port}", verbose=False)
            except Exception:  # noqa: BLE001  (not listening yet)
                time.sleep(0.5)
        if client is None:
            raise SystemExit("zoo serve did not answer within 120 s")
        print(f"zoo serve answered after {time.perf_counter() - started:.1f} s")

        url = f"http://127.0.0.1:{port}"
        cases = {
            "grid": lambda i: picture(url, "sample", ["dcgan", "latest", 16, i, None, "", NO_PRIOR, 0]),
            "translate": lambda i: picture(url, "translate", ["pix2pix", "latest", "AtoB", upload(url, photo)]),
            "slider": lambda i: picture(url, "explore", ["dcgan", "latest", 0, None, "seed", 0, 1, 2, 3,
                                                         -3 + 6 * (i % 61) / 60, 0.0, 0.0, 0.0]),
            "grid_python_client": lambda i: client.predict("dcgan", "latest", 16, i, None, "", NO_PRIOR, 0,
                                                           api_name="/sample"),
            "upscale": lambda i: picture(url, "upscale", ["srresnet", "latest", upload(url, photo)], output=1),
        }
        figures: dict[str, dict[str, float]] = {}
        for name, call in cases.items():
            count = args.upscale_requests if name == "upscale" else args.requests
            timed(call, 3)  # the model loaded, the paths warm
            figures[name] = summary(timed(call, count))
            print(name, figures[name], flush=True)

        answered: list[float] = []
        lost: list[str] = []

        def one_client(k: int) -> None:
            for i in range(args.load_requests):
                began = time.perf_counter()
                try:
                    grid = picture(url, "sample", ["dcgan", "latest", 16, 1000 * k + i, None, "", NO_PRIOR, 0])
                    if not grid.startswith(b"\x89PNG"):
                        lost.append(f"client {k} request {i}: not a picture")
                        continue
                    answered.append((time.perf_counter() - began) * 1000)
                except Exception as exc:  # noqa: BLE001  (counted as lost)
                    lost.append(f"client {k} request {i}: {exc}")

        began = time.perf_counter()
        threads = [threading.Thread(target=one_client, args=(k,)) for k in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        figures["clients"] = {**summary(answered), "clients": args.clients, "lost": len(lost),
                              "asked": args.clients * args.load_requests,
                              "grids_per_second": round(len(answered) / wall, 2)}
        figures["server"] = {"peak_mb": round(peak_mb(server.pid), 1)}
        if (ROOT / "cgan-lab").is_dir():
            figures["sevens"] = sevens(url)
            print("sevens", figures["sevens"])
            if args.screenshot is not None:
                screenshot(url, args.screenshot)
        print("clients", figures["clients"], "server", figures["server"], *lost[:5], sep="\n")
    finally:
        server.terminate()
        server.wait(30)
    write_result("serve", figures, notes=(
        "zoo serve as a user starts it; each request as the page sends it (Gradio's HTTP API: upload, call, event "
        "stream, the picture fetched), from the first byte sent to the picture's last byte; grid_python_client: the "
        "same grid through gradio_client; "
        "default networks (dcgan 28 px, pix2pix 256 px, srresnet x4 of a 256 px photo, in tiles); "
        f"{args.clients} clients at once asked for {args.load_requests} grids each"),
        requests=args.requests, upscale_requests=args.upscale_requests)


if __name__ == "__main__":
    main()
