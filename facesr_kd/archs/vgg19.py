"""A frozen VGG19 feature extractor with explicit, offline-friendly weight loading.

Used as the encoder of the teacher and the student and by the perceptual loss. Weights come from a given
file, or from torch hub's cache (where torchvision downloads ``vgg19-dcbb9e9d.pth``), or are downloaded when
``allow_download`` is set. Offline with no file, loading fails with the file name, its URL and where it goes.
``pretrained=False`` (random weights) must be asked for explicitly; it is meant for tests only.
"""

import os
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

VGG19_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'
VGG19_FILE = os.path.basename(VGG19_URL)
LAYER_NAMES = (
    'conv1_1',
    'relu1_1',
    'conv1_2',
    'relu1_2',
    'pool1',
    'conv2_1',
    'relu2_1',
    'conv2_2',
    'relu2_2',
    'pool2',
    'conv3_1',
    'relu3_1',
    'conv3_2',
    'relu3_2',
    'conv3_3',
    'relu3_3',
    'conv3_4',
    'relu3_4',
    'pool3',
    'conv4_1',
    'relu4_1',
    'conv4_2',
    'relu4_2',
    'conv4_3',
    'relu4_3',
    'conv4_4',
    'relu4_4',
    'pool4',
    'conv5_1',
    'relu5_1',
    'conv5_2',
    'relu5_2',
    'conv5_3',
    'relu5_3',
    'conv5_4',
    'relu5_4',
    'pool5',
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_vgg19_path():
    """Where torchvision keeps the ImageNet VGG19 weights: ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints', VGG19_FILE)


def load_vgg19_state_dict(weights_path=None, allow_download=False):
    """Return the ImageNet VGG19 state dict.

    Args:
        weights_path (str | None): A local ``.pth`` with torchvision's VGG19 state dict. None: torch hub's cache.
        allow_download (bool): Download from torchvision's URL when the cached file is missing.

    Raises:
        FileNotFoundError: No weights file, naming the file, its URL and where it goes.
    """
    path = os.path.expanduser(weights_path) if weights_path else default_vgg19_path()
    if not os.path.isfile(path):
        if weights_path is None and allow_download:
            return torch.hub.load_state_dict_from_url(VGG19_URL, map_location='cpu', check_hash=True)
        raise FileNotFoundError(
            f'ImageNet VGG19 weights not found at {path}. Download {VGG19_URL} and put it at '
            f"{default_vgg19_path()} (torchvision's cache, set TORCH_HOME to move it) or pass its path as "
            '`vgg_weights` (architectures) / `weights_path` (losses). Random weights are only used when '
            '`pretrained: false` is given explicitly, which is meant for tests.'
        )
    return torch.load(path, map_location='cpu', weights_only=True)


def save_random_vgg19(path, seed=0):
    """Write a random-initialised VGG19 state dict (torchvision's key names) to ``path`` and return ``path``.

    A fixed, explicit stand-in for the ImageNet weights in tests, smoke runs and speed benchmarks, so that
    every part of a run (dictionary, encoders, perceptual loss) shares the same random encoder. Never for a
    quality figure. Only the conv part (``features.*``, 80 MB) is written, the only part anything here reads;
    its values are those of ``torchvision.models.vgg19(weights=None)`` under ``torch.manual_seed(seed)``.
    """
    from torchvision.models import vgg19

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        state = vgg19(weights=None).features.state_dict(prefix='features.')
    torch.save(state, path)
    return str(path)


class VGG19Features(nn.Module):
    """Frozen VGG19 returning named intermediate features.

    The input is an RGB image in [0, 1]; it is normalised with the ImageNet mean and std. torchvision's VGG
    uses in-place ReLUs, so they are replaced by out-of-place ones: a ``convX_Y`` feature stays the
    pre-activation tensor.

    Args:
        layers (Sequence[str]): Names from :data:`LAYER_NAMES` to return, e.g. ``('relu2_2', 'conv5_4')``.
        pretrained (bool): Load ImageNet weights (see :func:`load_vgg19_state_dict`). False: random weights,
            for tests only.
        weights_path (str | None): Local weights file.
        allow_download (bool): Allow torchvision's download when no local file is found.
        requires_grad (bool): Whether the VGG weights train. Default False (frozen).

    Shapes:
        x: (B, 3, H, W) in [0, 1]. Output: ``{name: (B, C, H / s, W / s)}`` for the requested layers.
    """

    def __init__(self, layers, pretrained=True, weights_path=None, allow_download=False, requires_grad=False):
        super().__init__()
        unknown = [n for n in layers if n not in LAYER_NAMES]
        if unknown:
            raise ValueError(f'unknown VGG19 layers {unknown}; choose from {LAYER_NAMES}')
        self.layers = tuple(layers)
        # Only the conv part of VGG19 (torchvision's config 'E'): the classifier would be 120M wasted weights.
        features = make_layers(cfgs['E'], batch_norm=False)
        if pretrained:
            state = load_vgg19_state_dict(weights_path, allow_download)
            features.load_state_dict({k[len('features.') :]: v for k, v in state.items() if k.startswith('features.')})
        last = max(LAYER_NAMES.index(n) for n in self.layers)
        modules = [nn.ReLU(inplace=False) if isinstance(m, nn.ReLU) else m for m in features[: last + 1]]
        self.features = nn.Sequential(OrderedDict(zip(LAYER_NAMES, modules)))
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad = requires_grad
        self.requires_grad_flag = requires_grad
        self.train(requires_grad)

    def train(self, mode=True):
        # A frozen encoder stays in eval mode whatever its parent does.
        return super().train(mode and self.requires_grad_flag)

    def forward(self, x):
        out = OrderedDict()
        x = (x - self.mean) / self.std
        for name, module in self.features.named_children():
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out
