"""SRFBN: image super-resolution feedback network (Li et al., CVPR 2019), device-agnostic."""

import math

from facesr_kd.archs.arch_util import zero_init_

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

# (kernel, stride, padding) of the up/down projections per scale, as in the official code.
PROJECTION = {2: (6, 2, 2), 3: (7, 3, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


def conv_prelu(in_channels, out_channels, kernel_size, stride=1, padding=None):
    """Conv followed by a PReLU (one slope, initialised at 0.2); 'same' padding unless given."""
    padding = (kernel_size - 1) // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.PReLU(init=0.2))


def deconv_prelu(in_channels, out_channels, kernel_size, stride, padding):
    """Transposed conv followed by a PReLU (one slope, initialised at 0.2)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding), nn.PReLU(init=0.2)
    )


class FeedbackBlock(nn.Module):
    """SRFBN's feedback block: ``num_groups`` dense up/down projection groups on the input fused with the
    previous step's output.

    Args:
        num_feat (int): Feature channels.
        num_groups (int): Projection groups.
        upscale (int): Scale, one of 2, 3, 4, 8.

    Shapes:
        x, hidden: (B, num_feat, h, w) -> (B, num_feat, h, w).
    """

    def __init__(self, num_feat, num_groups, upscale):
        super().__init__()
        k, s, p = PROJECTION[upscale]
        self.num_groups = num_groups
        self.compress_in = conv_prelu(2 * num_feat, num_feat, 1)
        self.up = nn.ModuleList(deconv_prelu(num_feat, num_feat, k, s, p) for _ in range(num_groups))
        self.down = nn.ModuleList(conv_prelu(num_feat, num_feat, k, s, p) for _ in range(num_groups))
        self.up_tran = nn.ModuleList(conv_prelu(num_feat * (i + 1), num_feat, 1) for i in range(1, num_groups))
        self.down_tran = nn.ModuleList(conv_prelu(num_feat * (i + 1), num_feat, 1) for i in range(1, num_groups))
        self.compress_out = conv_prelu(num_groups * num_feat, num_feat, 1)

    def forward(self, x, hidden):
        lr_feats = [self.compress_in(torch.cat([x, hidden], 1))]
        hr_feats = []
        for i in range(self.num_groups):
            lr = torch.cat(lr_feats, 1)
            if i > 0:
                lr = self.up_tran[i - 1](lr)
            hr_feats.append(self.up[i](lr))
            hr = torch.cat(hr_feats, 1)
            if i > 0:
                hr = self.down_tran[i - 1](hr)
            lr_feats.append(self.down[i](hr))
        return self.compress_out(torch.cat(lr_feats[1:], 1))


@ARCH_REGISTRY.register()
class SRFBN(nn.Module):
    """SRFBN with the official hyperparameters (64 features, 4 steps, 6 groups; x8 projections: kernel 12,
    stride 8, padding 2). Global residual: the bilinear-upsampled input. The hidden state is passed between
    steps explicitly, so the module holds no per-call state and runs on any device.

    Args:
        num_in_ch (int): Input channels.
        num_out_ch (int): Output channels.
        num_feat (int): Feature channels.
        num_steps (int): Feedback steps.
        num_groups (int): Projection groups in the feedback block.
        upscale (int): Scale, one of 2, 3, 4, 8.
        rgb_mean (tuple[float]): Mean subtracted from the input and added back to the output.
        input_skip (bool): Beyond SRFBN (off in the paper-scale option files): the global residual is the
            bicubic-upsampled input (the resize every network here uses) and ``conv_out`` starts at zero, so an
            untrained network is bicubic upsampling. False: SRFBN's bilinear residual.
        init (str): ``'default'`` (PyTorch's, as the official code) or ``'kaiming'``: He-normal weights for the
            PReLU slope and zero biases, with a transposed conv's fan-in counted as ``in_channels * (k / s)^2``
            (the taps that reach one output pixel). Beyond SRFBN, for short runs: with the default init the
            features reaching ``conv_out`` shrink to about 1/200 of the input's through the projection groups
            (measured at 32 features, 3 groups, x8), so a zero-initialised residual barely moves in hundreds of
            iterations.

    Shapes:
        x: (B, num_in_ch, h, w) in [0, 1]. Training mode: list of ``num_steps`` outputs
        (B, num_out_ch, h * upscale, w * upscale), one per step; eval mode: the last step's output.
    """

    def __init__(
        self,
        num_in_ch=3,
        num_out_ch=3,
        num_feat=64,
        num_steps=4,
        num_groups=6,
        upscale=8,
        rgb_mean=(0.4488, 0.4371, 0.4040),
        input_skip=False,
        init='default',
    ):
        super().__init__()
        if init not in ('default', 'kaiming'):
            raise ValueError(f"SRFBN init must be 'default' or 'kaiming', got {init!r}")
        if upscale not in PROJECTION:
            raise ValueError(f'SRFBN supports upscale {sorted(PROJECTION)}, got {upscale}')
        if len(rgb_mean) != num_in_ch or num_in_ch != num_out_ch:
            raise ValueError('SRFBN needs num_in_ch == num_out_ch == len(rgb_mean) for its mean shift')
        k, s, p = PROJECTION[upscale]
        self.upscale = upscale
        self.num_steps = num_steps
        self.register_buffer('mean', torch.tensor(rgb_mean).view(1, -1, 1, 1), persistent=False)
        self.conv_in = conv_prelu(num_in_ch, 4 * num_feat, 3)
        self.feat_in = conv_prelu(4 * num_feat, num_feat, 1)
        self.block = FeedbackBlock(num_feat, num_groups, upscale)
        self.out = deconv_prelu(num_feat, num_feat, k, s, p)
        self.conv_out = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.input_skip = input_skip
        if init == 'kaiming':
            self._kaiming_init()
        if input_skip:
            zero_init_(self.conv_out)

    def _kaiming_init(self, slope=0.2):
        gain = math.sqrt(2 / (1 + slope**2))
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                k, s = m.kernel_size[0], m.stride[0]
                nn.init.normal_(m.weight, 0, gain / math.sqrt(m.weight.shape[0] * (k / s) ** 2))
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=slope)
            else:
                continue
            nn.init.zeros_(m.bias)

    def forward(self, x):
        mode = 'bicubic' if self.input_skip else 'bilinear'
        base = F.interpolate(x, scale_factor=self.upscale, mode=mode, align_corners=False)
        x = x - self.mean
        feat = self.feat_in(self.conv_in(x))
        hidden, outs = feat, []
        for step in range(self.num_steps):
            hidden = self.block(feat, hidden)
            if self.training or step == self.num_steps - 1:
                outs.append(base + self.conv_out(self.out(hidden)))
        return outs if self.training else outs[-1]
