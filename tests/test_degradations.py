"""Realistic LR faces for training (resizing kernels, blur, noise, JPEG), the JPEG benchmark LR, and the zoo recipes."""

import random

from facesr_kd.data.degradations import KERNELS, RealisticDownscale, jpeg, resize_down
from facesr_kd.data.face_sr_dataset import FaceSRDataset, downscale_like_prepare
from facesr_kd.recipes import ZOO_CONTROLS, copy_options, load_yaml, options_dir
from facesr_kd.recipes import ZOO_RECIPES as RECIPES

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import REPO_ROOT, ffhq_ids, run_python

ZOO_RECIPES = tuple(f for stages in RECIPES.values() for f in stages)


@pytest.fixture(scope='module')
def face():
    """A smooth synthetic 64x64 'face' (BGR float32): gradients and a disc, so every resize differs."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float32) / 63
    img = np.stack([x, y, 0.5 * (x + y)], axis=-1)
    img[((x - 0.5) ** 2 + (y - 0.5) ** 2) < 0.05] = [0.9, 0.2, 0.4]
    return img.astype(np.float32)


def test_clean_only_is_the_prepare_scripts_bicubic(face):
    degrade = RealisticDownscale({'clean_prob': 1.0})
    np.testing.assert_array_equal(degrade(face, 8), downscale_like_prepare(face, 8))


def test_every_chain_gives_an_8bit_lr_face_of_the_right_size(face):
    degrade = RealisticDownscale({'clean_prob': 0.0, 'blur_prob': 1.0, 'noise_prob': 1.0, 'jpeg_prob': 1.0})
    random.seed(0)
    np.random.seed(0)
    clean = downscale_like_prepare(face, 8)
    for _ in range(8):
        lr = degrade(face, 8)
        assert lr.shape == (8, 8, 3) and lr.dtype == np.float32
        assert 0 <= lr.min() and lr.max() <= 1
        np.testing.assert_allclose(lr * 255, np.rint(lr * 255), atol=1e-4)
        assert np.abs(lr - clean).mean() > 1e-3  # blur + noise + JPEG changed it


def test_the_kernels_differ_from_each_other(face):
    outs = {k: resize_down(face, 16, k) for k in KERNELS}
    assert all(o.shape == (16, 16, 3) for o in outs.values())
    assert np.abs(outs['area'] - outs['bilinear']).max() > 1e-3
    assert np.abs(outs['matlab'] - outs['bicubic']).max() > 1e-3


def test_draws_follow_the_seed(face):
    degrade = RealisticDownscale()
    random.seed(3)
    np.random.seed(3)
    first = [degrade(face, 8) for _ in range(4)]
    random.seed(3)
    np.random.seed(3)
    second = [degrade(face, 8) for _ in range(4)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    'opt, message',
    [
        ({'blur': 1}, 'unknown degradation options'),
        ({'jpeg_prob': 1.5}, 'jpeg_prob must be a probability'),
        ({'noise_sigma': 'abc'}, 'noise_sigma must be a [min, max] pair'),
        ({'jpeg_quality': [90, 50]}, 'jpeg_quality must satisfy'),
        ({'kernels': ['lanczos']}, 'kernels must be a non-empty list'),
    ],
)
def test_bad_degradation_options_are_named(opt, message):
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
        RealisticDownscale(opt)


def _dataset(folder, phase, **opt):
    return FaceSRDataset(
        {'dataroot_gt': str(folder), 'phase': phase, 'scale': 8, 'gt_size': 256, 'box_source': 'template', **opt}
    )


def test_dataset_degrades_in_training_only_and_jpeg_benchmark_is_fixed(shared_data, tmp_path):
    for p in ffhq_ids(0, 3):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    clean = _dataset(tmp_path, 'val')
    random.seed(0)
    np.random.seed(0)
    train = _dataset(tmp_path, 'train', degradation={'clean_prob': 0.0, 'jpeg_prob': 1.0})
    val = _dataset(tmp_path, 'val', degradation=True)
    bench = _dataset(tmp_path, 'val', lq_jpeg_quality=75)
    for i in range(3):
        ref = clean[i]['lq']
        assert train[i]['lq'].shape == ref.shape == (3, 32, 32)
        assert not torch.equal(train[i]['lq'], ref)
        assert torch.equal(val[i]['lq'], ref)  # degradation is ignored outside the train phase
        gt = cv2.imread(str(tmp_path / f'{i:05d}.jpg')).astype(np.float32) / 255
        want = jpeg(downscale_like_prepare(gt, 8), 75)[:, :, ::-1].transpose(2, 0, 1)
        np.testing.assert_allclose(bench[i]['lq'].numpy(), want, atol=1e-6)


def test_degradation_with_lr_on_disk_or_bad_quality_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((256, 256, 3), np.uint8))
    with pytest.raises(ValueError, match='make the LR faces on the fly; drop dataroot_lq'):
        _dataset(tmp_path, 'train', dataroot_lq=str(tmp_path), degradation=True)
    with pytest.raises(ValueError, match='lq_jpeg_quality must be an integer in 1..100'):
        _dataset(tmp_path, 'val', lq_jpeg_quality=0)
    with pytest.raises(ValueError, match='degradation must be true or a dict'):
        _dataset(tmp_path, 'train', degradation='heavy')


@pytest.mark.parametrize('recipe', ZOO_RECIPES)
def test_zoo_recipes_train_on_ffhq_train_and_synthetic_never_the_test_ids(recipe):
    opt = load_yaml(f'{options_dir()}/{recipe}')
    train, val = opt['datasets']['train'], opt['datasets']['val']
    assert opt['train']['amp'] == 'bf16' and opt['train']['scheduler']['type'] == 'CosineAnnealingRestartLR'
    assert opt['train']['scheduler']['periods'] == [opt['train']['total_iter']] and opt['train']['ema_decay'] > 0
    assert train['degradation'] is True and 'dataroot_lq' not in train
    listed = (REPO_ROOT / train['meta_info_file']).read_text().split()
    ffhq = [p for p in listed if p.startswith('ffhq256/')]
    assert len(ffhq) == 1000 and min(int(p[8:13]) for p in ffhq) == 100
    assert sum(p.startswith('synthetic256/') for p in listed) == 1100 and len(listed) == 2100
    test = (REPO_ROOT / val['meta_info_file']).read_text().split()
    assert test == [f'ffhq256/{i:05d}.jpg' for i in range(100)] and not set(test) & set(listed)
    assert opt['network_g']['type'] == 'LiteFaceStudent' and opt['network_g']['out_size'] == 256


@pytest.mark.parametrize('name', RECIPES)
def test_each_zoo_stage_fine_tunes_the_ema_weights_of_the_stage_before_with_the_same_network(name):
    opts = [load_yaml(f'{options_dir()}/{f}') for f in RECIPES[name]]
    assert len(opts) == 2
    assert opts[0]['path']['pretrain_network_g'] is None
    for before, after in zip(opts, opts[1:]):
        assert after['path']['pretrain_network_g'] == f'experiments/{before["name"]}/models/net_g_latest.pth'
        assert after['path']['param_key_g'] == 'params_ema' and after['network_g'] == before['network_g']
        assert after['datasets'] == before['datasets'] and after['name'] != before['name']


@pytest.mark.parametrize('control', ZOO_CONTROLS)
def test_zoo_clean_control_is_stage_one_with_only_the_lr_changed(control):
    """The control differs from lite-x8's first stage in its name and its clean LR alone, so the two measure what
    the realistic degradations cost on the clean benchmark."""
    ctrl, stage1 = (load_yaml(f'{options_dir()}/{f}') for f in (control, RECIPES['lite-x8'][0]))
    assert ctrl['datasets']['train'].pop('degradation') is False and stage1['datasets']['train'].pop('degradation')
    assert ctrl.pop('name') != stage1.pop('name')
    assert ctrl == stage1


@pytest.mark.slow
@pytest.mark.parametrize('recipe', ZOO_RECIPES)
def test_zoo_recipe_trains_two_steps_through_the_trainer(recipe, tmp_path, shared_data):
    """The shipped zoo option file, copied out of the package, run through facesr_kd.train with tiny widths on
    six real train faces (three FFHQ, three synthetic; their LR drawn by the degradation chain)."""
    copy_options(str(tmp_path / 'options'))
    aligned = shared_data / 'faces' / 'aligned'
    synth = sorted((aligned / 'synthetic256').iterdir())[:3]
    meta = tmp_path / 'options' / 'meta'
    (meta / 'zoo_train_ffhq_synthetic.txt').write_text(
        ''.join(f'ffhq256/{p.name}\n' for p in ffhq_ids(100, 103)) + ''.join(f'synthetic256/{p.name}\n' for p in synth)
    )
    (meta / 'ffhq_test100.txt').write_text('ffhq256/00000.jpg\nffhq256/00001.jpg\n')
    overrides = [
        f'datasets:train:dataroot_gt={aligned}',
        f'datasets:val:dataroot_gt={aligned}',
        'datasets:train:batch_size_per_gpu=2',
        'datasets:train:num_worker_per_gpu=0',
        'network_g:num_feat=8',
        'network_g:num_block=1',
        'network_g:feat_channels=8',
        'train:total_iter=2',
        'train:scheduler:periods=[2]',
        'train:warmup_iter=-1',
        'val:val_freq=2',
        'logger:print_freq=1',
        'logger:save_checkpoint_freq=2',
        'num_gpu=0',
        'path:pretrain_network_g=~',  # a fine-tuning stage starts from random weights here
    ]
    proc = run_python(['-m', 'facesr_kd.train', '-opt', f'options/{recipe}', '--force_yml', *overrides], cwd=tmp_path)
    name = recipe.removesuffix('.yml')
    assert 'l_pix' in proc.stdout and 'psnr' in proc.stdout.lower()
    ckpt = torch.load(tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth', weights_only=True)
    assert ckpt['arch']['type'] == 'LiteFaceStudent' and 'params_ema' in ckpt


def test_training_log_gives_iterations_wall_time_and_learning_curve(tmp_path):
    from facesr_kd.zoo_publish import read_training_log

    log = tmp_path / 'train_x.log'
    log.write_text(
        '2026-12-07 11:00:00,000 INFO: \n    batch_size_per_gpu: 8\n'
        '2026-12-07 11:00:10,000 INFO: Start training from epoch: 0, iter: 0\n'
        '2026-12-07 11:01:00,000 INFO: [zoo..][epoch:  0, iter:     500, lr:(3e-4,)] l_pix: 4e-2\n'
        '2026-12-07 11:01:05,000 INFO: Validation FFHQ_test100\n\t # psnr: 24.5000\tBest: 24.5 @ 500 iter\n'
        '\t # ssim: 0.6900\tBest: 0.69 @ 500 iter\n'
        '2026-12-07 11:02:00,000 INFO: [zoo..][epoch:  1, iter:   1,000, lr:(2e-4,)] l_pix: 3e-2\n'
        '2026-12-07 11:02:10,000 INFO: Validation FFHQ_test100\n\t # psnr: 25.1000\tBest: 25.1 @ 1000 iter\n'
        '\t # ssim: 0.7100\tBest: 0.71 @ 1000 iter\n'
        '2026-12-07 11:02:20,000 INFO: End of training.\n'
    )
    record = read_training_log(log)
    assert record['wall_s'] == 130 and record['batch_size'] == 8
    assert record['curve'] == [{'iter': 500, 'psnr': 24.5, 'ssim': 0.69}, {'iter': 1000, 'psnr': 25.1, 'ssim': 0.71}]
    assert record['iterations'] == 1000 and abs(record['samples_per_s'] - 8000 / 130) < 1e-9


def test_final_validation_counted_once_and_stages_make_one_record(tmp_path):
    from facesr_kd.zoo_publish import combine_stages

    def log_text(last_iter):
        return (
            '2026-12-07 11:00:00,000 INFO: \n    batch_size_per_gpu: 8\n'
            '2026-12-07 11:00:10,000 INFO: Start training from epoch: 0, iter: 0\n'
            f'2026-12-07 11:01:00,000 INFO: [zoo..][epoch:  0, iter:{last_iter:8,d}, lr:(3e-4,)] l_pix: 4e-2\n'
            '2026-12-07 11:01:05,000 INFO: Validation FFHQ_test100\n\t # psnr: 24.5000\tBest: 24.5 @ 500 iter\n'
            '\t # ssim: 0.6900\tBest: 0.69 @ 500 iter\n'
            '2026-12-07 11:01:06,000 INFO: End of training. Time consumed: 0:01:06\n'
            '2026-12-07 11:01:06,000 INFO: Save the latest model.\n'
            '2026-12-07 11:01:10,000 INFO: Validation FFHQ_test100\n\t # psnr: 24.5000\tBest: 24.5 @ 500 iter\n'
            '\t # ssim: 0.6900\tBest: 0.69 @ 500 iter\n'
        )

    from facesr_kd.zoo_publish import read_training_log

    records = []
    for i, last in enumerate((500, 1000)):
        log = tmp_path / f'train_{i}.log'
        log.write_text(log_text(last))
        records.append({**read_training_log(log), 'option_file': f'o{i}.yml', 'command': f'train o{i}'})
    assert records[0]['curve'] == [{'iter': 500, 'psnr': 24.5, 'ssim': 0.69}]
    both = combine_stages(records)
    assert [p['iter'] for p in both['curve']] == [500, 1500] and both['iterations'] == 1500
    assert both['wall_s'] == 120 and both['samples_per_s'] == 1500 * 8 / 120
    assert both['command'] == 'train o0 && train o1' and both['option_file'] == 'o1.yml'
    assert [s['option_file'] for s in both['stages']] == ['o0.yml', 'o1.yml']
