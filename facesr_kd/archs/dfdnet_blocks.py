"""Building blocks shared by the DFDNet-style teacher and student.

Decoder (after DFDNet, Li et al. 2020): a multi-scale dilated block on the encoder's conv5_4, four spectral-norm
SFT up-blocks (x2 each, coarse to fine) conditioned on conv5_4, relu4_4, relu3_4 and relu2_2 features, then a
tail (conv, two residual blocks) whose output is the distillation feature, a conv to RGB and tanh. The teacher
also uses :class:`DictionaryTransfer` to update the condition features with dictionary atoms.
"""

from facesr_kd.archs.arch_util import zero_init_
from facesr_kd.archs.component_dictionary import (
    ADAIN_EPS,
    calc_mean_std,
    crop_resize,
    gather_crops,
    group_by_shape,
    resize,
    standardize,
)
from facesr_kd.face.components import COMPONENTS

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(in_channels, out_channels, kernel_size=3, dilation=1):
    """Spectral-norm conv with 'same' padding."""
    padding = (kernel_size - 1) // 2 * dilation
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation))


class Blur(nn.Module):
    """Depthwise [1 2 1] x [1 2 1] / 16 blur with zero padding (shape preserving).

    Args:
        channels (int): Number of channels.
    """

    def __init__(self, channels):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :]) / 16
        self.register_buffer('kernel', kernel.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=x.shape[1])


class MSDilationBlock(nn.Module):
    """Multi-scale dilated block: parallel two-conv branches with different dilations, fused, plus a residual.

    Args:
        channels (int): Input and output channels.
        dilations (tuple[int]): One branch per dilation.

    Shapes:
        x: (B, channels, h, w) -> (B, channels, h, w).
    """

    def __init__(self, channels, dilations=(4, 3, 2, 1)):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                sn_conv(channels, channels, dilation=d),
                nn.LeakyReLU(0.2, True),
                sn_conv(channels, channels, dilation=d),
            )
            for d in dilations
        )
        self.fusion = sn_conv(channels * len(dilations), channels)

    def forward(self, x):
        return self.fusion(torch.cat([branch(x) for branch in self.branches], 1)) + x


class SFTUpBlock(nn.Module):
    """Spatial feature transform, then x2 upsampling, with spectral-norm convs.

    ``out = up(conv(blur(x)) * scale(cond) + shift(cond))``.

    Args:
        in_channels (int): Channels of the decoder input.
        out_channels (int): Channels of the output.
        cond_channels (int): Channels of the condition feature.

    Shapes:
        x: (B, in_channels, h, w), cond: (B, cond_channels, h, w) -> (B, out_channels, 2h, 2w).
    """

    def __init__(self, in_channels, out_channels, cond_channels):
        super().__init__()
        # DFDNet applies LeakyReLU(0.2) twice here, which is one LeakyReLU(0.04).
        self.conv = nn.Sequential(Blur(in_channels), sn_conv(in_channels, out_channels), nn.LeakyReLU(0.04, True))
        self.scale = nn.Sequential(
            sn_conv(cond_channels, out_channels), nn.LeakyReLU(0.2, True), sn_conv(out_channels, out_channels)
        )
        self.shift = nn.Sequential(
            sn_conv(cond_channels, out_channels),
            nn.LeakyReLU(0.2, True),
            sn_conv(out_channels, out_channels),
            nn.Sigmoid(),
        )
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
            sn_conv(out_channels, out_channels),
            nn.LeakyReLU(0.2, True),
        )

    def forward(self, x, cond):
        return self.up(self.conv(x) * self.scale(cond) + self.shift(cond))


class ResBlock(nn.Module):
    """``x + conv(lrelu(conv(x)))`` with plain 3x3 convs."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(channels, channels, 3, 1, 1)
        )

    def forward(self, x):
        return x + self.body(x)


class DFDNetDecoder(nn.Module):
    """The decoder shared by teacher and student.

    Widths at ``num_feat = 64`` are DFDNet's: 512 (dilated block) -> 512 -> 256 -> 128 -> 64, tail 64. When
    ``8 * num_feat`` differs from the encoder's conv5_4 width, a spectral-norm 1x1 conv adapts it.

    Args:
        num_feat (int): Base width; the distillation feature has ``num_feat`` channels.
        enc_channels (int): Channels of the conv5_4 feature.
        cond_channels (tuple[int]): Channels of the conditions, coarse to fine (conv5_4, relu4_4, relu3_4,
            relu2_2).
        residual (bool): Return the raw, zero-initialised ``to_rgb`` output (a residual to add to the
            upsampled input) instead of DFDNet's tanh image.

    Shapes:
        x: (B, enc_channels, S/16, S/16); conds: list of (B, cond_channels[i], S/16 * 2^i, S/16 * 2^i).
        Returns the tanh output (B, 3, S, S) in [-1, 1] (or the residual) and the feature (B, num_feat, S, S).
    """

    def __init__(self, num_feat=64, enc_channels=512, cond_channels=(512, 512, 256, 128), residual=False):
        super().__init__()
        self.residual = residual
        widths = (num_feat * 8, num_feat * 8, num_feat * 4, num_feat * 2, num_feat)
        self.head = nn.Identity() if enc_channels == widths[0] else sn_conv(enc_channels, widths[0], 1)
        self.dilated = MSDilationBlock(widths[0])
        self.ups = nn.ModuleList(SFTUpBlock(widths[i], widths[i + 1], c) for i, c in enumerate(cond_channels))
        self.tail = nn.Sequential(
            sn_conv(num_feat, num_feat), nn.LeakyReLU(0.2, True), ResBlock(num_feat), ResBlock(num_feat)
        )
        self.to_rgb = nn.Conv2d(num_feat, 3, 3, 1, 1)
        if residual:
            zero_init_(self.to_rgb)

    def forward(self, x, conds):
        x = self.dilated(self.head(x))
        for up, cond in zip(self.ups, conds):
            x = up(x, cond)
        feat = self.tail(x)
        out = self.to_rgb(feat)
        return (out if self.residual else torch.tanh(out)), feat


class ConfidenceBlock(nn.Sequential):
    """Two spectral-norm 3x3 convs with a LeakyReLU: the per-pixel weight of a dictionary atom.

    Shapes:
        (N, C, h, w) -> (N, C, h, w).
    """

    def __init__(self, channels):
        super().__init__(sn_conv(channels, channels), nn.LeakyReLU(0.2, True), sn_conv(channels, channels))


def box_masks(fboxes, height, width):
    """Masks of integer boxes.

    Args:
        fboxes (Tensor): (B, 4) integer boxes.

    Returns:
        Tensor: (B, 1, height, width) bool, True inside the box.
    """
    x1, y1, x2, y2 = (fboxes[:, i].view(-1, 1, 1, 1) for i in range(4))
    ys = torch.arange(height).view(1, 1, height, 1)
    xs = torch.arange(width).view(1, 1, 1, width)
    return (ys >= y1) & (ys < y2) & (xs >= x1) & (xs < x2)


class DictionaryTransfer(nn.Module):
    """Dictionary feature transfer with one confidence block per component and level.

    Per sample and component: crop the component, resize it to the template, AdaIN every atom to the crop's
    per-channel statistics, score atoms by inner product with the crop, take the best one, resize it back to
    the crop, and update ``crop + confidence(atom - crop) * atom``. Every sample uses its own boxes and chooses
    its own atoms. Updated crops are pasted back into the input feature; where component boxes overlap, the
    updated crops are averaged. (DFDNet overwrites in component order instead; at 256 output the mouth box then
    covers the whole nose box at conv5_4, which would leave the nose's confidence block without any effect.)

    Args:
        level_channels (dict[str, int]): Feature channels per level.
    """

    def __init__(self, level_channels):
        super().__init__()
        self.conf = nn.ModuleDict(
            {
                f'{component}_{level}': ConfidenceBlock(c)
                for level, c in level_channels.items()
                for component in COMPONENTS
            }
        )

    @staticmethod
    @torch.no_grad()
    def match(crops, atoms):
        """Best atom per crop after AdaIN of the atoms to the crop.

        The score of atom ``k`` is the inner product of the crop with the AdaIN-ed atom ``n_k * s + m`` (``n_k``
        normalised atom, ``(m, s)`` the crop's mean and std); up to a term equal for every atom it is
        ``sum_c s_c <crop_c - m_c, n_kc>``, so all scores are one matmul. By Cauchy-Schwarz an atom equal to the
        crop scores highest. Channels constant up to float rounding carry no structure and are left out, so a
        constant crop (from a one-pixel box) ties every atom and takes atom 0, whatever the rest of the batch.

        Args:
            crops (Tensor): (B, C, t, t) template-sized crops.
            atoms (Tensor): (K, C, t, t) normalised atoms (:func:`normalize_atoms`).

        Returns:
            Tensor: (B,) int64 index of the best atom (the first one on ties).
        """
        var = torch.var(crops, dim=(2, 3), correction=0, keepdim=True)
        weighted = (standardize(crops) * (var * (var + ADAIN_EPS)).sqrt()).flatten(1)
        scores = weighted @ atoms.flatten(1).to(weighted.dtype).t()
        return scores.argmax(1)

    def forward(self, feat, fboxes, level, atoms):
        """Update one level's feature with the dictionary.

        Args:
            feat (Tensor): (B, C, H, W) encoder feature.
            fboxes (Tensor): (B, 4, 4) integer boxes at this level (:func:`feature_boxes`).
            level (str): Level name.
            atoms (dict[str, Tensor]): Component to normalised atoms (K, C, t, t).

        Returns:
            tuple[Tensor, dict[str, Tensor]]: updated feature (B, C, H, W) and the chosen atom index (B,) per
            component.
        """
        height, width = feat.shape[-2:]
        residual, count = 0, 0
        chosen_idx = {}
        for ci, component in enumerate(COMPONENTS):
            fb = fboxes[:, ci]
            component_atoms = atoms[component]
            crops = crop_resize(feat, fb, component_atoms.shape[-2:])
            idx = self.match(crops, component_atoms)
            chosen_idx[component] = idx
            mean, std = calc_mean_std(crops)
            chosen = component_atoms[idx.to(component_atoms.device)].to(feat.dtype) * std + mean
            conf = self.conf[f'{component}_{level}']
            patches = [None] * feat.shape[0]
            for (h, w), indices in group_by_shape(fb).items():
                part = gather_crops(feat, fb, indices)
                atom = resize(chosen[indices], (h, w))
                update = conf(atom - part) * atom
                for j, i in enumerate(indices):
                    x1, y1, x2, y2 = fb[i].tolist()
                    patches[i] = F.pad(update[j], (x1, width - x2, y1, height - y2))
            residual = residual + torch.stack(patches)
            count = count + box_masks(fb, height, width).to(feat.device, feat.dtype)
        return feat + residual / count.clamp(min=1), chosen_idx
