"""Once facesr_kd is imported (or hooked in), BasicSR's ``parse_options`` refuses no option file stock code runs.

The option files here are modelled on BasicSR's stock ones (Real-ESRGAN / Real-ESRNet, EDVR, the recurrent
video GAN) and on GFPGAN's ``train_gfpgan_v1.yml``, reduced to the keys that matter; they are written by the
tests. Each goes through BasicSR's own ``basicsr.utils.options.parse_options`` with ``sys.argv`` set, as
``python -m basicsr.train -opt <file>`` would run it.
"""

import sys

import facesr_kd  # noqa: F401  (hooks the option check into parse_options)
from facesr_kd.utils.options import OptionError, lookup, uses_facesr_kd

import pytest
from basicsr.utils import options as basicsr_options
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY
from torch import nn
from torch.utils.data import Dataset

GENERAL = """
name: {name}
model_type: {model_type}
scale: 4
num_gpu: 0
manual_seed: 0
"""
# Real-ESRGAN x4plus: a model, a dataset and a discriminator registered with BasicSR's `_basicsr` suffix,
# degradation settings at the top level.
REALESRGAN = """
l1_gt_usm: true
percep_gt_usm: true
gan_gt_usm: false
resize_prob: [0.2, 0.7, 0.1]
gaussian_noise_prob: 0.5
second_blur_prob: 0.8
jpeg_range2: [30, 95]
gt_size: 256
queue_size: 180
datasets:
  train:
    name: DF2K
    type: RealESRGANDataset
    dataroot_gt: {root}/gt
    meta_info: {root}/meta_info.txt
    io_backend: {{type: disk}}
    blur_kernel_size: 21
    kernel_list: ['iso', 'aniso']
    kernel_prob: [0.5, 0.5]
    sinc_prob: 0.1
    betag_range2: [0.5, 4]
    final_sinc_prob: 0.8
    gt_size: 256
    use_hflip: true
    use_rot: false
    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
network_g: {{type: RRDBNet, num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_block: 1, num_grow_ch: 4}}
network_d: {{type: UNetDiscriminatorSN, num_in_ch: 3, num_feat: 8, skip_connection: true}}
path: {{pretrain_network_g: ~, param_key_g: params_ema, strict_load_g: true, resume_state: ~}}
train:
  ema_decay: 0.999
  optim_g: {{type: Adam, lr: !!float 1e-4, weight_decay: 0, betas: [0.9, 0.99]}}
  optim_d: {{type: Adam, lr: !!float 1e-4, weight_decay: 0, betas: [0.9, 0.99]}}
  scheduler: {{type: MultiStepLR, milestones: [400000], gamma: 0.5}}
  total_iter: 400000
  warmup_iter: -1
  pixel_opt: {{type: L1Loss, loss_weight: 1.0, reduction: mean}}
  gan_opt: {{type: GANLoss, gan_type: vanilla, real_label_val: 1.0, fake_label_val: 0.0, loss_weight: !!float 1e-1}}
  net_d_iters: 1
  net_d_init_iters: 0
logger: {{print_freq: 100, save_checkpoint_freq: !!float 5e3, use_tb_logger: true, wandb: {{project: ~}}}}
dist_params: {{backend: nccl, port: 29500}}
"""
# Real-ESRNet: the same, with `gt_usm` at the top level.
REALESRNET = REALESRGAN.replace('l1_gt_usm: true', 'gt_usm: true')
# EDVR-M / the recurrent video GAN: a REDS dataset with `dataroot_flow`, EDVR's own train keys.
VIDEO = """
datasets:
  train:
    name: REDS
    type: REDSDataset
    dataroot_gt: {root}/gt
    dataroot_lq: {root}/lq
    dataroot_flow: ~
    meta_info_file: {root}/meta_info.txt
    val_partition: REDS4
    io_backend: {{type: disk}}
    num_frame: 5
    gt_size: 256
    interval_list: [1]
    random_reverse: false
    use_hflip: true
    use_rot: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
network_g: {{type: EDVR, num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_frame: 5, deformable_groups: 1,
  num_extract_block: 1, num_reconstruct_block: 1, center_frame_idx: ~, with_tsa: false}}
path: {{pretrain_network_g: ~, strict_load_g: true, resume_state: ~}}
train:
  ema_decay: 0.999
  optim_g: {{type: Adam, lr: !!float 4e-4, weight_decay: 0, betas: [0.9, 0.99]}}
  scheduler: {{type: CosineAnnealingRestartLR, periods: [50000], restart_weights: [1], eta_min: !!float 1e-7}}
  total_iter: 50000
  warmup_iter: -1
  dcn_lr_mul: 1
  pixel_opt: {{type: CharbonnierLoss, loss_weight: 1.0, reduction: sum}}
logger: {{print_freq: 100, save_checkpoint_freq: !!float 5e3, use_tb_logger: true}}
"""
# GFPGAN v1: a face dataset with `out_size` and `eye_enlarge_ratio`, a network with `out_size`, and extra
# networks and top-level keys stock BasicSR does not know.
GFPGAN = """
datasets:
  train:
    name: FFHQ
    type: FFHQStyleDegradationDataset
    dataroot_gt: {root}/gt
    io_backend: {{type: disk}}
    use_hflip: true
    mean: [0.5, 0.5, 0.5]
    std: [0.5, 0.5, 0.5]
    out_size: 512
    blur_kernel_size: 41
    crop_components: true
    component_path: {root}/landmarks.pth
    eye_enlarge_ratio: 1.4
    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 3
network_g: {{type: GFPGANStyleNet, out_size: 512, num_style_feat: 512, channel_multiplier: 1,
  decoder_load_path: {root}/stylegan2.pth, fix_decoder: true, narrow: 1}}
network_d_left_eye: {{type: FacialComponentStyleDiscriminator, out_size: 512}}
network_identity: {{type: ResNetArcFaceStyle, block: IRBlock, layers: [2, 2, 2, 2], use_se: false}}
path: {{pretrain_network_g: ~, pretrain_network_identity: {root}/arcface.pth, resume_state: ~}}
train:
  optim_g: {{type: Adam, lr: !!float 2e-3}}
  optim_component: {{type: Adam, lr: !!float 2e-3, betas: [0.9, 0.99]}}
  scheduler: {{type: MultiStepLR, milestones: [600000, 700000], gamma: 0.5}}
  total_iter: 800000
  pixel_opt: {{type: L1Loss, loss_weight: !!float 1e-1, reduction: mean}}
  gan_component_opt: {{type: GANLoss, gan_type: vanilla, loss_weight: !!float 1}}
  comp_style_weight: 200
  identity_weight: 10
  r1_reg_weight: 10
  net_d_reg_every: 16
logger: {{print_freq: 100, save_checkpoint_freq: !!float 5e3, use_tb_logger: true}}
"""


class FFHQStyleDegradationDataset(Dataset):
    def __init__(self, opt):
        self.opt = opt


class GFPGANStyleNet(nn.Module):
    def __init__(self, out_size, num_style_feat=512, channel_multiplier=1, decoder_load_path=None, narrow=1, **kw):
        super().__init__()


class FacialComponentStyleDiscriminator(nn.Module):
    def __init__(self, out_size=512):
        super().__init__()


class ResNetArcFaceStyle(nn.Module):
    def __init__(self, block, layers, use_se=True):
        super().__init__()


class GFPGANStyleModel:
    def __init__(self, opt):
        self.opt = opt


class RealESRGANStyleModel:
    def __init__(self, opt):
        self.opt = opt


@pytest.fixture(scope='module', autouse=True)
def third_party_registered():
    """Register what GFPGAN (and, on a BasicSR without them, the `_basicsr` Real-ESRGAN classes) would."""
    added = [
        (DATASET_REGISTRY, 'FFHQStyleDegradationDataset', FFHQStyleDegradationDataset),
        (ARCH_REGISTRY, 'GFPGANStyleNet', GFPGANStyleNet),
        (ARCH_REGISTRY, 'FacialComponentStyleDiscriminator', FacialComponentStyleDiscriminator),
        (ARCH_REGISTRY, 'ResNetArcFaceStyle', ResNetArcFaceStyle),
        (MODEL_REGISTRY, 'GFPGANStyleModel', GFPGANStyleModel),
    ]
    for registry, name in ((MODEL_REGISTRY, 'RealESRGANModel'), (MODEL_REGISTRY, 'RealESRNetModel')):
        if f'{name}_basicsr' not in registry:
            added.append((registry, f'{name}_basicsr', RealESRGANStyleModel))
    for registry, name, obj in added:
        registry._obj_map[name] = obj
    yield
    for registry, name, _ in added:
        registry._obj_map.pop(name)


@pytest.fixture
def data_root(tmp_path):
    for folder in ('gt', 'lq'):
        (tmp_path / folder).mkdir()
    for file in ('meta_info.txt', 'landmarks.pth', 'stylegan2.pth', 'arcface.pth'):
        (tmp_path / file).write_text('')
    return tmp_path


def write(tmp_path, name, model_type, body, **fields):
    path = tmp_path / f'{name}.yml'
    path.write_text(GENERAL.format(name=name, model_type=model_type) + body.format(root=tmp_path, **fields))
    return path


def parse(path, monkeypatch, *extra):
    """BasicSR's own parse_options on ``path``, as ``python -m basicsr.train -opt path`` calls it."""
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', str(path), *extra])
    opt, _ = basicsr_options.parse_options(str(path.parent), is_train=True)
    return opt


def test_parse_options_is_hooked():
    assert getattr(basicsr_options.parse_options, 'checks_options', False)


def test_names_resolve_with_basicsrs_suffix_fallback():
    model = lookup(MODEL_REGISTRY, 'RealESRGANModel')
    assert model is not None and model is MODEL_REGISTRY._obj_map['RealESRGANModel_basicsr']
    assert lookup(ARCH_REGISTRY, 'RCAN') is ARCH_REGISTRY.get('RCAN')
    assert lookup(ARCH_REGISTRY, 'NoSuchArch') is None and lookup(ARCH_REGISTRY, None) is None


@pytest.mark.parametrize(
    'name, model_type, body',
    [
        ('realesrgan_x4plus', 'RealESRGANModel', REALESRGAN),
        ('realesrnet_x4plus', 'RealESRNetModel', REALESRNET),
        ('edvr_m', 'EDVRModel', VIDEO),
        ('video_recurrent_gan', 'VideoRecurrentGANModel', VIDEO.replace('REDSDataset', 'REDSRecurrentDataset')),
        ('gfpgan_v1', 'GFPGANStyleModel', GFPGAN),
    ],
)
def test_stock_style_file_is_not_refused(name, model_type, body, tmp_path, data_root, monkeypatch):
    opt = parse(write(tmp_path, name, model_type, body), monkeypatch)
    assert opt['name'] == name and not uses_facesr_kd(opt)


def test_stock_file_with_unknown_and_near_miss_top_level_keys_is_not_refused(tmp_path, data_root, monkeypatch):
    # `gt_usm` is close to `l1_gt_usm`, `manual_seeds` to `manual_seed`: stock BasicSR ignores both.
    body = REALESRNET + 'my_extension_flag: 1\nmanual_seeds: [0, 1]\nvall: {{val_freq: 10}}\n'
    opt = parse(write(tmp_path, 'realesrnet_extra', 'RealESRNetModel', body), monkeypatch)
    assert opt['my_extension_flag'] == 1 and opt['gt_usm'] is True


def test_our_model_with_stock_sections_accepts_what_stock_code_accepts(tmp_path, data_root, monkeypatch):
    # Our model, with a suffix-registered stock discriminator and stock datasets carrying the keys that stock
    # datasets read (flow, GFPGAN face crops): checked, and not refused.
    body = """
datasets:
  train:
    name: pairs
    type: PairedImageDataset
    dataroot_gt: {root}/gt
    dataroot_lq: {root}/lq
    dataroot_flow: ~
    io_backend: {{type: disk}}
    gt_size: 64
    gt_usm: true
    out_size: 512
    eye_enlarge_ratio: 1.4
    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
  val:
    name: faces
    type: FFHQStyleDegradationDataset
    dataroot_gt: {root}/gt
    out_size: 512
    eye_enlarge_ratio: 1.4
    component_path: {root}/landmarks.pth
    io_backend: {{type: disk}}
network_g: {{type: RCAN, num_feat: 8, num_group: 1, num_block: 1, squeeze_factor: 4, upscale: 4}}
network_d: {{type: UNetDiscriminatorSN, num_in_ch: 3, num_feat: 8, skip_connection: true}}
path: {{pretrain_network_g: ~, resume_state: ~}}
train:
  optim_g: {{type: Adam, lr: !!float 1e-4, betas: [0.9, 0.99]}}
  scheduler: {{type: MultiStepLR, milestones: [1000], gamma: 0.5}}
  total_iter: 10
  pixel_opt: {{type: L1Loss, loss_weight: 1.0}}
val:
  val_freq: 5
  metrics:
    psnr: {{type: calculate_psnr, crop_border: 0}}
logger: {{print_freq: 1, save_checkpoint_freq: 5, use_tb_logger: false}}
"""
    opt = parse(write(tmp_path, 'ours_mixed', 'FaceSRModel', body), monkeypatch)
    assert uses_facesr_kd(opt) and opt['datasets']['train']['eye_enlarge_ratio'] == 1.4


def test_a_misspelt_key_in_our_file_is_still_refused(tmp_path, data_root, monkeypatch):
    body = """
datasets:
  train:
    name: pairs
    type: PairedImageDataset
    dataroot_gt: {root}/gt
    dataroot_lq: {root}/lq
    io_backend: {{type: disk}}
    batch_size_per_gpu: 2
network_g: {{type: RCAN, num_fet: 8, upscale: 4}}
path: {{}}
train:
  optim_g: {{type: Adam, lr: !!float 1e-4}}
  total_iter: 10
"""
    path = write(tmp_path, 'ours_misspelt', 'FaceSRModel', body)
    with pytest.raises(OptionError, match=r'ours_misspelt.yml: `network_g.num_fet`: .*did you mean `num_feat`'):
        parse(path, monkeypatch)


def test_a_stock_model_on_one_of_our_networks_is_checked(tmp_path, data_root, monkeypatch):
    body = """
datasets:
  train:
    name: pairs
    type: PairedImageDataset
    dataroot_gt: {root}/gt
    dataroot_lq: {root}/lq
    io_backend: {{type: disk}}
    batch_size_per_gpu: 2
network_g: {{type: LiteFaceStudent, out_sise: 256}}
path: {{}}
"""
    path = write(tmp_path, 'stock_model_our_net', 'SRModel', body)
    with pytest.raises(OptionError, match=r'`network_g.out_sise`: .*did you mean `out_size`'):
        parse(path, monkeypatch)


def test_stock_files_parse_as_safe_ordered_yaml(tmp_path, data_root, monkeypatch):
    opt = parse(write(tmp_path, 'realesrgan_order', 'RealESRGANModel', REALESRGAN), monkeypatch)
    assert type(opt).__name__ == 'OrderedDict' and list(opt)[:3] == ['name', 'model_type', 'scale']
    assert list(opt['datasets']['train'])[:3] == ['name', 'type', 'dataroot_gt']
