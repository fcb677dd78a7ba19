"""The startup hook: harmless at interpreter start, follows the package, and a CLI that needs no torch.

Install locations are simulated with temporary site folders read by ``site.addsitedir`` in ``python -S``
subprocesses (no site-packages, so the real facesr_kd, torch and BasicSR are out of reach), holding partial
copies of the package: the real ``_startup.py`` and an ``__init__.py`` that records its import in a stub
``basicsr``.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import facesr_kd
from facesr_kd import hook
from facesr_kd._startup import started_as_module

import numpy as np
import pytest
import yaml

from .conftest import REPO_ROOT, run_python

STARTUP = Path(facesr_kd.__file__).parent / '_startup.py'
EDITABLE_PTH = '__editable__.facesr_kd-0.1.0.pth'
# What setuptools' editable finder does, reduced to the package: a meta-path finder appended at startup.
EDITABLE_FINDER = """
import importlib.util
import sys

SRC = {src!r}


class Finder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != 'facesr_kd':
            return None
        return importlib.util.spec_from_file_location(
            name, SRC + '/facesr_kd/__init__.py', submodule_search_locations=[SRC + '/facesr_kd']
        )


def install():
    sys.meta_path.append(Finder)
"""
# Reads the site folder as interpreter start does, then imports the stub basicsr.
PROBE = """
import json, site, sys
if sys.path[:1] == ['']:
    del sys.path[0]
site.addsitedir(sys.argv[1])
hooks = [getattr(f, 'origin', None) for f in sys.meta_path if getattr(f, 'facesr_kd_hook', False) is True]
at_start = sorted(m for m in sys.modules if m.split('.')[0] in ('facesr_kd', 'basicsr', 'torch'))
sys.path.append(sys.argv[2])
import basicsr
print(json.dumps({'hooks': hooks, 'at_start': at_start, 'plugins': basicsr.PLUGINS}))
"""
OLD_PTH_LINE = (
    "import os, importlib.util as u; p = r'{startup}'; s = os.path.isfile(p) and "
    "u.spec_from_file_location('_facesr_kd_startup', p); m = s and u.module_from_spec(s); "
    's and s.loader.exec_module(m); m and m.install()\n'
)


def make_package(root):
    """A copy of the package as an install would place it under ``root``; returns its folder."""
    pkg = root / 'facesr_kd'
    pkg.mkdir(parents=True)
    shutil.copy(STARTUP, pkg / '_startup.py')
    (pkg / '__init__.py').write_text('import basicsr\n\nbasicsr.PLUGINS.append(__file__)\n')
    return pkg


def make_editable(site, src):
    """What ``pip install -e`` leaves in ``site``: a finder module and the ``.pth`` that installs it."""
    make_package(src)
    (site / '_facesr_kd_editable_finder.py').write_text(EDITABLE_FINDER.format(src=str(src)))
    (site / EDITABLE_PTH).write_text('import _facesr_kd_editable_finder; _facesr_kd_editable_finder.install()\n')


def remove_editable(site, src):
    (site / EDITABLE_PTH).unlink()
    (site / '_facesr_kd_editable_finder.py').unlink()
    shutil.rmtree(src)


@pytest.fixture
def stub_basicsr(tmp_path):
    folder = tmp_path / 'stub'
    (folder / 'basicsr').mkdir(parents=True)
    (folder / 'basicsr' / '__init__.py').write_text('PLUGINS = []\n')
    return folder


def start_python(site, stub):
    """Start ``python -S``, read ``site`` like interpreter start, ``import basicsr``; return (report, stderr)."""
    proc = subprocess.run(
        [sys.executable, '-S', '-c', PROBE, str(site), str(stub)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_pth_line_names_no_folder_and_sorts_after_the_editable_finder():
    line = hook.pth_line()
    assert line.startswith('import ') and line.count('\n') == 1  # site.py executes such a line
    assert str(REPO_ROOT) not in line and "find_spec('facesr_kd')" in line
    assert sorted([hook.PTH_NAME, EDITABLE_PTH, f'__editable__.facesr_kd-{facesr_kd.__version__}.pth'])[-1] == (
        hook.PTH_NAME
    )


def test_hook_loads_the_package_where_it_is_and_imports_nothing_at_start(tmp_path, stub_basicsr):
    site = tmp_path / 'site'
    site.mkdir()
    hook.install(str(site))
    pkg = make_package(site)
    report, stderr = start_python(site, stub_basicsr)
    assert report == {
        'hooks': [str(pkg / '_startup.py')],
        'at_start': [],
        'plugins': [str(pkg / '__init__.py')],
    }
    assert stderr == ''


def test_hook_follows_the_package_between_install_modes(tmp_path, stub_basicsr):
    site, src = tmp_path / 'site', tmp_path / 'checkout'
    site.mkdir()
    pth = Path(hook.install(str(site)))
    written = pth.read_bytes()

    make_package(site)  # pip install .
    assert start_python(site, stub_basicsr)[0]['plugins'] == [str(site / 'facesr_kd' / '__init__.py')]

    shutil.rmtree(site / 'facesr_kd')  # pip install -e .
    make_editable(site, src)
    report, stderr = start_python(site, stub_basicsr)
    assert report['hooks'] == [str(src / 'facesr_kd' / '_startup.py')]
    assert report['plugins'] == [str(src / 'facesr_kd' / '__init__.py')] and stderr == ''

    remove_editable(site, src)  # pip install . again
    make_package(site)
    assert start_python(site, stub_basicsr)[0]['plugins'] == [str(site / 'facesr_kd' / '__init__.py')]
    assert pth.read_bytes() == written  # the hook was never rewritten


def test_hook_does_nothing_once_the_package_is_uninstalled(tmp_path, stub_basicsr):
    site = tmp_path / 'site'
    site.mkdir()
    hook.install(str(site))
    make_editable(site, tmp_path / 'checkout')
    remove_editable(site, tmp_path / 'checkout')  # pip uninstall facesr_kd: the hook file stays behind
    report, stderr = start_python(site, stub_basicsr)
    assert report == {'hooks': [], 'at_start': [], 'plugins': []}
    assert stderr == ''


def test_a_hook_of_the_old_format_pointing_at_a_removed_package_is_silent_and_reported_stale(tmp_path, stub_basicsr):
    site = tmp_path / 'site'
    site.mkdir()
    (site / hook.PTH_NAME).write_text(OLD_PTH_LINE.format(startup=tmp_path / 'gone' / '_startup.py'))
    assert start_python(site, stub_basicsr) == ({'hooks': [], 'at_start': [], 'plugins': []}, '')
    lines = []
    assert hook.status(str(site), out=lines.append) == hook.STALE_OR_FOREIGN
    assert lines[0].startswith('stale:') and 'python -m facesr_kd.hook install' in lines[0]


def imported_modules(importtime_stderr):
    """Module names from ``python -X importtime`` output."""
    return {m.group(1).strip() for m in re.finditer(r'^import time:.*\|\s*(\S+)\s*$', importtime_stderr, re.M)}


def test_hook_cli_imports_no_torch_nor_basicsr_even_inside_a_basicsr_checkout(tmp_path):
    checkout, site = tmp_path / 'BasicSR', tmp_path / 'site'
    (checkout / 'basicsr').mkdir(parents=True)
    marker = tmp_path / 'fake_basicsr_imported'
    (checkout / 'basicsr' / '__init__.py').write_text(f'open({str(marker)!r}, "w").close()\nraise SystemExit(9)\n')
    site.mkdir()

    def cli(*args):
        proc = subprocess.run(
            [sys.executable, '-X', 'importtime', '-m', 'facesr_kd.hook', *args, '--site-dir', str(site)],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=120,
        )
        modules = imported_modules(proc.stderr)
        assert {'facesr_kd', 'facesr_kd._startup', 'argparse'} <= modules  # the parse saw the imports
        heavy = {m for m in modules if m.split('.')[0] in ('torch', 'basicsr', 'numpy', 'cv2', 'yaml')}
        assert not heavy and 'facesr_kd.compat' not in modules, sorted(heavy)
        return proc

    assert cli('install').returncode == 0 and (site / hook.PTH_NAME).read_text() == hook.pth_line()
    proc = cli('status')
    assert proc.returncode == hook.OK, proc.stdout
    # Where a fresh interpreter finds the package (the test process may import a checkout's copy instead).
    find = 'import importlib.util as u; print(u.find_spec("facesr_kd").submodule_search_locations[0])'
    where = subprocess.run(
        [sys.executable, '-c', find], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert f'loads facesr_kd from {where}' in proc.stdout
    assert cli('uninstall').returncode == 0 and not (site / hook.PTH_NAME).exists()
    proc = cli('status')
    assert proc.returncode == hook.NOT_INSTALLED and 'not installed' in proc.stdout
    assert not marker.exists()


@pytest.mark.parametrize(
    'content, code, expected',
    [
        (None, hook.NOT_INSTALLED, 'not installed: there is no'),
        (OLD_PTH_LINE.format(startup=STARTUP), hook.STALE_OR_FOREIGN, 'stale:'),
        ('import sys; sys.flags\n', hook.STALE_OR_FOREIGN, 'foreign:'),
        (hook.pth_line(), hook.OK, '(current)'),
    ],
    ids=['missing', 'stale', 'foreign', 'current'],
)
def test_status_exit_code_and_report(tmp_path, content, code, expected):
    if content is not None:
        (tmp_path / hook.PTH_NAME).write_text(content)
    proc = run_python(['-m', 'facesr_kd.hook', 'status', '--site-dir', tmp_path], cwd=tmp_path, check=False)
    assert proc.returncode == code, proc.stdout
    assert expected in proc.stdout and str(tmp_path / hook.PTH_NAME) in proc.stdout


def test_status_of_a_current_hook_that_loads_nothing(tmp_path):
    # The interpreter this venv was made from has no facesr_kd: the hook is current, but it loads nothing there.
    base = Path(sys.base_prefix) / 'bin' / f'python{sys.version_info[0]}.{sys.version_info[1]}'
    if not base.exists() or subprocess.run([base, '-c', 'import facesr_kd'], capture_output=True).returncode == 0:
        pytest.skip(f'needs a base interpreter without facesr_kd, {base} is not one')
    hook.install(str(tmp_path))
    lines = []
    assert hook.status(str(tmp_path), out=lines.append, python=str(base)) == hook.NOT_LOADING
    assert 'loads no facesr_kd' in lines[0]


@pytest.mark.parametrize(
    'orig_argv, expected',
    [
        (['python', '-m', 'facesr_kd.hook', 'status'], True),
        (['python', '-X', 'importtime', '-m', 'facesr_kd.hook'], True),
        (['python', '-Ximporttime', '-W', 'error', '-Bm', 'facesr_kd.hook'], True),
        (['python', '-mfacesr_kd.hook'], True),
        (['python', '-m', 'facesr_kd.train', '-m', 'facesr_kd.hook'], False),
        (['python', '-c', 'import facesr_kd', '-m', 'facesr_kd.hook'], False),
        (['python', 'script.py', '-m', 'facesr_kd.hook'], False),
        (['python', '-m', 'pytest', 'tests/test_hook.py'], False),
    ],
)
def test_started_as_module(orig_argv, expected):
    assert started_as_module('facesr_kd.hook', orig_argv=orig_argv, argv0='-m') is expected
    assert started_as_module('facesr_kd.hook', orig_argv=orig_argv, argv0='/path/to/hook.py') is False


def test_hook_in_a_full_interpreter_registers_ours_and_keeps_one_whole_basicsr(tmp_path):
    hook.install(str(tmp_path))
    code = (
        'import site, sys; site.addsitedir(sys.argv[1]); assert "torch" not in sys.modules; '
        'import basicsr; import basicsr.utils.registry as r; '
        'assert basicsr is sys.modules["basicsr"] and basicsr.__spec__.loader is basicsr.__loader__; '
        'assert basicsr.utils.registry is r and basicsr.train.train_pipeline; '
        'assert r.MODEL_REGISTRY.get("DictDistillModel").__module__.startswith("facesr_kd."); print("one basicsr")'
    )
    assert 'one basicsr' in run_python(['-c', code, tmp_path], cwd=tmp_path).stdout


def test_every_other_import_registers_everything(tmp_path):
    code = (
        'import sys, facesr_kd; from basicsr.utils.registry import MODEL_REGISTRY; '
        'assert "DictDistillModel" in MODEL_REGISTRY and "facesr_kd.compat" in sys.modules; print("full")'
    )
    assert 'full' in run_python(['-c', code], cwd=tmp_path).stdout


def tiny_training_options(root):
    """A 2-iteration x2 RCAN run on four random 16x16 images, on the CPU, through our FaceSRModel."""
    import cv2

    rng = np.random.default_rng(0)
    for name, size in (('hr', 16), ('lr', 8)):
        (root / name).mkdir()
        for i in range(4):
            cv2.imwrite(str(root / name / f'{i}.png'), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    opt = {
        'name': 'tiny_resume',
        'model_type': 'FaceSRModel',
        'scale': 2,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'train': {
                'name': 'random',
                'type': 'PairedImageDataset',
                'dataroot_gt': str(root / 'hr'),
                'dataroot_lq': str(root / 'lr'),
                'io_backend': {'type': 'disk'},
                'gt_size': 16,
                'use_hflip': False,
                'use_rot': False,
                'num_worker_per_gpu': 0,
                'batch_size_per_gpu': 2,
            }
        },
        'network_g': {
            'type': 'RCAN',
            'num_feat': 4,
            'num_group': 1,
            'num_block': 1,
            'squeeze_factor': 4,
            'upscale': 2,
            'num_in_ch': 3,
            'num_out_ch': 3,
        },
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'train': {
            'optim_g': {'type': 'Adam', 'lr': 1e-3},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
            'total_iter': 2,
            'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }
    path = root / 'tiny_resume.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def test_basicsr_module_entry_resumes_on_cpu(tmp_path, startup_hook):
    opt_file = tiny_training_options(tmp_path)
    env = {'CUDA_VISIBLE_DEVICES': ''}
    run_python(['-m', 'basicsr.train', '-opt', opt_file], cwd=tmp_path, env=env)
    states = tmp_path / 'experiments' / 'tiny_resume' / 'training_states'
    assert (states / '2.state').exists()
    proc = run_python(
        ['-m', 'basicsr.train', '-opt', opt_file, '--auto_resume', '--force_yml', 'train:total_iter=4'],
        cwd=tmp_path,
        env=env,
    )
    assert 'Resuming training from epoch: ' in proc.stdout and 'iter: 2.' in proc.stdout
    assert (states / '4.state').exists() and not list(tmp_path.glob('experiments/tiny_resume_archived_*'))
    assert not os.path.exists(Path(sys.prefix) / 'experiments')
