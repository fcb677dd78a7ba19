from facesr_kd.archs.vgg19 import VGG19Features

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


@LOSS_REGISTRY.register()
class VGG19PerceptualLoss(nn.Module):
    """Perceptual loss on frozen ImageNet VGG19 features, with weights from a local file.

    ``loss = perceptual_weight * sum_i w_i * criterion(f_i(x), f_i(gt))``. Unlike BasicSR's ``PerceptualLoss``
    it takes its VGG19 weights from ``weights_path`` (or torch hub's cache), never downloads unless asked, and
    its ``l2`` criterion works. The GT features are computed without gradients.

    Args:
        layer_weights (dict[str, float]): VGG19 layer name (e.g. ``'relu3_4'``) to weight.
        perceptual_weight (float): Scale of the whole loss. Default 1.
        criterion (str): ``'l2'`` (mean squared error, the paper's) or ``'l1'``.
        weights_path (str | None): Local torchvision ``vgg19-dcbb9e9d.pth``. None: torch hub's cache.
        pretrained (bool): False builds random VGG19 weights; for tests only, never a quality figure.
        allow_download (bool): Let torchvision download the weights when no local file is found.

    Shapes:
        x, gt: (B, 3, H, W) RGB in [0, 1]. Returns ``(loss, None)``, the ``(percep, style)`` pair BasicSR's
        models expect.
    """

    def __init__(
        self,
        layer_weights,
        perceptual_weight=1.0,
        criterion='l2',
        weights_path=None,
        pretrained=True,
        allow_download=False,
    ):
        super().__init__()
        if criterion not in ('l1', 'l2'):
            raise ValueError(f"VGG19PerceptualLoss: criterion must be 'l1' or 'l2', got {criterion!r}")
        if not layer_weights:
            raise ValueError('VGG19PerceptualLoss: layer_weights is empty; give e.g. {relu3_4: 1.0}')
        self.layer_weights = dict(layer_weights)
        self.perceptual_weight = perceptual_weight
        self.criterion = F.mse_loss if criterion == 'l2' else F.l1_loss
        self.vgg = VGG19Features(
            list(self.layer_weights), pretrained=pretrained, weights_path=weights_path, allow_download=allow_download
        )

    def forward(self, x, gt):
        x_feats = self.vgg(x)
        with torch.no_grad():
            gt_feats = self.vgg(gt.detach())
        loss = sum(w * self.criterion(x_feats[k], gt_feats[k]) for k, w in self.layer_weights.items())
        return loss * self.perceptual_weight, None
