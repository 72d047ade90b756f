"""``data.profile`` reaches every stage: configs, disassembly, class codes, network widths and released files.

Expected values are written out by hand from docs/datasets.md (ADE20K-Room: labels 0..150, six object
classes bed 8, table 16, chair 20, sofa 24, armchair 31, lamp 37, one-hot codes of width 6).
"""

from __future__ import annotations

import pytest
import torch

from siedob.checkpoints import PROFILE_ENTRY, CheckpointError, load_released_network, save_released
from siedob.config import ConfigError, load_stage_config
from siedob.data.disassembly import background_mask_ori, disassemble, edit_rules, find_candidates, rules_from_config
from siedob.maps import class_code, class_map
from siedob.model import paste_objects
from siedob.nn import (
    BackgroundGenerator,
    ObjectInpaintingGenerator,
    ObjectStyleGenerator,
    build_discriminator,
)
from siedob.profiles import get_profile

ADE = get_profile("ade20k-room")
BED, TABLE, CHAIR, SOFA, ARMCHAIR, LAMP = 8, 16, 20, 24, 31, 37
WALL, FLOOR = 1, 4


# ---- configs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["instance_inpainting", "instance_style", "background", "fusion"])
def test_set_profile_picks_the_packaged_ade_config(stage):
    cfg = load_stage_config(stage, overrides=["data.profile=ade20k-room"])
    data = cfg["data"]
    assert data["profile"] == "ade20k-room"
    assert data["root"] == "data/ade20k_room256"
    if "classes" in data:
        assert data["classes"] == ["bed", "table", "chair", "sofa", "armchair", "lamp"]
    else:
        assert data["object_order"] == ["bed", "table", "chair", "sofa", "armchair", "lamp"]
        assert data["person_aspect"] is None
        assert cfg["model"]["lab_dim"] == 151
        assert data["fill_ratio"] == {
            "bed": 0.5,
            "table": 0.35,
            "chair": 0.3,
            "sofa": 0.5,
            "armchair": 0.45,
            "lamp": 0.3,
        }


@pytest.mark.parametrize("stage", ["instance_inpainting", "background", "fusion"])
def test_cityscapes_configs_say_their_profile(stage):
    assert load_stage_config(stage)["data"]["profile"] == "cityscapes"


def test_object_class_of_another_profile_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_stage_config("instance_style", overrides=["data.classes=[car, bed]"])
    msg = str(exc.value)
    assert "\n" not in msg and "'bed'" in msg and "car, person" in msg


def test_lab_dim_must_be_the_profiles(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_stage_config("background", overrides=["model.lab_dim=35"])
    assert "lab_dim is 35" in str(exc.value) and "34" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_stage_config("fusion", overrides=["data.profile=ade20k-room", "model.lab_dim=34"])
    assert "151" in str(exc.value)


def test_person_aspect_needs_a_person_class():
    with pytest.raises(ConfigError) as exc:
        load_stage_config("background", overrides=["data.profile=ade20k-room", "data.person_aspect=[2, 6]"])
    assert "person_aspect" in str(exc.value)


def test_unknown_profile_name_is_refused():
    with pytest.raises(ConfigError) as exc:
        load_stage_config("fusion", overrides=["data.profile=ade20k"])
    assert "ade20k" in str(exc.value) and "\n" not in str(exc.value)


# ---- class codes and disassembly ------------------------------------------------------------------------------


def test_ade_class_codes_are_six_wide_one_hot():
    assert class_code(BED, profile=ADE).flatten().tolist() == [1, 0, 0, 0, 0, 0]
    assert class_code(LAMP, profile=ADE).flatten().tolist() == [0, 0, 0, 0, 0, 1]
    m = torch.ones(1, 2, 2)
    assert class_map(m, SOFA, ADE).shape == (6, 2, 2)
    assert class_map(m, SOFA, ADE)[:, 0, 0].tolist() == [0, 0, 0, 1, 0, 0]
    with pytest.raises(ValueError):
        class_code(26, profile=ADE)  # Cityscapes car is not an ADE object


def _scene():
    """A 1×16×16 room: floor below, wall above; a chair (instance 20001) and a bed (8001) that are half masked,
    and an instance 24001 whose pixels inside the mask are 3 sofa and 3 armchair (a tie: sofa, the lower id)."""
    labels = torch.full((1, 16, 16), WALL)
    labels[:, 8:] = FLOOR
    inst = labels.clone()
    labels[:, 2:6, 2:6], inst[:, 2:6, 2:6] = CHAIR, CHAIR * 1000 + 1
    labels[:, 10:14, 2:8], inst[:, 10:14, 2:8] = BED, BED * 1000 + 1
    labels[:, 2:4, 10:13], inst[:, 2:4, 10:13] = SOFA, 24001
    labels[:, 4:6, 10:13], inst[:, 4:6, 10:13] = ARMCHAIR, 24001
    mask = torch.zeros(1, 16, 16)
    mask[:, :, 4:] = 1
    mask[:, 5, 10:13] = 0  # leaves 3 sofa + 3 armchair pixels of 24001 inside
    mask[:, 2, 10:13] = 0
    return labels, inst, mask


def test_ade_candidates_take_the_majority_of_six_classes_and_ties_go_to_the_lower_id():
    labels, inst, mask = _scene()
    cands, masks = find_candidates(labels, inst, mask, ADE)
    by_id = {c.id: c.cls for c in cands}
    assert by_id == {CHAIR * 1000 + 1: CHAIR, BED * 1000 + 1: BED, 24001: SOFA}
    assert all(not c.is_generation for c in cands)
    # the candidate's mask is its instance where the label is its class
    k = [c.id for c in cands].index(24001)
    assert int(masks[k].sum()) == 6  # rows 2-3: the instance where it is labelled sofa
    # Cityscapes rules see none of these classes as objects (24 is person there: the sofa pixels)
    city = {c.id for c in find_candidates(labels, inst, mask)[0]}
    assert city == {24001}


def test_ade_background_mask_uses_the_profiles_background_classes():
    labels, _, mask = _scene()
    out = background_mask_ori(labels, mask, ADE)[0]
    # wall and floor are ADE background classes seen inside and outside the mask: their whole region counts
    assert bool(out[0, 0]) and bool(out[15, 0])
    assert not bool(out[3, 3])  # the chair is an object class
    city = background_mask_ori(labels, mask)[0]
    assert not bool(city[0, 0])  # label 1 is "ego vehicle" for Cityscapes: not background


def test_ade_rules_from_config_and_edit_rules():
    cfg = load_stage_config("fusion", overrides=["data.profile=ade20k-room"])["data"]
    rules = rules_from_config(cfg, train=True)
    assert rules.classes == (BED, TABLE, CHAIR, SOFA, ARMCHAIR, LAMP)
    assert rules.profile is ADE and rules.aspect_class is None
    er = edit_rules("ade20k-room")
    assert er.classes == rules.classes and er.crop_size == {c: (64, 64) for c in rules.classes}
    assert er.fill_ratio[BED] == 0.5 and er.fill_ratio[CHAIR] == 0.3
    labels, inst, mask = _scene()
    image = torch.zeros(3, 16, 16)
    dis = disassemble(image, labels, inst, mask, er)
    assert [o.cls for o in dis.objects] == sorted([o.cls for o in dis.objects], key=rules.classes.index)


def test_paste_builds_one_canvas_per_profile_class():
    outputs = torch.stack([torch.full((3, 4, 4), 1.0), torch.full((3, 4, 4), 2.0)])
    inst = torch.ones(2, 1, 4, 4)
    boxes = [(0, 4, 0, 4), (0, 4, 0, 4)]
    # two classes on the same pixels: canvases add up (the authors' per-class canvases)
    canvas = paste_objects(outputs, inst, boxes, [BED, LAMP], 4, 4, paste_classes=ADE.object_ids)[0]
    assert torch.equal(canvas, torch.full((3, 4, 4), 3.0))
    same = paste_objects(outputs, inst, boxes, [BED, BED], 4, 4, paste_classes=ADE.object_ids)[0]
    assert torch.equal(same, torch.full((3, 4, 4), 2.0))  # same class: the later object wins


# ---- networks and released files ------------------------------------------------------------------------------


def test_network_input_widths_follow_the_class_code():
    assert ObjectInpaintingGenerator(4, code_nc=6).init_conv.conv.weight.shape[1] == 3 + 1 + 1 + 6
    g = ObjectStyleGenerator(4, code_nc=6)
    assert g.init_conv.conv.weight.shape[1] == 6
    assert g.enc_style.model[0].conv.weight.shape[1] == 9
    assert build_discriminator("netD_inp", 4, code_nc=6).dis_model[0].conv.weight_orig.shape[1] == 10
    assert build_discriminator("netD_style", 4, code_nc=6).dis_model[0].conv.weight_orig.shape[1] == 9
    assert build_discriminator("netD_BG", 4, lab_dim=151).dis_model[0].conv.weight_orig.shape[1] == 154
    # Cityscapes: the authors' widths
    assert ObjectInpaintingGenerator(4).init_conv.conv.weight.shape[1] == 8
    assert build_discriminator("netD_inp", 4).dis_model[0].conv.weight_orig.shape[1] == 7


def test_ade_style_propagation_skips_the_ade_instance_classes():
    g = BackgroundGenerator(4, lab_nc=151, skipped_classes=ADE.style_skipped_classes)
    assert g.style1.skipped == ADE.style_skipped_classes
    assert BED in g.style1.skipped and WALL not in g.style1.skipped


def test_released_files_record_a_non_default_profile_and_refuse_another(tmp_path):
    net = ObjectInpaintingGenerator(4, code_nc=6)
    save_released(net, tmp_path / "oi.pth", "object_inpainting", "ade20k-room")
    obj = torch.load(tmp_path / "oi.pth", weights_only=True)
    assert obj[PROFILE_ENTRY] == "ade20k-room" and set(obj) == {"netG", PROFILE_ENTRY}
    loaded = load_released_network(tmp_path / "oi.pth", "object_inpainting")
    assert loaded.init_conv.conv.weight.shape[1] == 11
    with pytest.raises(CheckpointError) as exc:
        load_released_network(tmp_path / "oi.pth", "object_inpainting", profile="cityscapes")
    msg = str(exc.value)
    assert "\n" not in msg and "ade20k-room" in msg and "cityscapes" in msg and "oi.pth" in msg
    # a Cityscapes file keeps the authors' format exactly and is refused for ADE
    save_released(ObjectInpaintingGenerator(4), tmp_path / "c.pth", "object_inpainting")
    assert list(torch.load(tmp_path / "c.pth", weights_only=True)) == ["netG"]
    with pytest.raises(CheckpointError, match="cityscapes"):
        load_released_network(tmp_path / "c.pth", "object_inpainting", profile="ade20k-room")


def test_a_six_channel_network_without_a_profile_entry_is_refused(tmp_path):
    save_released(ObjectInpaintingGenerator(4, code_nc=6), tmp_path / "x.pth", "object_inpainting")
    with pytest.raises(CheckpointError, match="6-channel class code"):
        load_released_network(tmp_path / "x.pth", "object_inpainting")


def test_background_file_of_ade_is_built_with_ade_skipped_classes(tmp_path):
    save_released(BackgroundGenerator(4, lab_nc=151), tmp_path / "bg.pth", "background", "ade20k-room")
    net = load_released_network(tmp_path / "bg.pth", "background")
    assert net.style2.skipped == ADE.style_skipped_classes
    save_released(BackgroundGenerator(4, lab_nc=34), tmp_path / "bad.pth", "background", "ade20k-room")
    with pytest.raises(CheckpointError, match="lab_dim 34"):
        load_released_network(tmp_path / "bad.pth", "background")


def test_a_user_config_may_switch_profile_with_its_classes_in_any_order(tmp_path):
    from siedob.config import packaged_text

    path = tmp_path / "style.yaml"
    path.write_text(packaged_text("instance_style.yaml"))  # a Cityscapes copy
    for overrides in (
        ["data.profile=ade20k-room", "data.classes=[bed, sofa]"],
        ["data.classes=[bed, sofa]", "data.profile=ade20k-room"],
    ):
        cfg = load_stage_config("instance_style", path, overrides)
        assert cfg["data"]["profile"] == "ade20k-room" and cfg["data"]["classes"] == ["bed", "sofa"]
    with pytest.raises(ConfigError) as exc:
        load_stage_config("instance_style", path, ["data.profile=ade20k-room"])
    assert "'car'" in str(exc.value) and "--set data.profile=ade20k-room" in str(exc.value)


def test_a_missing_style_names_the_ade_class():
    from siedob.data.style_bank import StyleBank
    from siedob.model.plan import MissingStyleError, plan_objects

    labels, inst, _ = _scene()
    mask = torch.ones(1, 16, 16)  # every object wholly masked: all go to G_OG
    dis = disassemble(torch.zeros(3, 16, 16), labels, inst, mask, edit_rules(ADE))
    assert dis.objects and dis.objects[0].cls == CHAIR  # the bed is dropped: 24 px in a 8×10 box is under 0.5
    with pytest.raises(MissingStyleError, match="no chair style references"):
        plan_objects([dis.objects], [StyleBank({}, "rooms")], profile=ADE)
