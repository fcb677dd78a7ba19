"""Small helpers shared by the architectures: the optional global skip from the bicubic-upsampled input."""

import torch.nn.functional as F
from torch import nn


def upsample_input(lq, size):
    """The input bicubic-upsampled to ``size`` (the resize every network here uses), unclamped.

    Args:
        lq (Tensor): (B, C, h, w).
        size (int | tuple[int, int]): Output size.

    Returns:
        Tensor: (B, C, size, size); ``lq`` itself when it already has that size.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(lq.shape[-2:]) == size:
        return lq
    return F.interpolate(lq, size=size, mode='bicubic', align_corners=False)


def zero_init_(conv):
    """Zero a conv's weight and bias, so a residual branch ending in it starts as the identity of its skip."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv
