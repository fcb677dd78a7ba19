"""Distillation variants beyond the paper (``train: distill:``), the teacher-initialised student, the lite students
in the distillation, the bicubic baselines of Table 1 and the ablation's bookkeeping.

Every VGG19 and dictionary here is random (explicitly): these tests check mechanics, not quality.
"""

import math

import facesr_kd  # noqa: F401
from facesr_kd.ablation import VARIANTS, summarize, write_ablation_table
from facesr_kd.archs.component_dictionary import feature_boxes
from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
from facesr_kd.models.dict_distill_model import check_distill_options, component_crops
from facesr_kd.recipes import METHODS, PRESETS
from facesr_kd.utils.checkpoint import save_sr_checkpoint
from facesr_kd.utils.options import OptionError, check_options

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from .test_models import GAN_KEYS, SIZE, SMOKE, batch, build, random_dictionary, random_vgg, snapshot  # noqa: F401

REGION_KEYS = {'l_g_gan_region', 'l_d_region_real', 'l_d_region_fake'}


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory, random_vgg, random_dictionary):  # noqa: F811
    """A teacher checkpoint as FaceSRModel writes it (with ``arch``), at the smoke recipe's settings."""
    arch = {
        'type': 'DFDNetTeacher',
        'out_size': SIZE,
        'num_feat': SMOKE['num_feat'],
        'num_atoms': SMOKE['num_atoms'],
        'input_skip': True,
        'vgg_weights': str(random_vgg),
    }
    torch.manual_seed(1)
    net = ARCH_REGISTRY.get('DFDNetTeacher')(**{k: v for k, v in arch.items() if k != 'type'})
    net.load_dictionary(random_dictionary)
    with torch.no_grad():
        net.decoder.to_rgb.weight.normal_(0, 0.05)  # a "trained" teacher: not the zero start of input_skip
    path = tmp_path_factory.mktemp('teacher_arch') / 'net_g_latest.pth'
    save_sr_checkpoint(str(path), net, arch, scale=8)
    return str(path)


def _distill(**overrides):
    def edit(opt):
        opt['train']['distill'] = {**(opt['train'].get('distill') or {}), **overrides}

    return edit


def _region(opt):
    opt['network_d_region'] = {**opt['network_d'], 'num_layers': 2}
    opt['train']['distill'] = {'feat_norm': 'self', 'region_size': 8}


def _from_teacher(path):
    def edit(opt):
        opt['path'].update(pretrain_network_g=path, param_key_g='params')

    return edit


@pytest.mark.parametrize(
    'variant, edit, extra',
    [
        ('paper', None, set()),
        ('norm', _distill(feat_norm='self', adapter='identity', gan_ramp_iters=4), set()),
        ('delayed', _distill(gan_start_iters=1), set()),  # the adversarial term off in step 1, on in step 2
        ('norm_teacher_stats', _distill(feat_norm='teacher'), set()),
        ('direct', _distill(feat_match_weight=1e-2, output_weight=0.5), {'l_g_feat', 'l_g_out'}),
        ('output', _distill(output_weight=1.0), {'l_g_out'}),
        ('hints', _distill(hint_weight=1e-2), {'l_g_hint'}),
        ('region', _region, REGION_KEYS),
    ],
)
def test_each_variant_gives_its_exact_loss_keys_after_two_steps(
    variant,
    edit,
    extra,
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
    batch,  # noqa: F811
):
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_ckpt, edit=edit)
    before = snapshot(model.net_g)
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert set(model.log_dict) == GAN_KEYS | extra
        assert all(math.isfinite(v) for v in model.log_dict.values())
    after = snapshot(model.net_g)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    if variant == 'region':
        disc = model.net_d_region
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
        model.save(0, 2)
        models = tmp_path / 'experiments' / model.opt['name'] / 'models'
        assert (models / 'net_d_region_2.pth').exists()


def test_shipped_kd_plus_recipe_starts_from_the_teacher_and_gives_its_loss_keys(
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
    batch,  # noqa: F811
):
    model = build(
        'Student (KD+)', tmp_path, random_vgg, random_dictionary, teacher_ckpt, edit=_from_teacher(teacher_ckpt)
    )
    assert model.distill['feat_norm'] == 'self' and model.distill['adapter'] == 'identity'
    assert isinstance(model.adapter, nn.Conv2d)
    assert torch.equal(model.adapter.weight[:, :, 0, 0], torch.eye(SMOKE['num_feat']))
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert set(model.log_dict) == GAN_KEYS | {'l_g_feat', 'l_g_out'}


OUTPUT_KD_KEYS = {'l_g_pix', 'l_g_percep', 'l_g_out'}


@pytest.mark.parametrize(
    'method, keys',
    [
        ('Student (hints)', OUTPUT_KD_KEYS | {'l_g_hint', 'l_g_feat'}),
        ('Student (output KD)', OUTPUT_KD_KEYS),
        ('Lite student', OUTPUT_KD_KEYS),
        ('Tiny student', OUTPUT_KD_KEYS),
    ],
)
def test_shipped_recipes_without_a_discriminator_give_their_loss_keys(
    method,
    keys,
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
    batch,  # noqa: F811
):
    kind = METHODS[method][2]
    lite = kind in ('lite', 'tiny')
    model = build(method, tmp_path, random_vgg, random_dictionary, teacher_ckpt, **(SMOKE[kind] if lite else {}))
    assert model.net_d is None and len(model.optimizers) == 1
    # No adapter: the lite recipes have no feature term, the DFDNet student has the teacher's widths.
    assert isinstance(model.adapter, nn.Identity)
    frozen_t = snapshot(model.net_t)
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert set(model.log_dict) == keys
        assert all(math.isfinite(v) for v in model.log_dict.values())
        assert model.log_dict['l_g_out'] > 0
    net_g = model.get_bare_model(model.net_g)
    trainable = [(n, p) for n, p in net_g.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in trainable), [
        n for n, p in trainable if p.grad is None or p.grad.abs().sum() == 0
    ]
    if lite:  # no frozen encoder: every parameter is trained
        assert len(trainable) == len(list(net_g.parameters()))
    assert all(torch.equal(v, frozen_t[k]) for k, v in model.net_t.state_dict().items())
    model.save(0, 2)
    models = tmp_path / 'experiments' / model.opt['name'] / 'models'
    assert {p.name for p in models.iterdir()} == {'net_g_2.pth'}
    assert 'adapter' not in torch.load(models / 'net_g_2.pth', weights_only=True)


def test_distillation_without_a_discriminator_needs_a_direct_term(
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
):
    from facesr_kd.models.dict_distill_model import DictDistillModel
    from facesr_kd.recipes import make_train_options

    data = {'train': str(tmp_path), 'test': str(tmp_path)}
    opt = make_train_options('Student (hints)', SMOKE, str(tmp_path), data, random_vgg, random_dictionary, 'cpu')
    DictDistillModel.check_train_options(opt)
    opt['train']['distill'] = {'feat_norm': 'teacher'}
    with pytest.raises(ValueError, match='none is set'):
        DictDistillModel.check_train_options(opt)
    opt['train']['distill'] = {'hint_weight': 1e-2}
    opt['network_d_region'] = {'type': 'FeatureMapDiscriminator', 'in_channels': 8}
    with pytest.raises(ValueError, match='needs `network_d`'):
        DictDistillModel.check_train_options(opt)


def test_teacher_initialised_student_is_the_teacher_with_its_dictionary_path_bypassed(
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
    batch,  # noqa: F811
):
    model = build('Student w/o KD', tmp_path, random_vgg, random_dictionary, edit=_from_teacher(teacher_ckpt))
    student = model.get_bare_model(model.net_g).eval()
    teacher = ARCH_REGISTRY.get('DFDNetTeacher')(SIZE, SMOKE['num_feat'], SMOKE['num_atoms'], vgg_pretrained=False,
                                                 input_skip=True)  # fmt: skip
    teacher.load_state_dict(torch.load(teacher_ckpt, weights_only=True)['params'])
    teacher.eval()
    lq = batch['lq']
    with torch.no_grad():
        feats = teacher.encode(lq)
        bypassed = teacher.decode(feats, DFDNetStudent.conditions(teacher, feats), lq=lq)
        with_dictionary = teacher(lq, batch['boxes'])
        assert torch.allclose(student(lq), bypassed, atol=1e-6)
        assert not torch.allclose(with_dictionary, bypassed, atol=1e-4)  # the dictionary path does change F_T


def test_teacher_initialisation_lists_what_it_drops_and_refuses_a_mismatched_student(teacher_ckpt):
    state = torch.load(teacher_ckpt, weights_only=True)
    student = DFDNetStudent(SIZE, SMOKE['num_feat'], vgg_pretrained=False, input_skip=True)
    dropped = student.load_from_teacher(state['params'], state['arch'])
    assert dropped and all(k.startswith(('dictionary.', 'transfer.')) for k in dropped)
    assert len(dropped) == len(state['params']) - len(student.state_dict())
    other = DFDNetStudent(SIZE, SMOKE['num_feat'], vgg_pretrained=False, input_skip=False)
    with pytest.raises(ValueError, match='input_skip=True cannot initialise a student with input_skip=False'):
        other.load_from_teacher(state['params'], state['arch'])


class _Scale(nn.Module):
    def __init__(self, inner, scale):
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return self.inner(x) * self.scale


@pytest.mark.parametrize('feat_norm, invariant', [('self', True), ('teacher', True), ('none', False)])
def test_standardised_discriminator_input_ignores_a_channel_rescaling_of_the_teacher(
    feat_norm,
    invariant,
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
    batch,  # noqa: F811
):
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_ckpt, edit=_distill(feat_norm=feat_norm))
    model.net_g.eval()  # no spectral-norm power iteration between the two passes
    model.feed_data(batch)
    with torch.no_grad():
        _, fake, real = model.generator_forward()
        image_t = model.output_t.clone()
        # Rescale F_T per channel and let the teacher's to_rgb undo it: the teacher's image stays the same.
        decoder = model.net_t.decoder
        scale = torch.linspace(0.5, 3.0, SMOKE['num_feat']).view(1, -1, 1, 1)
        decoder.tail = _Scale(decoder.tail, scale)
        decoder.to_rgb.weight.div_(scale.view(1, -1, 1, 1))
        _, fake2, real2 = model.generator_forward()
    assert torch.allclose(model.output_t, image_t, atol=1e-5)
    assert torch.allclose(real2, real, atol=1e-4) == invariant
    if feat_norm == 'self':  # D's whole input pair, and so every adversarial loss, is unchanged
        assert torch.allclose(fake2, fake, atol=1e-5)


def test_region_discriminator_sees_only_the_crops_inside_the_boxes(batch):  # noqa: F811
    torch.manual_seed(0)
    feat = torch.randn(2, 5, SIZE, SIZE)
    boxes = batch['boxes']
    crops = component_crops(feat, boxes, 8)
    assert crops.shape == (2 * 4, 5, 8, 8)
    fb = feature_boxes(boxes, 1, SIZE, SIZE)
    inside = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    for b in range(2):
        for x1, y1, x2, y2 in fb[b].tolist():
            inside[b, :, y1:y2, x1:x2] = True
    assert 0 < inside.float().mean() < 0.5
    outside_changed = torch.where(inside, feat, torch.randn_like(feat) * 100)
    assert torch.equal(component_crops(outside_changed, boxes, 8), crops)
    x1, y1, x2, y2 = fb[1, 3].tolist()  # sample 1's mouth
    inside_changed = feat.clone()
    inside_changed[1, :, y1:y2, x1:x2] += 1
    changed = (component_crops(inside_changed, boxes, 8) != crops).flatten(1).any(1)
    # Sample 0 and sample 1's eyes are untouched; its mouth crop changes (its nose box may overlap the mouth's).
    assert changed[:6].tolist() == [False] * 6 and changed[7]


def test_adversarial_ramp_and_bad_distill_options(tmp_path, random_vgg, random_dictionary, teacher_ckpt):  # noqa: F811
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_ckpt, edit=_distill(gan_ramp_iters=10))
    assert [model.gan_weight(i) for i in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    model.distill.update(gan_start_iters=20, gan_ramp_iters=10)
    assert [model.gan_weight(i) for i in (1, 20, 25, 30, 50)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert check_distill_options(None)['feat_norm'] == 'none'
    for bad, match in (
        ({'feat_norm': 'batch'}, "feat_norm` is 'batch'; use one of"),
        ({'feat_match': 1}, r"unknown key\(s\) \['feat_match'\]"),
        ({'output_weight': -1}, 'output_weight` must be a number >= 0'),
        ({'gan_start_iters': -5}, 'gan_start_iters` must be a number >= 0'),
    ):
        with pytest.raises(ValueError, match=match):
            check_distill_options(bad)


def test_option_check_refuses_a_bad_distill_block_before_any_work(tmp_path, random_vgg, random_dictionary):  # noqa: F811
    from facesr_kd.recipes import make_train_options

    data = {'train': str(tmp_path), 'test': str(tmp_path)}
    opt = make_train_options('Student', SMOKE, str(tmp_path), data, random_vgg, random_dictionary, 'cpu')
    opt['train']['distill'] = {'feat_norm': 'bogus'}
    with pytest.raises(OptionError, match=r'x.yml: `train`: `train.distill.feat_norm`'):
        check_options(opt, 'x.yml', check_paths=False)
    assert not (tmp_path / 'experiments').exists()


def test_decoder_hints_match_every_up_block_and_stay_off_outside_the_step(
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
    batch,  # noqa: F811
):
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_ckpt, edit=_distill(hint_weight=1.0))
    model.feed_data(batch)
    model.generator_forward()
    hints_s, hints_t = model.hints['student'], model.hints['teacher']
    assert len(hints_s) == len(hints_t) == 4  # one per SFT up-block, coarse to fine
    assert [h.shape[-1] for h in hints_s] == [SIZE // 8, SIZE // 4, SIZE // 2, SIZE]
    assert all(h.requires_grad for h in hints_s) and not any(h.requires_grad for h in hints_t)
    # The loss is the per-level standardised MSE: zero when the student's hints are the teacher's.
    assert model.hint_loss().item() > 0
    model.hints['student'][:] = [h.detach().clone() for h in hints_t]
    assert model.hint_loss().item() == pytest.approx(0.0, abs=1e-6)
    # Validation and test passes do not collect hints.
    model.hints['student'].clear()
    model.net_g.eval()
    with torch.no_grad():
        model.net_g(batch['lq'])
    assert model.hints['student'] == []


def test_decoder_hints_refuse_a_student_without_a_dfdnet_decoder(
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
):
    with pytest.raises(ValueError, match='hint_weight'):
        build(
            'Tiny student',
            tmp_path,
            random_vgg,
            random_dictionary,
            teacher_ckpt,
            edit=_distill(hint_weight=1e-2),
            **SMOKE['tiny'],
        )


def test_lite_student_feature_matching_goes_through_the_adapter(
    tmp_path,
    random_vgg,  # noqa: F811
    random_dictionary,  # noqa: F811
    teacher_ckpt,
    batch,  # noqa: F811
):
    # The tiny smoke widths give a 4-channel F_S against the teacher's 8: a feature term needs the 1x1 adapter.
    model = build(
        'Tiny student', tmp_path, random_vgg, random_dictionary, teacher_ckpt,
        edit=_distill(feat_match_weight=1e-2), **SMOKE['tiny'],
    )  # fmt: skip
    assert isinstance(model.adapter, nn.Conv2d) and model.adapter.in_channels == SMOKE['tiny']['feat_channels']
    assert not model.share_encoder
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert set(model.log_dict) == {'l_g_pix', 'l_g_percep', 'l_g_feat', 'l_g_out'}
    net_g = model.get_bare_model(model.net_g)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net_g.parameters())
    assert model.adapter.weight.grad is not None and model.adapter.weight.grad.abs().sum() > 0
    model.save(0, 2)
    saved = torch.load(tmp_path / 'experiments' / model.opt['name'] / 'models' / 'net_g_2.pth', weights_only=True)
    assert set(saved['adapter']) == {'weight', 'bias'}


def test_bicubic_rows_match_a_direct_computation(tmp_path, batch):  # noqa: F811
    from facesr_kd.table1 import BICUBIC, BICUBIC_TORCH, baseline_rows, write_table

    from basicsr.metrics import calculate_psnr

    (tmp_path / 'lr').mkdir()
    (tmp_path / 'hr').mkdir()
    expected = []
    for i in range(2):
        gt = (batch['gt'][i].permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8)
        lr = (batch['lq'][i].permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8)
        cv2.imwrite(str(tmp_path / 'hr' / f'{i}.png'), gt)
        cv2.imwrite(str(tmp_path / 'lr' / f'{i}.png'), lr)
        up = cv2.resize(lr, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        expected.append(calculate_psnr(up, gt, crop_border=0))
    rows = baseline_rows(str(tmp_path / 'lr'), str(tmp_path / 'hr'))
    assert [r['method'] for r in rows] == [BICUBIC, BICUBIC_TORCH]
    assert rows[0]['psnr'] == pytest.approx(np.mean(expected))
    assert abs(rows[1]['psnr'] - rows[0]['psnr']) < 1.0 and 0 < rows[0]['ssim'] < 1
    table = write_table(rows, str(tmp_path / 'table'), lpips_valid=False)
    assert table.splitlines()[2].startswith('| Bicubic |')
    assert 'Bicubic' in (tmp_path / 'table.csv').read_text()


def test_ablation_summary_compares_each_variant_with_its_matched_control(tmp_path):
    def m(psnr):
        return {'psnr': psnr, 'ssim': 0.5, 'psnr_y': psnr + 1, 'ssim_y': 0.6, 'lpips': 0.1}

    results = {
        'nokd': {0: m(20.0), 1: m(20.2)},
        'paper': {0: m(19.0), 1: m(19.4)},
        'nokd_t': {0: m(21.0), 1: m(21.1)},
        'fm_t': {0: m(21.5), 1: m(21.5)},
    }
    rows = {r['variant']: r for r in summarize(results, bicubic={'psnr': 19.5, 'ssim': 0.4})}
    assert rows['paper']['d_psnr_control'] == pytest.approx(-0.9)
    assert rows['fm_t']['d_psnr_control'] == pytest.approx(0.45)
    assert rows['fm_t']['psnr_spread'] == pytest.approx(0.0) and rows['fm_t']['control_spread'] == pytest.approx(0.1)
    assert math.isnan(rows['nokd']['d_psnr_control'])
    assert rows['nokd']['d_psnr_bicubic'] == pytest.approx(0.6)
    table = write_ablation_table(list(rows.values()), str(tmp_path / 'abl'), bicubic={'psnr': 19.5, 'ssim': 0.4})
    fm_line = next(line for line in table.splitlines() if line.startswith('| fm_t'))
    assert fm_line.rstrip(' |').endswith('yes')  # +0.45 dB > 0.2 and > 2 x 0.1
    paper_line = next(line for line in table.splitlines() if line.startswith('| paper'))
    assert paper_line.rstrip(' |').endswith('no')
    assert set(VARIANTS) >= {'nokd', 'paper', 'nokd_t', 'paper_t', 'norm_t', 'fm_t', 'region_t', 'plus_t'}
    assert PRESETS['ablation']['input_skip']


def test_strong_teacher_ablation_preset_differs_only_in_the_teachers_iterations():
    from facesr_kd.recipes import describe_preset

    strong, base = PRESETS['ablation_strong'], PRESETS['ablation']
    assert {k for k in strong.keys() | base.keys() if strong.get(k) != base.get(k)} == {'teacher_iters'}
    assert strong['teacher_iters'] == 4 * base['teacher_iters']
    assert '2400 teacher / 200 other iterations' in describe_preset('ablation_strong')
    assert VARIANTS['out'][2] == {'output_weight': 1.0} and VARIANTS['out'][-1] == 0.0


def test_long_ablation_preset_trains_the_students_as_long_as_the_teacher():
    from facesr_kd.recipes import describe_preset

    long, strong = PRESETS['ablation_long'], PRESETS['ablation_strong']
    assert {k for k in long.keys() | strong.keys() if long.get(k) != strong.get(k)} == {'iters'}
    assert long['iters'] == long['teacher_iters'] == 2400
    assert '2400 teacher / 2400 other iterations' in describe_preset('ablation_long')


@pytest.mark.parametrize(
    'variant, init, weight', [('out_hi', 'random', 4.0), ('out_t', 'teacher', 1.0), ('out_hi_t', 'teacher', 4.0)]
)
def test_output_distillation_variants_set_their_weight_and_initialisation(variant, init, weight, tmp_path):
    from facesr_kd.ablation import variant_options

    data = {'train': str(tmp_path / 'train'), 'test': str(tmp_path / 'test')}
    train, test = variant_options(
        variant, 1, PRESETS['ablation'], str(tmp_path), data, 'vgg.pth', 'dict.pth', 'cpu', lpips_random=True
    )
    assert VARIANTS[variant][1] == init
    assert train['manual_seed'] == 1 and train['name'] == f'ablation_{variant}_seed1'
    assert train['train']['distill']['output_weight'] == weight
    assert train['train']['gan_opt']['loss_weight'] == 0.0
    teacher_init = train['path']['pretrain_network_g']
    if init == 'teacher':
        assert teacher_init == str(tmp_path / 'experiments' / 'train_teacher_vggface2' / 'models' / 'net_g_latest.pth')
    else:
        assert teacher_init is None
    assert test['path']['pretrain_network_g'].endswith(f'ablation_{variant}_seed1/models/net_g_latest.pth')
