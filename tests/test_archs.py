"""Networks: DFDNet-style teacher and student, feature-map discriminator, SRFBN.

Every DFDNet-style network here uses a RANDOM VGG19 encoder (``vgg_pretrained=False``, asked for explicitly:
the ImageNet weights are not available offline) and tiny decoder widths; no figure here says anything about
quality.
"""

import copy

import facesr_kd  # noqa: F401  (BasicSR compatibility fixes before basicsr is imported)
from facesr_kd.archs.component_dictionary import (
    LEVELS,
    dictionary_shapes,
    extract_component_crops,
    feature_boxes,
)
from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher
from facesr_kd.archs.feature_discriminator_arch import FeatureMapDiscriminator
from facesr_kd.archs.srfbn_arch import PROJECTION, SRFBN
from facesr_kd.face.components import COMPONENTS, template_boxes

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from torch.nn.utils import parametrizations, parametrize

SIZE, NF, K = 64, 8, 4


def random_dictionary(out_size, num_atoms, seed=0):
    gen = torch.Generator().manual_seed(seed)
    atoms = {k: torch.randn(num_atoms, *s, generator=gen) for k, s in dictionary_shapes(out_size).items()}
    return {
        'out_size': out_size,
        'num_atoms': num_atoms,
        'components': list(COMPONENTS),
        'levels': list(LEVELS),
        'atoms': atoms,
    }


def boxes_for(batch, size=SIZE):
    return torch.as_tensor(template_boxes(size), dtype=torch.float32)[None].repeat(batch, 1, 1)


@pytest.fixture(scope='module')
def teacher():
    torch.manual_seed(0)
    net = DFDNetTeacher(SIZE, NF, K, vgg_pretrained=False)  # random VGG19 on purpose (tests)
    net.load_dictionary(random_dictionary(SIZE, K))
    return net.eval()


@pytest.fixture(scope='module')
def student():
    torch.manual_seed(0)
    return DFDNetStudent(SIZE, NF, vgg_pretrained=False).eval()  # random VGG19 on purpose (tests)


def test_registered_names_and_build_from_options():
    for name in ('DFDNetTeacher', 'DFDNetStudent', 'FeatureMapDiscriminator', 'SRFBN'):
        assert name in ARCH_REGISTRY
    net = build_network({'type': 'SRFBN', 'num_feat': 8, 'num_steps': 2, 'num_groups': 2, 'upscale': 4})
    assert isinstance(net, SRFBN)
    assert DFDNetTeacher.needs_boxes and not DFDNetStudent.needs_boxes


@pytest.mark.parametrize('out_size', [128, 256, 512])
def test_dfdnet_output_shapes_every_size(out_size, monkeypatch):
    # Shapes only, on the meta device (no compute): the same code path as on a real device. Meta tensors hold
    # no values, so spectral norm's 15 power iterations at construction (slow on meta) are skipped.
    monkeypatch.setattr(parametrizations._SpectralNorm, '_power_method', lambda *args: None, raising=False)
    with torch.device('meta'):
        t = DFDNetTeacher(out_size, NF, 2, vgg_pretrained=False)
        s = DFDNetStudent(out_size, NF, vgg_pretrained=False)
    lq = torch.empty(2, 3, out_size // 8, out_size // 8, device='meta')
    img_t, feat_t = t(lq, boxes_for(2, out_size), return_feat=True)
    img_s, feat_s = s(lq, return_feat=True)
    assert img_t.shape == img_s.shape == (2, 3, out_size, out_size)
    assert feat_t.shape == feat_s.shape == (2, NF, out_size, out_size)
    assert t.dictionary.atoms('nose', 'conv5_4').shape[-1] >= 2


def test_dfdnet_real_forward(teacher, student):
    lq = torch.rand(2, 3, SIZE // 8, SIZE // 8)
    with torch.no_grad(), parametrize.cached():  # spectral-norm weights once
        img_t, feat_t = teacher(lq, boxes_for(2), return_feat=True)
        img_s, feat_s = student(lq, return_feat=True)
        img_only = student(lq)
    for img in (img_t, img_s):
        assert img.shape == (2, 3, SIZE, SIZE) and torch.isfinite(img).all()
        assert img.min() >= 0 and img.max() <= 1
    assert feat_t.shape == (2, teacher.feat_channels, SIZE, SIZE) and student.feat_channels == NF
    assert torch.equal(img_only, img_s)


@pytest.mark.parametrize('which', ['teacher', 'student'])
def test_every_trainable_parameter_gets_a_gradient_and_vgg_stays_frozen(which, teacher, student):
    net = teacher if which == 'teacher' else student
    net.train()
    assert not net.encoder.training  # the frozen encoder stays in eval mode
    assert all(not p.requires_grad for p in net.encoder.parameters())
    vgg_before = [p.detach().clone() for p in net.encoder.parameters()]
    lq = torch.rand(2, 3, SIZE // 8, SIZE // 8)
    args = (lq, boxes_for(2)) if which == 'teacher' else (lq,)
    img, feat = net(*args, return_feat=True)
    net.zero_grad()
    (img.square().mean() + feat.square().mean()).backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f'no gradient for {missing[:5]}'
    assert all(p.grad is None for p in net.encoder.parameters())
    torch.optim.SGD(net.parameters(), lr=1e-3).step()  # frozen weights have no gradient to apply
    assert all(torch.equal(a, b) for a, b in zip(vgg_before, net.encoder.parameters()))
    net.zero_grad(set_to_none=True)
    net.eval()


def test_teacher_batch_independence_with_own_boxes(teacher):
    teacher.eval()
    lq = torch.rand(3, 3, SIZE // 8, SIZE // 8)
    boxes = boxes_for(3)
    boxes[1] += 6  # shifted
    boxes[2, :, [0, 2]] -= 30  # partly outside the image: clamped
    boxes[2, 3] = torch.tensor([60.0, 60.0, 90.0, 95.0])  # mouth at the bottom-right border
    with torch.no_grad(), parametrize.cached():  # spectral-norm weights once
        batch, feat = teacher(lq, boxes, return_feat=True)
        picks = teacher.match(lq, boxes)
        for i in range(3):
            single, single_feat = teacher(lq[i : i + 1], boxes[i : i + 1], return_feat=True)
            torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-5)
            torch.testing.assert_close(feat[i : i + 1], single_feat, rtol=0, atol=1e-4)
            single_picks = teacher.match(lq[i : i + 1], boxes[i : i + 1])
            assert all(picks[k][i] == single_picks[k][0] for k in picks)
        # Different boxes change a sample's output: the boxes are really used per sample.
        assert not torch.allclose(teacher(lq[:1], boxes[1:2]), batch[:1], atol=1e-6)
    assert torch.isfinite(batch).all()


def test_feature_boxes_clamped_to_the_map():
    boxes = torch.tensor(
        [[[-20.0, -5.0, 10.0, 3.0], [60.0, 62.0, 200.0, 300.0], [5.0, 5.0, 5.0, 5.0], [70.0, 70.0, 80.0, 80.0]]]
    )
    fb = feature_boxes(boxes, 16, 4, 4)
    x1, y1, x2, y2 = fb[0].unbind(-1)
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= 4).all() and (y2 <= 4).all()
    assert ((x2 - x1) >= 1).all() and ((y2 - y1) >= 1).all()
    assert fb[0, 0].tolist() == [0, 0, 1, 1] and fb[0, 3].tolist() == [3, 3, 4, 4]
    with pytest.raises(ValueError, match='NaN'):
        feature_boxes(torch.full((1, 4, 4), float('nan')), 2, 8, 8)


def test_teacher_picks_the_atom_equal_to_the_face_own_features(teacher):
    teacher.eval()
    lq = torch.rand(2, 3, SIZE // 8, SIZE // 8)
    boxes = boxes_for(2)
    boxes[1] -= 3
    with torch.no_grad():
        crops = extract_component_crops(teacher.encode(lq), boxes, SIZE)
    data = random_dictionary(SIZE, K, seed=1)
    expected = {}
    for key, crop in crops.items():
        data['atoms'][key][1] = crop[0]
        data['atoms'][key][3] = crop[1]
        # A one-pixel box gives a constant crop: every atom, AdaIN-ed to it, is the same, and atom 0 is taken.
        spread = crop.amax(dim=(2, 3)) - crop.amin(dim=(2, 3))
        constant = (spread <= 1e-5 * (crop.abs().amax(dim=(1, 2, 3))[:, None] + 1)).all(1)
        expected[key] = [0 if constant[0] else 1, 0 if constant[1] else 3]
    assert sum(e == [1, 3] for e in expected.values()) >= 8  # all of relu2_2 and relu3_4 but the nose
    saved = {k: v.clone() for k, v in teacher.dictionary.state_dict().items()}
    try:
        teacher.load_dictionary(data)
        picks = teacher.match(lq, boxes)
        assert set(picks) == set(crops)
        for key, idx in picks.items():
            assert idx.tolist() == expected[key], key
    finally:
        teacher.dictionary.load_state_dict(saved)


def test_teacher_dictionary_state_and_refusals(teacher, tmp_path):
    bare = copy.deepcopy(teacher)
    bare.dictionary.loaded.fill_(False)
    lq = torch.rand(1, 3, SIZE // 8, SIZE // 8)
    with pytest.raises(RuntimeError, match='dict_path'):
        bare(lq, boxes_for(1))
    # The dictionary and its flag travel with the state dict.
    for buf in bare.dictionary.buffers():
        buf.zero_()
    bare.load_state_dict(teacher.state_dict())
    bare.eval()
    teacher.eval()
    with torch.no_grad(), parametrize.cached():  # spectral-norm weights once
        torch.testing.assert_close(bare(lq, boxes_for(1)), teacher(lq, boxes_for(1)))
    with pytest.raises(ValueError, match='boxes must be'):
        teacher(lq, boxes_for(2))
    # A dictionary for another K / size is refused, saying what it holds.
    with pytest.raises(ValueError, match='holds out_size=64, num_atoms=3'):
        bare.load_dictionary(random_dictionary(SIZE, 3))
    with pytest.raises(ValueError, match='holds out_size=128'):
        bare.load_dictionary(random_dictionary(128, K))
    with pytest.raises(FileNotFoundError, match='facesr-kd-dictionary'):
        bare.load_dictionary(str(tmp_path / 'missing.pth'))


def test_feature_map_discriminator():
    d = FeatureMapDiscriminator(in_channels=NF, num_feat=8, num_layers=4)
    x = torch.randn(3, NF, SIZE, SIZE)
    out = d(x)
    assert out.shape == (3, 1)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in d.modules())
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(hasattr(m, 'parametrizations') for m in layers)  # spectral norm everywhere
    assert [m.stride for m in layers if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 4
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    assert d(x[:1] * 0).shape == (1, 1)


def test_srfbn_x8_steps_and_official_projection():
    assert PROJECTION[8] == (12, 8, 2)
    net = SRFBN(num_feat=8, num_steps=3, num_groups=2, upscale=8).train()
    lq = torch.rand(2, 3, 32, 32)
    outs = net(lq)
    assert isinstance(outs, list) and len(outs) == 3
    assert all(o.shape == (2, 3, 256, 256) for o in outs)
    assert not torch.allclose(outs[0], outs[-1])  # the feedback changes the output step by step
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    with torch.no_grad():
        last = net(lq)
    assert torch.is_tensor(last) and last.shape == (2, 3, 256, 256)
    torch.testing.assert_close(last, outs[-1].detach())
    official = SRFBN()
    assert official.block.num_groups == 6 and official.num_steps == 4 and official.upscale == 8


def _srfbn_tail_features(net, x):
    feat = net.feat_in(net.conv_in(x - net.mean))
    return net.out(net.block(feat, feat))


def test_srfbn_kaiming_init_keeps_features_alive_and_untrained_net_is_bicubic():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        default = _srfbn_tail_features(SRFBN(num_feat=16, num_steps=2, num_groups=3, upscale=8), x).std()
        net = SRFBN(num_feat=16, num_steps=2, num_groups=3, upscale=8, input_skip=True, init='kaiming').eval()
        kaiming = _srfbn_tail_features(net, x).std()
        bicubic = torch.nn.functional.interpolate(x, scale_factor=8, mode='bicubic', align_corners=False)
        assert torch.equal(net(x), bicubic)  # conv_out still starts at zero under the skip
    assert kaiming > 10 * default
    assert kaiming > 0.2 * x.std()
    with pytest.raises(ValueError, match='init'):
        SRFBN(init='xavier')


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_srfbn_other_scales(scale):
    net = SRFBN(num_feat=8, num_steps=2, num_groups=2, upscale=scale).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 12, 12)).shape == (1, 3, 12 * scale, 12 * scale)
    with pytest.raises(ValueError, match='upscale'):
        SRFBN(upscale=5)


@pytest.mark.parametrize(
    'name, kwargs',
    [
        ('DFDNetStudent', {'out_size': SIZE, 'num_feat': NF, 'vgg_pretrained': False}),
        ('FaceRCAN', {'num_feat': 8, 'num_group': 1, 'num_block': 1, 'squeeze_factor': 4, 'upscale': 8}),
        ('SRFBN', {'num_feat': 8, 'num_steps': 2, 'num_groups': 1, 'upscale': 8}),
        ('LiteFaceStudent', {'out_size': SIZE, 'scale': 8, 'num_feat': 8, 'num_block': 1, 'feat_channels': 4}),
    ],
)
def test_input_skip_starts_as_bicubic_and_learns_a_residual(name, kwargs):
    torch.manual_seed(0)
    net = build_network({'type': name, 'input_skip': True, **kwargs}).eval()
    lq = torch.rand(2, 3, SIZE // 8, SIZE // 8)
    bicubic = torch.nn.functional.interpolate(lq, size=SIZE, mode='bicubic', align_corners=False)
    with torch.no_grad():
        assert torch.equal(net(lq), bicubic)
    net.train()
    out = net(lq)
    out = out[-1] if isinstance(out, list) else out
    (out - bicubic.flip(-1)).square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_face_rcan_without_skip_is_basicsrs_rcan():
    from basicsr.archs.rcan_arch import RCAN

    kwargs = {'num_feat': 8, 'num_group': 1, 'num_block': 1, 'squeeze_factor': 4, 'upscale': 8}
    torch.manual_seed(0)
    ours = build_network({'type': 'FaceRCAN', **kwargs}).eval()
    theirs = RCAN(3, 3, **kwargs).eval()
    theirs.load_state_dict(ours.state_dict())
    lq = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(ours(lq), theirs(lq))
