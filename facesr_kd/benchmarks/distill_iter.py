"""Time one training iteration of each recipe at the same batch: distillation against the student without KD.

The distillation adds a teacher forward pass (no gradients) and a discriminator step to the student's
iteration; the target is at most 1.5x the iteration without KD. The networks use one fixed random VGG19 and a
random dictionary: speed does not depend on the weights.

Usage::

    facesr-kd-benchmark-iter --preset paper --batch 4 --iters 5
"""

import os
import re
import statistics
import tempfile
import time

from facesr_kd.archs.component_dictionary import dictionary_shapes, save_dictionary
from facesr_kd.archs.vgg19 import save_random_vgg19
from facesr_kd.face.components import template_boxes
from facesr_kd.recipes import PRESETS, latest_checkpoint, make_train_options, parsed_options
from facesr_kd.utils.checkpoint import save_sr_checkpoint

import torch
from basicsr.models import build_model
from tqdm import tqdm


def random_assets(work, preset, vgg_file=None, seed=0):
    """A random VGG19, a random dictionary and a random-weight teacher checkpoint for ``preset``'s sizes.

    Args:
        work (str): Folder to write them in.
        preset (dict): Sizes: ``size``, ``num_feat``, ``num_atoms`` and optionally ``input_skip``.
        vgg_file (str | None): An existing random VGG19 file to reuse.
        seed (int): Seed of the dictionary and the teacher.

    Returns:
        dict: ``vgg``, ``dict`` and ``teacher`` file paths (the checkpoint has its ``arch``, so a student can
        also be initialised from it).
    """
    from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher

    os.makedirs(work, exist_ok=True)
    size = preset['size']
    vgg_file = vgg_file or save_random_vgg19(os.path.join(work, 'vgg19_random.pth'))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        atoms = {k: torch.randn(preset['num_atoms'], *s) for k, s in dictionary_shapes(size).items()}
        dict_path = os.path.join(work, f'dict_{size}_k{preset["num_atoms"]}.pth')
        save_dictionary(dict_path, atoms, size)
        del atoms
        arch = {
            'type': 'DFDNetTeacher',
            'out_size': size,
            'num_feat': preset['num_feat'],
            'num_atoms': preset['num_atoms'],
            'input_skip': bool(preset.get('input_skip', False)),
        }
        teacher = DFDNetTeacher(**{k: v for k, v in arch.items() if k != 'type'}, dict_path=dict_path,
                                vgg_weights=vgg_file)  # fmt: skip
    teacher_ckpt = os.path.join(work, f'teacher_{size}.pth')
    save_sr_checkpoint(teacher_ckpt, teacher, arch, scale=8)
    return {'vgg': vgg_file, 'dict': dict_path, 'teacher': teacher_ckpt}


def recipe_options(method, preset, work, assets, device, amp=None):
    """The training options of ``method`` at ``preset``'s sizes, reading ``assets``, ready for ``build_model``.

    Args:
        amp (str | None): ``train: amp`` (``'bf16'``, ``'fp16'``) or None for fp32.
    """
    data = {'train': work, 'test': work}  # not read: the batches come from a synthetic DataLoader
    opt = make_train_options(method, preset, work, data, assets['vgg'], assets['dict'], device)
    opt['name'] = f'gpu_check_{re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")}'
    if torch.device(device).type == 'cuda':
        opt['num_gpu'] = 1  # BasicSR's parse_options resolves 'auto'; built in-process nobody does
    if amp:
        opt['train']['amp'] = amp
    if 'network_t' in opt:
        opt['path']['pretrain_network_t'] = assets['teacher']
    if opt['path'].get('pretrain_network_g') == latest_checkpoint(work, 'Teacher'):
        opt['path']['pretrain_network_g'] = assets['teacher']
    return parsed_options(opt, work)


def _model(method, preset, work, assets, device):
    opt = recipe_options(method, preset, work, assets, device)
    opt['train']['ema_decay'] = 0.999
    return build_model(opt)


def time_iterations(model, batch, iters, warmup, sync):
    """Median seconds of ``model.optimize_parameters`` after ``warmup`` untimed iterations."""
    times = []
    for it in tqdm(range(warmup + iters), desc=type(model).__name__, leave=False):
        model.feed_data(batch)
        start = time.perf_counter()
        model.optimize_parameters(it + 1)
        sync()
        if it >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark(preset_name='paper', batch_size=4, iters=5, warmup=2, device='cpu', methods=None, shared_encoder=True):
    """Time one iteration of each recipe.

    Args:
        shared_encoder (bool): Let the distillation encode each batch once for teacher and student (its default
            when their encoders match); False times it with two encoder passes, for comparison.

    Returns:
        dict[str, float]: Method to median seconds per iteration.
    """
    preset = dict(PRESETS[preset_name])
    preset.setdefault('num_feat', 64)
    size = preset['size']
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    methods = methods or ['Student w/o KD', 'Student']
    with tempfile.TemporaryDirectory() as work:
        assets = random_assets(work, preset)
        batch = {
            'lq': torch.rand(batch_size, 3, size // 8, size // 8, device=device),
            'gt': torch.rand(batch_size, 3, size, size, device=device),
            'boxes': torch.from_numpy(template_boxes(size)).float().expand(batch_size, 4, 4).to(device),
        }
        results = {}
        for method in methods:
            model = _model(method, preset, work, assets, device)
            if hasattr(model, 'share_encoder'):
                model.share_encoder = model.share_encoder and shared_encoder
            results[method] = time_iterations(model, batch, iters, warmup, sync)
            del model
    return results


def format_results(results, preset_name, batch, iters, device):
    """The Markdown table of :func:`benchmark`'s results, with its heading line."""
    size = PRESETS[preset_name]['size']
    lines = [
        f'One training iteration, {size}x{size} output, batch {batch}, {device} '
        f'({torch.get_num_threads()} threads), median of {iters}:',
        '',
        '| Recipe | s / iteration | vs. without KD |',
        '|---|---|---|',
    ]
    base = results.get('Student w/o KD')
    for method, seconds in results.items():
        ratio = f'{seconds / base:.2f}x' if base else '–'
        lines.append(f'| {method} | {seconds:.3f} | {ratio} |')
    return '\n'.join(lines)
