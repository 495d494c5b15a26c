"""zoo serve's page in a real browser: Debian's headless Chromium, driven through its
chromedriver with Selenium. Each tab is used as a person would (pick a run, a class,
move a slider, draw on the pad, upload a photo) and photographed; the screenshots must not
be blank. ``ZOO_SCREENSHOTS=DIR`` keeps them there (docs/serve.png is one)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from .serving import Live

CHROMIUM = os.environ.get("ZOO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ZOO_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 60.0


@pytest.fixture(scope="module")
def live(live_server: Live) -> Live:
    return live_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.fail(f"the browser tests need Chromium and its driver ({CHROMIUM}, {CHROMEDRIVER}): "
                    "apt-get install chromium chromium-driver (.ci/run does)", pytrace=False)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager downloads nothing
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1400",
                 "--enable-unsafe-swiftshader", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser: Any, live: Live) -> Any:
    browser.get(live.url)
    until(lambda: browser.find_elements("css selector", "button[role='tab']"), "the page's tabs")
    return browser


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def until(found: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Wait for ``found`` to return something true; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = found()
        except Exception as exc:  # noqa: BLE001  (the page is still changing: look again)
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    pytest.fail(f"waited {timeout:g} s for {what}; last saw {last!r}", pytrace=False)


def open_tab(driver: Any, name: str) -> None:
    driver.find_element("xpath", f"//button[@role='tab' and normalize-space()='{name}']").click()


def choose(driver: Any, elem_id: str, value: str) -> None:
    """Pick ``value`` in a dropdown as a person does: open it, click the option."""
    box = driver.find_element("css selector", f"#{elem_id} input")
    box.click()

    def option() -> Any:
        for item in driver.find_elements("css selector", "li[data-testid='dropdown-option']"):
            label = item.get_attribute("aria-label") or ""
            if item.is_displayed() and (label == value or label.startswith(f"{value}  (")):
                return item
        return None

    until(option, f"{value} among {elem_id}'s options").click()
    until(lambda: box.get_attribute("value").split("  (")[0] == value, f"{elem_id} to show {value}")


def image_source(driver: Any, elem_id: str) -> str:
    found = driver.find_elements("css selector", f"#{elem_id} img")
    return (found[-1].get_attribute("src") or "") if found else ""


def shot(driver: Any, folder: Path, name: str) -> Path:
    """A screenshot of the page, checked not to be blank (kept in $ZOO_SCREENSHOTS too)."""
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    with Image.open(path) as picture:
        gray = picture.convert("L")
        spread = ImageStat.Stat(gray).stddev[0]
        colours = len(gray.getcolors(256 * 256) or [])
    assert spread > 10 and colours > 20, f"{name}: the screenshot looks blank ({spread:.1f}, {colours} shades)"
    if os.environ.get("ZOO_SCREENSHOTS"):
        keep = Path(os.environ["ZOO_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, keep / path.name)
    return path


def toast(driver: Any) -> str:
    """The text of the messages the page shows (Gradio's toasts)."""
    return " ".join(e.text for e in driver.find_elements("css selector", ".toast-body, [data-testid='toast-body']"))


# -- each tab ---------------------------------------------------------------------------------------

def test_runs_tab_lists_every_run_with_its_pictures(page: Any, screenshots: Path) -> None:
    open_tab(page, "Runs")
    table = until(lambda: page.find_element("css selector", "#runs-table").text, "the runs table")
    for run in ("cgan", "dcgan", "pix2pix", "srresnet", "tiny", "vae"):
        assert run in table
    choose(page, "runs-run", "dcgan")
    until(lambda: "dcgan on mnist" in page.find_element("css selector", "#runs-about").text, "the run's line")
    until(lambda: image_source(page, "runs-losses"), "the loss curves")
    shot(page, screenshots, "runs")


def test_sample_pick_seven_and_a_grid_of_sevens_appears(page: Any, screenshots: Path) -> None:
    open_tab(page, "Sample")
    choose(page, "sample-run", "cgan")
    until(lambda: page.find_element("css selector", "#sample-class").is_displayed(), "the class picker")
    choose(page, "sample-class", "7")
    before = image_source(page, "sample-grid")
    page.find_element("css selector", "#sample-draw").click()
    until(lambda: "of class 7" in page.find_element("css selector", "#sample-caption").text, "the caption")
    until(lambda: image_source(page, "sample-grid") not in ("", before), "a new grid")
    shot(page, screenshots, "sample")


def test_explore_moving_a_slider_changes_the_image(page: Any, screenshots: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    open_tab(page, "Explore")
    choose(page, "explore-run", "dcgan")
    first = until(lambda: image_source(page, "explore-image"), "the base image")
    slider = page.find_element("css selector", "#explore-slider0 input[type='range']")
    slider.click()
    slider.send_keys(Keys.END)  # the coordinate to +3
    until(lambda: image_source(page, "explore-image") not in ("", first), "the image to follow the slider")
    shot(page, screenshots, "explore")


def test_translate_strokes_on_the_pad_give_an_output(page: Any, screenshots: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    open_tab(page, "Translate")
    choose(page, "translate-run", "pix2pix")
    page.find_element("css selector", "#translate-pad button[aria-label='Brush']").click()
    canvas = until(lambda: [c for c in page.find_elements("css selector", "#translate-pad canvas")
                            if c.is_displayed()], "the drawing pad")[0]
    strokes = ActionChains(page).move_to_element_with_offset(canvas, -40, -40).click_and_hold()
    for dx, dy in ((30, 0), (30, 20), (0, 40), (-50, 10)):
        strokes = strokes.move_by_offset(dx, dy)
    strokes.release().perform()
    page.find_element("css selector", "#translate-drawing").click()
    until(lambda: image_source(page, "translate-output"), "the translation")
    until(lambda: "pix2pix AtoB" in page.find_element("css selector", "#translate-caption").text, "its caption")
    shot(page, screenshots, "translate")


def test_translate_a_wrong_upload_shows_its_message(page: Any, tmp_path: Path) -> None:
    open_tab(page, "Translate")
    text = tmp_path / "letter.png"
    text.write_text("Dear zoo, this is not a picture.")
    page.find_element("css selector", "#translate-upload input[type='file']").send_keys(str(text))
    until(lambda: "letter" in page.find_element("css selector", "#translate-upload").text, "the upload")
    page.find_element("css selector", "#translate-go").click()
    until(lambda: "the upload is not an image zoo can read" in toast(page), "the message")
    for close in page.find_elements("css selector", "[data-testid='toast-close']"):
        close.click()


def test_upscale_a_photo_four_times_larger(page: Any, live: Live, screenshots: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.radial_gradient("L").resize((64, 48)).convert("RGB").save(photo)
    open_tab(page, "Upscale")
    page.find_element("css selector", "#upscale-upload input[type='file']").send_keys(str(photo))
    until(lambda: "photo" in page.find_element("css selector", "#upscale-upload").text, "the upload")
    page.find_element("css selector", "#upscale-go").click()
    until(lambda: "64x48 -> 256x192" in page.find_element("css selector", "#upscale-caption").text, "the caption")
    widths = until(lambda: page.execute_script(
        "return [...document.querySelectorAll('#upscale-slider img')].map(i => i.naturalWidth)"), "the pictures")
    assert 256 in widths
    shot(page, screenshots, "upscale")


def test_reconstruct_and_measure_tabs(page: Any, screenshots: Path, tmp_path: Path) -> None:
    photo = tmp_path / "digit.png"
    Image.radial_gradient("L").resize((28, 28)).save(photo)
    open_tab(page, "Reconstruct")
    page.find_element("css selector", "#reconstruct-upload input[type='file']").send_keys(str(photo))
    until(lambda: "digit" in page.find_element("css selector", "#reconstruct-upload").text, "the upload")
    page.find_element("css selector", "#reconstruct-go").click()
    until(lambda: "PSNR" in page.find_element("css selector", "#reconstruct-caption").text, "the PSNR")
    shot(page, screenshots, "reconstruct")
    open_tab(page, "Measure")
    choose(page, "measure-run", "dcgan")
    until(lambda: "zoo eval dcgan" in page.find_element("css selector", "#measure-protocol").text, "the note")
    shot(page, screenshots, "measure")
