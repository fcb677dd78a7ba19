"""Saving and loading SR networks for inference (facesr_kd.utils.checkpoint).

Networks here are tiny and randomly initialised, with random VGG19 encoder weights passed explicitly
(``vgg_pretrained=False``): these tests check the file format and the refusals, not any quality.
"""

import os

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher
from facesr_kd.utils.checkpoint import CheckpointError, load_sr_network, read_checkpoint, save_sr_checkpoint

import pytest
import torch
import yaml

STUDENT_OPT = {'type': 'DFDNetStudent', 'out_size': 64, 'num_feat': 8, 'vgg_pretrained': False}
RCAN_OPT = {
    'type': 'RCAN', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_group': 1, 'num_block': 1,
    'squeeze_factor': 4, 'upscale': 8,
}  # fmt: skip


def tiny_rcan(seed=0):
    from basicsr.archs.rcan_arch import RCAN

    torch.manual_seed(seed)
    return RCAN(**{k: v for k, v in RCAN_OPT.items() if k != 'type'})


@pytest.fixture(scope='module')
def student_ckpt(tmp_path_factory):
    """A tiny DFDNetStudent (random weights, random VGG encoder) saved with scale 8."""
    torch.manual_seed(0)
    net = DFDNetStudent(out_size=64, num_feat=8, vgg_pretrained=False)
    # The arch entry asks for ImageNet VGG weights, as a training option would: loading must not fetch them.
    opt = dict(STUDENT_OPT, vgg_pretrained=True, vgg_weights='/nonexistent/vgg19.pth')
    path = tmp_path_factory.mktemp('ckpt') / 'student.pth'
    save_sr_checkpoint(str(path), net, opt, scale=8)
    return str(path), net


def test_student_roundtrip_describes_the_arch(student_ckpt):
    path, saved = student_ckpt
    net, info = load_sr_network(path, expect_scale=8)
    assert not net.training
    assert info['type'] == 'DFDNetStudent' and info['params_key'] == 'params'
    assert (info['scale'], info['lq_size'], info['out_size'], info['needs_boxes']) == (8, 8, 64, False)
    lq = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(lq), saved.eval()(lq))


def test_ema_preferred(tmp_path):
    path = tmp_path / 'rcan.pth'
    net, ema = tiny_rcan(0), tiny_rcan(1)
    save_sr_checkpoint(str(path), net, RCAN_OPT, ema=ema)
    loaded, info = load_sr_network(str(path))
    assert info['params_key'] == 'params_ema'
    lq = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(lq), ema.eval()(lq))


def test_checkpoint_is_plain_data(student_ckpt):
    ckpt = torch.load(student_ckpt[0], map_location='cpu', weights_only=True)
    assert set(ckpt) == {'params', 'arch', 'scale'}
    assert ckpt['arch']['type'] == 'DFDNetStudent'


def test_wrong_scale_refused(student_ckpt):
    with pytest.raises(CheckpointError, match=r'holds arch DFDNetStudent.*x8 \(8 -> 64\); expected x4'):
        load_sr_network(student_ckpt[0], expect_scale=4)


def test_wrong_arch_refused(tmp_path, student_ckpt):
    # Student weights under an SRFBN arch entry.
    state = torch.load(student_ckpt[0], map_location='cpu', weights_only=True)
    state['arch'] = {'type': 'SRFBN', 'num_feat': 8, 'num_steps': 1, 'num_groups': 1, 'upscale': 8}
    bad = tmp_path / 'bad.pth'
    torch.save(state, bad)
    with pytest.raises(CheckpointError) as err:
        load_sr_network(str(bad))
    msg = str(err.value)
    assert 'holds arch SRFBN' in msg and 'encoder.features.conv1_1.weight' in msg and 'unexpected' in msg
    with pytest.raises(CheckpointError, match='expected RCAN'):
        load_sr_network(student_ckpt[0], expect_type='RCAN')


def test_wrong_width_refused(tmp_path):
    path = tmp_path / 'rcan.pth'
    save_sr_checkpoint(str(path), tiny_rcan(), dict(RCAN_OPT, num_feat=16))
    with pytest.raises(CheckpointError, match=r'holds arch RCAN, 22 tensors.*shape mismatch'):
        load_sr_network(str(path))


def test_code_in_checkpoint_never_runs(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    path = tmp_path / 'evil.pth'
    torch.save({'params': tiny_rcan().state_dict(), 'arch': dict(RCAN_OPT), 'extra': Payload()}, path)
    with pytest.raises(CheckpointError, match='weights-only'):
        load_sr_network(str(path))
    assert not marker.exists()


def test_option_file_found_beside_experiment(tmp_path):
    # A stock BasicSR layout: experiments/<name>/models/net_g_X.pth with no `arch`, and the copied option file.
    exp = tmp_path / 'experiments' / 'tiny_rcan'
    (exp / 'models').mkdir(parents=True)
    net = tiny_rcan()
    torch.save({'params': net.state_dict()}, exp / 'models' / 'net_g_10.pth')
    ckpt = str(exp / 'models' / 'net_g_10.pth')
    with pytest.raises(CheckpointError, match=r'does not say which network.*--opt'):
        load_sr_network(ckpt)
    with open(exp / 'train_tiny_rcan.yml', 'w') as f:
        yaml.safe_dump({'name': 'tiny_rcan', 'scale': 8, 'network_g': dict(RCAN_OPT)}, f)
    loaded, info = load_sr_network(ckpt, expect_scale=8)
    assert info['opt_path'] == os.path.join(str(exp), 'train_tiny_rcan.yml')
    assert (info['type'], info['lq_size'], info['out_size']) == ('RCAN', 32, 256)
    lq = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(lq), net.eval()(lq))


def test_teacher_dictionary_comes_from_checkpoint(tmp_path):
    torch.manual_seed(0)
    teacher = DFDNetTeacher(out_size=64, num_feat=8, num_atoms=2, vgg_pretrained=False)
    for name, buf in teacher.dictionary.named_buffers():
        buf.copy_(torch.rand_like(buf.float()).to(buf.dtype) if name != 'loaded' else torch.tensor(True))
    path = tmp_path / 'teacher.pth'
    opt = {'type': 'DFDNetTeacher', 'out_size': 64, 'num_feat': 8, 'num_atoms': 2, 'dict_path': '/gone/dict.pth'}
    save_sr_checkpoint(str(path), teacher, opt, scale=8)
    net, info = load_sr_network(str(path))
    assert info['needs_boxes'] and bool(net.dictionary.loaded)
    assert torch.equal(net.dictionary.state_dict()[next(iter(net.dictionary.state_dict()))],
                       teacher.dictionary.state_dict()[next(iter(teacher.dictionary.state_dict()))])  # fmt: skip


def test_read_checkpoint_accepts_plain_state_dict_and_strips_module(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({f'module.{k}': v for k, v in tiny_rcan().state_dict().items()}, path)
    state, arch, scale, key = read_checkpoint(str(path))
    assert arch is None and scale is None and key == '(plain state dict)'
    assert all(not k.startswith('module.') for k in state)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        load_sr_network('/nonexistent/net_g.pth')
