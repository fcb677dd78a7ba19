"""LPIPS as a BasicSR metric (``type: calculate_lpips`` in any ``val: metrics:`` block)."""

import os
import warnings

import numpy as np
import torch
from basicsr.metrics.metric_util import reorder_image
from basicsr.utils.registry import METRIC_REGISTRY

BACKBONES = {
    'alex': ('alexnet', 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'),
    'vgg': ('vgg16', 'https://download.pytorch.org/models/vgg16-397923af.pth'),
    'squeeze': ('squeezenet1_1', 'https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth'),
}
_CACHE = {}


def backbone_file(net):
    """Where torchvision keeps the ImageNet backbone of LPIPS ``net``: ``<torch hub>/checkpoints/<file>``."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(BACKBONES[net][1]))


def build_lpips(net='alex', version='0.1', backbone_path=None, random_backbone=False, device='cpu'):
    """Build (once per setting) an ``lpips.LPIPS`` model in eval mode.

    Args:
        net (str): ``'alex'`` (the lpips default, our primary), ``'vgg'`` or ``'squeeze'``.
        version (str): LPIPS linear-head version. Default ``'0.1'``.
        backbone_path (str | None): Local torchvision ImageNet weights of the backbone. None: torch hub's cache.
        random_backbone (bool): Random backbone weights, the same ones every time (seed 0, drawn without touching
            the global RNG); exercises the code path only, never a valid LPIPS.
        device (str | torch.device): Where the model runs.

    Raises:
        FileNotFoundError: The backbone weights are missing, naming the file, its URL and where it goes.
    """
    import lpips

    if net not in BACKBONES:
        raise ValueError(f'LPIPS net must be one of {sorted(BACKBONES)}, got {net!r}')
    key = (net, version, backbone_path, random_backbone, str(device))
    if key in _CACHE:
        return _CACHE[key]
    arch, url = BACKBONES[net]
    path = os.path.expanduser(backbone_path) if backbone_path else backbone_file(net)
    if not random_backbone and not os.path.isfile(path):
        raise FileNotFoundError(
            f'LPIPS({net}) needs the ImageNet {arch} weights {os.path.basename(url)}, not found at {path}. '
            f"Download {url} into {os.path.dirname(backbone_file(net))} (torchvision's cache; TORCH_HOME moves "
            'it) or give `backbone_path`. `random_backbone: true` is for tests only and is not a valid LPIPS.'
        )
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # lpips calls torchvision with the deprecated `pretrained` argument
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # one random backbone for every method scored, whatever ran before
            model = lpips.LPIPS(net=net, version=version, pnet_rand=True, verbose=False)
        if not random_backbone:
            import torchvision

            features = getattr(torchvision.models, arch)(weights=None)
            features.load_state_dict(torch.load(path, map_location='cpu', weights_only=True))
            for slice_ in model.net.children():
                for name, module in slice_.named_children():
                    module.load_state_dict(features.features[int(name)].state_dict())
    model = model.to(device).eval()
    _CACHE[key] = model
    return model


def _to_tensor(img, crop_border, input_order):
    img = reorder_image(img, input_order=input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
    img = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 or img.max() > 1 else 1.0)
    rgb = np.ascontiguousarray(img[..., ::-1])  # BasicSR hands metrics BGR images
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0) * 2 - 1


@METRIC_REGISTRY.register()
def calculate_lpips(
    img,
    img2,
    crop_border=0,
    input_order='HWC',
    net='alex',
    version='0.1',
    backbone_path=None,
    random_backbone=False,
    device=None,
    **kwargs,
):
    """LPIPS distance between two images (lower is better), as the ``lpips`` package computes it.

    Args:
        img, img2 (ndarray): Images as BasicSR hands them to metrics: BGR, uint8 in [0, 255] (or float in [0, 1]).
        crop_border (int): Pixels cropped from each edge first.
        input_order (str): ``'HWC'`` or ``'CHW'``.
        net, version, backbone_path, random_backbone: See :func:`build_lpips`.
        device (str | None): Default: CUDA when available, else CPU.

    Returns:
        float: The LPIPS distance.
    """
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes are different: {img.shape}, {img2.shape}.')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = build_lpips(net, version, backbone_path, random_backbone, device)
    with torch.no_grad():
        x = _to_tensor(img, crop_border, input_order).to(device)
        y = _to_tensor(img2, crop_border, input_order).to(device)
        return model(x, y).item()
