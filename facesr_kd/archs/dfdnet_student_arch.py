"""DFDNet-style student: the teacher's encoder and decoder without the dictionary path (no boxes needed)."""

from facesr_kd.archs.component_dictionary import LEVEL_CHANNELS, LEVELS
from facesr_kd.archs.dfdnet_blocks import DFDNetDecoder
from facesr_kd.archs.vgg19 import VGG19Features

import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class DFDNetStudent(nn.Module):
    """Frozen VGG19 encoder on the bicubic-upsampled input and the DFDNet decoder; SFT conditions are the raw
    encoder features.

    Args:
        out_size (int): Output size (a multiple of 16, e.g. 128, 256, 512). The input is bicubic-upsampled to it.
        num_feat (int): Decoder base width (DFDNet: 64); smaller values give compact students. The distillation
            feature has ``num_feat`` channels.
        vgg_pretrained (bool): Load ImageNet VGG19 weights. False gives random encoder weights, for tests only
            (a teacher or student checkpoint holds its encoder weights too).
        vgg_weights (str | None): Local VGG19 weights file; None: torchvision's cache.
        vgg_download (bool): Allow torchvision to download the weights when they are missing.

    Shapes:
        lq: (B, 3, h, w) in [0, 1]. Output: (B, 3, out_size, out_size) in [0, 1], and with ``return_feat`` the
        feature (B, num_feat, out_size, out_size) that enters the final conv to RGB. ``feats``: the output of
        :meth:`encode` for ``lq``, when the caller already has it.
    """

    needs_boxes = False

    def __init__(self, out_size=256, num_feat=64, vgg_pretrained=True, vgg_weights=None, vgg_download=False):
        super().__init__()
        if out_size % 16 or out_size < 32:
            raise ValueError(f'out_size must be a multiple of 16 and at least 32, got {out_size}')
        self.out_size = out_size
        self.num_feat = num_feat
        self.feat_channels = num_feat
        self.encoder = VGG19Features(
            LEVELS, pretrained=vgg_pretrained, weights_path=vgg_weights, allow_download=vgg_download
        )
        cond_channels = tuple(LEVEL_CHANNELS[level] for level in LEVELS[::-1])
        self.decoder = DFDNetDecoder(num_feat, enc_channels=LEVEL_CHANNELS['conv5_4'], cond_channels=cond_channels)

    def encode(self, lq):
        """Encoder features of the input bicubic-upsampled to ``out_size``.

        Returns:
            OrderedDict[str, Tensor]: ``{level: (B, C, out_size / stride, out_size / stride)}`` for :data:`LEVELS`.
        """
        if lq.shape[-2:] != (self.out_size, self.out_size):
            lq = F.interpolate(lq, size=(self.out_size, self.out_size), mode='bicubic', align_corners=False)
        return self.encoder(lq)

    def conditions(self, feats, boxes=None):
        """SFT conditions, coarse to fine (conv5_4, relu4_4, relu3_4, relu2_2): the raw encoder features."""
        return [feats[level] for level in LEVELS[::-1]]

    def decode(self, feats, conds, return_feat=False):
        """Decode encoder features and conditions to an RGB image in [0, 1] (and the distillation feature)."""
        out, feat = self.decoder(feats['conv5_4'], conds)
        img = (out + 1) / 2
        return (img, feat) if return_feat else img

    def forward(self, lq, return_feat=False, feats=None):
        """Super-resolve ``lq``; ``feats`` may pass a precomputed :meth:`encode` of it (shared encoder pass)."""
        feats = self.encode(lq) if feats is None else feats
        return self.decode(feats, self.conditions(feats), return_feat)
