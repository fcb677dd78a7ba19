"""Lightweight dictionary-free students: they work on the LR face itself, with no VGG19 encoder."""

import math

from facesr_kd.archs.arch_util import upsample_input, zero_init_

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


class _ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` at one width."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(True), nn.Conv2d(channels, channels, 3, 1, 1)
        )

    def forward(self, x):
        return x + self.body(x)


@ARCH_REGISTRY.register()
class LiteFaceStudent(nn.Module):
    """A compact student: residual blocks at the LR resolution, ×2 pixel-shuffle stages whose widths shrink as
    the resolution grows, one full-resolution conv giving the distillation feature, and a conv to RGB.

    It needs no landmarks, no dictionary and no ImageNet weights (only the training's perceptual loss uses
    VGG19). Like the DFDNet-style students it returns, on request, the feature that enters its final conv to
    RGB, so ``DictDistillModel``'s 1x1 adapter and feature discriminator apply unchanged.

    Args:
        out_size (int): Output size it is trained and tested at (e.g. 128, 256, 512), from ``out_size / scale``
            inputs.
        scale (int): Upscale factor, a power of two (2, 4, 8).
        num_feat (int): Width at the LR resolution.
        num_block (int): Residual blocks at the LR resolution.
        feat_channels (int): Channels of the full-resolution distillation feature; stage ``i`` has
            ``max(feat_channels, num_feat / 2**i)`` channels.
        input_skip (bool): Add the bicubic-upsampled input to the output (``to_rgb`` starts at zero, so an
            untrained network is bicubic upsampling); False: the output is ``to_rgb`` of the feature alone.

    Shapes:
        lq: (B, 3, out_size / scale, out_size / scale) in [0, 1], the size it is trained at; being fully
        convolutional it takes any (B, 3, h, w). Output: (B, 3, h * scale, w * scale), and with ``return_feat``
        the feature (B, feat_channels, h * scale, w * scale) entering the final conv to RGB.
    """

    needs_boxes = False

    def __init__(self, out_size=256, scale=8, num_feat=64, num_block=8, feat_channels=32, input_skip=True):
        super().__init__()
        stages = int(round(math.log2(scale))) if scale >= 2 else 0
        if scale < 2 or 2**stages != scale:
            raise ValueError(f'LiteFaceStudent needs a power-of-two scale (2, 4, 8), got {scale}')
        if out_size % scale:
            raise ValueError(f'out_size {out_size} is not a multiple of scale {scale}')
        self.out_size, self.scale, self.input_skip = out_size, scale, input_skip
        self.num_feat, self.feat_channels = num_feat, feat_channels
        self.head = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.body = nn.Sequential(
            *[_ResBlock(num_feat) for _ in range(num_block)], nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        )
        ups, ch = [], num_feat
        for i in range(stages):
            out = max(feat_channels, num_feat >> i)
            ups += [nn.Conv2d(ch, out * 4, 3, 1, 1), nn.PixelShuffle(2), nn.LeakyReLU(0.2, True)]
            ch = out
        self.up = nn.Sequential(*ups)
        self.tail = nn.Sequential(nn.Conv2d(ch, feat_channels, 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.to_rgb = nn.Conv2d(feat_channels, 3, 3, 1, 1)
        if input_skip:
            zero_init_(self.to_rgb)

    def forward(self, lq, return_feat=False):
        """Super-resolve ``lq`` (B, 3, h, w) to (B, 3, h * scale, w * scale).

        The network is fully convolutional: it was trained on (out_size / scale)-pixel aligned faces, and the
        restorer also gives it a face where it lies in a photo, at its own size (``crop_method='native'``).
        """
        if lq.ndim != 4 or lq.shape[1] != 3:
            raise ValueError(f'LiteFaceStudent takes (B, 3, h, w) RGB faces; got {tuple(lq.shape)}')
        x = self.head(lq)
        x = x + self.body(x)
        feat = self.tail(self.up(x))
        img = self.to_rgb(feat)
        if self.input_skip:
            img = img + upsample_input(lq, tuple(feat.shape[-2:]))
        return (img, feat) if return_feat else img
