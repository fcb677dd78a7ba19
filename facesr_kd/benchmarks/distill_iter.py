"""Time one training iteration of each recipe at the same batch: distillation against the student without KD.

The distillation adds a teacher forward pass (no gradients) and a discriminator step to the student's
iteration; the target is at most 1.5x the iteration without KD. The networks use one fixed random VGG19 and a
random dictionary: speed does not depend on the weights.

Usage::

    facesr-kd-benchmark-iter --preset paper --batch 4 --iters 5
"""

import os
import statistics
import tempfile
import time

from facesr_kd.archs.component_dictionary import dictionary_shapes, save_dictionary
from facesr_kd.archs.vgg19 import save_random_vgg19
from facesr_kd.face.components import template_boxes
from facesr_kd.recipes import PRESETS, make_train_options, parsed_options

import torch
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY
from tqdm import tqdm


def _model(method, preset, work, vgg_file, dict_path, device, teacher_ckpt=None):
    data = {'train': work, 'test': work}
    opt = make_train_options(method, preset, work, data, vgg_file, dict_path, device)
    opt['train']['ema_decay'] = 0.999
    if teacher_ckpt is not None:
        opt['path']['pretrain_network_t'] = teacher_ckpt
    return build_model(parsed_options(opt, work))


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
        vgg_file = save_random_vgg19(os.path.join(work, 'vgg19_random.pth'))
        atoms = {k: torch.randn(preset['num_atoms'], *s) for k, s in dictionary_shapes(size).items()}
        dict_path = os.path.join(work, 'dict.pth')
        save_dictionary(dict_path, atoms, size)
        teacher = ARCH_REGISTRY.get('DFDNetTeacher')(
            out_size=size,
            num_feat=preset['num_feat'],
            num_atoms=preset['num_atoms'],
            dict_path=dict_path,
            vgg_weights=vgg_file,
        )
        teacher_ckpt = os.path.join(work, 'teacher.pth')
        torch.save({'params': teacher.state_dict()}, teacher_ckpt)
        del teacher
        batch = {
            'lq': torch.rand(batch_size, 3, size // 8, size // 8, device=device),
            'gt': torch.rand(batch_size, 3, size, size, device=device),
            'boxes': torch.from_numpy(template_boxes(size)).float().expand(batch_size, 4, 4).to(device),
        }
        results = {}
        for method in methods:
            model = _model(method, preset, work, vgg_file, dict_path, device, teacher_ckpt)
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
