"""Export a box-free face SR network to ONNX with a dynamic batch: the students (``DFDNetStudent``,
``LiteFaceStudent``), RCAN / ``FaceRCAN`` and SRFBN.

The graph takes ``lq``: (N, 3, L, L) RGB in [0, 1] (L = out_size / scale: 32 for the x8 students) and returns
``sr``: (N, 3, S, S) in [0, 1]; N is free unless ``--static-batch``. The graph is built for L x L (in PyTorch
``LiteFaceStudent`` is fully convolutional; its exported graph keeps the traced size). The teacher needs component
boxes and a dictionary search: it is not exported. ``--check`` compares onnxruntime with PyTorch at batch 1 and 3
(1 only with ``--static-batch``).

Example::

    facesr-kd-export-onnx --model experiments/pretrained_models/DFDNetStudent_x8.pth \\
        -o experiments/pretrained_models/DFDNetStudent_x8.onnx --check
    facesr-kd-export-onnx --model experiments/lite_student_distill_x8_vggface2/models/net_g_latest.pth \\
        -o experiments/pretrained_models/LiteFaceStudent_x8.onnx --check
"""

import os
import warnings

from facesr_kd.archs.arch_util import bake_spectral_norm
from facesr_kd.utils.checkpoint import load_sr_network

import torch

INPUT_NAME = 'lq'
OUTPUT_NAME = 'sr'
# --check: batches compared (a dynamic batch must work at 1 and at another size) and the largest difference.
CHECK_BATCHES = (1, 3)
CHECK_TOLERANCE = 1e-4


def export_onnx(net, lq_size, path, opset=17, dynamic_batch=True, batch=1):
    """Trace ``net`` and write an ONNX file.

    Args:
        net (nn.Module): An SR network taking (N, 3, lq_size, lq_size) in [0, 1]; put in eval mode here.
        lq_size (int): Side of the LR input.
        path (str): Output ``.onnx`` file.
        opset (int): ONNX opset.
        dynamic_batch (bool): Make the batch axis dynamic.
        batch (int): Batch size of the tracing input.

    Raises:
        ValueError: The network needs component boxes (the teacher), or ``lq_size`` is not the
            ``out_size / scale`` it was built for.
    """
    if getattr(net, 'needs_boxes', False):
        raise ValueError(f'{type(net).__name__} needs component boxes at test time; export the student instead')
    out_size, scale = getattr(net, 'out_size', None), getattr(net, 'scale', None)
    if isinstance(out_size, int) and isinstance(scale, int) and lq_size != out_size // scale:
        raise ValueError(
            f'{type(net).__name__}(out_size={out_size}, scale={scale}) takes {out_size // scale}x{out_size // scale} '
            f'inputs; cannot export it for lq_size {lq_size}'
        )
    net = bake_spectral_norm(net.cpu(), inplace=False)
    dummy = torch.rand(batch, 3, lq_size, lq_size)
    axes = {INPUT_NAME: {0: 'batch'}, OUTPUT_NAME: {0: 'batch'}} if dynamic_batch else None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export, which needs onnxscript; it still
        # handles these convolutional graphs, spectral norm included, and needs nothing else.
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        with torch.no_grad():
            torch.onnx.export(
                net,
                (dummy,),
                path,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
            )
    return path


def check_onnx(net, path, lq_size, batch=2, seed=0):
    """Largest absolute difference between onnxruntime's and PyTorch's outputs on random inputs.

    Raises:
        ImportError: onnxruntime is not installed.
    """
    import onnxruntime

    gen = torch.Generator().manual_seed(seed)
    lq = torch.rand(batch, 3, lq_size, lq_size, generator=gen)
    with torch.no_grad():
        ref = net.eval().cpu()(lq).numpy()
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    out = session.run([OUTPUT_NAME], {INPUT_NAME: lq.numpy()})[0]
    if out.shape != ref.shape:
        raise AssertionError(f'onnxruntime gives {out.shape}, PyTorch {ref.shape}')
    return float(abs(out - ref).max())


def export_checkpoint(model_path, output=None, opt_path=None, scale=8, opset=17, dynamic_batch=True, check=False):
    """Export a checkpoint's network to ONNX and optionally check it against PyTorch.

    Args:
        model_path (str): Checkpoint of a student, RCAN / ``FaceRCAN`` or SRFBN.
        output (str | None): The ``.onnx`` file (default: beside the checkpoint).
        opt_path (str | None): Option file describing a checkpoint without an ``arch`` entry.
        scale (int | None): Refuse a checkpoint of another scale; None accepts any.
        opset (int): ONNX opset.
        dynamic_batch (bool): Leave the batch axis free.
        check (bool): Compare onnxruntime with PyTorch at batch 1 and 3 (1 only for a static batch).

    Returns:
        tuple[str, dict, dict[int, float]]: The output path, the network's info and the max abs difference per
        checked batch.

    Raises:
        ValueError: The network needs component boxes (the teacher), or onnxruntime differs from PyTorch by more
            than :data:`CHECK_TOLERANCE`.
    """
    net, info = load_sr_network(model_path, opt_path=opt_path, expect_scale=scale)
    if info['needs_boxes']:
        raise ValueError(f'{model_path} holds {info["type"]}, which needs component boxes: export a student')
    output = output or os.path.splitext(model_path)[0] + '.onnx'
    export_onnx(net, info['lq_size'], output, opset=opset, dynamic_batch=dynamic_batch)
    diffs = {}
    if check:
        for batch in CHECK_BATCHES if dynamic_batch else (1,):
            diffs[batch] = check_onnx(net, output, info['lq_size'], batch=batch)
            if diffs[batch] > CHECK_TOLERANCE:
                raise ValueError(
                    f'onnxruntime differs from PyTorch by {diffs[batch]:.2e} > {CHECK_TOLERANCE} at batch {batch}'
                )
    return output, info, diffs
