"""Discriminator on decoder feature maps for adversarial feature distillation (AFD-style, LSGAN)."""

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@ARCH_REGISTRY.register()
class FeatureMapDiscriminator(nn.Module):
    """A plain CNN scoring feature maps: strided spectral-norm convs with LeakyReLU, no normalisation layers,
    global average pooling and a spectral-norm linear output (no sigmoid, for LSGAN).

    Every conv halves the resolution, starting with the first, so the full-resolution map is downsampled at
    once; widths go ``num_feat, 2 num_feat, ...`` up to ``max_mult * num_feat``.

    Args:
        in_channels (int): Channels of the feature map (the distillation feature, e.g. 64).
        num_feat (int): Width of the first conv.
        num_layers (int): Number of stride-2 convs.
        max_mult (int): Cap of the width multiplier.

    Shapes:
        x: (B, in_channels, H, W) with H, W >= 2 ** num_layers. Output: (B, 1) scores.
    """

    def __init__(self, in_channels=64, num_feat=64, num_layers=4, max_mult=8):
        super().__init__()
        layers, ch = [], in_channels
        for i in range(num_layers):
            out = num_feat * min(2**i, max_mult)
            layers += [spectral_norm(nn.Conv2d(ch, out, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            ch = out
        self.body = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(ch, 1))

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))
