"""FaceSRModel and DictDistillModel on the shipped recipes at the smoke preset's size (CPU, tiny widths).

Every VGG19 here is random-initialised, written to a local file and passed explicitly: the tests check the
training mechanics, not image quality.
"""

import facesr_kd  # noqa: F401
from facesr_kd.archs.component_dictionary import dictionary_shapes
from facesr_kd.archs.vgg19 import save_random_vgg19
from facesr_kd.face.components import template_boxes
from facesr_kd.recipes import PRESETS, make_train_options, parsed_options

import cv2
import pytest
import torch
from basicsr.models import build_model
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import ARCH_REGISTRY

from .conftest import ffhq_ids

SMOKE = PRESETS['smoke']
SIZE = SMOKE['size']
GAN_KEYS = {'l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'out_d_real', 'l_d_fake', 'out_d_fake'}
EXPECTED_KEYS = {
    'Teacher': {'l_pix', 'l_percep'},
    'Student w/o KD': {'l_pix', 'l_percep'},
    'Student': GAN_KEYS,
    'RCAN': {'l_pix'},
    'SRFBN': {'l_pix'},
    'Lite student w/o KD': {'l_pix', 'l_percep'},
    'Lite student': {'l_g_pix', 'l_g_percep', 'l_g_out'},  # output distillation, no discriminator
}


@pytest.fixture(scope='module')
def random_vgg(tmp_path_factory):
    return save_random_vgg19(tmp_path_factory.mktemp('vgg') / 'vgg19_random.pth')


@pytest.fixture(scope='module')
def random_dictionary(tmp_path_factory):
    from facesr_kd.archs.component_dictionary import save_dictionary

    torch.manual_seed(0)
    atoms = {k: torch.randn(SMOKE['num_atoms'], *shape) for k, shape in dictionary_shapes(SIZE).items()}
    path = tmp_path_factory.mktemp('dict') / 'dict.pth'
    save_dictionary(str(path), atoms, SIZE)
    return str(path)


@pytest.fixture(scope='module')
def teacher_checkpoint(tmp_path_factory, random_vgg, random_dictionary):
    net = ARCH_REGISTRY.get('DFDNetTeacher')(
        out_size=SIZE,
        num_feat=SMOKE['num_feat'],
        num_atoms=SMOKE['num_atoms'],
        dict_path=random_dictionary,
        vgg_weights=random_vgg,
    )
    path = tmp_path_factory.mktemp('teacher') / 'net_g_latest.pth'
    torch.save({'params': net.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def batch():
    gts, lqs = [], []
    for p in ffhq_ids(100, 102):
        gt = cv2.resize(cv2.imread(str(p)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)[..., ::-1] / 255.0
        gts.append(torch.from_numpy(gt.copy()).permute(2, 0, 1).float())
        lqs.append(torch.from_numpy(imresize(gt, 1 / 8).clip(0, 1)).permute(2, 0, 1).float())
    boxes = torch.from_numpy(template_boxes(SIZE)).float()
    return {'lq': torch.stack(lqs), 'gt': torch.stack(gts), 'boxes': boxes.expand(2, 4, 4).clone()}


def build(
    method, tmp_path, random_vgg, random_dictionary, teacher_checkpoint=None, train_file=None, edit=None, **net_g
):
    """Build a model of a shipped recipe at the smoke size (``teacher_checkpoint`` is the distillation's).

    ``train_file`` picks another shipped recipe of the method; ``edit(opt)`` changes the options first.
    """
    data = {'train': str(tmp_path), 'test': str(tmp_path)}
    opt = make_train_options(method, SMOKE, str(tmp_path), data, random_vgg, random_dictionary, 'cpu', train_file)
    opt['network_g'].update(net_g)
    if edit is not None:
        edit(opt)
    opt['train']['ema_decay'] = 0.9  # the smoke preset has none; these tests exercise it
    if 'network_t' in opt:
        opt['path']['pretrain_network_t'] = teacher_checkpoint
    torch.manual_seed(0)
    return build_model(parsed_options(opt, tmp_path))


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize('method', list(EXPECTED_KEYS))
def test_two_steps_give_exact_loss_keys_and_gradients(
    method, tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch
):
    model = build(method, tmp_path, random_vgg, random_dictionary, teacher_checkpoint)
    net_g = model.get_bare_model(model.net_g)
    before_g = snapshot(net_g)
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert set(model.log_dict) == EXPECTED_KEYS[method]
        assert all(torch.isfinite(torch.tensor(v)) for v in model.log_dict.values())
    assert model.output.shape == (2, 3, SIZE, SIZE)
    for name, p in net_g.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f'{name} got no gradient'
    after_g = snapshot(net_g)
    trainable = {n for n, p in net_g.named_parameters() if p.requires_grad}
    assert any(not torch.equal(before_g[n], after_g[n]) for n in trainable)
    frozen = {n for n, p in net_g.named_parameters() if not p.requires_grad}
    assert all(torch.equal(before_g[n], after_g[n]) for n in frozen)  # the VGG encoder stays as loaded


def test_distillation_freezes_teacher_and_trains_student_and_discriminator(
    tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch
):
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_checkpoint)
    teacher, disc = model.net_t, model.get_bare_model(model.net_d)
    before_t, before_d = snapshot(teacher), snapshot(disc)
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    optimized = {id(p) for opt in model.optimizers for group in opt.param_groups for p in group['params']}
    assert not optimized & {id(p) for p in teacher.parameters()}
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
    after_t = snapshot(teacher)
    assert before_t.keys() == after_t.keys() and all(torch.equal(before_t[k], after_t[k]) for k in before_t)
    assert all(p.grad is None for p in teacher.parameters())
    for name, p in disc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f'{name} got no gradient'
    assert any(not torch.equal(before_d[k], v) for k, v in snapshot(disc).items())
    assert isinstance(model.adapter, torch.nn.Identity)


def test_teacher_with_image_gan_term_trains_generator_and_image_discriminator(
    tmp_path, random_vgg, random_dictionary, batch, monkeypatch
):
    model = build('Teacher', tmp_path, random_vgg, random_dictionary, train_file='train_teacher_gan_vggface2.yml')
    assert type(model).__name__ == 'FaceSRGANModel'
    net_g, disc = model.get_bare_model(model.net_g), model.get_bare_model(model.net_d)
    seen = []
    disc_forward = disc.forward
    monkeypatch.setattr(disc, 'forward', lambda x: seen.append(x) or disc_forward(x))
    before_g, before_d = snapshot(net_g), snapshot(disc)
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert set(model.log_dict) == GAN_KEYS
        assert all(torch.isfinite(torch.tensor(v)) for v in model.log_dict.values())
    # D scores images: SR as fake (generator step, then detached), GT as real.
    assert all(x.shape == (2, 3, SIZE, SIZE) for x in seen)
    assert any(torch.equal(x, model.gt) for x in seen)
    for net, before in ((net_g, before_g), (disc, before_d)):
        for name, p in net.named_parameters():
            if p.requires_grad:
                assert p.grad is not None and p.grad.abs().sum() > 0, f'{name} got no gradient'
        after = snapshot(net)
        assert any(not torch.equal(before[n], after[n]) for n, p in net.named_parameters() if p.requires_grad)
    frozen = [n for n, p in net_g.named_parameters() if not p.requires_grad]
    assert frozen and all(torch.equal(before_g[n], snapshot(net_g)[n]) for n in frozen)
    model.save(0, 2)
    models = tmp_path / 'experiments' / 'train_teacher_gan_vggface2' / 'models'
    assert {p.name for p in models.iterdir()} == {'net_g_2.pth', 'net_d_2.pth'}


def test_adversarial_model_without_gan_options_is_refused(tmp_path, random_vgg, random_dictionary):
    def drop_gan(opt):
        del opt['train']['gan_opt']

    with pytest.raises(ValueError, match='`train:gan_opt`.*model_type: FaceSRModel'):
        build('Teacher', tmp_path, random_vgg, random_dictionary, train_file='train_teacher_gan_vggface2.yml',
              edit=drop_gan)  # fmt: skip


def test_distillation_without_its_adversarial_weight_is_the_student_without_kd(
    tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch
):
    # The two recipes differ only by the adversarial term: at weight 0 the student must take the same steps.
    def no_adv(opt):
        opt['train']['gan_opt']['loss_weight'] = 0

    distill = build('Student', tmp_path / 'kd', random_vgg, random_dictionary, teacher_checkpoint, edit=no_adv)
    plain = build('Student w/o KD', tmp_path / 'plain', random_vgg, random_dictionary)
    for it in (1, 2):
        for model in (distill, plain):
            model.feed_data(batch)
            model.optimize_parameters(it)
    assert distill.log_dict['l_g_pix'] == pytest.approx(plain.log_dict['l_pix'], rel=1e-6)
    assert distill.log_dict['l_g_gan'] == 0
    after_kd, after_plain = snapshot(distill.net_g), snapshot(plain.net_g)
    assert all(torch.allclose(after_kd[k], after_plain[k], atol=1e-6) for k in after_plain)


def test_teacher_gets_the_batch_boxes_and_student_only_the_image(
    tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch, monkeypatch
):
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_checkpoint)
    seen = {}
    teacher_forward, student_forward = model.net_t.forward, model.get_bare_model(model.net_g).forward

    def spy_teacher(lq, boxes, **kw):
        seen['teacher'] = boxes
        return teacher_forward(lq, boxes, **kw)

    def spy_student(*args, **kw):
        seen['student'] = args
        return student_forward(*args, **kw)

    monkeypatch.setattr(model.net_t, 'forward', spy_teacher)
    monkeypatch.setattr(model.get_bare_model(model.net_g), 'forward', spy_student)
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert torch.equal(seen['teacher'], batch['boxes'])
    assert len(seen['student']) == 1 and seen['student'][0].shape == batch['lq'].shape


def test_compact_student_gets_a_saved_adapter(tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch):
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_checkpoint, num_feat=4)
    assert isinstance(model.adapter, torch.nn.Conv2d)
    assert (model.adapter.in_channels, model.adapter.out_channels) == (4, SMOKE['num_feat'])
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert model.adapter.weight.grad is not None
    model.save(0, 1)
    ckpt = torch.load(tmp_path / 'experiments' / model.opt['name'] / 'models' / 'net_g_1.pth', weights_only=True)
    assert set(ckpt) == {'params', 'params_ema', 'adapter', 'arch', 'scale'}
    assert ckpt['arch']['type'] == 'DFDNetStudent' and ckpt['arch']['num_feat'] == 4 and ckpt['scale'] == 8
    assert torch.equal(ckpt['adapter']['weight'], model.adapter.weight.detach())


def test_save_load_round_trip_gives_identical_outputs(tmp_path, random_vgg, random_dictionary, batch):
    model = build('Teacher', tmp_path, random_vgg, random_dictionary)
    model.feed_data(batch)
    model.optimize_parameters(1)
    model.save(0, 1)
    model.test()
    expected = model.output
    ckpt = torch.load(tmp_path / 'experiments' / model.opt['name'] / 'models' / 'net_g_1.pth', weights_only=True)
    arch = dict(ckpt['arch'])
    net = ARCH_REGISTRY.get(arch.pop('type'))(**{**arch, 'dict_path': None, 'vgg_pretrained': False})
    net.load_state_dict(ckpt['params_ema'])
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net(batch['lq'], batch['boxes']), expected, atol=1e-6)


def test_distillation_without_teacher_or_gan_is_refused(tmp_path, random_vgg, random_dictionary, teacher_checkpoint):
    with pytest.raises(ValueError, match='pretrain_network_t'):
        build('Student', tmp_path, random_vgg, random_dictionary, teacher_checkpoint=None)


def test_ema_network_matches_net_g_with_decay_zero(tmp_path, random_vgg, random_dictionary, batch):
    # Spectral-norm networks: the EMA copy must carry net_g's power-iteration buffers, or it computes other
    # weights in eval mode.
    model = build('Student w/o KD', tmp_path, random_vgg, random_dictionary)
    model.feed_data(batch)
    model.optimize_parameters(1)
    model.model_ema(decay=0)
    net_g = model.get_bare_model(model.net_g)
    for name, buf in model.net_g_ema.named_buffers():
        assert torch.equal(buf, dict(net_g.named_buffers())[name]), name
    net_g.eval()
    with torch.no_grad():
        assert torch.allclose(model.net_g_ema(batch['lq']), net_g(batch['lq']), atol=1e-6)


def test_distillation_encodes_each_batch_once_when_encoders_match(
    tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch, monkeypatch
):
    model = build('Student', tmp_path, random_vgg, random_dictionary, teacher_checkpoint)
    assert model.share_encoder  # teacher and student were built from the same VGG19 file
    calls = []
    for net in (model.net_t, model.get_bare_model(model.net_g)):
        original = net.encoder.forward
        monkeypatch.setattr(net.encoder, 'forward', lambda x, original=original: calls.append(1) or original(x))
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert len(calls) == 1
    # The shared pass gives the teacher and the student exactly what their own passes would.
    with torch.no_grad():
        _, feat_t = model.net_t(batch['lq'], batch['boxes'], return_feat=True)
        feats = model.net_t.encode(batch['lq'])
        assert torch.equal(model.net_t(batch['lq'], batch['boxes'], return_feat=True, feats=feats)[1], feat_t)


# bf16 on the recipes whose steps differ (image model, distillation with its teacher and D, per-step SRFBN
# losses); fp16 with its gradient scaler on the distillation, whose step has two optimisers.
AMP_CASES = [('Teacher', 'bf16'), ('Student', 'bf16'), ('SRFBN', 'bf16'), ('Student', 'fp16')]


@pytest.mark.parametrize('method, amp', AMP_CASES)
def test_mixed_precision_two_steps_give_exact_loss_keys_finite_fp32_losses(
    method, amp, tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch
):
    def edit(opt):
        opt['train']['amp'] = amp

    model = build(method, tmp_path, random_vgg, random_dictionary, teacher_checkpoint, edit=edit)
    assert model.amp_dtype == {'bf16': torch.bfloat16, 'fp16': torch.float16}[amp]
    assert model.scaler.is_enabled() == (amp == 'fp16')
    before = snapshot(model.get_bare_model(model.net_g))
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert set(model.log_dict) == EXPECTED_KEYS[method]
        assert all(torch.isfinite(torch.as_tensor(v)) for v in model.log_dict.values()), model.log_dict
    assert model.output.dtype == torch.float32
    after = snapshot(model.get_bare_model(model.net_g))
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())


def test_fp16_scaler_state_round_trips_through_save_and_resume(
    tmp_path, random_vgg, random_dictionary, teacher_checkpoint, batch
):
    def edit(opt):
        opt['train']['amp'] = 'fp16'

    model = build('Student w/o KD', tmp_path, random_vgg, random_dictionary, teacher_checkpoint, edit=edit)
    model.feed_data(batch)
    model.optimize_parameters(1)
    model.scaler.update(new_scale=1024.0)  # a state that differs from a new scaler's
    model.save_training_state(0, 1)
    state = torch.load(tmp_path / 'experiments' / model.opt['name'] / 'training_states' / '1.state', weights_only=False)
    assert state['scaler']['scale'] == 1024.0

    resumed = build('Student w/o KD', tmp_path, random_vgg, random_dictionary, teacher_checkpoint, edit=edit)
    assert resumed.scaler.get_scale() == 65536.0
    resumed.resume_training(state)
    assert resumed.scaler.get_scale() == 1024.0


def test_unknown_amp_value_is_refused_before_work():
    from facesr_kd.models.face_sr_model import FaceSRModel

    with pytest.raises(ValueError, match='`train.amp`'):
        FaceSRModel.check_train_options({'train': {'amp': 'fp8'}})
