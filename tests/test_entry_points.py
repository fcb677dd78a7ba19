"""The package as a BasicSR extension: compat fixes, registration, entry points, resume, option checks, DDP."""

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import facesr_kd
from facesr_kd import hook

import numpy as np
import pytest
import torch
import yaml

from .conftest import run_python

OUR_NAMES = {
    'arch': {'DFDNetTeacher', 'DFDNetStudent', 'LiteFaceStudent', 'FeatureMapDiscriminator', 'SRFBN', 'FaceRCAN'},
    'dataset': {'FaceSRDataset'},
    'loss': {'VGG19PerceptualLoss'},
    'model': {'FaceSRModel', 'FaceSRGANModel', 'DictDistillModel'},
    'metric': {'calculate_lpips'},
}


def tiny_opt(paired_faces, name, total_iter=4, save_freq=2, **overrides):
    """A tiny RCAN x8 run (BasicSR's arch and paired dataset) through our FaceSRModel, on CPU."""
    opt = {
        'name': name,
        'model_type': 'FaceSRModel',
        'scale': 8,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'train': {
                'name': 'tiny_train',
                'type': 'PairedImageDataset',
                'dataroot_gt': paired_faces['train_hr'],
                'dataroot_lq': paired_faces['train_lr'],
                'io_backend': {'type': 'disk'},
                'gt_size': 64,
                'use_hflip': True,
                'use_rot': False,
                'num_worker_per_gpu': 0,
                'batch_size_per_gpu': 2,
                'dataset_enlarge_ratio': 1,
            },
            'val': {
                'name': 'tiny_val',
                'type': 'PairedImageDataset',
                'dataroot_gt': paired_faces['val_hr'],
                'dataroot_lq': paired_faces['val_lr'],
                'io_backend': {'type': 'disk'},
            },
        },
        'network_g': {
            'type': 'RCAN',
            'num_in_ch': 3,
            'num_out_ch': 3,
            'num_feat': 8,
            'num_group': 1,
            'num_block': 1,
            'squeeze_factor': 4,
            'upscale': 8,
        },
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.9,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
            'total_iter': total_iter,
            'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {
            'val_freq': save_freq,
            'save_img': False,
            'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}},
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': save_freq, 'use_tb_logger': False},
    }
    for key, value in overrides.items():
        opt[key] = value
    return opt


def write_opt(opt, folder):
    path = Path(folder) / f'{opt["name"]}.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def test_import_applies_compat_fixes():
    import torchvision.transforms.functional_tensor as ft

    assert callable(ft.rgb_to_grayscale)
    assert set(facesr_kd.compat.APPLIED) == {
        'torchvision_functional_tensor',
        'resume_on_cpu',
        'resume_keeps_ignored_networks',
        'perceptual_l2',
        'jpeg_int_quality',
        'module_run_outputs_in_cwd',
        'ddp_on_cpu',
        'safe_option_yaml',
    }
    facesr_kd.compat.apply()  # idempotent
    assert len(facesr_kd.compat.APPLIED) == 8


def test_registered_names_resolve_and_do_not_collide():
    from basicsr.utils import registry

    registries = {
        'arch': registry.ARCH_REGISTRY,
        'dataset': registry.DATASET_REGISTRY,
        'loss': registry.LOSS_REGISTRY,
        'model': registry.MODEL_REGISTRY,
        'metric': registry.METRIC_REGISTRY,
    }
    for kind, reg in registries.items():
        ours = {name for name, obj in reg if obj.__module__.startswith('facesr_kd.')}
        assert ours == OUR_NAMES[kind], kind
        for name in ours:
            assert reg.get(name).__module__.startswith('facesr_kd.')
            assert name.lower() not in {n.lower() for n, o in reg if o.__module__.startswith('basicsr.')}


def test_perceptual_loss_l2_criterion_is_fixed(monkeypatch):
    import torchvision
    from basicsr.archs import vgg_arch
    from basicsr.losses.basic_loss import PerceptualLoss

    # Random VGG weights, passed explicitly: the test checks the criterion, not the features.
    monkeypatch.setattr(vgg_arch.vgg, 'vgg19', lambda pretrained=False: torchvision.models.vgg19(weights=None))
    monkeypatch.setattr(vgg_arch, 'VGG_PRETRAIN_PATH', '/nonexistent')
    loss = PerceptualLoss({'conv1_2': 1.0}, criterion='l2', use_input_norm=False, range_norm=False)
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    feats = loss.vgg
    expected = torch.nn.functional.mse_loss(feats(x)['conv1_2'], feats(y)['conv1_2'].detach())
    assert torch.allclose(loss(x, y)[0], expected)


def test_jpeg_degradation_accepts_float_quality():
    from basicsr.data.degradations import random_add_jpg_compression

    out = random_add_jpg_compression(np.random.rand(16, 16, 3).astype(np.float32), quality_range=(30.5, 70.5))
    assert out.shape == (16, 16, 3)


@pytest.mark.parametrize('entry', ['facesr_kd_module', 'console_script', 'basicsr_module', 'basicsr_checkout'])
def test_tiny_training_through_entry_point(entry, paired_faces, tmp_path, startup_hook):
    opt_file = write_opt(tiny_opt(paired_faces, f'tiny_{entry}'), tmp_path)
    if entry == 'facesr_kd_module':
        args = ['-m', 'facesr_kd.train', '-opt', opt_file]
    elif entry == 'console_script':
        script = Path(sysconfig.get_paths()['scripts']) / 'facesr-kd-train'
        assert script.exists(), 'pip install the package to get the console scripts'
        args = [script, '-opt', opt_file]
    elif entry == 'basicsr_module':
        args = ['-m', 'basicsr.train', '-opt', opt_file]
    else:  # `python basicsr/train.py` from a BasicSR checkout: its root holds experiments/
        import basicsr

        checkout = tmp_path / 'BasicSR'
        (checkout / 'basicsr').mkdir(parents=True)
        shutil.copy(Path(basicsr.__file__).parent / 'train.py', checkout / 'basicsr' / 'train.py')
        args = [checkout / 'basicsr' / 'train.py', '-opt', opt_file]
    proc = run_python(args, cwd=tmp_path)
    root = tmp_path / 'BasicSR' if entry == 'basicsr_checkout' else tmp_path
    exp = root / 'experiments' / f'tiny_{entry}'
    assert (exp / 'models' / 'net_g_latest.pth').exists(), proc.stdout[-3000:]
    assert (exp / 'training_states' / '4.state').exists()
    assert '# psnr:' in proc.stdout
    ckpt = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)
    assert set(ckpt) == {'params', 'params_ema', 'arch', 'scale'} and ckpt['arch']['type'] == 'RCAN'


def test_startup_hook_imports_no_torch_at_interpreter_start(startup_hook, tmp_path):
    code = (
        'import sys; assert "torch" not in sys.modules and "facesr_kd" not in sys.modules; '
        'import basicsr; from basicsr.utils.registry import MODEL_REGISTRY; '
        'assert "facesr_kd" in sys.modules and "DictDistillModel" in MODEL_REGISTRY; print("hooked")'
    )
    assert 'hooked' in run_python(['-c', code], cwd=tmp_path).stdout


def test_hook_install_uninstall(tmp_path):
    pth = Path(hook.install(str(tmp_path)))
    assert pth.exists() and '_startup.py' in pth.read_text()
    assert hook.uninstall(str(tmp_path)) == str(pth) and not pth.exists()
    assert hook.uninstall(str(tmp_path)) is None


@pytest.mark.parametrize('entry', ['facesr_kd.test', 'basicsr.test'])
def test_test_entry_point_writes_results(entry, paired_faces, tmp_path, startup_hook):
    train_file = write_opt(tiny_opt(paired_faces, 'tiny_for_test', total_iter=2), tmp_path)
    run_python(['-m', 'facesr_kd.train', '-opt', train_file], cwd=tmp_path)
    opt = tiny_opt(paired_faces, 'tiny_test_run')
    opt['datasets'] = {'test_1': opt['datasets']['val']}
    opt['path'] = {
        'pretrain_network_g': str(tmp_path / 'experiments/tiny_for_test/models/net_g_latest.pth'),
        'param_key_g': 'params_ema',
        'strict_load_g': True,
    }
    opt['val']['save_img'] = True
    opt['val']['suffix'] = None
    for key in ('train', 'logger'):
        opt.pop(key)
    proc = run_python(['-m', entry, '-opt', write_opt(opt, tmp_path)], cwd=tmp_path)
    assert '# psnr:' in proc.stdout
    results = tmp_path / 'results' / 'tiny_test_run'
    assert len(list((results / 'visualization' / 'tiny_val').glob('*.png'))) == 2
    assert json.loads((results / 'metrics.json').read_text())['tiny_val']['metrics']['psnr'] > 5


def test_several_option_files_test_in_one_process_each_with_its_log_a_broken_one_reported(paired_faces, tmp_path):
    train_file = write_opt(tiny_opt(paired_faces, 'tiny_for_multi', total_iter=2), tmp_path)
    run_python(['-m', 'facesr_kd.train', '-opt', train_file], cwd=tmp_path)
    files = []
    for name in ('multi_a', 'multi_b', 'multi_broken'):
        opt = tiny_opt(paired_faces, name)
        opt['datasets'] = {'test_1': opt['datasets']['val']}
        weights = tmp_path / 'experiments/tiny_for_multi/models/net_g_latest.pth'
        opt['path'] = {'pretrain_network_g': str(weights if name != 'multi_broken' else tmp_path / 'missing.pth')}
        for key in ('train', 'logger'):
            opt.pop(key)
        files.append(write_opt(opt, tmp_path))
    files = [files[0], files[2], files[1]]  # the broken one in the middle: the last still runs
    proc = run_python(['-m', 'facesr_kd.test', *[a for f in files for a in ('-opt', f)]], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert 'facesr_kd.test: done 1/3' in proc.stdout and 'facesr_kd.test: done 3/3' in proc.stdout
    assert 'done 2/3' not in proc.stdout and '1 of 3 option files failed' in proc.stdout
    assert 'multi_broken.yml: ' in proc.stdout
    for name in ('multi_a', 'multi_b'):
        assert (tmp_path / 'results' / name / 'metrics.json').exists()
        (log,) = (tmp_path / 'results' / name).glob(f'test_{name}_*.log')
        text = log.read_text()
        assert f'name: {name}' in text and 'Testing tiny_val' in text
        assert 'multi_a' not in text if name == 'multi_b' else 'multi_b' not in text


def test_several_option_files_train_in_turn_in_one_process_as_in_their_own(paired_faces, tmp_path):
    files = [write_opt(tiny_opt(paired_faces, name, total_iter=2), tmp_path) for name in ('turn_a', 'turn_b')]
    proc = run_python(['-m', 'facesr_kd.train', '-opt', files[0], '-opt', files[1]], cwd=tmp_path)
    assert 'facesr_kd.train: done 1/2' in proc.stdout and 'facesr_kd.train: done 2/2' in proc.stdout
    alone = tmp_path / 'alone'
    alone.mkdir()
    run_python(
        ['-m', 'facesr_kd.train', '-opt', write_opt(tiny_opt(paired_faces, 'turn_b', total_iter=2), alone)], cwd=alone
    )
    weights = [
        torch.load(d / 'experiments/turn_b/models/net_g_latest.pth', weights_only=True) for d in (tmp_path, alone)
    ]
    assert all(torch.equal(weights[0]['params'][k], weights[1]['params'][k]) for k in weights[0]['params'])
    (log,) = (tmp_path / 'experiments' / 'turn_b').glob('train_turn_b_*.log')
    assert 'turn_a' not in log.read_text()
    broken = tiny_opt(paired_faces, 'turn_broken', total_iter=2)
    broken['network_g']['type'] = 'NoSuchArch'
    proc = run_python(
        ['-m', 'facesr_kd.train', '-opt', write_opt(broken, tmp_path), '-opt', files[0]], cwd=tmp_path, check=False
    )
    assert proc.returncode != 0 and '1 of 2 option files failed; 1 not started' in proc.stdout
    assert 'facesr_kd.train: done' not in proc.stdout


def test_kill_and_resume_continues_with_identical_optimizer_state(paired_faces, tmp_path):
    opt = tiny_opt(paired_faces, 'tiny_resume', total_iter=100000, save_freq=2)
    opt['val']['val_freq'] = 100000
    opt_file = write_opt(opt, tmp_path)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen(
        [sys.executable, '-m', 'facesr_kd.train', '-opt', str(opt_file)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    states = tmp_path / 'experiments' / 'tiny_resume' / 'training_states'
    deadline = time.time() + 300
    while not (states / '4.state').exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = sorted(int(p.stem) for p in states.glob('*.state'))
    assert saved and saved[-1] >= 4, 'training never reached a checkpoint'
    last = saved[-1]
    saved_state = facesr_kd.compat.load_training_state(states / f'{last}.state')

    # Resume in this process through the same path BasicSR's train_pipeline takes.
    from basicsr import train as basicsr_train
    from basicsr.models import build_model
    from basicsr.utils.options import parse_options

    argv, cwd = sys.argv, os.getcwd()
    try:
        os.chdir(tmp_path)
        sys.argv = ['train', '-opt', str(opt_file), '--auto_resume']
        ropt, _ = parse_options(str(tmp_path), is_train=True)
        resume_state = basicsr_train.load_resume_state(ropt)
        model = build_model(ropt)
        model.resume_training(resume_state)
    finally:
        os.chdir(cwd)
        sys.argv = argv
    assert resume_state['iter'] == last
    assert ropt['path']['pretrain_network_g'].endswith(f'net_g_{last}.pth')
    resumed, expected = model.optimizers[0].state_dict(), saved_state['optimizers'][0]
    assert resumed['param_groups'] == expected['param_groups']
    for k, v in expected['state'].items():
        for name, tensor in v.items():
            assert torch.equal(torch.as_tensor(resumed['state'][k][name]), torch.as_tensor(tensor))

    # And the CLI continues from the saved iteration to the end.
    proc = run_python(
        ['-m', 'facesr_kd.train', '-opt', opt_file, '--auto_resume', '--force_yml', f'train:total_iter={last + 2}'],
        cwd=tmp_path,
    )
    assert 'Resuming training from epoch: ' in proc.stdout and f'iter: {last}.' in proc.stdout
    assert f'iter:{last + 1:8,d},' in proc.stdout and f'iter:{1:8,d},' not in proc.stdout
    assert (states / f'{last + 2}.state').exists()


@pytest.mark.parametrize('case', ['unknown_type', 'missing_path', 'misspelt_key', 'float_as_string'])
def test_bad_option_file_fails_before_work_naming_key_and_file(case, paired_faces, tmp_path):
    opt = tiny_opt(paired_faces, f'bad_{case}')
    extra = []
    if case == 'float_as_string':
        # YAML 1.1 reads `1e-4` (no dot) as a string (`--force_yml` values are parsed as numbers here).
        opt['train']['optim_g']['lr'] = '1e-4'
        expected = ['train.optim_g.lr', "'1e-4' was read as a string", '!!float 1e-4']
    elif case == 'unknown_type':
        opt['network_g']['type'] = 'RCANN'
        expected = ['network_g.type', 'RCANN', 'did you mean `RCAN`']
    elif case == 'missing_path':
        opt['datasets']['train']['dataroot_gt'] = str(tmp_path / 'nowhere')
        expected = ['datasets.train.dataroot_gt', 'nowhere', 'does not exist']
    else:
        opt['train']['pixle_opt'] = opt['train'].pop('pixel_opt')
        opt['network_g']['num_fet'] = 8
        expected = ['network_g.num_fet', 'did you mean `num_feat`']
    opt_file = write_opt(opt, tmp_path)
    proc = run_python(['-m', 'facesr_kd.train', '-opt', opt_file, *extra], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert str(opt_file) in proc.stdout
    for text in expected:
        assert text in proc.stdout
    assert not (tmp_path / 'experiments').exists()


def test_ddp_two_cpu_processes_agree(paired_faces, tmp_path, repo_root):
    opt = tiny_opt(paired_faces, 'tiny_ddp', total_iter=3, save_freq=3)
    opt['datasets']['train']['batch_size_per_gpu'] = 1
    opt['train']['ema_decay'] = 0
    opt_file = write_opt(opt, tmp_path)
    script = repo_root / 'tests' / 'ddp_worker.py'
    proc = run_python(
        [
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            '--master_port=29533',
            script,
            '-opt',
            opt_file,
            '--launcher',
            'pytorch',
        ],
        cwd=tmp_path,
    )
    sums = [float((tmp_path / f'rank{r}.txt').read_text()) for r in range(2)]
    assert sums[0] == sums[1], proc.stdout[-3000:]
    assert (tmp_path / 'experiments' / 'tiny_ddp' / 'models' / 'net_g_latest.pth').exists()


def test_auto_resume_ignores_a_state_whose_save_was_interrupted(tmp_path):
    from basicsr import train as basicsr_train

    states = tmp_path / 'training_states'
    states.mkdir()
    torch.save({'epoch': 0, 'iter': 4, 'optimizers': [], 'schedulers': []}, states / '4.state')
    (states / '6.state.tmp').write_bytes(b'\x80\x02truncated')  # what a kill during an atomic save leaves
    opt = {'name': 'x', 'auto_resume': True, 'path': {'training_states': str(states), 'models': str(tmp_path)}}
    state = basicsr_train.load_resume_state(opt)
    assert state['iter'] == 4 and opt['path']['resume_state'].endswith('4.state')
