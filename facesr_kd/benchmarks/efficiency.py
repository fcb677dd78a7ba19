"""Test-time cost of every student, the teacher (with and without its landmark step), RCAN x8 and SRFBN x8, on
PyTorch and on ONNX Runtime, at one or more thread counts (32 -> 256 by default).

Models (``--models``): ``teacher`` (DFDNetTeacher, K = 512; also timed with its landmark step),
``student`` (DFDNetStudent nf 64), ``student_compact`` (DFDNetStudent nf 32), ``lite`` and ``tiny``
(LiteFaceStudent, see :data:`LITE_SIZES`), ``rcan`` (RCAN x8, 10 groups x 20 blocks, 64) and ``srfbn``
(SRFBN x8, 64 features, 4 steps, 6 groups).

Every (model, thread count) is measured in fresh subprocesses, one per runtime, so that one model's memory does
not count in the next one's and each process has its own import baseline:

- parameters: all of them (frozen VGG19 encoder included) and the trainable ones; the teacher's dictionary
  atoms (float32 buffers) are counted apart;
- MACs: ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2 at batch 1. It counts convolutions (transposed
  ones too) and matrix products, not element-wise ops, interpolation, pixel shuffle or pooling;
- PyTorch: the network in the form :class:`facesr_kd.inference.FaceSRRestorer` runs it
  (:func:`facesr_kd.inference.prepare_network`: eval, ``torch.inference_mode``, spectral norms baked into plain
  weights, channels-last for the archs where that measured faster; ``--memory-format`` forces one), with
  ``torch.set_num_threads``;
- ONNX Runtime: the same network exported by :func:`facesr_kd.export.export_onnx` (dynamic batch), CPU execution
  provider, ``intra_op_num_threads`` = the thread count, one inter-op thread, all graph optimisations, run in
  a process that imports only onnxruntime, NumPy and OpenCV. The teacher needs component boxes and is not
  exported;
- latency: median wall time per face at batch 1 over ``--runs`` runs after ``--warmup`` runs; throughput:
  faces per second at batch ``--throughput-batch`` (8), the batch over the median time of a batch call;
- peak memory: CPU: the process's peak resident set (VmHWM, reset once the model is built or the session
  created, so construction garbage does not count) during the batch-1 runs (``peak_mib``) and that peak minus
  the resident set after the imports (``peak_above_base_mib``), the same during the batch runs
  (``*_batch_*``); CUDA: ``torch.cuda.max_memory_allocated`` (ONNX Runtime is then not measured).

The teacher is also timed with the cost of finding its landmarks: facexlib's RetinaFace mobilenet0.25 on the
bicubic-upsampled input, five landmarks, component boxes (``--model-root`` is the folder of
``detection_mobilenet0.25_Final.pth``; without it that row says it was not measured).

Weights are random (PyTorch's default initialisation, random VGG19 encoder, random dictionary atoms): speed and
memory do not depend on them, and no quality figure comes out of this script.

Example (the issue's table: 1 and 2 threads, batch 1 and 8, 32 -> 256)::

    facesr-kd-benchmark --threads 1 2 --warmup 1 --runs 5 \\
        --model-root ../shared/data/weights/facexlib --json results/efficiency.json
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = ('teacher', 'student', 'student_compact', 'lite', 'tiny', 'rcan', 'srfbn')
# The students, in table order; "the fastest shipped student" is the fastest of those measured.
STUDENTS = ('student', 'student_compact', 'lite', 'tiny')
# The two shipped LiteFaceStudent sizes (options/*lite_student* and *tiny_student*).
LITE_SIZES = {
    'lite': {'num_feat': 64, 'num_block': 8, 'feat_channels': 32},
    'tiny': {'num_feat': 32, 'num_block': 4, 'feat_channels': 16},
}
MEMORY_FORMATS = ('auto', 'channels_last', 'contiguous')
DEFAULT_THREADS = (1, 2)
# A real face for the inputs (relative to the working folder: the staged faces beside a checkout).
SAMPLE_FACE = os.path.join('..', 'shared', 'data', 'faces', 'aligned', 'ffhq256', '00000.jpg')
# Issue 11's targets for the fastest student, against the teacher with landmarks and RCAN, from the same run.
TARGET_VS_TEACHER = 10.0
TARGET_VS_RCAN = 2.0
TARGET_MEMORY = 0.1


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


def machine_info():
    """One line naming the machine: CPU model, logical cores, OS, Python, torch and onnxruntime versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), cpu)
    except OSError:
        pass
    versions = []
    for module in ('torch', 'onnxruntime'):
        try:
            versions.append(f'{module} {__import__(module).__version__}')
        except ImportError:
            versions.append(f'{module} not installed')
    return f'{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, ' + ', '.join(
        [f'Python {platform.python_version()}', *versions]
    )


def model_label(name, scale=8, num_atoms=512, num_feat=64, compact_feat=32):
    """The table's name of a benchmarked model."""
    labels = {
        'teacher': f'DFDNetTeacher (K={num_atoms}, nf={num_feat}), template boxes',
        'teacher_landmarks': f'DFDNetTeacher (K={num_atoms}, nf={num_feat}) + landmarks (RetinaFace mobilenet0.25)',
        'student': f'DFDNetStudent (nf={num_feat})',
        'student_compact': f'DFDNetStudent compact (nf={compact_feat})',
        'rcan': f'RCAN x{scale} (10x20, 64)',
        'srfbn': f'SRFBN x{scale} (64, 4 steps, 6 groups)',
    }
    for size, opt in LITE_SIZES.items():
        labels[size] = f'LiteFaceStudent {size} ({opt["num_feat"]}, {opt["num_block"]} blocks, {opt["feat_channels"]})'
    return labels[name]


def build_model(name, out_size=256, scale=8, num_atoms=512, num_feat=64, compact_feat=32):
    """Build one benchmarked model with random weights (random dictionary for the teacher), in eval mode.

    Args:
        name (str): One of :data:`MODELS`.
        out_size (int): Output size.
        scale (int): Upscale factor of LiteFaceStudent, RCAN and SRFBN (input side = out_size / scale).
        num_atoms (int): Teacher's K.
        num_feat (int): Width of the teacher and the student.
        compact_feat (int): Width of the compact student.

    Returns:
        nn.Module: Spectral norms baked, eval mode (:func:`facesr_kd.inference.prepare_network` does the rest).
    """
    from facesr_kd.archs.arch_util import bake_spectral_norm
    from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
    from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher
    from facesr_kd.archs.lite_student_arch import LiteFaceStudent
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
    elif name in LITE_SIZES:
        net = LiteFaceStudent(out_size, scale, **LITE_SIZES[name])
    elif name == 'rcan':
        net = RCAN(3, 3, num_feat=64, num_group=10, num_block=20, squeeze_factor=16, upscale=scale)
    elif name == 'srfbn':
        net = SRFBN(3, 3, num_feat=64, num_steps=4, num_groups=6, upscale=scale)
    else:
        raise ValueError(f'unknown model {name!r}; choose from {MODELS}')
    return bake_spectral_norm(net.eval())


def sample_lq(lq_size, batch=1):
    """A real LR face, repeated ``batch`` times: float32 (batch, 3, lq_size, lq_size) RGB in [0, 1] (NumPy).

    The face is ``SAMPLE_FACE`` area-shrunk to ``lq_size``; random pixels where that file is missing.
    """
    import cv2
    import numpy as np

    img = cv2.imread(SAMPLE_FACE)
    if img is None:
        img = (np.random.default_rng(0).random((lq_size * 8, lq_size * 8, 3)) * 255).astype(np.uint8)
    lr = cv2.resize(img, (lq_size, lq_size), interpolation=cv2.INTER_AREA)
    lq = np.ascontiguousarray(lr[..., ::-1].transpose(2, 0, 1), dtype=np.float32)[None] / 255
    return np.ascontiguousarray(np.repeat(lq, batch, axis=0))


def _upsampled_bgr(lq, out_size):
    """The bicubic upsampling of one LR face (1, 3, h, w) tensor as a BGR uint8 (out_size, out_size, 3) image."""
    import numpy as np
    import torch.nn.functional as F

    up = F.interpolate(lq[:1].float(), size=(out_size, out_size), mode='bicubic', align_corners=False)
    up_bgr = (up[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()[..., ::-1] * 255).round().astype(np.uint8)
    return np.ascontiguousarray(up_bgr)


def median_time(fn, warmup, runs, sync=lambda: None):
    """Median wall time of ``runs`` calls after ``warmup`` calls (the median resists a busy shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(runs, 1)):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _Meter:
    """Peak memory of a stretch of runs: CUDA allocator peak, or the CPU resident-set peak and its excess over
    the import baseline."""

    def __init__(self, base_rss, cuda=False):
        self.base_rss, self.cuda = base_rss, cuda

    def start(self):
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.reset = True
        else:
            self.reset = _reset_peak_rss()

    def peak(self):
        """``(peak_mib, peak_above_base_mib)``; None where it cannot be told (the second is None on CUDA)."""
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated() / 2**20, None
        peak = _rss_mib('VmHWM') if self.reset else None
        return peak, (None if peak is None or self.base_rss is None else peak - self.base_rss)


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
    batch=8,
    memory_format='auto',
    onnx_path=None,
):
    """Measure one model on PyTorch in this process (meant for a fresh subprocess, see :func:`benchmark`).

    Args:
        name (str): One of :data:`MODELS`.
        out_size, scale, num_atoms, num_feat, compact_feat: See :func:`build_model`.
        threads (int | None): ``torch.set_num_threads``; None: torch's default.
        warmup (int): Untimed calls before the timed ones.
        runs (int): Timed calls (their median is kept).
        device (str): ``'cpu'`` or ``'cuda'``.
        model_root (str | None): Folder of the RetinaFace weights (the teacher's landmark step).
        batch (int): Batch of the throughput runs; 0: none.
        memory_format (str): One of :data:`MEMORY_FORMATS`; ``'auto'``: what inference uses.
        onnx_path (str | None): Export the network there (after measuring) unless the file exists or the network
            needs component boxes.

    Returns:
        list[dict]: One row (two for the teacher: alone and with landmark finding) with ``key``, ``model``,
        ``params``, ``trainable``, ``dict_values``, ``macs``, ``latency_s``, ``peak_mib``,
        ``peak_above_base_mib``, ``batch``, ``batch_latency_s``, ``faces_per_s``, ``peak_batch_mib``,
        ``peak_batch_above_base_mib``, ``channels_last``, ``threads``, ``in_size``, ``out_size``,
        ``weights``, ``onnx`` (the exported file or None) and ``note``.
    """
    import facesr_kd  # noqa: F401  (BasicSR compatibility fixes)
    from facesr_kd.inference import prepare_network, to_memory_format

    import torch

    if threads:
        torch.set_num_threads(threads)
    from torch.utils.flop_counter import FlopCounterMode

    base_rss = _rss_mib('VmRSS')
    cuda = torch.device(device).type == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    lq_size = out_size // scale
    net = build_model(name, out_size, scale, num_atoms, num_feat, compact_feat)
    params = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)  # before prepare_network freezes all
    dict_values = net.dictionary.num_elements() if name == 'teacher' else 0
    forced = {'auto': None, 'channels_last': True, 'contiguous': False}[memory_format]
    net, channels_last = prepare_network(net, device, channels_last=forced)
    lq1 = to_memory_format(torch.from_numpy(sample_lq(lq_size)).to(device), channels_last)
    lqb = to_memory_format(torch.from_numpy(sample_lq(lq_size, max(batch, 1))).to(device), channels_last)
    meter = _Meter(base_rss, cuda)

    def label(key):
        return model_label(key, scale, num_atoms, num_feat, compact_feat)

    common = {
        'trainable': trainable,
        'dict_values': dict_values,
        'channels_last': channels_last,
        'threads': threads,
        'in_size': lq_size,
        'out_size': out_size,
        'weights': 'random',
        'device': device,
        'batch': batch,
    }

    def measure(fn1, fnb, key, extra_params=0, note=''):
        with torch.inference_mode():
            with FlopCounterMode(display=False) as counter:
                fn1()
            macs = counter.get_total_flops() / 2
            meter.start()
            latency = median_time(fn1, warmup, runs, sync)
            peak, above = meter.peak()
            batch_latency = peak_b = above_b = None
            if batch:
                meter.start()
                batch_latency = median_time(fnb, warmup, runs, sync)
                peak_b, above_b = meter.peak()
        return {
            'key': key,
            'model': label(key),
            'params': params + extra_params,
            **common,
            'macs': macs,
            'latency_s': latency,
            'peak_mib': peak,
            'peak_above_base_mib': above,
            'batch_latency_s': batch_latency,
            'faces_per_s': batch / batch_latency if batch else None,
            'peak_batch_mib': peak_b,
            'peak_batch_above_base_mib': above_b,
            'onnx': None,
            'note': note,
        }

    if name == 'teacher':
        from facesr_kd.face.components import template_boxes

        boxes = torch.as_tensor(template_boxes(out_size), dtype=torch.float32)[None].to(device)
        boxes_b = boxes.expand(max(batch, 1), -1, -1).contiguous()
        rows = [measure(lambda: net(lq1, boxes), lambda: net(lqb, boxes_b), name, note='not exported: needs boxes')]
        rows.append(_measure_with_landmarks(net, lq1, lqb, out_size, device, model_root, measure, common, label))
        return rows
    row = measure(lambda: net(lq1), lambda: net(lqb), name)
    if onnx_path and not cuda:
        if not os.path.isfile(onnx_path):
            from facesr_kd.export import export_onnx

            export_onnx(net, lq_size, onnx_path, dynamic_batch=True)
        row['onnx'] = onnx_path
    return [row]


def _measure_with_landmarks(net, lq1, lqb, out_size, device, model_root, measure, common, label):
    """The teacher's row with its landmark step: RetinaFace on each bicubic-upsampled face, then the boxes."""
    from facesr_kd.face.components import boxes_from_landmarks5, template_boxes
    from facesr_kd.face.detection import build_detector, detect_faces

    import torch

    key = 'teacher_landmarks'
    try:
        detector = build_detector('retinaface_mobile0.25', model_root, device=device)
    except FileNotFoundError as e:
        return {'key': key, 'model': label(key), **common, 'note': f'not measured: {e}'}
    up_bgr = _upsampled_bgr(lq1, out_size)
    found = []

    def pipeline(lq):
        boxes = []
        for _ in range(lq.shape[0]):
            faces = detect_faces(detector, up_bgr, conf_threshold=0.5, resize=None)
            found.append(bool(faces))
            boxes.append(boxes_from_landmarks5(faces[0]['landmarks5'], out_size) if faces else template_boxes(out_size))
        return net(lq, torch.as_tensor(boxes, dtype=torch.float32).to(device))

    extra = sum(p.numel() for p in detector.parameters())
    row = measure(lambda: pipeline(lq1), lambda: pipeline(lqb), key, extra_params=extra)
    found_note = 'face found' if all(found) else 'no face found on some runs: template boxes used there'
    row['note'] = f'{found_note}; not exported: needs boxes'
    return row


def measure_onnx(path, lq_size, threads=None, warmup=1, runs=3, batch=8):
    """Measure an exported network on ONNX Runtime (CPU) in this process (meant for a fresh subprocess).

    Only onnxruntime, NumPy and OpenCV are imported: the import baseline is theirs, not torch's.

    Args:
        path (str): The ``.onnx`` file (input ``lq``, dynamic batch).
        lq_size (int): LR side.
        threads (int | None): ``intra_op_num_threads``; None: onnxruntime's default.
        warmup (int): Untimed calls before the timed ones.
        runs (int): Timed calls (their median is kept).
        batch (int): Batch of the throughput runs; 0: none.

    Returns:
        dict: ``ort_latency_s``, ``ort_peak_mib``, ``ort_peak_above_base_mib``, ``ort_batch_latency_s``,
        ``ort_faces_per_s``, ``ort_peak_batch_mib``, ``ort_peak_batch_above_base_mib``, ``ort_version``.
    """
    import onnxruntime as ort

    base_rss = _rss_mib('VmRSS')
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    lq1, lqb = sample_lq(lq_size), sample_lq(lq_size, max(batch, 1))
    meter = _Meter(base_rss)
    meter.start()
    latency = median_time(lambda: session.run(None, {input_name: lq1}), warmup, runs)
    peak, above = meter.peak()
    row = {'ort_latency_s': latency, 'ort_peak_mib': peak, 'ort_peak_above_base_mib': above}
    batch_latency = peak_b = above_b = None
    if batch:
        meter.start()
        batch_latency = median_time(lambda: session.run(None, {input_name: lqb}), warmup, runs)
        peak_b, above_b = meter.peak()
    row.update(
        ort_batch_latency_s=batch_latency,
        ort_faces_per_s=batch / batch_latency if batch else None,
        ort_peak_batch_mib=peak_b,
        ort_peak_batch_above_base_mib=above_b,
        ort_version=ort.__version__,
    )
    return row


def _run_worker(argv, threads, what):
    """Run this script with ``argv`` in a fresh Python; return the JSON of its last stdout line."""
    env = dict(os.environ)
    if threads:  # OpenMP / MKL pools of the fresh process start at the measured size
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *map(str, argv)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f'benchmark of {what} failed:\n{proc.stderr[-4000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def benchmark(
    models=MODELS,
    out_size=256,
    scale=8,
    num_atoms=512,
    num_feat=64,
    compact_feat=32,
    threads=DEFAULT_THREADS,
    warmup=1,
    runs=3,
    device='cpu',
    model_root=None,
    batch=8,
    memory_format='auto',
    onnx=True,
    onnx_dir=None,
    progress=True,
):
    """Measure every model at every thread count, each on PyTorch and on ONNX Runtime in its own subprocess.

    Args:
        models (Sequence[str]): Keys of :data:`MODELS`.
        threads (Sequence[int | None]): Thread counts; None: the libraries' defaults.
        onnx (bool): Also measure ONNX Runtime (CPU only).
        onnx_dir (str | None): Keep the exported files there; None: a temporary folder. Each model is exported
            once, by its first PyTorch worker.
        Others: see :func:`measure_model`.

    Returns:
        list[dict]: Rows of :func:`measure_model` (thread counts in order, models in ``models`` order), the
        ONNX Runtime fields of :func:`measure_onnx` merged into each exported model's row (``ort_note`` says why
        a row has none).
    """
    from tqdm import tqdm

    onnx = onnx and not device.startswith('cuda')
    threads = list(threads) if threads else [None]
    rows = []
    with tempfile.TemporaryDirectory(prefix='facesr_bench_') as tmp:
        folder = onnx_dir or tmp
        os.makedirs(folder, exist_ok=True)
        jobs = [(t, name) for t in threads for name in models]
        for t, name in tqdm(jobs, desc='benchmark', unit='model', disable=not progress):
            onnx_path = os.path.join(folder, f'{name}_{out_size}_x{scale}.onnx') if onnx else None
            argv = [
                '--worker', name, '--out-size', out_size, '--scale', scale, '--num-atoms', num_atoms,
                '--num-feat', num_feat, '--compact-feat', compact_feat, '--warmup', warmup, '--runs', runs,
                '--device', device, '--throughput-batch', batch, '--memory-format', memory_format,
            ]  # fmt: skip
            if t:
                argv += ['--threads', t]
            if model_root:
                argv += ['--model-root', model_root]
            if onnx_path:
                argv += ['--onnx-out', onnx_path]
            model_rows = _run_worker(argv, t, f'{name} ({t or "default"} threads, PyTorch)')
            for row in model_rows:
                if row.get('onnx'):
                    ort_argv = ['--worker-onnx', row['onnx'], '--lq-size', out_size // scale, '--warmup', warmup]
                    ort_argv += ['--runs', runs, '--throughput-batch', batch] + (['--threads', t] if t else [])
                    row.update(_run_worker(ort_argv, t, f'{name} ({t or "default"} threads, ONNX Runtime)'))
                    row['ort_note'] = ''
                    if not onnx_dir:
                        row['onnx'] = None  # the temporary file is gone after this call
                else:
                    row['ort_note'] = 'not on ONNX Runtime: ' + (
                        'needs component boxes' if name == 'teacher' else 'not measured (--no-onnx or CUDA)'
                    )
            rows += model_rows
    return rows


def _fmt(value, spec, missing='n/a'):
    return missing if value is None else format(value, spec)


def _ratio(ref, row, field):
    """How many times ``row``'s ``field`` fits in ``ref``'s (higher: ``row`` cheaper); None if unknown."""
    if not ref or not row or ref.get(field) is None or not row.get(field):
        return None
    return ref[field] / row[field]


def _times(value, spec='.2f'):
    """``'12.34x'``, or ``'n/a'``."""
    return 'n/a' if value is None else f'{value:{spec}}x'


def _ratios_cell(ref, row):
    speed, macs = _ratio(ref, row, 'latency_s'), _ratio(ref, row, 'macs')
    if speed is None and macs is None:
        return 'n/a'
    return f'{_times(speed)} / {_times(macs)}'


def verdicts(rows, device='cpu'):
    """Issue 11's targets for every student, from one thread count's rows.

    Returns:
        list[str]: One line per student measured: its speed-up over the teacher with landmarks and over RCAN
        (latency and GMACs) and its peak memory above the import baseline as a fraction of the teacher's
        (teacher without landmarks: the smaller, stricter reference); then which student is the fastest and
        whether it meets the targets.
    """
    by_key = {r['key']: r for r in rows if r.get('latency_s') is not None}
    teacher, teacher_lm, rcan = by_key.get('teacher'), by_key.get('teacher_landmarks'), by_key.get('rcan')
    mem_field = 'peak_mib' if device.startswith('cuda') else 'peak_above_base_mib'
    lines, results = [], {}
    for key in STUDENTS:
        s = by_key.get(key)
        if s is None:
            continue
        vs_t = (_ratio(teacher_lm, s, 'latency_s'), _ratio(teacher_lm, s, 'macs'))
        vs_r = (_ratio(rcan, s, 'latency_s'), _ratio(rcan, s, 'macs'))
        mem = _ratio(s, teacher, mem_field)  # the student's fraction of the teacher's memory
        if None in (*vs_t, *vs_r, mem):
            results[key] = 'cannot tell (needs the teacher, teacher + landmarks and RCAN rows)'
        elif min(vs_t) >= TARGET_VS_TEACHER and min(vs_r) >= TARGET_VS_RCAN and mem <= TARGET_MEMORY:
            results[key] = 'met'
        else:
            results[key] = 'NOT met'
        lines.append(
            f'- {s["model"]}: vs teacher + landmarks {_times(vs_t[0], ".1f")} latency, {_times(vs_t[1], ".1f")} '
            f'GMACs; vs RCAN {_times(vs_r[0], ".1f")} latency, {_times(vs_r[1], ".1f")} GMACs; peak memory '
            f"{_fmt(mem, '.3f')} of the teacher's. Targets: {results[key]}"
        )
    measured = [by_key[k] for k in STUDENTS if k in by_key]
    if measured:
        fastest = min(measured, key=lambda r: r['latency_s'])
        lines.append(
            f'- Fastest student: {fastest["model"]}. Target (>= {TARGET_VS_TEACHER:g}x the teacher + landmarks and '
            f'>= {TARGET_VS_RCAN:g}x RCAN, in latency and in GMACs; peak memory above import <= {TARGET_MEMORY:g} of '
            f"the teacher's, template boxes): {results[fastest['key']]}"
        )
    return lines


def format_table(rows, device='cpu', threads=None, runs=None, warmup=None, batch=8):
    """Markdown tables of benchmark rows, one per thread count, each followed by issue 11's verdicts.

    ``threads`` is unused (each row carries its own); it stays for callers of the one-table version.
    """
    mem = 'peak CUDA alloc (MiB)' if device.startswith('cuda') else 'peak above import (MiB), PyTorch / ORT'
    groups = {}
    for r in rows:
        groups.setdefault(r.get('threads'), []).append(r)
    out = [
        f'Random weights (PyTorch default init, random VGG19 encoder, random K-atom dictionary): speed and memory '
        f'only, no quality figure. Device: {device}; {machine_info()}.',
        f'Latency = median of {runs} runs after {warmup} warm-up, batch 1; faces/s at batch {batch}. MACs = FLOPs / '
        '2 at batch 1 (FlopCounterMode: convs and matmuls only). PyTorch: eval, inference mode, spectral norms '
        'baked, channels-last where marked (cl). ORT: onnxruntime CPU, the export of facesr-kd-export-onnx. '
        'Ratios: how many times cheaper, latency / GMACs.',
    ]
    for t, group in groups.items():
        teacher_lm = next((r for r in group if r['key'] == 'teacher_landmarks' and 'latency_s' in r), None)
        rcan = next((r for r in group if r['key'] == 'rcan' and 'latency_s' in r), None)
        out += [
            '',
            f'### {t or "default"} thread{"s" if t != 1 else ""}',
            '',
            f'| model | params (M) | trainable (M) | GMACs | PyTorch ms/face | PyTorch faces/s (b{batch}) '
            f'| ORT ms/face | ORT faces/s (b{batch}) | {mem} | vs teacher + landmarks | vs RCAN |',
            '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
        ]
        for r in group:
            if r.get('latency_s') is None:
                out.append(f'| {r["model"]} | {r["note"]} | | | | | | | | | |')
                continue
            cl = ' (cl)' if r.get('channels_last') else ''
            ort_ms = _fmt(r.get('ort_latency_s') and r['ort_latency_s'] * 1e3, '.1f', '-')
            memory = f'{_fmt(r["peak_above_base_mib"], ".0f")} / {_fmt(r.get("ort_peak_above_base_mib"), ".0f", "-")}'
            if device.startswith('cuda'):
                memory = _fmt(r['peak_mib'], '.0f')
            out.append(
                f'| {r["model"]}{cl} | {r["params"] / 1e6:.2f} | {r["trainable"] / 1e6:.2f} | {r["macs"] / 1e9:.2f} | '
                f'{r["latency_s"] * 1e3:.1f} | {_fmt(r.get("faces_per_s"), ".2f")} | {ort_ms} | '
                f'{_fmt(r.get("ort_faces_per_s"), ".2f", "-")} | {memory} | {_ratios_cell(teacher_lm, r)} | '
                f'{_ratios_cell(rcan, r)} |'
            )
        dicts = [r for r in group if r.get('dict_values')]
        if dicts:
            d = dicts[0]['dict_values']
            out.append('')
            out.append(f'Teacher dictionary: {d / 1e6:.1f} M values ({d * 4 / 2**20:.0f} MiB float32), not in params.')
        out.append('')
        out += verdicts(group, device)
    return '\n'.join(out)


def build_parser():
    """The command line of ``facesr-kd-benchmark`` (and of its worker processes)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--out-size', type=int, default=256)
    parser.add_argument('--scale', type=int, default=8, help='Upscale; the LR side is out_size / scale')
    parser.add_argument('--num-atoms', type=int, default=512, help="Teacher's K")
    parser.add_argument('--num-feat', type=int, default=64, help='Width of the teacher and the student')
    parser.add_argument('--compact-feat', type=int, default=32, help='Width of the compact student')
    parser.add_argument(
        '--threads',
        type=int,
        nargs='+',
        default=None,
        help=f'Thread counts, each measured in turn (default: {" ".join(map(str, DEFAULT_THREADS))})',
    )
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--throughput-batch', type=int, default=8, help='Batch of the faces/s runs (0: none)')
    parser.add_argument(
        '--memory-format', default='auto', choices=MEMORY_FORMATS, help='PyTorch: auto = what inference uses'
    )
    parser.add_argument('--no-onnx', action='store_true', help='Skip ONNX Runtime')
    parser.add_argument('--onnx-dir', help='Keep the exported .onnx files here (default: a temporary folder)')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (ONNX Runtime: CPU only)")
    parser.add_argument('--model-root', help='Folder of detection_mobilenet0.25_Final.pth (landmark cost)')
    parser.add_argument('--json', help='Also write the rows to this JSON file')
    parser.add_argument('--worker', choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument('--worker-onnx', help=argparse.SUPPRESS)
    parser.add_argument('--lq-size', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--onnx-out', help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    """Run the benchmark (or, with the hidden worker options, one measurement) and print the table."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None and any(t < 1 for t in args.threads):
        parser.error('--threads takes positive thread counts')
    common = dict(warmup=args.warmup, runs=args.runs, batch=args.throughput_batch)
    worker_threads = args.threads[0] if args.threads else None  # a worker gets one count, or none: the default
    if args.worker_onnx:
        print(json.dumps(measure_onnx(args.worker_onnx, args.lq_size, threads=worker_threads, **common)))
        return 0
    kwargs = dict(
        out_size=args.out_size,
        scale=args.scale,
        num_atoms=args.num_atoms,
        num_feat=args.num_feat,
        compact_feat=args.compact_feat,
        device=args.device,
        model_root=args.model_root,
        memory_format=args.memory_format,
        **common,
    )
    if args.worker:
        rows = measure_model(args.worker, threads=worker_threads, onnx_path=args.onnx_out, **kwargs)
        print(json.dumps(rows))
        return 0
    threads = args.threads or DEFAULT_THREADS
    rows = benchmark(args.models, threads=threads, onnx=not args.no_onnx, onnx_dir=args.onnx_dir, **kwargs)
    print(format_table(rows, args.device, runs=args.runs, warmup=args.warmup, batch=args.throughput_batch))
    if args.json:
        from facesr_kd.utils.files import write_json

        write_json(args.json, rows, indent=1)
    return 0


# Worker processes run this file by path, so that an ONNX Runtime worker imports neither torch nor facesr_kd.
if __name__ == '__main__':
    sys.exit(main())
