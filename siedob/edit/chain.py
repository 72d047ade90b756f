"""The edit chain's front end (docs/spec.md §6): validate one scene, disassemble it, run the model layer's chain.

The composition itself (object plan, batched object networks, paste, G_B, ``masked_G``, F) is
:class:`siedob.model.Chain`, which fusion training calls too; :class:`Editor` turns one user scene into
a batch of one, in inference mode, with the edit chain's rules of its dataset profile
(:func:`~siedob.data.disassembly.edit_rules`; Cityscapes: :data:`~siedob.data.disassembly.EDIT_RULES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from siedob.checkpoints import RELEASED, CheckpointError, folder_profile
from siedob.data.disassembly import Disassembly, disassemble, edit_rules
from siedob.data.io import image_to_tensor
from siedob.device import resolve_device
from siedob.edit.inputs import SIDE_MULTIPLE, EditError
from siedob.edit.style_bank import StyleBank
from siedob.model import Chain, EditStages, MissingStyleError, ObjectResult, SceneBatch, load_network, paste_objects
from siedob.profiles import ProfileLike, as_profile

__all__ = [
    "CHECKPOINT_HINT",
    "EditStages",
    "Editor",
    "ObjectResult",
    "load_network",
    "paste_objects",
    "resolve_device",
]

PathLike = Union[str, Path]
ArrayOrTensor = Union[np.ndarray, torch.Tensor]

CHECKPOINT_HINT = (
    "download the authors' released sub-networks (object_inpainting.pth, object_style.pth, bg.pth, Fnet.pth) "
    "into {dir} (linked from the SIEDOB GitHub README / the authors' Google Drive), "
    "or run siedob-quickstart to train small ones"
)


def _as_tensor(x: ArrayOrTensor, name: str, image: bool = False) -> torch.Tensor:
    """Host tensor of an input: images 3×H×W float in [-1, 1] (uint8 BGR arrays converted), maps 1×H×W."""
    if isinstance(x, np.ndarray):
        if image:
            if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
                raise EditError(f"{name}: expected a BGR uint8 H×W×3 array, got {x.dtype} {x.shape}")
            return image_to_tensor(x)
        x = torch.from_numpy(np.ascontiguousarray(x))
    t = x.detach().cpu()
    if image:
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3 or t.shape[0] != 3:
            raise EditError(f"{name}: expected a 3×H×W tensor, got shape {tuple(t.shape)}")
        return t.float()
    while t.dim() > 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise EditError(f"{name}: expected an H×W map, got shape {tuple(t.shape)}")
    return t[None]


class Editor:
    """SIEDOB's edit chain with four loaded generators (eval mode, no gradients); see :meth:`edit`.

    ``profile``: the dataset profile the networks were trained for (label range, object classes, rules).
    """

    def __init__(
        self,
        inpainting: nn.Module,
        style: nn.Module,
        background: nn.Module,
        fusion: nn.Module,
        device: Union[str, torch.device] = "auto",
        profile: ProfileLike = None,
    ) -> None:
        self.device = resolve_device(device)
        self.profile = as_profile(profile)
        self.chain = Chain(inpainting, style, background, fusion, self.device, self.profile)
        self.chain.eval().requires_grad_(False)
        self.inpainting, self.style = self.chain.inpainting, self.chain.style
        self.background, self.fusion = self.chain.background, self.chain.fusion
        self.rules = edit_rules(self.profile)

    @classmethod
    def from_checkpoints(
        cls,
        directory: PathLike,
        device: Union[str, torch.device] = "auto",
        mmap: bool = False,
        profile: ProfileLike = None,
    ) -> Editor:
        """Load ``object_inpainting.pth``, ``object_style.pth``, ``bg.pth`` and ``Fnet.pth`` from a folder.

        The editor takes the dataset profile the files record (they must agree); ``profile`` given, files of
        another profile are an error. ``mmap`` maps the weights from the files instead of reading them: a
        faster start for a short-lived process (the command line), but the files must not be rewritten in
        place meanwhile.
        """
        directory = Path(directory)
        hint = CHECKPOINT_HINT.format(dir=directory)
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: checkpoint folder not found; {hint}")
        missing = [f.filename for f in RELEASED.values() if not (directory / f.filename).is_file()]
        if missing:
            raise CheckpointError(f"{directory / missing[0]}: file not found; {hint}")
        dev = resolve_device(device)
        # a given profile is checked file by file as the networks load; else the files must agree on one
        wanted = as_profile(profile).name if profile is not None else folder_profile(directory)
        nets = [load_network(directory / RELEASED[role].filename, role, mmap=mmap, profile=wanted) for role in RELEASED]
        return cls(*nets, device=dev, profile=wanted)

    @torch.inference_mode()
    def edit(
        self,
        image: ArrayOrTensor,
        labels: ArrayOrTensor,
        instances: ArrayOrTensor,
        mask: ArrayOrTensor,
        style_bank: Optional[StyleBank] = None,
        disassembly: Optional[Disassembly] = None,
        fuse: bool = True,
    ) -> EditStages:
        """Edit one scene; its ``.result`` is 3×H×W in [-1, 1], BGR, on the editor's device.

        ``image``: BGR uint8 H×W×3 array or 3×H×W tensor in [-1, 1]; ``labels``: label ids of the profile
        (Cityscapes: 0 read as 33); ``instances``: instance ids (``class * 1000 + k``);
        ``mask``: H×W in [0, 1], 1 = regenerate. H and W must be
        multiples of 16. An all-zero mask returns the image unchanged. ``disassembly``: the scene's
        disassembly when the caller already has it, so it is not done twice. ``fuse=False`` skips the
        fusion network: the result is ``masked_G`` (the paper's chain-without-F ablation).
        """
        bank = style_bank if style_bank is not None else StyleBank({}, "no style bank")
        img = _as_tensor(image, "image", image=True)
        lab = _as_tensor(labels, "labels").long()
        inst = _as_tensor(instances, "instances")
        msk = _as_tensor(mask, "mask").float()
        h, w = img.shape[1:]
        if h % SIDE_MULTIPLE or w % SIDE_MULTIPLE:
            raise EditError(f"image: height and width must be multiples of {SIDE_MULTIPLE}, got {h}×{w}")
        for name, t in (("labels", lab), ("instances", inst), ("mask", msk)):
            if tuple(t.shape[1:]) != (h, w):
                raise EditError(f"{name}: size {t.shape[1]}×{t.shape[2]} does not match the image ({h}×{w})")
        if inst.is_floating_point() or inst.dtype == torch.bool:
            raise EditError(f"instances: expected integer instance ids, got {inst.dtype}")
        inst = inst.long()
        prof = self.profile
        if prof.unlabeled_to is not None:
            lab = torch.where(lab == prof.unlabeled_id, torch.full_like(lab, prof.unlabeled_to), lab)
        if int(lab.min()) < 0 or int(lab.max()) >= prof.lab_dim:
            raise EditError(f"labels: label ids must lie in 0..{prof.lab_dim - 1} ({prof.name} labels)")
        if not bool(msk.any()):
            out = img.to(self.device)
            zero = torch.zeros_like(msk).to(self.device)
            return EditStages(out, out, out, out, out if fuse else None, zero, zero)
        dis = disassembly if disassembly is not None else disassemble(img, lab, inst, msk, self.rules)
        scenes = SceneBatch(img[None], lab[None], inst[None], msk[None], dis.fg_mask[None], [dis.objects])
        try:
            out = self.chain(scenes, [bank], fuse=fuse)
        except MissingStyleError as exc:
            raise EditError(str(exc)) from None
        stages = out.scene(0)
        stages.disassembly = dis
        return stages
