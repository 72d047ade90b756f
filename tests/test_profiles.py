"""Dataset profiles: cityscapes reproduces today's constants field by field; ade20k-room is consistent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import siedob
from siedob import labels as L
from siedob import maps
from siedob.config import load_stage_config
from siedob.data.disassembly import EDIT_RULES, find_candidates, rules_from_config
from siedob.data.prepare_cityscapes import load_settings
from siedob.profiles import PROFILE_NAMES, ProfileError, get_profile

CITY = get_profile("cityscapes")
ADE = get_profile("ade20k-room")


def stage_data(stage: str) -> dict:
    return load_stage_config(stage)["data"]


def test_unknown_profile_is_a_one_line_error():
    with pytest.raises(ProfileError) as exc:
        get_profile("ade20k")
    msg = str(exc.value)
    assert "\n" not in msg and "'ade20k'" in msg and "cityscapes" in msg and "ade20k-room" in msg
    assert PROFILE_NAMES == ("ade20k-room", "cityscapes")


def test_cityscapes_label_table_is_todays():
    assert CITY.lab_dim == L.LAB_DIM == 34
    assert len(CITY.labels) == len(L.LABELS)
    for ours, theirs in zip(CITY.labels, L.LABELS):
        assert (ours.id, ours.name, ours.train_id, ours.has_instances, ours.color) == (
            theirs.id,
            theirs.name,
            theirs.train_id,
            theirs.has_instances,
            theirs.color,
        )
    assert np.array_equal(CITY.palette(), L.palette())


def test_cityscapes_unlabeled_rule_is_todays():
    lab = np.array([[0, 1, 33], [7, 0, 26]], np.uint8)
    assert np.array_equal(CITY.remap_unlabeled(lab), L.remap_unlabeled(lab))
    assert CITY.remap_unlabeled(lab)[0, 0] == 33 and lab[0, 0] == 0  # input untouched


def test_cityscapes_classes_and_codes_are_todays():
    assert {o.name: o.label_id for o in CITY.objects} == L.OBJECT_CLASSES
    assert CITY.object_ids == (L.CAR, L.PERSON)
    assert CITY.code_width == 3
    for cls, code in L.CLASS_CODES.items():
        assert CITY.class_code(cls) == code
        assert torch.equal(torch.tensor(CITY.class_code(cls)).view(3, 1, 1), maps.class_code(cls))
    assert CITY.background_classes == L.BACKGROUND_CLASSES
    assert CITY.style_skipped_classes == L.STYLE_SKIPPED_CLASSES
    assert CITY.instance_factor == L.INSTANCE_FACTOR


@pytest.mark.parametrize("loader", ["background", "fusion"])
@pytest.mark.parametrize("train", [True, False])
def test_cityscapes_loader_rules_are_the_configs(loader, train):
    rules = rules_from_config(stage_data(loader), train)
    ours = CITY.loaders[loader]
    assert rules.classes == CITY.object_ids
    assert dict(rules.fill_ratio) == {o.label_id: o.fill_ratio for o in CITY.objects}
    assert rules.inside_fraction == ours.inside_fraction
    assert rules.max_num == ours.max_num and rules.margin == ours.margin
    assert rules.clamp == (ours.clamp if train else None)
    aspect = ours.aspect.get(L.PERSON)
    assert rules.person_aspect == aspect and set(ours.aspect) <= {L.PERSON}
    assert dict(rules.crop_size) == dict(ours.crop_size)


def test_cityscapes_edit_rules_are_the_fusion_loaders():
    rules, ours = EDIT_RULES, CITY.loaders["fusion"]
    assert rules.classes == CITY.object_ids and rules.person_aspect is None and not ours.aspect
    assert dict(rules.fill_ratio) == {o.label_id: o.fill_ratio for o in CITY.objects}
    assert (rules.inside_fraction, rules.max_num, rules.margin, rules.clamp) == (
        ours.inside_fraction,
        ours.max_num,
        ours.margin,
        None,
    )
    assert dict(rules.crop_size) == dict(ours.crop_size)


def test_cityscapes_preparation_is_todays():
    s = load_settings()
    prep = CITY.preparation
    assert s.size == prep.size and s.test_size == prep.test_size
    assert s.margin == prep.box_margin and s.min_short_side == prep.min_short_side
    assert dict(s.fill_ratio) == {o.name: o.fill_ratio for o in CITY.objects}
    assert dict(s.object_size) == {o.name: o.crop_size for o in CITY.objects}


def test_cityscapes_lab_dim_is_the_stage_configs():
    for stage in ("background", "fusion"):
        assert load_stage_config(stage)["model"]["lab_dim"] == CITY.lab_dim


def test_tie_rule_matches_the_disassembly():
    # one instance, half car and half person pixels inside the mask: today's code gives person
    labels = torch.tensor([[[L.CAR, L.CAR, L.PERSON, L.PERSON]]])
    instances = torch.full((1, 1, 4), 26000)
    cands, _ = find_candidates(labels, instances, torch.ones(1, 1, 4))
    assert [c.cls for c in cands] == [CITY.tie_winner(CITY.object_ids)] == [L.PERSON]


def test_instance_encoding_round_trip():
    assert CITY.encode_instance(26, 7) == 26007 and CITY.decode_instance(26007) == (26, 7)
    assert CITY.decode_instance(23) is None
    assert ADE.encode_instance(37, 255) == 37255 and ADE.decode_instance(8001) == (8, 1)
    with pytest.raises(ProfileError):
        ADE.encode_instance(9, 1)  # windowpane has Places instances but is not an object class
    with pytest.raises(ProfileError):
        ADE.encode_instance(8, 256)


def test_ade_label_table():
    assert ADE.lab_dim == 151 and len(ADE.labels) == 151
    assert ADE.labels[0].name == "other" and ADE.labels[0].color == (0, 0, 0)
    assert ADE.labels[150].name == "flag" and ADE.label("wall").id == 1 and ADE.label("windowpane").id == 9
    assert sum(lab.has_instances for lab in ADE.labels) == 100
    cats = sorted(lab.instance_category for lab in ADE.labels if lab.has_instances)
    assert cats == list(range(1, 101))
    pal = ADE.palette()
    assert pal.shape == (151, 3) and tuple(pal[8]) == (204, 5, 255)
    # road and skyscraper share (140, 140, 140): the lookup resolves it to the lower id
    assert tuple(pal[7]) == tuple(pal[49]) == (140, 140, 140) and ADE.color_lookup()[(140, 140, 140)] == 7


def test_ade_keeps_other_as_its_own_class():
    lab = np.array([[0, 150, 1]], np.uint8)
    assert np.array_equal(ADE.remap_unlabeled(lab), lab)
    assert ADE.unlabeled_to is None


def test_ade_objects_and_codes():
    assert [o.name for o in ADE.objects] == ["bed", "table", "chair", "sofa", "armchair", "lamp"]
    assert ADE.object_ids == (8, 16, 20, 24, 31, 37)
    assert ADE.code_width == 6
    assert ADE.class_code(8) == (1.0, 0, 0, 0, 0, 0) and ADE.class_code(37) == (0, 0, 0, 0, 0, 1.0)
    assert ADE.object_class("lamp").label_id == 37
    with pytest.raises(ProfileError):
        ADE.class_code(1)
    for o in ADE.objects:
        assert ADE.label(o.label_id).has_instances and ADE.label(o.label_id).name.split(", ")[0] == o.name
    for rules in ADE.loaders.values():
        assert set(rules.crop_size) == set(ADE.object_ids)


def test_ade_background_and_skipped_classes():
    stuff = {lab.id for lab in ADE.labels if not lab.has_instances}
    assert set(ADE.background_classes) == stuff - {0} and len(ADE.background_classes) == 50
    assert {1, 4, 6, 29} <= set(ADE.background_classes)  # wall, floor, ceiling, rug
    assert not set(ADE.background_classes) & set(ADE.object_ids)
    assert set(ADE.style_skipped_classes) >= set(ADE.object_ids) and len(ADE.style_skipped_classes) == 100
    assert ADE.preparation.scenes == ("bedroom", "hotel_room", "living_room")


def test_packaged_ade_table_matches_the_shared_pack():
    folder = os.environ.get("SIEDOB_ADE20K_PACK")
    if not folder or not (Path(folder) / "classes150.json").is_file():
        pytest.skip("SIEDOB_ADE20K_PACK (the ADE20K fact pack holding classes150.json) is not set")
    pack = Path(folder) / "classes150.json"
    rows = json.loads(pack.read_text())
    for row, lab in zip(rows, ADE.labels):
        assert (row["id"], row["name"], tuple(row["rgb"]), row["instance100_id"]) == (
            lab.id,
            lab.name,
            lab.color,
            lab.instance_category,
        )


def test_licence_ships_with_the_derived_table():
    folder = Path(siedob.__file__).parent / "profile_data" / "ade20k_room"
    assert "BSD 3-Clause" in (folder / "LICENSE-placeschallenge").read_text()
    assert "LICENSE-placeschallenge" in json.loads((folder / "classes150.json").read_text())["license"]


def test_the_docs_profile_table_names_every_field():
    import dataclasses
    import re

    from siedob.profiles import DatasetProfile

    text = (Path(__file__).resolve().parent.parent / "docs" / "datasets.md").read_text()
    table = text[text.index("## The profile table") :].split("\n## ")[0]
    missing = [f.name for f in dataclasses.fields(DatasetProfile) if not re.search(rf"`{f.name}\b", table)]
    assert not missing, f"docs/datasets.md's profile table does not name {missing}"


def test_object_addition_rules_and_brush_label_are_profile_fields():
    assert (CITY.object_class("car").ground, CITY.object_class("car").height_range) == ((7,), (20, 48))
    assert (CITY.object_class("person").ground, CITY.object_class("person").height_range) == ((8,), (24, 56))
    assert all((o.ground, o.height_range) == ((4,), (32, 96)) for o in ADE.objects)
    assert (CITY.brush_label, ADE.brush_label) == (7, 4)
    assert CITY.label(7).name == "road" and ADE.label(4).name == "floor, flooring"
