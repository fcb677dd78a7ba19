"""Distributed training on CPU (Gloo): the distillation recipe without EMA trains, validates on rank 0 and saves.

Validation runs on rank 0 alone; it must use the bare student, since a DDP forward broadcasts the student's
buffers (spectral-norm vectors, VGG mean/std) and would wait for the other rank. The VGG19 and the teacher are
random-initialised and passed explicitly: the test checks the mechanics, not quality.
"""

import facesr_kd  # noqa: F401
from facesr_kd.archs.component_dictionary import dictionary_shapes, save_dictionary
from facesr_kd.archs.vgg19 import save_random_vgg19
from facesr_kd.face.components import save_boxes_file, template_boxes
from facesr_kd.recipes import PRESETS, make_train_options, write_yaml

import cv2
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from .conftest import ffhq_ids, run_python

SMOKE = PRESETS['smoke']
SIZE = SMOKE['size']

pytestmark = [pytest.mark.usefixtures('shared_data'), pytest.mark.slow]


def _face_folder(root, paths):
    """``hr/`` (SIZE) and ``lr_x8/`` PNGs, ``meta_info.txt`` and template ``boxes.json``, as preparation writes them."""
    from basicsr.utils.matlab_functions import imresize

    (root / 'hr').mkdir(parents=True)
    (root / 'lr_x8').mkdir()
    for p in paths:
        hr = cv2.resize(cv2.imread(str(p)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / 'hr' / f'{p.stem}.png'), hr)
        lr = imresize(hr.astype('float32') / 255.0, 1 / 8)
        cv2.imwrite(str(root / 'lr_x8' / f'{p.stem}.png'), (lr.clip(0, 1) * 255).round().astype('uint8'))
    (root / 'meta_info.txt').write_text(''.join(f'{p.stem}.png\n' for p in paths))
    save_boxes_file(str(root / 'boxes.json'), {f'{p.stem}.png': template_boxes(SIZE) for p in paths}, SIZE, 'template')
    return str(root)


def test_two_gloo_ranks_distil_without_ema_validate_save_and_agree(tmp_path, repo_root):
    data = {
        'train': _face_folder(tmp_path / 'train', ffhq_ids(100, 104)),
        'test': _face_folder(tmp_path / 'test', ffhq_ids(0, 2)),
    }
    vgg = save_random_vgg19(tmp_path / 'vgg19_random.pth')
    torch.manual_seed(0)
    atoms = {k: torch.randn(SMOKE['num_atoms'], *s) for k, s in dictionary_shapes(SIZE).items()}
    dict_path = str(tmp_path / 'dict.pth')
    save_dictionary(dict_path, atoms, SIZE)
    teacher = ARCH_REGISTRY.get('DFDNetTeacher')(
        out_size=SIZE, num_feat=SMOKE['num_feat'], num_atoms=SMOKE['num_atoms'], dict_path=dict_path,
        vgg_weights=vgg, input_skip=SMOKE['input_skip'],
    )  # fmt: skip
    teacher_ckpt = tmp_path / 'teacher.pth'
    torch.save({'params': teacher.state_dict()}, teacher_ckpt)

    preset = {**SMOKE, 'iters': 2, 'batch': 1}
    opt = make_train_options('Student', preset, str(tmp_path), data, vgg, dict_path, 'cpu')
    opt['name'] = 'ddp_distill'
    opt['path']['pretrain_network_t'] = str(teacher_ckpt)
    opt['train']['ema_decay'] = 0
    opt['val']['val_freq'] = 2
    opt_file = write_yaml(opt, str(tmp_path / 'ddp_distill.yml'))
    proc = run_python(
        ['-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29541',
         repo_root / 'tests' / 'ddp_worker.py', '-opt', opt_file, '--launcher', 'pytorch'],
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    sums = [float((tmp_path / f'rank{r}.txt').read_text()) for r in range(2)]
    assert sums[0] == sums[1], proc.stdout[-3000:]
    exp = tmp_path / 'experiments' / 'ddp_distill'
    assert (exp / 'models' / 'net_g_latest.pth').exists()
    log = next(exp.glob('train_ddp_distill_*.log')).read_text()
    assert 'Validation' in log and '# psnr' in log  # rank 0 validated, and the run went on to save
