"""siedob-studio over ADE20K-Room checkpoints: the label table, objects, style fields and edits follow their profile."""

from __future__ import annotations

from base64 import b64decode
from pathlib import Path
from typing import Dict, Iterator, Tuple

import cv2
import httpx
import numpy as np
import pytest

from siedob.data.synthetic_ade import write_prepared_ade
from siedob.errors import SiedobError
from siedob.profiles import get_profile
from siedob.studio.cli import build_parser, make_studio
from tests.support.edit import ade_checkpoints
from tests.support.studio_server import LiveStudio, start_studio, studio_checkpoints  # noqa: F401

ADE = get_profile("ade20k-room")
SOFA = 24


@pytest.fixture(scope="module")
def ade_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[LiveStudio, Path]]:
    """A studio on ADE checkpoints over a synthetic prepared ADE20K-Room root."""
    root = tmp_path_factory.mktemp("ade_studio")
    data = root / "data"
    write_prepared_ade(data, 8, seed=0)
    live = start_studio(ade_checkpoints(root / "ckpt"), "--data", str(data))
    yield live, data
    live.stop()


@pytest.fixture(scope="module")
def client(ade_studio) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ade_studio[0].url, timeout=300) as c:
        yield c


def ade_scene_files(data: Path) -> Dict[str, bytes]:
    """The prepared test scene with a mask over its whole sofa (so G_OG draws it) and its predefined strokes."""
    stem = sorted(p.stem for p in (data / "test" / "images").iterdir())[0]
    inst = cv2.imread(str(data / "test" / "inst_map" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
    sofa = (inst // 1000) == SOFA
    assert sofa.any(), "the synthetic test room has a sofa"
    rows, cols = np.nonzero(sofa)
    mask = cv2.imread(str(data / "predefined_mask" / "0000.png"), cv2.IMREAD_UNCHANGED)
    mask[max(0, rows.min() - 4) : rows.max() + 5, max(0, cols.min() - 4) : cols.max() + 5] = 255
    return {
        "image": (data / "test" / "images" / f"{stem}.jpg").read_bytes(),
        "labels": (data / "test" / "labels" / f"{stem}.png").read_bytes(),
        "instances": (data / "test" / "inst_map" / f"{stem}.png").read_bytes(),
        "mask": cv2.imencode(".png", mask)[1].tobytes(),
    }


def test_labels_are_the_ade_table(client) -> None:
    info = client.get("/api/labels").json()
    assert len(info["labels"]) == 151 and info["profile"] == "ade20k-room"
    assert [(r["id"], r["name"], tuple(r["color"])) for r in info["labels"]] == [
        (lab.id, lab.name, lab.color) for lab in ADE.labels
    ]
    assert info["labels"][4]["name"] == "floor, flooring" and info["labels"][0]["name"] == "other"
    assert info["objects"] == {"bed": 8, "table": 16, "chair": 20, "sofa": 24, "armchair": 31, "lamp": 37}
    assert info["instance_factor"] == 1000 and info["unlabeled"] is None and info["brush_label"] == 4


def test_scenes_and_styles_are_the_ade_roots(client, ade_studio) -> None:
    _, data = ade_studio
    ids = [s["id"] for s in client.get("/api/scenes").json()["scenes"]]
    assert "example:example" not in ids  # the bundled example is a Cityscapes scene
    assert sorted(i for i in ids if i.startswith("test:")) == [
        f"test:{p.stem}" for p in sorted((data / "test" / "images").iterdir())
    ]
    # training rooms keep their aspect (e.g. 256×341): only those the chain can edit (sides % 16) are listed
    train = {p.stem: cv2.imread(str(p)).shape[:2] for p in (data / "train" / "images").iterdir()}
    listed = {i.split(":", 1)[1] for i in ids if i.startswith("train:")}
    assert listed == {n for n, (h, w) in train.items() if h % 16 == 0 and w % 16 == 0}
    assert len(listed) < len(train)  # the synthetic rooms include such scenes
    styles = client.get("/api/styles").json()["styles"]
    assert set(styles) == set(ADE.object_names) and styles["sofa"]
    shape = client.get("/api/shapes/sofa/0").json()
    assert (shape["width"], shape["height"]) == (64, 64) and 0 < sum(b64decode(shape["data"])) < 64 * 64


def test_edit_an_ade_scene(client, ade_studio) -> None:
    _, data = ade_studio
    files = ade_scene_files(data)
    response = client.post("/api/edit", files=files, data={"seed": "1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    result = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert result.shape == (256, 256, 3)
    info = client.post("/api/edit", files=files, data={"seed": "1", "stages": "1"}).json()
    assert b64decode(info["result"].split(",", 1)[1]) == response.content
    classes = {o["class"] for o in info["edited_objects"]}
    assert classes and classes <= set(ADE.object_names)
    sofas = [o for o in info["edited_objects"] if o["class"] == "sofa" and o["generated"]]
    listed = {s["name"] for s in client.get("/api/styles").json()["styles"]["sofa"]}
    assert sofas and all(o["style"] in listed for o in sofas)
    assert set(info["styles"]) <= set(ADE.object_names)


def test_uploaded_styles_use_the_ade_class_names(client, ade_studio) -> None:
    _, data = ade_studio
    files = [(k, (k, v)) for k, v in ade_scene_files(data).items()]
    crops = data / "object_datasets" / "sofa" / "train"
    for img in sorted((crops / "images").iterdir()):
        files.append(("style_sofa_image", (img.name, img.read_bytes())))
        files.append(("style_sofa_mask", (img.name, (crops / "inst_mask" / f"{img.stem}.png").read_bytes())))
    info = client.post("/api/edit", files=files, data={"stages": "1"}).json()
    uploaded = {p.name for p in (crops / "images").iterdir()}
    assert {o["style"] for o in info["edited_objects"] if o["class"] == "sofa" and o["generated"]} <= uploaded
    one = dict(ade_scene_files(data), style_sofa_image=ade_scene_files(data)["image"])
    r = client.post("/api/edit", files=one)
    assert r.status_code == 400 and "style_sofa_mask" in r.json()["error"]
    r = client.post("/api/edit", files=dict(ade_scene_files(data), style_car_image=b"x"))
    assert r.status_code == 400 and "style_car_image" in r.json()["error"]


def test_ade_label_ids_are_checked_against_151_classes(client, ade_studio) -> None:
    _, data = ade_studio
    files = ade_scene_files(data)
    labels = cv2.imdecode(np.frombuffer(files["labels"], np.uint8), cv2.IMREAD_UNCHANGED)
    labels[0, 0] = 151
    r = client.post("/api/edit", files=dict(files, labels=cv2.imencode(".png", labels)[1].tobytes()))
    assert r.status_code == 400 and "0..150" in r.json()["error"]


def test_data_of_another_profile_is_one_line(studio_checkpoints, ade_studio) -> None:  # noqa: F811
    _, data = ade_studio
    args = build_parser().parse_args(["--checkpoints", str(studio_checkpoints), "--device", "cpu", "--data", str(data)])
    with pytest.raises(SiedobError) as info:
        make_studio(args)
    message = str(info.value)
    assert "\n" not in message and "ade20k-room" in message and "cityscapes" in message and str(data) in message
