"""Shared fixtures. Real faces are read in place from ``../shared/data`` (never copied into the project)."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import cv2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
FFHQ256 = SHARED_DATA / 'faces' / 'aligned' / 'ffhq256'
FACEXLIB_WEIGHTS = SHARED_DATA / 'weights' / 'facexlib'
# Faces per photo of faces/whole as ../shared/data/README.md counts them (facexlib retinaface_mobile0.25,
# resize=640, eye_dist_threshold=5).
README_COUNTS = {
    'insightface_t1.jpg': 6,
    'deepface_selfie-many-people.jpg': 5,
    'deepface_couple.jpg': 2,
    'facenet-pytorch_multiface.jpg': 6,
    'codeformer_00.jpg': 4,
    'codeformer_01.jpg': 4,
    'codeformer_02.png': 4,
    'codeformer_06.png': 2,
    'gfpgan_00.jpg': 2,
    'gfpgan_10045.png': 3,
    'skimage_astronaut.png': 1,
}


@pytest.fixture(scope='session', autouse=True)
def one_thread():
    """Run in-process tests single-threaded: on 2 shared cores a second intra-op thread mostly waits."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


# CI sets this: there a missing data folder fails the run instead of skipping the tests that need it.
REQUIRE_DATA = os.environ.get('FACESR_KD_REQUIRE_SHARED_DATA') == '1'


def require_shared_data(folder=SHARED_DATA):
    """Skip the calling test (fail under CI's FACESR_KD_REQUIRE_SHARED_DATA=1) when ``folder`` is missing."""
    if not folder.is_dir():
        message = (
            f'{folder} not found: this test reads the staged faces and weights there (the folder `shared/data` '
            'beside the checkout)'
        )
        if REQUIRE_DATA:
            pytest.fail(message + '; FACESR_KD_REQUIRE_SHARED_DATA=1 forbids skipping it')
        pytest.skip(message)


@pytest.fixture(scope='session')
def shared_data():
    require_shared_data()
    return SHARED_DATA


def ffhq_ids(start, stop):
    """Paths of the ffhq256 faces with ids in [start, stop), skipping the missing id 01099."""
    require_shared_data(FFHQ256)
    return [p for i in range(start, stop) if (p := FFHQ256 / f'{i:05d}.jpg').exists()]


@pytest.fixture(scope='session')
def paired_faces(tmp_path_factory, shared_data):
    """A tiny paired set made from real faces: HR 64x64 and LR 8x8 (x8), 6 train and 2 val faces, as PNGs.

    Returns:
        dict: ``train_hr``, ``train_lr``, ``val_hr``, ``val_lr`` folders.
    """
    from basicsr.utils.matlab_functions import imresize

    root = tmp_path_factory.mktemp('paired_faces')
    split = {'train': ffhq_ids(100, 106), 'val': ffhq_ids(0, 2)}
    out = {}
    for name, paths in split.items():
        hr_dir, lr_dir = root / name / 'hr', root / name / 'lr'
        hr_dir.mkdir(parents=True)
        lr_dir.mkdir(parents=True)
        for p in paths:
            hr = cv2.resize(cv2.imread(str(p)), (64, 64), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(hr_dir / f'{p.stem}.png'), hr)
            lr = imresize(hr.astype('float32') / 255.0, 1 / 8)
            cv2.imwrite(str(lr_dir / f'{p.stem}.png'), (lr.clip(0, 1) * 255).round().astype('uint8'))
        out[f'{name}_hr'], out[f'{name}_lr'] = str(hr_dir), str(lr_dir)
    return out


@pytest.fixture(scope='session')
def student_ckpt(tmp_path_factory):
    """A tiny x8 DFDNetStudent (32 -> 256, num_feat 8), RANDOM weights and random VGG encoder, as a checkpoint."""
    from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
    from facesr_kd.utils.checkpoint import save_sr_checkpoint

    import torch

    torch.manual_seed(0)
    net = DFDNetStudent(out_size=256, num_feat=8, vgg_pretrained=False)
    path = tmp_path_factory.mktemp('student') / 'student_x8.pth'
    save_sr_checkpoint(str(path), net, {'type': 'DFDNetStudent', 'out_size': 256, 'num_feat': 8}, scale=8)
    return str(path)


@pytest.fixture
def startup_hook():
    """The `.pth` startup hook installed in this interpreter's site-packages for the test's duration."""
    from facesr_kd import hook

    pth = Path(sysconfig.get_paths()['purelib']) / hook.PTH_NAME
    previous = pth.read_text() if pth.exists() else None
    if previous is None or hook.classify(previous) != 'current':
        hook.install()  # a stale file (an older facesr_kd's) is replaced for the test and put back after
    yield pth
    if previous is None:
        hook.uninstall()
    elif hook.classify(previous) != 'current':
        pth.write_text(previous)


def run_python(args, cwd, env=None, timeout=600, check=True):
    """Run ``python args...`` in ``cwd``; return the completed process (stdout and stderr merged)."""
    full_env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1', **(env or {})}
    proc = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f'python {" ".join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout[-6000:]}')
    return proc


def tiny_paired_options(root, network_g, **overrides):
    """A valid option dict of ours (FaceSRModel, 4 iterations of L1 on a PairedImageDataset), every input path
    existing under ``root``; ``overrides`` replace top-level keys, ``train_extra`` / ``dataset_extra`` add to the
    ``train`` section / the train dataset."""
    for folder in ('hr', 'lr'):
        (root / folder).mkdir(exist_ok=True)
    dataset = {
        'name': 'pairs',
        'type': 'PairedImageDataset',
        'dataroot_gt': str(root / 'hr'),
        'dataroot_lq': str(root / 'lr'),
        'io_backend': {'type': 'disk'},
    }
    train_extra, dataset_extra = overrides.pop('train_extra', {}), overrides.pop('dataset_extra', {})
    return {
        'name': 'ours',
        'model_type': 'FaceSRModel',
        'scale': 8,
        'num_gpu': 0,
        'datasets': {
            'train': {**dataset, 'gt_size': 64, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, **dataset_extra},
            'val': dict(dataset),
        },
        'network_g': dict(network_g),
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'train': {
            **train_extra,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5},
            'total_iter': 4,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
        },
        'val': {'val_freq': 2, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
        **overrides,
    }
