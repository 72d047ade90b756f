"""siedob-studio's API on a real server: byte-identical results to fusion/test_one_image.py, and every bad upload."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from base64 import b64decode
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict

import cv2
import httpx
import numpy as np
import pytest

from siedob.edit.cli import bundled_example
from siedob.edit.cli import main as edit_main
from tests.support.studio_server import live_studio, start_studio, studio_checkpoints  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def scene_files(folder: Path, stem: str) -> Dict[str, bytes]:
    """The four files of one scene of an authors'-layout folder, as upload fields."""
    image = next((folder / "images").glob(f"{stem}.*"))
    return {
        "image": image.read_bytes(),
        "labels": (folder / "labels" / f"{stem}.png").read_bytes(),
        "instances": (folder / "inst_map" / f"{stem}.png").read_bytes(),
        "mask": (folder / "mask" / f"{stem}.png").read_bytes(),
    }


def png_bytes(arr: np.ndarray) -> bytes:
    return cv2.imencode(".png", arr)[1].tobytes()


@pytest.fixture(scope="module")
def client(live_studio) -> httpx.Client:  # noqa: F811
    with httpx.Client(base_url=live_studio.url, timeout=120) as c:
        yield c


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_bundled_example_byte_identical_to_test_one_image(client, live_studio, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "cli"
    example = bundled_example()
    cmd = [
        sys.executable,
        str(REPO / "fusion" / "test_one_image.py"),
        "--checkpoints",
        str(live_studio.checkpoints),
        "--input",
        str(example),
        "--output",
        str(out),
        "--device",
        "cpu",
    ]
    subprocess.run(cmd, check=True, capture_output=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)))
    response = client.post("/api/edit", files=scene_files(example, "example"), data={"seed": "0"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content == (out / "example.png").read_bytes()
    # the listed example opened by id is the same scene
    listed = client.get("/api/scenes").json()["scenes"]
    assert {"id": "example:example", "name": "example", "source": "example", "has_mask": True} in listed


@pytest.mark.parametrize("name", ["example", "example2", "example3"])
def test_reference_scenes_uploaded_byte_identical(
    client,
    live_studio,  # noqa: F811
    reference_dir: Path,
    name: str,
    tmp_path: Path,  # noqa: F811
) -> None:
    folder = reference_dir / name
    assert (
        edit_main(
            [
                "--checkpoints",
                str(live_studio.checkpoints),
                "--input",
                str(folder),
                "--output",
                str(tmp_path),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    files = [(k, (k, v)) for k, v in scene_files(folder, "test").items()]
    for cls in ("car", "person"):
        for img in sorted((folder / "object_style" / cls / "images").iterdir()):
            files.append((f"style_{cls}_image", (img.name, img.read_bytes())))
            files.append(
                (f"style_{cls}_mask", (img.name, (img.parent.parent / "inst_mask" / f"{img.stem}.png").read_bytes()))
            )
    response = client.post("/api/edit", files=files)
    assert response.status_code == 200, response.text
    assert response.content == (tmp_path / "test.png").read_bytes()


def test_stages_and_health(client) -> None:
    files = scene_files(bundled_example(), "example")
    info = client.post("/api/edit", files=files, data={"stages": "1", "seed": "5"}).json()
    assert info["seed"] == 5 and info["result"].startswith("data:image/png;base64,")
    for key in ("objects", "background", "composite"):
        assert info[key].startswith("data:image/png;base64,")
    assert any(o["generated"] and o["style"] for o in info["edited_objects"])
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu"


def test_derived_mask_is_the_cli_rule(client) -> None:
    ex = bundled_example()
    labels = cv2.imread(str(ex / "labels" / "example.png"), cv2.IMREAD_UNCHANGED)
    inst = cv2.imread(str(ex / "inst_map" / "example.png"), cv2.IMREAD_UNCHANGED)
    edited = labels.copy()
    edited[100:110, 50:60] = 8
    files = {
        "labels": png_bytes(edited),
        "instances": png_bytes(inst),
        "orig_labels": png_bytes(labels),
        "orig_instances": png_bytes(inst),
    }
    mask = cv2.imdecode(np.frombuffer(client.post("/api/mask", files=files).content, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = np.zeros_like(labels)
    expected[98:112, 48:62] = 255  # the 10×10 change dilated by 2 pixels
    changed_before = labels[100:110, 50:60] != 8
    assert changed_before.all()
    np.testing.assert_array_equal(mask, expected)


def test_bad_uploads(client) -> None:
    good = scene_files(bundled_example(), "example")
    labels = cv2.imread(str(bundled_example() / "labels" / "example.png"), cv2.IMREAD_UNCHANGED)
    drop = {k: v for k, v in good.items() if k != "labels"}
    assert_error(client.post("/api/edit", files=drop), 400, "missing field 'labels'")
    no_mask = {k: v for k, v in good.items() if k != "mask"}
    assert_error(client.post("/api/edit", files=no_mask), 400, "mask", "orig_labels")
    assert_error(client.post("/api/edit", files=dict(good, image=b"not an image")), 400, "image: not a decodable image")
    assert_error(client.post("/api/edit", files=dict(good, labels=good["image"])), 400, "labels", "one channel")
    assert_error(client.post("/api/edit", files=dict(good, instances=good["labels"])), 400, "instances", "16-bit")
    small = cv2.resize(labels, (128, 128), interpolation=cv2.INTER_NEAREST)
    assert_error(client.post("/api/edit", files=dict(good, labels=png_bytes(small))), 400, "labels", "does not match")
    wrong = labels.copy()
    wrong[0, 0] = 40
    assert_error(
        client.post("/api/edit", files=dict(good, labels=png_bytes(wrong))), 400, "label ids must lie in 0..33"
    )
    assert_error(
        client.post("/api/edit", data={"image": "text"}, files={"labels": good["labels"]}), 400, "'image'", "file"
    )
    assert_error(client.post("/api/edit", files=good, data={"seed": "x"}), 400, "'seed'", "integer")
    assert_error(client.post("/api/edit", files=dict(good, bogus=b"1")), 400, "unknown field 'bogus'")
    assert_error(client.post("/api/edit", json={"image": 1}), 400, "multipart")
    assert_error(client.post("/api/edit", files=good, data={"styles": "nothing_here"}), 400, "nothing_here")
    assert_error(client.post("/api/edit", files=dict(good, style_car_image=good["image"])), 400, "style_car_mask")
    assert client.get("/api/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    "scene_id",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "example:..%2F..%2Fexample",
        "%2Fetc%2Fpasswd",
        "example:example%2F..%2F..%2F..%2Fsiedob",
    ],
)
def test_scene_id_traversal_is_refused(client, scene_id: str) -> None:
    for suffix in ("", "/thumbnail", "/files/image"):
        r = client.get(f"/api/scenes/{scene_id}{suffix}")
        assert r.status_code == 404 and r.json()["error"], r.text
    assert_error(client.get("/api/scenes/example:example/files/..%2F..%2Fpyproject.toml"), 404)
    assert_error(client.get("/api/styles/car/..%2F..%2Fx"), 404)
    assert client.get("/api/health").json()["status"] == "ok"


def test_oversize_requests(studio_checkpoints) -> None:  # noqa: F811
    live = start_studio(studio_checkpoints, "--max-upload-mb", "0.05", "--max-pixels", "65536", "--queue", "4")
    try:
        with httpx.Client(base_url=live.url, timeout=120) as c:
            good = scene_files(bundled_example(), "example")
            big = dict(good, image=os.urandom(80_000))
            assert_error(c.post("/api/edit", files=big), 413, str(int(0.05 * 1024 * 1024)), "bytes")
            huge = dict(good, mask=png_bytes(np.zeros((512, 512), np.uint8)))
            assert_error(c.post("/api/edit", files=huge), 413, "mask", "512×512", "65536 pixels")
            assert c.post("/api/edit", files=good).status_code == 200
            assert c.get("/api/health").json()["status"] == "ok"
    finally:
        live.stop()


def test_twenty_concurrent_requests(studio_checkpoints) -> None:  # noqa: F811
    live = start_studio(studio_checkpoints, "--queue", "4")
    try:
        good = scene_files(bundled_example(), "example")

        def post(_: int) -> httpx.Response:
            with httpx.Client(base_url=live.url, timeout=300) as c:
                return c.post("/api/edit", files=good)

        with ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(post, i) for i in range(20)]
            seen_busy = []
            with httpx.Client(base_url=live.url, timeout=30) as c:
                while not all(f.done() for f in futures):  # health answers at once while edits run
                    start = time.perf_counter()
                    pending = c.get("/api/health").json()["pending"]
                    seen_busy.append((pending, time.perf_counter() - start))
                    time.sleep(0.05)
            responses = [f.result() for f in futures]
        assert any(pending > 0 and seconds < 0.5 for pending, seconds in seen_busy), seen_busy
        ok = [r for r in responses if r.status_code == 200]
        busy = [r for r in responses if r.status_code != 200]
        assert ok and len({r.content for r in ok}) == 1
        for r in busy:
            assert_error(r, 429, "busy", "limit is 4")
        with httpx.Client(base_url=live.url, timeout=30) as c:
            health = c.get("/api/health").json()
            assert health["status"] == "ok" and health["pending"] == 0
            assert c.post("/api/edit", files=good).content == ok[0].content
    finally:
        live.stop()


def test_prepared_dataset_scenes_and_styles(studio_checkpoints, tmp_path: Path) -> None:  # noqa: F811
    from siedob.data.synthetic import write_prepared

    data = tmp_path / "data"
    write_prepared(data, 2, seed=0)
    live = start_studio(studio_checkpoints, "--data", str(data))
    try:
        with httpx.Client(base_url=live.url, timeout=120) as c:
            ids = [s["id"] for s in c.get("/api/scenes").json()["scenes"]]
            train = sorted(p.stem for p in (data / "train" / "images").glob("*.jpg"))
            assert [i for i in ids if i.startswith("train:")] == [f"train:{s}" for s in train]
            assert any(i.startswith("test:") for i in ids) and "example:example" in ids
            scene = c.get(f"/api/scenes/train:{train[0]}").json()
            assert (scene["width"], scene["height"]) == (512, 256) and scene["mask"] is None
            assert c.get(f"/api/scenes/train:{train[0]}/thumbnail").headers["content-type"] == "image/jpeg"
            styles = c.get("/api/styles").json()
            assert styles["source"].endswith("object_datasets") and styles["styles"]["car"]
            shape = c.get("/api/shapes/car/0").json()
            assert (shape["width"], shape["height"]) == (64, 64) and 0 < sum(b64decode(shape["data"])) < 64 * 64
            files = scene_files(bundled_example(), "example")
            info = c.post("/api/edit", files=files, data={"stages": "1"}).json()
            generated = [o for o in info["edited_objects"] if o["generated"]]
            assert generated and all(o["style"] in {s["name"] for s in styles["styles"][o["class"]]} for o in generated)
    finally:
        live.stop()


def test_missing_checkpoints_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "siedob.studio", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no checkpoints") and "siedob-quickstart" in lines[0]


def test_uploaded_styles_are_drawn_as_the_cli_draws_a_folder(client, tmp_path: Path) -> None:
    example = bundled_example()
    ckpt = client.get("/api/health").json()["checkpoints"]
    args = ["--checkpoints", ckpt, "--input", str(example), "--output", str(tmp_path), "--device", "cpu", "--seed", "3"]
    assert edit_main(args) == 0
    files = [(k, (k, v)) for k, v in scene_files(example, "example").items()]
    for cls in ("car", "person"):
        images = sorted((example / "object_style" / cls / "images").iterdir(), reverse=True)  # not the folder's order
        assert len(images) > 1
        for img in images:
            files.append((f"style_{cls}_image", (img.name, img.read_bytes())))
        for img in images[::-1]:
            mask = img.parent.parent / "inst_mask" / f"{img.stem}.png"
            files.append((f"style_{cls}_mask", (mask.name, mask.read_bytes())))
    response = client.post("/api/edit", files=files, data={"seed": "3"})
    assert response.status_code == 200, response.text
    assert response.content == (tmp_path / "example.png").read_bytes()
