"""LiteFaceStudent: shapes, gradients, the bicubic start, input checks, checkpoints, ONNX and the inference CLI.

Every network here is tiny (``num_feat`` 8, one or two residual blocks) and randomly initialised: the tests
check behaviour (shapes, gradient flow, the exact bicubic start of ``input_skip``, exports, the photo
pipeline), never quality. Where an output must depend on the trained part of the network, ``to_rgb`` (zero at
initialisation with ``input_skip``) is perturbed, as each test says.
"""

import os

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.archs.lite_student_arch import LiteFaceStudent
from facesr_kd.cli import export_onnx as export_onnx_cli
from facesr_kd.cli import inference as cli
from facesr_kd.export import export_onnx
from facesr_kd.utils.checkpoint import CheckpointError, load_sr_network, save_sr_checkpoint

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from .conftest import FACEXLIB_WEIGHTS

TINY = {'num_feat': 8, 'num_block': 1, 'feat_channels': 4}
DET_ARGS = ['--det-model', 'retinaface_mobile0.25', '--model-root', str(FACEXLIB_WEIGHTS), '--offline']


def lite(out_size=256, scale=8, perturb_to_rgb=False, seed=0, **kwargs):
    """A tiny LiteFaceStudent in eval mode; ``perturb_to_rgb``: random ``to_rgb`` instead of its zero start."""
    torch.manual_seed(seed)
    net = LiteFaceStudent(out_size=out_size, scale=scale, **{**TINY, **kwargs})
    if perturb_to_rgb:
        with torch.no_grad():
            torch.nn.init.normal_(net.to_rgb.weight, std=0.05)
            torch.nn.init.normal_(net.to_rgb.bias, std=0.05)
    return net.eval()


def arch_opt(net):
    return {
        'type': 'LiteFaceStudent',
        'out_size': net.out_size,
        'scale': net.scale,
        'num_feat': net.num_feat,
        'num_block': len(net.body) - 1,
        'feat_channels': net.feat_channels,
        'input_skip': net.input_skip,
    }


@pytest.mark.parametrize('scale', [4, 8])
@pytest.mark.parametrize('out_size', [128, 256, 512])
def test_shapes_every_size_and_scale(out_size, scale):
    net = lite(out_size, scale, perturb_to_rgb=True)
    lq = torch.rand(2, 3, out_size // scale, out_size // scale)
    with torch.no_grad():
        img, feat = net(lq, return_feat=True)
        alone = net(lq)
    assert img.shape == (2, 3, out_size, out_size)
    assert feat.shape == (2, TINY['feat_channels'], out_size, out_size)
    assert torch.equal(alone, img)
    # The feature is what enters to_rgb: the distillation adapter sees exactly that tensor.
    assert torch.allclose(net.to_rgb(feat) + F.interpolate(lq, size=out_size, mode='bicubic'), img, atol=1e-6)


@pytest.mark.parametrize('input_skip', [True, False])
def test_every_trainable_parameter_gets_a_gradient(input_skip):
    """With ``input_skip`` ``to_rgb`` starts at zero, so the first backward reaches only ``to_rgb`` (asserted);
    after one SGD step every parameter gets a non-zero gradient. Without the skip the first backward does."""
    net = lite(128, 8, input_skip=input_skip, num_block=2).train()
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 128, 128)
    params = dict(net.named_parameters())
    assert params and all(p.requires_grad for p in params.values())

    def backward():
        net.zero_grad(set_to_none=True)
        F.l1_loss(net(lq), gt).backward()
        return {name for name, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0}

    no_grad = backward()
    if input_skip:
        assert no_grad == set(params) - {'to_rgb.weight', 'to_rgb.bias'}, sorted(no_grad)
        torch.optim.SGD(net.parameters(), lr=0.1).step()
        no_grad = backward()
    assert not no_grad, f'no gradient: {sorted(no_grad)}'
    assert all(torch.isfinite(p.grad).all() for p in params.values())


@pytest.mark.parametrize(('out_size', 'scale'), [(128, 4), (256, 8)])
def test_untrained_with_input_skip_is_bicubic_upsampling(out_size, scale):
    net = lite(out_size, scale)
    lq = torch.rand(3, 3, out_size // scale, out_size // scale)
    with torch.no_grad():
        out = net(lq)
    bicubic = F.interpolate(lq, size=(out_size, out_size), mode='bicubic', align_corners=False)
    torch.testing.assert_close(out, bicubic, atol=0, rtol=0)
    # Without the skip the same weights give something else entirely.
    torch.manual_seed(0)
    plain = LiteFaceStudent(out_size, scale, input_skip=False, **TINY).eval()
    with torch.no_grad():
        assert (plain(lq) - bicubic).abs().mean() > 0.1


def test_fully_convolutional_any_input_size_and_a_crop_restores_as_the_whole():
    """Any (h, w) gives (h * scale, w * scale); a crop's output equals the whole input's output on that crop,
    away from the crop's borders (what restoring a face where it lies in a photo relies on)."""
    net = lite(256, 4, perturb_to_rgb=True)
    whole = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        out = net(whole)
        part = net(whole[..., 8:32, 16:48])
    assert out.shape == (1, 3, 160, 224) and part.shape == (1, 3, 96, 128)
    inner = (slice(None), slice(None), slice(4 * 4, -4 * 4), slice(4 * 4, -4 * 4))  # 4 LR pixels in from the crop edge
    torch.testing.assert_close(part[inner], out[..., 32:128, 64:192][inner], atol=1e-3, rtol=0)
    assert (part - out[..., 32:128, 64:192]).abs().max() > 1e-3  # the crop's borders do differ (zero padding)


def test_bad_input_and_bad_options_are_clear():
    net = lite(256, 8)
    with pytest.raises(ValueError, match=r'takes \(B, 3, h, w\) RGB faces; got \(3, 32, 32\)'):
        net(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match=r'got \(1, 1, 32, 32\)'):
        net(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match='power-of-two scale'):
        LiteFaceStudent(out_size=192, scale=3)
    with pytest.raises(ValueError, match='out_size 100 is not a multiple of scale 8'):
        LiteFaceStudent(out_size=100, scale=8)


def test_checkpoint_takes_its_scale_from_the_arch(tmp_path):
    """A x4 lite checkpoint without a stored scale is x4 (its arch says so), not the default x8."""
    net = lite(128, 4, perturb_to_rgb=True)
    path = tmp_path / 'lite_x4.pth'
    save_sr_checkpoint(str(path), net, arch_opt(net))
    loaded, info = load_sr_network(str(path), expect_scale=4)
    assert (info['type'], info['scale'], info['lq_size'], info['out_size']) == ('LiteFaceStudent', 4, 32, 128)
    lq = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(lq), net(lq))
    save_sr_checkpoint(str(path), net, arch_opt(net), scale=8)  # a stored scale contradicting the arch
    with pytest.raises(CheckpointError, match=r'says scale 8 but the arch is built for x4'):
        load_sr_network(str(path))


@pytest.fixture(scope='module')
def lite_onnx(tmp_path_factory):
    """A tiny x4 lite (128 from 32, perturbed ``to_rgb`` so the output is not just bicubic), its checkpoint and
    its ONNX export with a dynamic batch, made once by facesr-kd-export-onnx with ``--check``."""
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    net = lite(128, 4, perturb_to_rgb=True)
    root = tmp_path_factory.mktemp('lite_onnx')
    ckpt, out = root / 'lite_x4.pth', root / 'lite_x4.onnx'
    save_sr_checkpoint(str(ckpt), net, arch_opt(net), scale=4)
    assert export_onnx_cli.main(['--model', str(ckpt), '-o', str(out), '--scale', '4', '--check']) == 0
    return net, out


def test_onnx_dynamic_batch_matches_pytorch(lite_onnx):
    import onnx
    import onnxruntime

    net, path = lite_onnx
    graph = onnx.load(str(path)).graph
    assert graph.input[0].name == 'lq' and graph.input[0].type.tensor_type.shape.dim[0].dim_param == 'batch'
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for batch in (1, 3):
        lq = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            ref = net(lq).numpy()
        got = session.run(['sr'], {'lq': lq.numpy()})[0]
        assert got.shape == (batch, 3, 128, 128)
        assert np.abs(got - ref).max() < 1e-4
        # The check is not vacuous: the network's output is far from its bicubic skip alone.
        assert np.abs(ref - F.interpolate(lq, size=128, mode='bicubic').numpy()).mean() > 1e-3


def test_export_refuses_another_input_size():
    with pytest.raises(ValueError, match=r'takes 32x32 inputs; cannot export it for lq_size 16'):
        export_onnx(lite(128, 4), 16, os.devnull)


@pytest.fixture(scope='module')
def lite_ckpt(tmp_path_factory):
    """An x8 lite checkpoint (32 -> 256), random weights, its ``to_rgb`` at its zero start: the network restores
    a face as the bicubic upsampling of its aligned 32x32 input, which the CLI test checks."""
    net = lite(256, 8)
    path = tmp_path_factory.mktemp('lite') / 'lite_x8.pth'
    save_sr_checkpoint(str(path), net, arch_opt(net), scale=8)
    return str(path)


def test_inference_cli_whole_photo_with_lite_checkpoint(tmp_path, shared_data, lite_ckpt, capsys):
    photo = shared_data / 'faces' / 'whole' / 'codeformer_00.jpg'
    args = cli.parse_args(['-i', str(photo), '-o', str(tmp_path), '--model', lite_ckpt, '--upscale', '2', *DET_ARGS])
    summary = cli.run(args)
    line = (
        'LiteFaceStudent x8, faces 32 -> 256, channels-last (checkpoint; faces over 4 x 32 px (the input '
        'LiteFaceStudent was trained at) kept, each at its own size)'
    )
    assert f'{line} on cpu' in capsys.readouterr().out
    assert summary['faces'] == {str(photo): 4} and not summary['skipped']
    cropped = sorted(os.listdir(tmp_path / 'cropped_faces'))
    restored = sorted(os.listdir(tmp_path / 'restored_faces'))
    assert len(cropped) == len(restored) == 4
    for c, r in zip(cropped, restored):
        lq, face = cv2.imread(str(tmp_path / 'cropped_faces' / c)), cv2.imread(str(tmp_path / 'restored_faces' / r))
        # The face's box of the photo, at its own size, and the net's x8 output of it
        assert lq.shape[0] > 16 and face.shape == (8 * lq.shape[0], 8 * lq.shape[1], 3)
        # The net got the face (RGB, in [0, 1]) and gave its bicubic upsampling: colours and geometry kept.
        bicubic = cv2.resize(lq, face.shape[1::-1], interpolation=cv2.INTER_CUBIC).astype(np.float32)
        assert np.abs(face.astype(np.float32) - bicubic).mean() < 0.5  # measured: 0.2 (rounding, cv2 vs torch)
    src = cv2.imread(str(photo))
    out = cv2.imread(str(tmp_path / 'restored_imgs' / 'codeformer_00.jpg'))
    assert out.shape == (src.shape[0] * 2, src.shape[1] * 2, 3)
