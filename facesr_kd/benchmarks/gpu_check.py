"""One command that checks the GPU path end to end and writes a report (``facesr-kd-gpu-check``).

Sections, each measured in this run (random weights throughout: speed, memory and numerical agreement only,
never a quality figure):

1. ``cuda_tests``: the test suite's CUDA-marked tests (``python -m pytest -q -m cuda tests``) when the package
   runs from a checkout (a ``tests/`` folder beside it); passed / skipped / failed counts;
2. ``training``: each training recipe (:data:`facesr_kd.recipes.METHODS`) at the preset's sizes (``paper``:
   256 from 32, the shipped widths, K = 512) with a random VGG19 and a random dictionary, :data:`FULL`'s warm-up
   and timed iterations in fp32 and under bf16 autocast (``train: amp: bf16``): iterations per second, the wait
   for each batch from a ``DataLoader`` over an in-memory dataset of synthetic faces, and the peak CUDA memory;
3. ``ddp``: a one-process distributed run of a tiny distillation (smoke sizes, 2 iterations, validation on)
   through ``torchrun`` and ``facesr_kd.train --launcher pytorch``: NCCL on CUDA, Gloo on the CPU;
4. ``inference``: faces per second of the teacher and every student (RCAN and SRFBN too in a full run) in
   their inference form (:func:`facesr_kd.inference.prepare_network`), fp32 and fp16 on CUDA (fp32 and bf16
   autocast on the CPU);
5. ``equality``: the largest absolute difference between CPU and CUDA outputs of the same network and input in
   fp32 (TF32 off), against :data:`TOLERANCE`; the difference with PyTorch's default TF32 settings is shown
   beside it.

``gpu_check.json`` and ``gpu_check.md`` are rewritten after every section, so a run cut short leaves what it
measured. The sections run in the order 1, 3, 4, 5, 2: the training section, the only one whose length is
elastic, goes last and stops (with a note) when the time budget runs out; each earlier section is given the
budget minus a reserve for the sections after it (:data:`RESERVE_S`).

Usage::

    facesr-kd-gpu-check --out results/gpu_check            # on a CUDA machine, at most ~6 minutes
    facesr-kd-gpu-check --out /tmp/gc --device cpu --quick  # the machinery on a CPU (the test suite)
"""

import copy
import datetime
import gc
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

from facesr_kd.benchmarks import efficiency
from facesr_kd.benchmarks.distill_iter import random_assets, recipe_options
from facesr_kd.data.face_sr_dataset import downscale_like_prepare
from facesr_kd.face.components import FFHQ_TEMPLATE_512, save_boxes_file, template_boxes
from facesr_kd.recipes import METHODS, PRESETS, make_train_options, write_yaml
from facesr_kd.utils.files import write_json, write_text

import cv2
import numpy as np
import torch

# Report sections, in report order (1-5), and the order they run in (the elastic training section last).
SECTIONS = ('cuda_tests', 'training', 'ddp', 'inference', 'equality')
RUN_ORDER = ('cuda_tests', 'ddp', 'inference', 'equality', 'training')
TITLES = {
    'cuda_tests': '1. CUDA-marked tests',
    'training': '2. Training iterations',
    'ddp': '3. Distributed (DDP) run through torchrun',
    'inference': '4. Inference throughput',
    'equality': '5. CPU vs CUDA outputs',
}
# Recipes timed by default: one of each kind of network (the "w/o KD" lite and tiny rows train the same networks
# as FaceSRModel, like "Student w/o KD"); --recipes takes any of METHODS.
DEFAULT_RECIPES = ('Teacher', 'Student w/o KD', 'Student', 'Lite student', 'Tiny student', 'RCAN', 'SRFBN')
QUICK_RECIPES = ('Student w/o KD', 'Student')
# Largest absolute difference allowed between CPU and CUDA outputs (fp32, TF32 off), images in [0, 1].
TOLERANCE = 1e-3
# Sizes and counts of a full run (H200-class GPU, about 6 minutes) and of --quick (the CPU test suite).
FULL = {
    'preset': 'paper',
    'batch': 4,
    'warmup': 20,
    'iters': 100,
    'loader_workers': 2,
    'infer_batch': 8,
    'infer_warmup': 3,
    'infer_runs': 10,
    'infer_models': efficiency.MODELS,
    'equality_batch': 2,
    'min_run_s': 10,
}
QUICK = {
    'preset': 'smoke',
    'batch': 1,
    'warmup': 1,
    'iters': 2,
    'loader_workers': 0,
    'infer_batch': 2,
    'infer_warmup': 0,
    'infer_runs': 2,
    'infer_models': ('teacher', *efficiency.STUDENTS),
    'equality_batch': 1,
    'min_run_s': 0,
}
# Seconds kept back for each section while the ones before it run (full run; --quick keeps QUICK_RESERVE_S each).
RESERVE_S = {'cuda_tests': 20, 'ddp': 60, 'inference': 45, 'equality': 25, 'training': 60}
QUICK_RESERVE_S = 5
DEFAULT_BUDGET_S = 330.0


class GpuCheckError(RuntimeError):
    """The check cannot start (e.g. ``device='cuda'`` on a machine without CUDA)."""


def _log(message):
    print(f'[gpu-check] {message}', flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Synthetic faces and the random-weight assets


def synthetic_faces(n, size, seed=0):
    """``n`` synthetic aligned faces: a skin-coloured oval with eyes, nose and mouth at the FFHQ template points.

    Not real faces (no staged data needed): enough structure for the component boxes to frame something.

    Args:
        n (int): Number of faces.
        size (int): Side in pixels.
        seed (int): Seed of the colours, jitter and noise.

    Returns:
        list[ndarray]: BGR uint8 (size, size, 3) images.
    """
    rng = np.random.default_rng(seed)
    pts = FFHQ_TEMPLATE_512 * size / 512
    faces = []
    for _ in range(n):
        top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
        ramp = np.linspace(0, 1, size)[:, None, None]
        img = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (size, size, 3)).copy()
        skin = tuple(float(c) for c in rng.uniform([90, 120, 160], [150, 180, 230]))
        jitter = rng.normal(0, size / 128, (5, 2))
        p = pts + jitter
        centre = (int(size / 2), int(p[2, 1] - size * 0.04))
        cv2.ellipse(img, centre, (int(size * 0.3), int(size * 0.4)), 0, 0, 360, skin, -1, cv2.LINE_AA)
        for eye in p[:2]:
            brow = (int(eye[0]), int(eye[1] - size * 0.05))
            cv2.ellipse(img, brow, (int(size * 0.05), int(size * 0.012) + 1), 0, 180, 360, (40, 50, 60), -1)
            cv2.ellipse(img, (int(eye[0]), int(eye[1])), (int(size * 0.04), int(size * 0.02) + 1), 0, 0, 360,
                        (245, 245, 245), -1, cv2.LINE_AA)  # fmt: skip
            iris = tuple(float(c) for c in rng.uniform(20, 120, 3))
            cv2.circle(img, (int(eye[0]), int(eye[1])), max(1, int(size * 0.015)), iris, -1, cv2.LINE_AA)
        nose = p[2]
        shade = tuple(c * 0.8 for c in skin)
        cv2.line(img, (int(nose[0]), int(p[0, 1])), (int(nose[0]), int(nose[1])), shade, max(1, size // 96))
        mouth_c = ((p[3] + p[4]) / 2).astype(int)
        half_w = int(abs(p[4, 0] - p[3, 0]) / 2)
        cv2.ellipse(img, tuple(int(v) for v in mouth_c), (half_w, int(size * 0.025) + 1), 0, 0, 360,
                    (70, 60, 170), -1, cv2.LINE_AA)  # fmt: skip
        img += rng.normal(0, 4, img.shape)
        img = cv2.GaussianBlur(img, (0, 0), max(0.5, size / 256))
        faces.append(np.clip(img, 0, 255).round().astype(np.uint8))
    return faces


class SyntheticFaceDataset(torch.utils.data.Dataset):
    """An in-memory dataset of synthetic faces, items as :class:`facesr_kd.data.FaceSRDataset` gives them.

    ``gt`` (3, size, size) RGB float in [0, 1], ``lq`` its x8 downscaling as preparation writes it, ``boxes``
    the FFHQ-template component boxes; ``length`` items cycle over ``pool`` faces made once.
    """

    def __init__(self, size, length, pool=8, seed=0, scale=8):
        self.length = length
        self.gt, self.lq = [], []
        for face in synthetic_faces(pool, size, seed):
            gt = face[..., ::-1].astype(np.float32) / 255
            lq = downscale_like_prepare(gt, scale)
            self.gt.append(torch.from_numpy(np.ascontiguousarray(gt.transpose(2, 0, 1))))
            self.lq.append(torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1))))
        self.boxes = torch.from_numpy(template_boxes(size)).float()

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        i = index % len(self.gt)
        return {'lq': self.lq[i], 'gt': self.gt[i], 'boxes': self.boxes}


def synthetic_face_folder(root, n, size, seed=0):
    """A prepared-data folder of synthetic faces: ``hr/``, ``lr_x8/`` PNGs, ``meta_info.txt``, ``boxes.json``.

    The layout :func:`facesr_kd.recipes.make_train_options` expects (template boxes, LR as preparation
    downscales).

    Returns:
        str: ``root``.
    """
    os.makedirs(os.path.join(root, 'hr'), exist_ok=True)
    os.makedirs(os.path.join(root, 'lr_x8'), exist_ok=True)
    names = []
    for i, face in enumerate(synthetic_faces(n, size, seed)):
        name = f'{i:05d}.png'
        cv2.imwrite(os.path.join(root, 'hr', name), face)
        lr = downscale_like_prepare(face.astype(np.float32) / 255, 8)
        cv2.imwrite(os.path.join(root, 'lr_x8', name), (lr * 255).round().astype(np.uint8))
        names.append(name)
    write_text(os.path.join(root, 'meta_info.txt'), ''.join(f'{name}\n' for name in names))
    save_boxes_file(os.path.join(root, 'boxes.json'), {k: template_boxes(size) for k in names}, size, 'template')
    return str(root)


def preset_sizes(preset_name):
    """A preset with the widths the paper-scale recipes use where it names none (``num_feat`` 64)."""
    preset = dict(PRESETS[preset_name])
    preset.setdefault('num_feat', 64)
    return preset


# ---------------------------------------------------------------------------------------------------------------
# Section helpers


def _sync(device):
    return torch.cuda.synchronize if torch.device(device).type == 'cuda' else (lambda: None)


def _is_cuda(device):
    return torch.device(device).type == 'cuda'


def _free_memory(device):
    gc.collect()
    if _is_cuda(device):
        torch.cuda.empty_cache()


def _peak_mib(device):
    return torch.cuda.max_memory_allocated() / 2**20 if _is_cuda(device) else None


def _reset_peak(device):
    if _is_cuda(device):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def find_tests_dir():
    """The ``tests/`` folder of the checkout the package runs from, or None (an installed wheel has none)."""
    import facesr_kd

    root = os.path.dirname(os.path.dirname(os.path.abspath(facesr_kd.__file__)))
    tests = os.path.join(root, 'tests')
    if os.path.isfile(os.path.join(tests, 'conftest.py')) and os.path.isfile(os.path.join(root, 'pyproject.toml')):
        return tests
    return None


def junit_counts(path):
    """``{'passed', 'skipped', 'failed', 'errors', 'total'}`` from a pytest JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else list(root.iter('testsuite'))
    counts = dict.fromkeys(('total', 'skipped', 'failed', 'errors'), 0)
    for suite in suites:
        counts['total'] += int(suite.get('tests', 0))
        counts['skipped'] += int(suite.get('skipped', 0))
        counts['failed'] += int(suite.get('failures', 0))
        counts['errors'] += int(suite.get('errors', 0))
    counts['passed'] = counts['total'] - counts['skipped'] - counts['failed'] - counts['errors']
    return counts


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _tail(text, n=4000):
    return text[-n:] if text else ''


# ---------------------------------------------------------------------------------------------------------------
# The sections


def check_cuda_tests(out_dir, tests_dir, timeout, device='cuda'):
    """Section 1: run the CUDA-marked tests of a checkout in a subprocess.

    Args:
        out_dir (str): Where ``cuda_tests.log`` and ``cuda_tests.xml`` go.
        tests_dir (str | None): The tests folder; None: not a checkout, the section is skipped.
        timeout (float): Seconds before the run is stopped (and the section fails).
        device (str): The check's device: on CUDA, tests that all skip themselves fail the section.

    Returns:
        dict: ``status``, ``note``, counts and the command.
    """
    if tests_dir is None:
        return {'status': 'skipped', 'note': 'not a checkout: skipped (no tests/ folder beside the package)'}
    xml = os.path.join(out_dir, 'cuda_tests.xml')
    if os.path.exists(xml):
        os.remove(xml)  # no counts from an earlier run
    cmd = [sys.executable, '-m', 'pytest', '-q', '-m', 'cuda', tests_dir, '-p', 'no:cacheprovider', f'--junitxml={xml}']
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    shown = f'python -m pytest -q -m cuda {tests_dir}'
    try:
        proc = subprocess.run(
            cmd,
            cwd=os.path.dirname(tests_dir),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=max(timeout, 1),
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        write_text(os.path.join(out_dir, 'cuda_tests.log'), out)
        return {'status': 'failed', 'command': shown, 'note': f'stopped after {timeout:.0f} s (time budget)'}
    write_text(os.path.join(out_dir, 'cuda_tests.log'), proc.stdout)
    summary = next((line for line in reversed(proc.stdout.strip().splitlines()) if line.strip()), '')
    result = {'command': shown, 'returncode': proc.returncode, 'summary': summary, 'log': 'cuda_tests.log'}
    if proc.returncode == 5:  # pytest: no tests collected
        result.update(status='skipped', note='no CUDA-marked tests were collected', passed=0, skipped=0, failed=0)
        return result
    if os.path.isfile(xml):
        counts = junit_counts(xml)
        result.update(passed=counts['passed'], skipped=counts['skipped'], failed=counts['failed'] + counts['errors'])
    ok = proc.returncode == 0
    result['note'] = '' if ok else f'pytest exited with {proc.returncode}: {summary}'
    if ok and result.get('passed') == 0 and result.get('skipped'):
        result['note'] = 'every CUDA-marked test skipped itself: no CUDA in the test process'
        ok = not _is_cuda(device)  # on a CUDA check that means the tests never ran on the GPU
    result['status'] = 'passed' if ok else 'failed'
    return result


def time_recipe(method, precision, preset, work, assets, device, settings, deadline):
    """Time ``settings['warmup']`` + ``settings['iters']`` training iterations of one recipe in one precision.

    Args:
        method (str): A key of :data:`facesr_kd.recipes.METHODS`.
        precision (str): ``'fp32'`` or ``'bf16'`` (``train: amp: bf16``, autocast).
        preset (dict): From :func:`preset_sizes`.
        work (str): Folder of the experiment folders and ``assets``.
        assets (dict): From :func:`random_assets`.
        device (str): ``'cuda'``, ``'cuda:N'`` or ``'cpu'``.
        settings (dict): :data:`FULL` or :data:`QUICK`.
        deadline (float): ``time.perf_counter()`` value after which no further iteration starts.

    Returns:
        dict: The row: ``recipe``, ``precision``, ``batch``, ``warmup``, ``timed``, ``iters_per_s`` (timed
        iterations over their compute time: ``feed_data`` + ``optimize_parameters``, synchronised),
        ``median_ms``, ``wall_iters_per_s`` (the batch waits included), ``loader_wait_ms_mean`` /
        ``loader_wait_ms_max``, ``peak_mib`` (CUDA, model build included; None on the CPU), ``build_s``,
        ``losses`` (the last iteration's), ``finite`` and ``note``.
    """
    from basicsr.models import build_model

    batch_size, warmup, iters = settings['batch'], settings['warmup'], settings['iters']
    sync = _sync(device)
    _free_memory(device)
    _reset_peak(device)
    start = time.perf_counter()
    model = build_model(recipe_options(method, preset, work, assets, device, None if precision == 'fp32' else 'bf16'))
    build_s = time.perf_counter() - start
    dataset = SyntheticFaceDataset(preset['size'], (warmup + iters) * batch_size, pool=min(8, 2 * batch_size))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        drop_last=True,
        num_workers=settings['loader_workers'],
        pin_memory=_is_cuda(device),
    )
    waits, times, note = [], [], ''
    batches = iter(loader)
    for it in range(warmup + iters):
        if time.perf_counter() > deadline:
            note = f'cut short by the time budget after {it} of {warmup + iters} iterations'
            break
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        model.feed_data(batch)
        model.optimize_parameters(it + 1)
        sync()
        t2 = time.perf_counter()
        if it >= warmup:
            waits.append(t1 - t0)
            times.append(t2 - t1)
    del batches, loader
    losses = {k: float(v) for k, v in (getattr(model, 'log_dict', None) or {}).items()}
    finite = bool(losses) and all(math.isfinite(v) for v in losses.values())
    row = {
        'recipe': method,
        'model_type': type(model).__name__,
        'precision': 'fp32' if precision == 'fp32' else 'bf16 autocast',
        'batch': batch_size,
        'warmup': warmup,
        'timed': len(times),
        'iters_per_s': len(times) / sum(times) if times else None,
        'median_ms': statistics.median(times) * 1e3 if times else None,
        'wall_iters_per_s': len(times) / (sum(times) + sum(waits)) if times else None,
        'loader_wait_ms_mean': statistics.fmean(waits) * 1e3 if waits else None,
        'loader_wait_ms_max': max(waits) * 1e3 if waits else None,
        'peak_mib': _peak_mib(device),
        'build_s': build_s,
        'losses': losses,
        'finite': finite if losses else None,
        'note': note or ('' if finite or not losses else 'non-finite loss'),
    }
    del model
    _free_memory(device)
    return row


def check_training(work, device, settings, recipes, deadline, assets_cache, on_row=None):
    """Section 2: :func:`time_recipe` for each recipe in fp32 then bf16, until ``deadline``.

    Returns:
        dict: ``status`` (failed when a recipe raised or gave a non-finite loss), ``rows``, ``note``.
    """
    preset = preset_sizes(settings['preset'])
    key = ('train', settings['preset'])
    if key not in assets_cache:
        start = time.perf_counter()
        assets_cache[key] = random_assets(os.path.join(work, f'assets_{settings["preset"]}'), preset,
                                          vgg_file=assets_cache.get('vgg'))  # fmt: skip
        assets_cache['vgg'] = assets_cache[key]['vgg']
        _log(f'  random VGG19, dictionary (K={preset["num_atoms"]}) and teacher in {time.perf_counter() - start:.1f} s')
    assets = assets_cache[key]
    precisions = ['fp32', 'bf16']
    bf16_note = ''
    if _is_cuda(device) and not torch.cuda.is_bf16_supported():
        precisions, bf16_note = ['fp32'], 'bf16 not supported on this GPU: fp32 only'
    info = {
        'preset': settings['preset'],
        'size': preset['size'],
        'lq_size': preset['size'] // 8,
        'num_atoms': preset['num_atoms'],
        'batch': settings['batch'],
        'warmup': settings['warmup'],
        'iters': settings['iters'],
        'loader_workers': settings['loader_workers'],
        'data': 'synthetic faces in memory (SyntheticFaceDataset), through torch.utils.data.DataLoader',
    }
    rows, errors, skipped = [], [], []
    for method in recipes:
        for precision in precisions:
            if time.perf_counter() > deadline - settings['min_run_s']:  # not worth building a model for
                skipped.append(f'{method} {precision}')
                continue
            try:
                row = time_recipe(method, precision, preset, work, assets, device, settings, deadline)
            except Exception as e:  # recorded; the next recipe still runs
                row = {'recipe': method, 'precision': precision, 'error': f'{type(e).__name__}: {e}',
                       'traceback': _tail(traceback.format_exc())}  # fmt: skip
                errors.append(f'{method} {precision}')
                _free_memory(device)
            rows.append(row)
            if row.get('finite') is False:
                errors.append(f'{method} {precision} (non-finite loss)')
            _log('  ' + _training_line(row))
            if on_row:
                on_row({**info, 'rows': rows})
    cut = any(r.get('note', '').startswith('cut short') for r in rows)
    notes = [n for n in (bf16_note,) if n]
    if skipped:
        notes.append('time budget spent before: ' + ', '.join(skipped))
    if cut:
        notes.append('the last run was cut short by the time budget')
    if errors:
        notes.append('failed: ' + ', '.join(errors))
    return {
        **info,
        'status': 'failed' if errors else 'passed',
        'rows': rows,
        'note': '; '.join(notes),
        'cut_short': bool(skipped) or cut,
    }


def _training_line(row):
    if 'error' in row:
        return f'{row["recipe"]} {row["precision"]}: ERROR {row["error"]}'
    ips = row['iters_per_s']
    return (
        f'{row["recipe"]} {row["precision"]}: {_num(ips, ".2f")} it/s, loader wait '
        f'{_num(row["loader_wait_ms_mean"], ".2f")} ms, peak {_num(row["peak_mib"], ".0f")} MiB {row["note"]}'
    )


def check_ddp(work, out_dir, device, timeout, assets_cache):
    """Section 3: a tiny distillation (smoke sizes, 2 iterations, validation at 2) in a one-process torchrun.

    Returns:
        dict: ``status``, ``backend``, ``wall_s``, ``returncode``, what the run left and ``note``.
    """
    preset = {**preset_sizes('smoke'), 'iters': 2, 'batch': 1}
    size = preset['size']
    root = os.path.join(work, 'ddp')
    key = ('train', 'smoke')
    if key not in assets_cache:
        assets_cache[key] = random_assets(os.path.join(work, 'assets_smoke'), preset_sizes('smoke'),
                                          vgg_file=assets_cache.get('vgg'))  # fmt: skip
        assets_cache['vgg'] = assets_cache[key]['vgg']
    assets = assets_cache[key]
    data = {
        'train': synthetic_face_folder(os.path.join(root, 'train'), 4, size, seed=1),
        'test': synthetic_face_folder(os.path.join(root, 'test'), 2, size, seed=2),
    }
    cpu = not _is_cuda(device)
    opt = make_train_options('Student', preset, root, data, assets['vgg'], assets['dict'], 'cpu' if cpu else device)
    opt['name'] = 'gpu_check_ddp'
    if not cpu:
        opt['num_gpu'] = 1
    opt['path']['pretrain_network_t'] = assets['teacher']
    opt['train']['ema_decay'] = 0
    opt['val']['val_freq'] = 2
    opt_file = write_yaml(opt, os.path.join(root, 'gpu_check_ddp.yml'))
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1', f'--master_port={_free_port()}',
        '-m', 'facesr_kd.train', '-opt', opt_file, '--launcher', 'pytorch',
    ]  # fmt: skip
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}
    if not cpu:
        env.update(NCCL_DEBUG='INFO', NCCL_DEBUG_SUBSYS='INIT')  # NCCL says it initialised (recorded, not judged)
        index = torch.device(device).index
        if index is not None:  # the one process sees only that GPU (an index into any CUDA_VISIBLE_DEVICES)
            visible = [v for v in os.environ.get('CUDA_VISIBLE_DEVICES', '').split(',') if v.strip()]
            env['CUDA_VISIBLE_DEVICES'] = visible[index] if index < len(visible) else str(index)
    backend = 'gloo (no CUDA: facesr_kd.compat)' if cpu else 'nccl'
    shown = (
        'python -m torch.distributed.run --nproc_per_node=1 -m facesr_kd.train -opt gpu_check_ddp.yml '
        '--launcher pytorch'
    )
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=max(timeout, 1))  # fmt: skip
        output, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        output = e.stdout.decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        rc = None
    wall = time.perf_counter() - start
    write_text(os.path.join(out_dir, 'ddp_output.log'), output)
    exp = os.path.join(root, 'experiments', 'gpu_check_ddp')
    ckpt = os.path.isfile(os.path.join(exp, 'models', 'net_g_latest.pth'))
    logs = (
        sorted(f for f in os.listdir(exp) if f.startswith('train_') and f.endswith('.log'))
        if os.path.isdir(exp)
        else []
    )
    log_text = ''
    if logs:
        with open(os.path.join(exp, logs[-1]), encoding='utf-8', errors='replace') as f:
            log_text = f.read()
        shutil.copyfile(os.path.join(exp, logs[-1]), os.path.join(out_dir, 'ddp_train.log'))
    validated = 'Validation' in log_text
    psnr = re.findall(r'# psnr: ([0-9.]+)', log_text)
    nccl_seen = None if cpu else ('NCCL INFO' in output or 'NCCL version' in output)
    ok = rc == 0 and ckpt and validated
    problems = []
    if rc is None:
        problems.append(f'stopped after {timeout:.0f} s (time budget)')
    elif rc != 0:
        problems.append(f'exit code {rc}')
    if not ckpt:
        problems.append('no net_g_latest.pth')
    if not validated:
        problems.append('no validation in the log')
    return {
        'status': 'passed' if ok else 'failed',
        'command': shown,
        'recipe': 'Student (DictDistillModel), smoke sizes, batch 1, 2 iterations, validation at iteration 2',
        'backend': backend,
        'nccl_seen': nccl_seen,
        'returncode': rc,
        'wall_s': wall,
        'checkpoint': ckpt,
        'validated': validated,
        'val_psnr': float(psnr[-1]) if psnr else None,
        'log': 'ddp_output.log',
        'note': '; '.join(problems + (['NCCL printed no INFO line (NCCL_DEBUG=INFO)'] if nccl_seen is False else [])),
        'output_tail': '' if ok else _tail(output),
    }


def _inference_sizes(settings):
    preset = preset_sizes(settings['preset'])
    compact = 32 if settings['preset'] == 'paper' else max(4, preset['num_feat'] // 2)
    return {
        'out_size': preset['size'],
        'scale': 8,
        'num_atoms': preset['num_atoms'],
        'num_feat': preset['num_feat'],
        'compact_feat': compact,
    }


def _forward(net, name, out_size, device):
    """``fn(x)`` calling ``net`` on a batch, with template boxes for the teacher."""
    if name != 'teacher':
        return net
    boxes = torch.as_tensor(template_boxes(out_size), dtype=torch.float32, device=device)[None]
    return lambda x: net(x, boxes.expand(x.shape[0], -1, -1).contiguous())


def _precision_call(fwd, precision, x32):
    """``fn()`` running ``fwd`` on ``x32`` in ``precision``: fp32, fp16 (half input) or bf16 autocast (CPU)."""
    if precision == 'fp16':
        x = x32.half()
        return lambda: fwd(x)
    if precision == 'bf16 autocast':

        def fn():
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return fwd(x32)

        return fn
    return lambda: fwd(x32)


def check_inference(device, settings, deadline, on_row=None):
    """Section 4: faces per second of each model at ``settings['infer_batch']``, two precisions.

    CUDA: fp32, then fp16 (``net.half()`` after :func:`facesr_kd.inference.prepare_network`, half inputs). CPU:
    fp32, then bf16 autocast. A row fails on an exception or a non-finite output.

    Returns:
        dict: ``status``, ``rows``, ``note``.
    """
    from facesr_kd.inference import prepare_network, to_memory_format

    sizes = _inference_sizes(settings)
    batch, sync = settings['infer_batch'], _sync(device)
    low = 'fp16' if _is_cuda(device) else 'bf16 autocast'
    info = {
        'sizes': sizes,
        'batch': batch,
        'warmup': settings['infer_warmup'],
        'runs': settings['infer_runs'],
        'precisions': ['fp32', low],
    }
    rows, errors, skipped = [], [], []
    for name in settings['infer_models']:
        if time.perf_counter() > deadline:
            skipped.append(name)
            continue
        label = efficiency.model_label(name, sizes['scale'], sizes['num_atoms'], sizes['num_feat'],
                                       sizes['compact_feat'])  # fmt: skip
        try:
            _free_memory(device)
            torch.manual_seed(0)
            net = efficiency.build_model(name, **sizes)
            net, channels_last = prepare_network(net, device)
            fwd = _forward(net, name, sizes['out_size'], device)
            lq_size = sizes['out_size'] // sizes['scale']
            x32 = torch.rand(batch, 3, lq_size, lq_size, generator=torch.Generator().manual_seed(0)).to(device)
            x32 = to_memory_format(x32, channels_last)
            for precision in ('fp32', low):
                if precision == 'fp16':
                    net.half()
                fn = _precision_call(fwd, precision, x32)
                _reset_peak(device)
                with torch.inference_mode():
                    out = fn()
                    finite = bool(torch.isfinite(out.float()).all())
                    seconds = efficiency.median_time(fn, settings['infer_warmup'], settings['infer_runs'], sync)
                row = {
                    'key': name,
                    'model': label,
                    'precision': precision,
                    'batch': batch,
                    'channels_last': channels_last,
                    'batch_ms': seconds * 1e3,
                    'faces_per_s': batch / seconds,
                    'peak_mib': _peak_mib(device),
                    'finite': finite,
                    'note': '' if finite else 'non-finite output',
                }
                if not finite:
                    errors.append(f'{name} {precision} (non-finite output)')
                rows.append(row)
                peak = _num(row['peak_mib'], '.0f')
                _log(f'  {label} {precision}: {row["faces_per_s"]:.1f} faces/s, peak {peak} MiB')
            del net, fwd
        except Exception as e:
            rows.append({'key': name, 'model': label, 'error': f'{type(e).__name__}: {e}',
                         'traceback': _tail(traceback.format_exc())})  # fmt: skip
            errors.append(name)
            _log(f'  {label}: ERROR {type(e).__name__}: {e}')
        if on_row:
            on_row({**info, 'rows': rows})
    _free_memory(device)
    notes = []
    if skipped:
        notes.append('time budget spent before: ' + ', '.join(skipped))
    if errors:
        notes.append('failed: ' + ', '.join(errors))
    return {**info, 'status': 'failed' if errors else 'passed', 'rows': rows, 'note': '; '.join(notes)}


def compare_devices(name, sizes, device='cuda', batch=1, tolerance=TOLERANCE, seed=0):
    """CPU against ``device`` outputs of one model: same random weights, same random input, fp32.

    Both copies go through :func:`facesr_kd.inference.prepare_network` (each device's own memory format).
    The comparison runs with TF32 off (true fp32 on CUDA); the difference under PyTorch's TF32 defaults (what
    inference gets unless it changes them) is measured too, for information.

    Args:
        name (str): One of :data:`facesr_kd.benchmarks.efficiency.MODELS`.
        sizes (dict): :func:`facesr_kd.benchmarks.efficiency.build_model` keyword arguments.

    Returns:
        dict: ``key``, ``model``, ``max_abs_diff``, ``max_abs_diff_tf32_default``, ``max_abs_output``,
        ``tolerance``, ``passed``.
    """
    from facesr_kd.inference import prepare_network, to_memory_format

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = efficiency.build_model(name, **sizes)
    net_dev = copy.deepcopy(net)
    net_cpu, cl_cpu = prepare_network(net, 'cpu')
    net_dev, cl_dev = prepare_network(net_dev, device)
    lq_size = sizes['out_size'] // sizes['scale']
    x = torch.rand(batch, 3, lq_size, lq_size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        ref = _forward(net_cpu, name, sizes['out_size'], 'cpu')(to_memory_format(x, cl_cpu)).float()
        fwd = _forward(net_dev, name, sizes['out_size'], device)
        flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        try:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            strict = fwd(to_memory_format(x.to(device), cl_dev)).float().cpu()
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
        default = fwd(to_memory_format(x.to(device), cl_dev)).float().cpu()
    diff = float((ref - strict).abs().max())
    return {
        'key': name,
        'model': efficiency.model_label(
            name, sizes['scale'], sizes['num_atoms'], sizes['num_feat'], sizes['compact_feat']
        ),
        'batch': batch,
        'max_abs_diff': diff,
        'max_abs_diff_tf32_default': float((ref - default).abs().max()),
        'max_abs_output': float(ref.abs().max()),
        'tolerance': tolerance,
        'passed': math.isfinite(diff) and diff <= tolerance,
    }


def check_equality(device, settings, deadline, on_row=None):
    """Section 5: :func:`compare_devices` for the teacher and every student; skipped without CUDA.

    Returns:
        dict: ``status``, ``rows``, ``tolerance``, ``note``.
    """
    if not _is_cuda(device):
        return {'status': 'skipped', 'note': 'skipped: no CUDA', 'rows': [], 'tolerance': TOLERANCE}
    info = {'sizes': _inference_sizes(settings), 'tolerance': TOLERANCE, 'batch': settings['equality_batch']}
    rows, errors, skipped = [], [], []
    for name in ('teacher', *efficiency.STUDENTS):
        if time.perf_counter() > deadline:
            skipped.append(name)
            continue
        try:
            row = compare_devices(name, info['sizes'], device, batch=info['batch'])
        except Exception as e:
            row = {'key': name, 'error': f'{type(e).__name__}: {e}', 'traceback': _tail(traceback.format_exc())}
        rows.append(row)
        if not row.get('passed'):
            errors.append(name)
        _log(f'  {name}: max |CPU - CUDA| {_num(row.get("max_abs_diff"), ".2e")} (tolerance {TOLERANCE:g})')
        _free_memory(device)
        if on_row:
            on_row({**info, 'rows': rows})
    notes = []
    if skipped:
        notes.append('time budget spent before: ' + ', '.join(skipped))
    if errors:
        notes.append('over the tolerance or failed: ' + ', '.join(errors))
    return {**info, 'status': 'failed' if errors else 'passed', 'rows': rows, 'note': '; '.join(notes)}


def environment(device):
    """GPU name, memory and capability, torch / CUDA / cuDNN / NCCL versions, Python, basicsr, facesr_kd."""
    from facesr_kd.version import __version__

    import basicsr

    env = {
        'device': str(device),
        'torch': torch.__version__,
        'cuda_runtime': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        'python': platform.python_version(),
        'basicsr': getattr(basicsr, '__version__', None),
        'facesr_kd': __version__,
        'cpu': efficiency.machine_info(),
        'torch_threads': torch.get_num_threads(),
        'cuda_available': torch.cuda.is_available(),
    }
    if _is_cuda(device):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        env.update(
            gpu=torch.cuda.get_device_name(index),
            gpu_memory_gib=props.total_memory / 2**30,
            compute_capability=f'{props.major}.{props.minor}',
            gpu_count=torch.cuda.device_count(),
            bf16_supported=torch.cuda.is_bf16_supported(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
        try:
            nccl = torch.cuda.nccl.version()
            env['nccl'] = '.'.join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
        except Exception:  # builds without NCCL
            env['nccl'] = None
        try:
            smi = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                                 capture_output=True, text=True, timeout=20)  # fmt: skip
            env['driver'] = smi.stdout.strip().splitlines()[index] if smi.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, IndexError):
            env['driver'] = None
    else:
        env['gpu'] = 'none (CPU run)'
    return env


# ---------------------------------------------------------------------------------------------------------------
# The report


def _num(value, spec, missing='n/a'):
    return missing if value is None else format(value, spec)


def _table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return lines


def format_report(report):
    """The Markdown report of :func:`run_gpu_check`'s dict (what ``gpu_check.md`` holds)."""
    env = report['environment']
    verdict = 'PASSED' if report['passed'] else 'FAILED'
    if not report['finished']:
        verdict += ' so far (run in progress or cut short)'
    elif not report['complete']:
        verdict += ' (incomplete: the time budget cut some measurements; see the notes)'
    out = [
        '# facesr-kd GPU check',
        '',
        f'Result: **{verdict}**. Mode: {report["mode"]}. Device: {env["device"]}. Started {report["started"]}, '
        f'{report["elapsed_s"]:.1f} s of a {report["budget_s"]:g} s budget.',
        '',
        f'- GPU: {env.get("gpu")}'
        + (
            f' ({_num(env.get("gpu_memory_gib"), ".1f")} GiB, compute capability {env.get("compute_capability")}, '
            f'driver {env.get("driver") or "n/a"}, bf16 {"yes" if env.get("bf16_supported") else "no"}, '
            f'TF32 matmul/cuDNN {env.get("tf32_matmul")}/{env.get("tf32_cudnn")})'
            if 'compute_capability' in env
            else ''
        ),
        f'- torch {env["torch"]}, CUDA {env.get("cuda_runtime") or "n/a"}, cuDNN {env.get("cudnn") or "n/a"}, '
        f'NCCL {env.get("nccl") or "n/a"}; basicsr {env.get("basicsr")}, facesr_kd {env.get("facesr_kd")}, '
        f'Python {env["python"]}',
        f'- CPU: {env["cpu"]}; torch threads {env["torch_threads"]}',
        '- Weights are random everywhere (PyTorch default init, random VGG19, random dictionary): speed, memory '
        'and agreement only, no quality figure.',
        '',
        '## Summary',
        '',
    ]
    out += _table(
        ['section', 'status', 'seconds', 'note'],
        [
            [TITLES[k], s['status'], _num(s.get('wall_s'), '.1f', '-'), s.get('note') or '']
            for k, s in ((k, report['sections'][k]) for k in SECTIONS)
        ],
    )
    for key in SECTIONS:
        s = report['sections'][key]
        out += ['', f'## {TITLES[key]}', '', f'Status: {s["status"]}' + (f' ({s["note"]})' if s.get('note') else '')]
        if s['status'] == 'pending':
            continue
        out.append('')
        out += _FORMATTERS[key](s)
    return '\n'.join(out).rstrip() + '\n'


def _format_cuda_tests(s):
    if 'command' not in s:
        return []
    lines = [f'`{s["command"]}`', '']
    if 'passed' in s:
        lines += _table(['passed', 'skipped', 'failed'], [[s['passed'], s['skipped'], s['failed']]])
    if s.get('summary'):
        lines += ['', f'pytest: `{s["summary"]}` (full output: {s.get("log", "cuda_tests.log")})']
    return lines


def _format_training(s):
    if 'rows' not in s:
        return []
    lines = [
        f'Preset `{s["preset"]}`: {s["size"]}x{s["size"]} from {s["lq_size"]}x{s["lq_size"]} (x8), K={s["num_atoms"]}, '
        f'batch {s["batch"]}, {s["warmup"]} warm-up + {s["iters"]} timed iterations per row; data: {s["data"]} '
        f'({s["loader_workers"]} loader workers; the wait is for that synthetic in-memory set, not for disk). '
        'it/s: timed iterations over their compute time (feed_data + optimize_parameters, synchronised); '
        "wall it/s adds the batch waits. Peak: torch.cuda.max_memory_allocated, reset before each row's model is "
        "built (weights, optimiser states and the frozen teacher included). fp32 keeps PyTorch's TF32 settings "
        '(header); bf16 is `train: amp: bf16` (autocast, losses in fp32).',
        '',
    ]
    rows = []
    for r in s['rows']:
        if 'error' in r:
            rows.append([r['recipe'], r['precision'], 'ERROR', r['error'], '', '', '', '', '', ''])
            continue
        rows.append([
            r['recipe'], r['precision'], r['timed'], _num(r['iters_per_s'], '.2f'), _num(r['median_ms'], '.1f'),
            _num(r['wall_iters_per_s'], '.2f'),
            f'{_num(r["loader_wait_ms_mean"], ".2f")} / {_num(r["loader_wait_ms_max"], ".2f")}',
            _num(r['peak_mib'], '.0f'), 'yes' if r['finite'] else 'NO', r['note'],
        ])  # fmt: skip
    lines += _table(
        ['recipe', 'precision', 'timed', 'it/s', 'median ms/it', 'wall it/s', 'loader wait ms (mean / max)',
         'peak CUDA MiB', 'losses finite', 'note'],
        rows,
    )  # fmt: skip
    return lines


def _format_ddp(s):
    if 'command' not in s:
        return []
    rows = [[
        s['backend'], 'yes' if s['status'] == 'passed' else 'NO', _num(s['wall_s'], '.1f'), s['returncode'],
        'yes' if s['checkpoint'] else 'no', 'yes' if s['validated'] else 'no', _num(s.get('val_psnr'), '.2f'),
    ]]  # fmt: skip
    lines = [f'`{s["command"]}`: {s["recipe"]}; synthetic faces on disk; output in {s["log"]}.', '']
    lines += _table(['backend', 'success', 'wall s', 'exit code', 'checkpoint', 'validated', 'val PSNR'], rows)
    if s.get('nccl_seen') is not None:
        lines += ['', f'NCCL_DEBUG=INFO output seen: {"yes" if s["nccl_seen"] else "no"}.']
    if s.get('output_tail'):
        lines += ['', '```', s['output_tail'][-2000:], '```']
    return lines


def _format_inference(s):
    if 'rows' not in s:
        return []
    z = s['sizes']
    lines = [
        f'{z["out_size"]}x{z["out_size"]} from {z["out_size"] // z["scale"]}x{z["out_size"] // z["scale"]}, batch '
        f'{s["batch"]}, median of {s["runs"]} batch calls after one call that checks the output and {s["warmup"]} more '
        'warm-up; random input; the network as '
        'prepare_network leaves it (eval, inference mode, spectral norms baked, channels-last where marked cl); '
        f"precisions: {', '.join(s['precisions'])}. Peak: CUDA allocator peak during that precision's runs.",
        '',
    ]
    rows = []
    for r in s['rows']:
        if 'error' in r:
            rows.append([r['model'], 'ERROR', r['error'], '', '', ''])
            continue
        rows.append([
            r['model'] + (' (cl)' if r['channels_last'] else ''), r['precision'], _num(r['faces_per_s'], '.1f'),
            _num(r['batch_ms'], '.2f'), _num(r['peak_mib'], '.0f'), 'yes' if r['finite'] else 'NO',
        ])  # fmt: skip
    lines += _table(['model', 'precision', 'faces/s', 'ms / batch', 'peak CUDA MiB', 'finite'], rows)
    return lines


def _format_equality(s):
    if not s.get('rows'):
        return []
    z = s['sizes']
    lines = [
        f'Same random weights and input (batch {s["batch"]}, {z["out_size"]}x{z["out_size"]} '
        f'output), fp32 with TF32 off; pass: max |CPU - CUDA| <= {s["tolerance"]:g} (images in [0, 1]). The TF32 '
        "column is the same comparison under PyTorch's default TF32 settings, for information.",
        '',
    ]
    rows = []
    for r in s['rows']:
        if 'error' in r:
            rows.append([r['key'], 'ERROR', r['error'], '', ''])
            continue
        rows.append([
            r['model'], f'{r["max_abs_diff"]:.2e}', f'{r["max_abs_diff_tf32_default"]:.2e}',
            f'{r["max_abs_output"]:.3f}', 'yes' if r['passed'] else 'NO',
        ])  # fmt: skip
    lines += _table(['model', 'max abs diff (fp32)', 'max abs diff (TF32 default)', 'max abs output', 'passed'], rows)
    return lines


_FORMATTERS = {
    'cuda_tests': _format_cuda_tests,
    'training': _format_training,
    'ddp': _format_ddp,
    'inference': _format_inference,
    'equality': _format_equality,
}


# ---------------------------------------------------------------------------------------------------------------
# The whole check


def check_device(device):
    """Validate ``device``: ``'cpu'``, ``'cuda'`` or ``'cuda:N'`` with CUDA present.

    Raises:
        GpuCheckError: A CUDA device asked for where there is none, or another device type.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise GpuCheckError(f'--device {device}: {e}') from e
    if dev.type not in ('cpu', 'cuda'):
        raise GpuCheckError(f'--device {device}: use cuda, cuda:N or cpu')
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise GpuCheckError(f'--device {device}: CUDA is not available here; use --device cpu (with --quick)')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GpuCheckError(f'--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)')
    return dev


def run_gpu_check(out_dir, device='cuda', quick=False, recipes=None, budget_s=DEFAULT_BUDGET_S, tests_dir='auto'):
    """Check the GPU path end to end and write ``out_dir/gpu_check.json`` and ``gpu_check.md`` as it goes.

    Args:
        out_dir (str): Report folder (created); the subprocess logs go there too.
        device (str): ``'cuda'``, ``'cuda:N'`` or ``'cpu'`` (the machinery only; labelled so).
        quick (bool): :data:`QUICK` instead of :data:`FULL`: smoke sizes, 1 + 2 iterations, two recipes, a tiny
            inference batch (for the test suite on a CPU).
        recipes (Sequence[str] | None): Training recipes (keys of :data:`facesr_kd.recipes.METHODS`); None:
            :data:`DEFAULT_RECIPES` (:data:`QUICK_RECIPES` with ``quick``).
        budget_s (float): Seconds for the whole check; the training section stops when they are spent and the
            other sections are skipped once their share is gone.
        tests_dir (str | None): The tests folder for section 1; ``'auto'``: :func:`find_tests_dir`; None: skip.

    Returns:
        dict: The report (what ``gpu_check.json`` holds); ``report['passed']`` is True when every section that
        ran passed.

    Raises:
        GpuCheckError: A bad ``device`` (CUDA asked for where there is none) or unknown recipes.
    """
    dev = check_device(device)
    device = str(dev)
    if dev.type == 'cuda' and dev.index is not None:
        torch.cuda.set_device(dev.index)
    settings = QUICK if quick else FULL
    recipes = list(recipes or (QUICK_RECIPES if quick else DEFAULT_RECIPES))
    unknown = [r for r in recipes if r not in METHODS]
    if unknown:
        raise GpuCheckError(f'unknown recipes {unknown}; choose from {list(METHODS)}')
    if tests_dir == 'auto':
        tests_dir = find_tests_dir()
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    reserve = {k: (QUICK_RESERVE_S if quick else v) for k, v in RESERVE_S.items()}
    report = {
        'tool': 'facesr-kd-gpu-check',
        'mode': 'quick (smoke sizes, 1 + 2 iterations)' if quick else 'full (paper sizes)',
        'quick': bool(quick),
        'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'budget_s': budget_s,
        'elapsed_s': 0.0,
        'finished': False,
        'complete': True,
        'passed': True,
        'recipes': recipes,
        'settings': {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
        'environment': environment(device),
        'sections': {k: {'title': TITLES[k], 'status': 'pending'} for k in SECTIONS},
    }

    def save():
        report['elapsed_s'] = time.perf_counter() - t0
        failed = [k for k, s in report['sections'].items() if s['status'] == 'failed']
        report['passed'] = not failed
        write_json(os.path.join(out_dir, 'gpu_check.json'), report, indent=1)
        write_text(os.path.join(out_dir, 'gpu_check.md'), format_report(report))

    save()
    _log(f'{report["environment"]["gpu"]}, torch {torch.__version__}, CUDA {torch.version.cuda}; report: {out_dir}')
    work = tempfile.mkdtemp(prefix='facesr_gpu_check_')
    assets_cache = {}
    try:
        for i, key in enumerate(RUN_ORDER):
            later = sum(reserve[k] for k in RUN_ORDER[i + 1 :])
            allowance_end = deadline - later
            section = report['sections'][key]
            _log(f'{TITLES[key]} ({allowance_end - time.perf_counter():.0f} s left for it)')
            if time.perf_counter() >= allowance_end:
                section.update(status='skipped', note='skipped: time budget spent before this section')
                report['complete'] = False
                save()
                continue
            section['status'] = 'running'
            start = time.perf_counter()

            def partial(so_far, section=section, start=start):
                section.update(copy.deepcopy(so_far), wall_s=time.perf_counter() - start)
                save()

            try:
                if key == 'cuda_tests':
                    result = check_cuda_tests(out_dir, tests_dir, allowance_end - time.perf_counter(), device)
                elif key == 'ddp':
                    result = check_ddp(work, out_dir, device, allowance_end - time.perf_counter(), assets_cache)
                elif key == 'inference':
                    result = check_inference(device, settings, allowance_end, on_row=partial)
                elif key == 'equality':
                    result = check_equality(device, settings, allowance_end, on_row=partial)
                else:
                    result = check_training(work, device, settings, recipes, allowance_end, assets_cache, partial)
            except Exception as e:  # a section that breaks is recorded; the others still run
                result = {
                    'status': 'failed',
                    'note': f'{type(e).__name__}: {e}',
                    'traceback': _tail(traceback.format_exc()),
                }
            section.update(result, status=result['status'], wall_s=time.perf_counter() - start)
            if result.get('cut_short') or 'time budget' in (result.get('note') or ''):
                report['complete'] = False
            _log(f'  -> {section["status"]}' + (f': {section["note"]}' if section.get('note') else ''))
            save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for section in report['sections'].values():
            if section['status'] == 'running':  # an exception that is not an Exception (Ctrl-C) stopped it
                section.update(status='failed', note='interrupted')
        report['finished'] = True
        save()
    _log(f'{"PASSED" if report["passed"] else "FAILED"} in {report["elapsed_s"]:.1f} s: {out_dir}/gpu_check.md')
    return report
