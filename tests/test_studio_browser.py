"""siedob-studio in a real headless Chromium (Debian's, driven by Playwright): edit, generate, undo, download."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from siedob.edit.cli import bundled_example
from tests.support.studio_server import live_studio, studio_checkpoints  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIDEWALK = 8


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module's pages (Playwright allows one sync driver per thread)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def open_page(browser, url: str, errors: list):
    """A new page on the studio at ``url``, once its scripts are ready; page errors go to ``errors``."""
    pg = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_function("document.body.dataset.ready !== undefined", timeout=60_000)
    return pg


@pytest.fixture(scope="module")
def page(browser, live_studio):  # noqa: F811
    errors: list = []
    pg = open_page(browser, live_studio.url, errors)
    yield pg
    assert not errors, errors
    pg.close()


def state(page) -> dict:
    page.evaluate("window.siedobStudio.settled()")
    return page.evaluate("window.siedobStudio.state()")


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def download(page, link_id: str) -> bytes:
    with page.expect_download() as info:
        page.click(f"#{link_id}")
    return Path(info.value.path()).read_bytes()


def test_edit_in_the_browser(page, live_studio, tmp_path: Path) -> None:  # noqa: F811
    example = bundled_example()
    orig_labels = cv2.imread(str(example / "labels" / "example.png"), cv2.IMREAD_UNCHANGED)
    opened = state(page)
    assert (opened["width"], opened["height"]) == (256, 256)
    np.testing.assert_array_equal(np.array(opened["labels"]).reshape(256, 256), orig_labels)  # the scene is open

    # paint a stroke of sidewalk across the sky
    page.click(f"#palette button[data-label='{SIDEWALK}']")
    page.click("#toolbar button[data-tool='brush']")
    box = page.locator("#canvas").bounding_box()
    sx, sy = box["width"] / 256, box["height"] / 256
    page.mouse.move(box["x"] + 20 * sx, box["y"] + 20 * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + 120 * sx, box["y"] + 20 * sy, steps=12)
    page.mouse.up()
    painted = state(page)
    lab = np.array(painted["labels"]).reshape(256, 256)
    assert (lab[20, 20:121] == SIDEWALK).all() and (orig_labels[20, 20:121] != SIDEWALK).all()

    # place a car
    page.locator("#shape-picker img[data-cls='car']").first.click()
    page.wait_for_selector("#place-controls:not(.hidden)")
    page.mouse.click(box["x"] + 200 * sx, box["y"] + 240 * sy)
    page.click("#place-commit")
    placed = state(page)
    inst = np.array(placed["instances"]).reshape(256, 256)
    new_ids = set(np.unique(inst)) - set(np.unique(np.array(painted["instances"])))
    assert len(new_ids) == 1 and 26000 <= next(iter(new_ids)) < 27000
    car = inst == next(iter(new_ids))
    rows, cols = np.nonzero(car)
    assert 224 <= rows.max() <= 240 and abs((cols.min() + cols.max()) / 2 - 200) <= 8  # its feet where clicked
    assert car.sum() > 100 and (np.array(placed["labels"]).reshape(256, 256)[car] == 26).all()
    assert page.locator(f"#object-list li[data-id='{next(iter(new_ids))}']").get_attribute("data-fate") == "generated"

    # generate and see the result
    page.click("#generate")
    page.wait_for_function("document.getElementById('result-image').src.startsWith('data:image/png')", timeout=120_000)
    assert page.evaluate("document.getElementById('result-image').naturalWidth") == 256
    assert "ms" in page.locator("#latency").inner_text()

    # the downloads reproduce the edit through the API, and the mask is the API's rule
    files = {name: download(page, f"dl-{name}") for name in ("labels", "instances", "mask", "result")}
    image = (example / "images" / "example.jpg").read_bytes()
    with httpx.Client(base_url=live_studio.url, timeout=120) as c:
        derived = c.post(
            "/api/mask",
            files={
                "labels": files["labels"],
                "instances": files["instances"],
                "orig_labels": (example / "labels" / "example.png").read_bytes(),
                "orig_instances": (example / "inst_map" / "example.png").read_bytes(),
            },
        )
        again = c.post(
            "/api/edit",
            files={"image": image, "labels": files["labels"], "instances": files["instances"], "mask": files["mask"]},
        )
    given = cv2.imread(str(example / "mask" / "example.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(decode(files["mask"]), np.maximum(given, decode(derived.content)))
    np.testing.assert_array_equal(decode(files["labels"]), np.array(placed["labels"]).reshape(256, 256))
    assert decode(files["instances"]).dtype == np.uint16
    assert again.status_code == 200 and again.content == files["result"]

    # undo removes the car and restores the painted labels; undo again restores the scene's labels
    page.click("#undo")
    np.testing.assert_array_equal(np.array(state(page)["labels"]), np.array(painted["labels"]))
    page.click("#undo")
    np.testing.assert_array_equal(np.array(state(page)["labels"]).reshape(256, 256), orig_labels)
    page.click("#redo")
    np.testing.assert_array_equal(np.array(state(page)["labels"]), np.array(painted["labels"]))


@pytest.fixture(scope="module")
def ade_page(browser, tmp_path_factory):
    """The page of a studio on ADE20K-Room checkpoints over synthetic prepared rooms."""
    from siedob.data.synthetic_ade import write_prepared_ade
    from tests.support.edit import ade_checkpoints
    from tests.support.studio_server import start_studio

    root = tmp_path_factory.mktemp("ade_browser")
    write_prepared_ade(root / "data", 8, seed=0)
    live = start_studio(ade_checkpoints(root / "ckpt"), "--data", str(root / "data"))
    errors: list = []
    try:
        pg = open_page(browser, live.url, errors)
        yield pg
        assert not errors, errors
        pg.close()
    finally:
        live.stop()


def test_ade_rooms_in_the_browser(ade_page) -> None:
    page = ade_page
    floor, sofa = 4, 24
    # the palette is ADE's 151 labels ("other", 0, is a class of its own) and the brush starts on floor
    assert page.locator("#palette button").count() == 151
    assert page.locator("#palette button.active").get_attribute("data-label") == str(floor)
    options = page.eval_on_selector_all("#object-class option", "els => els.map(e => e.value)")
    assert options == ["bed", "table", "chair", "sofa", "armchair", "lamp"]
    opened = state(page)
    w, h = opened["width"], opened["height"]
    before = np.array(opened["instances"]).reshape(h, w)

    # place a sofa on the floor and generate
    page.locator("#shape-picker img[data-cls='sofa']").first.click()
    page.wait_for_selector("#place-controls:not(.hidden)")
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.9)
    page.click("#place-commit")
    placed = state(page)
    inst = np.array(placed["instances"]).reshape(h, w)
    new_ids = set(np.unique(inst)) - set(np.unique(before))
    assert len(new_ids) == 1 and sofa * 1000 <= next(iter(new_ids)) < (sofa + 1) * 1000
    new = inst == next(iter(new_ids))
    assert new.sum() > 50 and (np.array(placed["labels"]).reshape(h, w)[new] == sofa).all()
    page.click("#generate")
    page.wait_for_function("document.getElementById('result-image').src.startsWith('data:image/png')", timeout=120_000)
    assert page.evaluate("document.getElementById('result-image').naturalWidth") == w
