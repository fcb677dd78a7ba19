"""DFDNet-style teacher: the student's network whose SFT conditions are updated with component dictionaries."""

from facesr_kd.archs.component_dictionary import (
    LEVEL_CHANNELS,
    LEVEL_STRIDES,
    LEVELS,
    ComponentDictionary,
    feature_boxes,
)
from facesr_kd.archs.dfdnet_blocks import DictionaryTransfer
from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
from facesr_kd.face.components import COMPONENTS

import torch
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class DFDNetTeacher(DFDNetStudent):
    """Frozen VGG19 encoder, dictionary feature transfer for left eye, right eye, nose and mouth at relu2_2,
    relu3_4, relu4_4 and conv5_4, and the DFDNet decoder.

    The dictionary is part of the module's state (buffers, saved with ``state_dict``), loaded from the file
    ``facesr-kd-dictionary`` writes (``dict_path`` or :meth:`load_dictionary`) or from a checkpoint.

    Args:
        out_size (int): Output size (multiple of 16, e.g. 128, 256, 512).
        num_feat (int): Decoder base width (DFDNet: 64).
        num_atoms (int): Atoms per component and level (K; DFDNet: 512).
        dict_path (str | None): Dictionary file to load now.
        vgg_pretrained (bool): Load ImageNet VGG19 weights; False: random (tests, or a checkpoint follows).
        vgg_weights (str | None): Local VGG19 weights file; None: torchvision's cache.
        vgg_download (bool): Allow torchvision to download the weights when they are missing.
        input_skip (bool): Add the bicubic-upsampled input to a residual output (see :class:`DFDNetStudent`).

    Shapes:
        lq: (B, 3, h, w) in [0, 1]; boxes: (B, 4, 4) ``[x1, y1, x2, y2]`` in output pixels, in COMPONENTS order.
        Output: (B, 3, out_size, out_size) in [0, 1], and with ``return_feat`` the feature
        (B, num_feat, out_size, out_size) entering the final conv to RGB.
    """

    needs_boxes = True

    def __init__(
        self,
        out_size=256,
        num_feat=64,
        num_atoms=512,
        dict_path=None,
        vgg_pretrained=True,
        vgg_weights=None,
        vgg_download=False,
        input_skip=False,
    ):
        super().__init__(out_size, num_feat, vgg_pretrained, vgg_weights, vgg_download, input_skip)
        self.num_atoms = num_atoms
        self.dictionary = ComponentDictionary(out_size, num_atoms)
        self.transfer = DictionaryTransfer(LEVEL_CHANNELS)
        if dict_path is not None:
            self.load_dictionary(dict_path)

    def load_dictionary(self, path_or_dict):
        """Load a dictionary file (path) or a dictionary in the file format (dict).

        Raises:
            FileNotFoundError: No such file (the message says how to build it).
            ValueError: Its out_size, K or template shapes do not fit this teacher (the message says what it holds).
        """
        self.dictionary.load(path_or_dict)

    def _check(self, lq, boxes):
        # Meta tensors (shape-only runs) hold no flag value to check.
        if not self.dictionary.loaded.is_meta and not bool(self.dictionary.loaded):
            raise RuntimeError(
                'DFDNetTeacher has no component dictionary: pass `dict_path` (a file built by '
                'facesr-kd-dictionary), call load_dictionary(), or load a teacher checkpoint that holds one.'
            )
        boxes = torch.as_tensor(boxes)
        if boxes.shape != (lq.shape[0], len(COMPONENTS), 4):
            raise ValueError(
                f'boxes must be ({lq.shape[0]}, {len(COMPONENTS)}, 4) for a batch of {lq.shape[0]}, '
                f'got {tuple(boxes.shape)}'
            )
        return boxes

    def _transfer(self, feats, boxes):
        conds, chosen = {}, {}
        for level in LEVELS:
            feat = feats[level]
            fb = feature_boxes(boxes, LEVEL_STRIDES[level], feat.shape[2], feat.shape[3])
            atoms = {c: self.dictionary.atoms(c, level) for c in COMPONENTS}
            conds[level], idx = self.transfer(feat, fb, level, atoms)
            chosen.update({f'{c}.{level}': i for c, i in idx.items()})
        return conds, chosen

    def conditions(self, feats, boxes=None):
        """SFT conditions, coarse to fine: the encoder features updated with the dictionary."""
        conds, _ = self._transfer(feats, boxes)
        return [conds[level] for level in LEVELS[::-1]]

    @torch.no_grad()
    def match(self, lq, boxes):
        """The atom each sample picks per component and level.

        Returns:
            dict[str, Tensor]: ``'<component>.<level>'`` to (B,) int64 atom indices.
        """
        boxes = self._check(lq, boxes)
        return self._transfer(self.encode(lq), boxes)[1]

    def forward(self, lq, boxes, return_feat=False, feats=None):
        """Super-resolve ``lq`` with its component ``boxes``; ``feats`` as in :meth:`DFDNetStudent.forward`."""
        boxes = self._check(lq, boxes)
        feats = self.encode(lq) if feats is None else feats
        return self.decode(feats, self.conditions(feats, boxes), return_feat, lq=lq)
