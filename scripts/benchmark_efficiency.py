"""Test-time cost of the teacher, the student, a compact student, RCAN x8 and SRFBN x8 (32 -> 256 by default).

Each model is measured in a fresh subprocess (batch 1, eval mode, no autograd):

- parameters: all of them (frozen VGG19 encoder included) and the trainable ones. Spectral norm is baked into
  plain weights (:func:`facesr_kd.archs.dfdnet_blocks.bake_spectral_norm`), as in a deployed network, so
  ``W / sigma`` is not recomputed on every call;
- dictionary: the teacher's atom values (float32);
- MACs: ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2. It counts convolutions (transposed ones too)
  and matrix products, not element-wise ops, interpolation or pooling;
- latency: median wall time per face over ``--runs`` runs after ``--warmup`` runs, ``torch.set_num_threads``;
- peak memory: CPU: the process's peak resident set (VmHWM, reset after the model is built, so construction
  garbage does not count) during the runs, and that peak minus the resident set after ``import torch`` (the
  interpreter and libraries); CUDA: ``torch.cuda.max_memory_allocated`` during the runs.

The teacher is also timed with the cost of finding its landmarks: facexlib's RetinaFace mobilenet0.25 on the
bicubic-upsampled input, five landmarks, component boxes (``--model-root`` is the folder of
``detection_mobilenet0.25_Final.pth``).

Weights are random (VGG19 encoder, dictionary atoms, everything): speed and memory do not depend on them, and
no quality figure comes out of this script.

Example::

    python scripts/benchmark_efficiency.py --threads 2 --model-root ../shared/data/weights/facexlib
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODELS = ('teacher', 'student', 'student_compact', 'rcan', 'srfbn')
SAMPLE_FACE = os.path.join(ROOT, '..', 'shared', 'data', 'faces', 'aligned', 'ffhq256', '00000.jpg')


def _rss_mib(field):
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB; None where there is no /proc."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset the process's peak resident set (Linux >= 4.0); False where that is not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def build_model(name, out_size=256, scale=8, num_atoms=512, num_feat=64, compact_feat=32):
    """Build one benchmarked model with random weights (random dictionary for the teacher), in eval mode.

    Args:
        name (str): One of :data:`MODELS`.
        out_size (int): Output size.
        scale (int): Upscale factor of RCAN and SRFBN (input side = out_size / scale).
        num_atoms (int): Teacher's K.
        num_feat (int): Width of the teacher and the student.
        compact_feat (int): Width of the compact student.

    Returns:
        nn.Module
    """
    from facesr_kd.archs.dfdnet_blocks import bake_spectral_norm
    from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
    from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher
    from facesr_kd.archs.srfbn_arch import SRFBN

    import torch
    from basicsr.archs.rcan_arch import RCAN

    if name == 'teacher':
        net = DFDNetTeacher(out_size, num_feat, num_atoms, vgg_pretrained=False)
        with torch.no_grad():
            for buf in net.dictionary.buffers():
                if buf.is_floating_point():
                    buf.normal_()
            net.dictionary.loaded.fill_(True)
    elif name == 'student':
        net = DFDNetStudent(out_size, num_feat, vgg_pretrained=False)
    elif name == 'student_compact':
        net = DFDNetStudent(out_size, compact_feat, vgg_pretrained=False)
    elif name == 'rcan':
        net = RCAN(3, 3, num_feat=64, num_group=10, num_block=20, squeeze_factor=16, upscale=scale)
    elif name == 'srfbn':
        net = SRFBN(3, 3, num_feat=64, num_steps=4, num_groups=6, upscale=scale)
    else:
        raise ValueError(f'unknown model {name!r}; choose from {MODELS}')
    return bake_spectral_norm(net.eval())


def _sample_inputs(lq_size, out_size):
    """A real LR face (1, 3, lq_size, lq_size) in [0, 1] and its bicubic upsampling as a BGR uint8 image."""
    import cv2
    import numpy as np
    import torch
    import torch.nn.functional as F

    img = cv2.imread(SAMPLE_FACE)
    if img is None:
        img = (np.random.default_rng(0).random((out_size, out_size, 3)) * 255).astype(np.uint8)
    lr = cv2.resize(img, (lq_size, lq_size), interpolation=cv2.INTER_AREA)
    lq = torch.from_numpy(np.ascontiguousarray(lr[..., ::-1].transpose(2, 0, 1))).float()[None] / 255
    up = F.interpolate(lq, size=(out_size, out_size), mode='bicubic', align_corners=False)
    up_bgr = (up[0].clamp(0, 1).permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8)
    return lq, np.ascontiguousarray(up_bgr)


def _time(fn, warmup, runs, sync):
    """Median wall time of ``runs`` calls after ``warmup`` calls (the median resists a busy shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_model(
    name,
    out_size=256,
    scale=8,
    num_atoms=512,
    num_feat=64,
    compact_feat=32,
    threads=None,
    warmup=1,
    runs=3,
    device='cpu',
    model_root=None,
):
    """Measure one model in this process (meant for a fresh subprocess, see :func:`benchmark`).

    Returns:
        list[dict]: One row (two for the teacher: alone and with landmark finding) with ``model``, ``params``,
        ``trainable``, ``dict_values``, ``macs``, ``latency_s``, ``peak_mib``, ``peak_above_base_mib``,
        ``note``.
    """
    import facesr_kd  # noqa: F401  (BasicSR compatibility fixes)

    import torch

    if threads:
        torch.set_num_threads(threads)
    from torch.utils.flop_counter import FlopCounterMode

    base_rss = _rss_mib('VmRSS')
    cuda = torch.device(device).type == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    lq, up_bgr = _sample_inputs(out_size // scale, out_size)
    lq = lq.to(device)
    net = build_model(name, out_size, scale, num_atoms, num_feat, compact_feat).to(device)
    params = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    dict_values = net.dictionary.num_elements() if name == 'teacher' else 0
    boxes = None
    if name == 'teacher':
        from facesr_kd.face.components import template_boxes

        boxes = torch.as_tensor(template_boxes(out_size), dtype=torch.float32)[None].to(device)
        run = lambda: net(lq, boxes)  # noqa: E731
    else:
        run = lambda: net(lq)  # noqa: E731

    def measure(fn, label, extra_params=0, note=''):
        with torch.no_grad():
            with FlopCounterMode(display=False) as counter:
                fn()
            macs = counter.get_total_flops() / 2
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            reset = _reset_peak_rss()
            latency = _time(fn, warmup, runs, sync)
        if cuda:
            peak, above = torch.cuda.max_memory_allocated() / 2**20, None
        else:
            peak = _rss_mib('VmHWM') if reset else None
            above = None if peak is None or base_rss is None else peak - base_rss
        return {
            'key': name if not extra_params else f'{name}_landmarks',
            'model': label,
            'params': params + extra_params,
            'trainable': trainable,
            'dict_values': dict_values,
            'macs': macs,
            'latency_s': latency,
            'peak_mib': peak,
            'peak_above_base_mib': above,
            'note': note,
        }

    labels = {
        'teacher': f'DFDNetTeacher (K={num_atoms}, nf={num_feat}), template boxes',
        'student': f'DFDNetStudent (nf={num_feat})',
        'student_compact': f'DFDNetStudent compact (nf={compact_feat})',
        'rcan': f'RCAN x{scale} (10x20, 64)',
        'srfbn': f'SRFBN x{scale} (64, 4 steps, 6 groups)',
    }
    rows = [measure(run, labels[name])]
    if name == 'teacher':
        rows.append(_measure_with_landmarks(net, lq, up_bgr, out_size, device, model_root, measure))
    return rows


def _measure_with_landmarks(net, lq, up_bgr, out_size, device, model_root, measure):
    from facesr_kd.face.components import boxes_from_landmarks5, template_boxes
    from facesr_kd.face.detection import build_detector, detect_faces

    import torch

    label = 'DFDNetTeacher + landmarks (RetinaFace mobilenet0.25)'
    try:
        detector = build_detector('retinaface_mobile0.25', model_root, device=device)
    except FileNotFoundError as e:
        return {'key': 'teacher_landmarks', 'model': label, 'note': f'not measured: {e}'}
    found = []

    def pipeline():
        faces = detect_faces(detector, up_bgr, conf_threshold=0.5, resize=None)
        found.append(bool(faces))
        boxes = boxes_from_landmarks5(faces[0]['landmarks5'], out_size) if faces else template_boxes(out_size)
        return net(lq, torch.as_tensor(boxes, dtype=torch.float32)[None].to(device))

    extra = sum(p.numel() for p in detector.parameters())
    row = measure(pipeline, label, extra_params=extra)
    row['note'] = 'face found' if all(found) else 'no face found on some runs: template boxes used there'
    return row


def benchmark(
    models=MODELS,
    out_size=256,
    scale=8,
    num_atoms=512,
    num_feat=64,
    compact_feat=32,
    threads=None,
    warmup=1,
    runs=3,
    device='cpu',
    model_root=None,
    progress=True,
):
    """Measure every model in its own subprocess.

    Returns:
        list[dict]: Rows of :func:`measure_model`.
    """
    from tqdm import tqdm

    rows = []
    for name in tqdm(models, desc='benchmark', unit='model', disable=not progress):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            '--worker',
            name,
            '--out-size',
            str(out_size),
            '--scale',
            str(scale),
            '--num-atoms',
            str(num_atoms),
            '--num-feat',
            str(num_feat),
            '--compact-feat',
            str(compact_feat),
            '--warmup',
            str(warmup),
            '--runs',
            str(runs),
            '--device',
            device,
        ]
        if threads:
            cmd += ['--threads', str(threads)]
        if model_root:
            cmd += ['--model-root', model_root]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f'benchmark of {name} failed:\n{proc.stderr[-4000:]}')
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    return rows


def _fmt(value, spec, missing='n/a'):
    return missing if value is None else format(value, spec)


def format_table(rows, device='cpu', threads=None, runs=None, warmup=None):
    """Markdown table of benchmark rows, followed by the student-vs-teacher ratios."""
    mem = 'peak CUDA alloc (MiB)' if device.startswith('cuda') else 'peak RSS (MiB)'
    lines = [
        f'| model | params (M) | trainable (M) | dictionary (M values / MiB) | GMACs | latency (ms/face) | {mem} '
        '| peak above import baseline (MiB) |',
        '|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for r in rows:
        if 'params' not in r:
            lines.append(f'| {r["model"]} | {r["note"]} | | | | | | |')
            continue
        dictionary = f'{r["dict_values"] / 1e6:.1f} / {r["dict_values"] * 4 / 2**20:.0f}' if r['dict_values'] else '-'
        lines.append(
            f'| {r["model"]} | {r["params"] / 1e6:.2f} | {r["trainable"] / 1e6:.2f} | {dictionary} | '
            f'{r["macs"] / 1e9:.1f} | {r["latency_s"] * 1e3:.0f} | {_fmt(r["peak_mib"], ".0f")} | '
            f'{_fmt(r["peak_above_base_mib"], ".0f")} |'
        )
    by_key = {r['key']: r for r in rows if 'latency_s' in r}
    teacher = by_key.get('teacher')
    lines.append('')
    lines.append(
        f'Device: {device}, threads: {threads or "default"}, batch 1, latency = median of {runs} runs after '
        f'{warmup} warm-up. MACs = FLOPs / 2 (FlopCounterMode: convs and matmuls only). Random weights and '
        'dictionary: speed/memory only, no quality figure.'
    )
    if teacher:
        with_landmarks = by_key.get('teacher_landmarks')
        for key in ('student', 'student_compact'):
            s = by_key.get(key)
            if s is None:
                continue
            speed = teacher['latency_s'] / s['latency_s']
            key_mem = 'peak_mib' if device.startswith('cuda') else 'peak_above_base_mib'
            ratio = None if s[key_mem] is None or not teacher[key_mem] else s[key_mem] / teacher[key_mem]
            verdict = 'met' if speed >= 3 and ratio is not None and ratio <= 1 / 3 else 'NOT met'
            full = f' ({with_landmarks["latency_s"] / s["latency_s"]:.2f}x with landmarks)' if with_landmarks else ''
            lines.append(
                f'- {s["model"]}: {speed:.2f}x faster than the teacher{full}, peak memory '
                f"{_fmt(ratio, '.2f')} of the teacher's (target >= 3x and <= 0.33: {verdict})"
            )
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--out-size', type=int, default=256)
    parser.add_argument('--scale', type=int, default=8, help='Upscale; the LR side is out_size / scale')
    parser.add_argument('--num-atoms', type=int, default=512, help="Teacher's K")
    parser.add_argument('--num-feat', type=int, default=64, help='Width of the teacher and the student')
    parser.add_argument('--compact-feat', type=int, default=32, help='Width of the compact student')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--model-root', help='Folder of detection_mobilenet0.25_Final.pth (landmark cost)')
    parser.add_argument('--json', help='Also write the rows to this JSON file')
    parser.add_argument('--worker', choices=MODELS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(args):
    kwargs = dict(
        out_size=args.out_size,
        scale=args.scale,
        num_atoms=args.num_atoms,
        num_feat=args.num_feat,
        compact_feat=args.compact_feat,
        threads=args.threads,
        warmup=args.warmup,
        runs=args.runs,
        device=args.device,
        model_root=args.model_root,
    )
    if args.worker:
        print(json.dumps(measure_model(args.worker, **kwargs)))
        return None
    rows = benchmark(args.models, **kwargs)
    print(format_table(rows, args.device, args.threads, args.runs, args.warmup))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main(parse_args())
