"""Small helpers shared by the architectures: the optional global skip from the bicubic-upsampled input, and
baking spectral norms into plain weights for deployment."""

import copy
from collections import OrderedDict

import torch
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


def _plain_module(module):
    """A plain module (e.g. ``nn.Conv2d``) holding the current value of each parametrized tensor of ``module``.

    ``parametrize.remove_parametrizations`` is not used: it deletes the tensor's property from the parametrized
    class, which a deep copy shares with the original network, and so breaks the original.
    """
    base = type(module).__bases__[0]
    plain = base.__new__(base)
    plain.__dict__.update(module.__dict__)
    plain._modules = OrderedDict((k, v) for k, v in module._modules.items() if k != 'parametrizations')
    plain._parameters = OrderedDict(module._parameters)
    for name in module.parametrizations:
        weight = getattr(module, name).detach().clone()
        trainable = module.parametrizations[name].original.requires_grad
        plain._parameters[name] = nn.Parameter(weight, requires_grad=trainable)
    return plain


def bake_spectral_norm(net, inplace=True):
    """Replace every spectral-norm (or other) parametrization by its current weight, for deployment and export.

    In eval mode spectral norm recomputes ``W / sigma`` from fixed vectors on every call (with ``vdot``, which
    ONNX lacks); baking computes it once and leaves plain convolutions with the same outputs. The older
    hook-based ``torch.nn.utils.spectral_norm`` is removed too. The baked network can no longer be trained with
    spectral norm.

    Args:
        net (nn.Module): Any network.
        inplace (bool): Bake ``net`` itself; False bakes a deep copy in eval mode and leaves ``net`` as it was.

    Returns:
        nn.Module: The baked network (``net`` when ``inplace``).
    """
    from torch.nn.utils import parametrize

    if not inplace:
        net = copy.deepcopy(net).eval()
    with torch.no_grad():
        for parent in list(net.modules()):
            for name, child in list(parent._modules.items()):
                if child is not None and parametrize.is_parametrized(child):
                    parent._modules[name] = _plain_module(child)
        for module in net.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if type(hook).__name__ == 'SpectralNorm':
                    torch.nn.utils.remove_spectral_norm(module, hook.name)
    return net
