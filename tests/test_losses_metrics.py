"""VGG19 perceptual loss and the LPIPS metric."""

import facesr_kd  # noqa: F401
from facesr_kd.archs.vgg19 import VGG19Features, save_random_vgg19
from facesr_kd.metrics import lpips_metric

import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import LOSS_REGISTRY, METRIC_REGISTRY

from .conftest import FFHQ256, require_shared_data


def test_perceptual_loss_is_weighted_mse_of_vgg_features(tmp_path):
    # Random VGG19 weights written to a local file: the loss must read them from there.
    weights = save_random_vgg19(tmp_path / 'vgg19.pth')
    loss = LOSS_REGISTRY.get('VGG19PerceptualLoss')(
        {'relu1_2': 0.5, 'relu2_2': 2.0}, perceptual_weight=3.0, criterion='l2', weights_path=weights
    )
    ref = VGG19Features(['relu1_2', 'relu2_2'], weights_path=weights)
    x, y = torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(2, 3, 32, 32)
    fx, fy = ref(x), ref(y)
    expected = 3.0 * (
        0.5 * torch.nn.functional.mse_loss(fx['relu1_2'], fy['relu1_2'])
        + 2.0 * torch.nn.functional.mse_loss(fx['relu2_2'], fy['relu2_2'])
    )
    value, style = loss(x, y)
    assert style is None
    assert torch.allclose(value, expected, rtol=1e-5)
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())


def test_perceptual_loss_without_weights_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth'):
        LOSS_REGISTRY.get('VGG19PerceptualLoss')({'relu1_2': 1.0})


def _faces():
    require_shared_data(FFHQ256)
    a = cv2.imread(str(FFHQ256 / '00000.jpg'))
    b = cv2.GaussianBlur(a, (7, 7), 3)
    return a, b


def test_lpips_metric_equals_lpips_package(tmp_path, monkeypatch):
    import lpips
    from torchvision.models import alexnet

    # A stand-in for torchvision's cached ImageNet AlexNet: random weights at the cache path, so that the
    # lpips package and our metric load the same backbone. Not an LPIPS figure.
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    lpips_metric._CACHE.clear()
    torch.manual_seed(0)
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    torch.save(alexnet(weights=None).state_dict(), cache / 'alexnet-owt-7be5be79.pth')

    a, b = _faces()
    ours = calculate_metric({'img': a, 'img2': b}, {'type': 'calculate_lpips', 'device': 'cpu'})
    ref_model = lpips.LPIPS(net='alex', verbose=False).eval()

    def to_tensor(img):
        return torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1

    with torch.no_grad():
        ref = ref_model(to_tensor(a), to_tensor(b)).item()
    assert ours == pytest.approx(ref, rel=1e-5)
    assert calculate_metric({'img': a, 'img2': a}, {'type': 'calculate_lpips', 'device': 'cpu'}) == pytest.approx(
        0, abs=1e-6
    )
    lpips_metric._CACHE.clear()


def test_lpips_metric_is_cached_and_offline_error_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    lpips_metric._CACHE.clear()
    a, b = _faces()
    with pytest.raises(FileNotFoundError, match='alexnet-owt-7be5be79.pth'):
        METRIC_REGISTRY.get('calculate_lpips')(a, b)
    with pytest.raises(FileNotFoundError, match='vgg16-397923af.pth'):
        METRIC_REGISTRY.get('calculate_lpips')(a, b, net='vgg')
    # Random backbones only when asked for explicitly (a code-path check, never an LPIPS value).
    first = METRIC_REGISTRY.get('calculate_lpips')(a, b, random_backbone=True, device='cpu')
    model = lpips_metric.build_lpips('alex', '0.1', None, True, 'cpu')
    assert METRIC_REGISTRY.get('calculate_lpips')(a, b, random_backbone=True, device='cpu') == first
    assert lpips_metric.build_lpips('alex', '0.1', None, True, 'cpu') is model
    assert np.isfinite(first) and first > 0
    lpips_metric._CACHE.clear()
    torch.manual_seed(123)  # the random backbone is the same whatever the global RNG holds, and leaves it alone
    state = torch.random.get_rng_state()
    assert METRIC_REGISTRY.get('calculate_lpips')(a, b, random_backbone=True, device='cpu') == first
    assert torch.equal(torch.random.get_rng_state(), state)
    lpips_metric._CACHE.clear()
