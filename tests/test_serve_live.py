"""The real `colorgan serve` on a live 127.0.0.1 port: concurrent clients, `bench serve`, and a real
browser (Debian's chromium through selenium) colouring an example as a person would.

The model has learned shirt colours (`trained_model`), so the browser test can check that the
colour chosen on the page is the colour in the picture's shirt: the shirt region and each value's
reference colour come from the dataset's own variants, as `colorgan evaluate` judges them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[dev]'")
import httpx  # noqa: E402

from colorgan.cli import cli  # noqa: E402
from colorgan.data.icons import builtin_path  # noqa: E402
from colorgan.data.images import open_image  # noqa: E402
from colorgan.data.metadata import read_metadata  # noqa: E402
from colorgan.inference import Colorizer  # noqa: E402
from colorgan.metrics import attribute_regions, nearest_value, region_color, value_colors  # noqa: E402
from colorgan.recipe import Icons  # noqa: E402
from colorgan.serve.process import ServerProcess  # noqa: E402
from test_serve_api import ICONS, trained_model  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return trained_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def server(model):
    with ServerProcess([model], "--device", "cpu") as running:
        yield running


@pytest.fixture(scope="module")
def icons():
    """The model's dataset: the built-in icons it was trained on (2 characters, 32 px)."""
    return builtin_path(Icons(characters=2), 32)


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_concurrent_requests_each_get_their_own_colours(server, model, icons):
    colorizer = Colorizer.load(model, device="cpu")
    sketch = open_image(icons / "sketches" / "char-00.png")
    combos = [{"hair": h, "shirt": s} for h in ICONS["hair"] for s in ICONS["shirt"]]
    expected = [np.asarray(colorizer.colorize(sketch, c), dtype=np.int16) for c in combos]

    def ask(combo):
        return httpx.post(f"{server.url}/api/colorize", data={"example": "0", **combo}, timeout=60).content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, combos * 2))
    for i, png in enumerate(answers):  # another process: the same numbers up to float rounding
        assert np.abs(decoded(png) - expected[i % len(combos)]).max() <= 2, combos[i % len(combos)]


def test_bench_serve_measures_a_live_server(model):
    result = CliRunner().invoke(cli, ["bench", "serve", str(model), "--requests", "12", "--clients", "3",
                                      "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert (figures["requests"], figures["errors"], figures["clients"]) == (12, 0, 3)
    assert figures["requests_per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert figures["server_rss_after_mb"] > 0


# --- in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -e '.[dev]'")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromedriver: apt-get install chromium chromium-driver "
                    "(.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with both paths given, selenium downloads nothing
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


@contextlib.contextmanager
def screenshot_on_failure(driver, path: Path):
    try:
        yield
    except BaseException:
        driver.save_screenshot(str(path))
        print(f"screenshot of the page when the test failed: {path}")
        raise


def shown_png(driver, element_id: str) -> bytes:
    """The pixels an <img> on the page shows, as a PNG (drawn into a canvas in the page)."""
    script = """const img = document.getElementById(arguments[0]);
        const canvas = Object.assign(document.createElement("canvas"), {width: img.naturalWidth, height: img.naturalHeight});
        canvas.getContext("2d").drawImage(img, 0, 0);
        return canvas.toDataURL("image/png").split(",")[1];"""
    return base64.b64decode(driver.execute_script(script, element_id))


def test_a_person_colours_an_example_in_the_browser(browser, server, icons, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    rows = read_metadata(icons)[0].query("input == 'sketches/char-00.png'")
    targets = {(r.hair, r.shirt): open_image(icons / r.output) for r in rows.itertuples()}
    shirt = attribute_regions(targets, ["hair", "shirt"])["shirt"]
    references = value_colors(targets, ["hair", "shirt"], "shirt", {"shirt": shirt})
    wait = WebDriverWait(browser, 30)

    def colour(hair: str, shirt_value: str) -> bytes:
        before = browser.find_element(By.ID, "result").get_attribute("src")
        Select(browser.find_element(By.ID, "attr-hair")).select_by_value(hair)
        Select(browser.find_element(By.ID, "attr-shirt")).select_by_value(shirt_value)
        browser.find_element(By.ID, "colorize").click()
        wait.until(lambda d: d.execute_script(
            "const img = document.getElementById('result');"
            "return img.src !== arguments[0] && img.complete && img.naturalWidth > 0;", before))
        return shown_png(browser, "result")

    with screenshot_on_failure(browser, tmp_path / "browser-failure.png"):
        browser.get(server.url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#examples button")) == 2)
        browser.find_element(By.CSS_SELECTOR, "#examples button[data-id='0']").click()
        olive, violet = decoded(colour("crimson", "olive")), decoded(colour("crimson", "violet"))
        for image, asked in ((olive, "olive"), (violet, "violet")):
            assert nearest_value(region_color(image.astype(np.uint8), shirt), references) == asked
        assert np.abs(olive[shirt.numpy()] - violet[shirt.numpy()]).mean() > 20
        download = browser.find_element(By.ID, "download")
        assert download.get_attribute("download") == "char-00-hair=crimson-shirt=violet.png"

        browser.find_element(By.ID, "sweep").click()
        wait.until(lambda d: d.execute_script(
            "const img = document.getElementById('sweep-result'); return img.complete && img.naturalWidth > 0;"))
        assert Image.open(io.BytesIO(shown_png(browser, "sweep-result"))).width > 5 * 32

        (tmp_path / "notes.txt").write_text("not a picture")
        browser.find_element(By.ID, "upload").send_keys(str(tmp_path / "notes.txt"))
        browser.find_element(By.ID, "colorize").click()
        error = browser.find_element(By.ID, "error")
        wait.until(lambda d: error.is_displayed())
        assert error.text == "upload 'notes.txt': not an image Pillow can read (PNG, JPEG or WebP expected)"
        browser.find_element(By.CSS_SELECTOR, "#examples button[data-id='1']").click()
        colour("gold", "olive")
        assert not error.is_displayed()
