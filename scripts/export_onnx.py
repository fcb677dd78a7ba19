"""Export a box-free face SR network to ONNX with a dynamic batch: the students (``DFDNetStudent``,
``LiteFaceStudent``), RCAN / ``FaceRCAN`` and SRFBN.

The graph takes ``lq``: (N, 3, L, L) RGB in [0, 1] (L = out_size / scale: 32 for the x8 students) and returns
``sr``: (N, 3, S, S) in [0, 1]; N is free unless ``--static-batch``. ``LiteFaceStudent`` takes exactly L x L
(its size check is skipped while tracing; the graph is built for L). The teacher needs component boxes and a
dictionary search: it is not exported. ``--check`` compares onnxruntime with PyTorch at batch 1 and 3 (1 only
with ``--static-batch``).

Example::

    python scripts/export_onnx.py --model experiments/pretrained_models/DFDNetStudent_x8.pth \\
        -o experiments/pretrained_models/DFDNetStudent_x8.onnx --check
    python scripts/export_onnx.py --model experiments/lite_student_distill_x8_vggface2/models/net_g_latest.pth \\
        -o experiments/pretrained_models/LiteFaceStudent_x8.onnx --check
"""

import argparse
import copy
import os
import sys
import warnings
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facesr_kd.utils.checkpoint import load_sr_network  # noqa: E402

INPUT_NAME = 'lq'
OUTPUT_NAME = 'sr'
# --check: batches compared (a dynamic batch must work at 1 and at another size) and the largest difference.
CHECK_BATCHES = (1, 3)
CHECK_TOLERANCE = 1e-4


def _plain(module):
    """A plain module (e.g. ``nn.Conv2d``) holding the current value of each parametrized tensor of ``module``.

    ``parametrize.remove_parametrizations`` is not used: it edits the parametrized class, which a deep copy shares
    with the original network.
    """
    base = type(module).__bases__[0]
    plain = base.__new__(base)
    plain.__dict__.update(module.__dict__)
    plain._modules = OrderedDict((k, v) for k, v in module._modules.items() if k != 'parametrizations')
    plain._parameters = OrderedDict(module._parameters)
    for name in module.parametrizations:
        plain._parameters[name] = torch.nn.Parameter(getattr(module, name).detach().clone(), requires_grad=False)
    return plain


def bake_weight_norms(net):
    """A copy of ``net`` in eval mode whose spectral-norm weights are baked into plain modules.

    In eval mode spectral norm divides by a sigma computed from stored vectors (with ``vdot``, which ONNX lacks);
    baking the weight gives the same outputs with plain convolutions. The original network is left as it was.
    """
    from torch.nn.utils import parametrize

    net = copy.deepcopy(net).eval()
    with torch.no_grad():
        for parent in list(net.modules()):
            for name, child in list(parent._modules.items()):
                if child is not None and parametrize.is_parametrized(child):
                    parent._modules[name] = _plain(child)
        for module in net.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if type(hook).__name__ == 'SpectralNorm':  # the older hook-based torch.nn.utils.spectral_norm
                    torch.nn.utils.remove_spectral_norm(module, hook.name)
    return net


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
        ValueError: The network needs component boxes (the teacher), or it takes exactly ``out_size / scale``
            (``LiteFaceStudent``, whose size check tracing skips) and ``lq_size`` is another size.
    """
    if getattr(net, 'needs_boxes', False):
        raise ValueError(f'{type(net).__name__} needs component boxes at test time; export the student instead')
    out_size, scale = getattr(net, 'out_size', None), getattr(net, 'scale', None)
    if isinstance(out_size, int) and isinstance(scale, int) and lq_size != out_size // scale:
        raise ValueError(
            f'{type(net).__name__}(out_size={out_size}, scale={scale}) takes {out_size // scale}x{out_size // scale} '
            f'inputs; cannot export it for lq_size {lq_size}'
        )
    net = bake_weight_norms(net.cpu())
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--model', required=True, help='Checkpoint (.pth) of a student (DFDNetStudent, LiteFaceStudent), RCAN or SRFBN'
    )
    parser.add_argument('--opt', default=None, help='Option file describing a checkpoint without an `arch` entry')
    parser.add_argument('-o', '--output', default=None, help='Output .onnx file. Default: beside the checkpoint')
    parser.add_argument('--scale', type=int, default=8, help='Refuse a checkpoint of another scale. 0: any')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--static-batch', action='store_true', help='Fix the batch axis to 1')
    parser.add_argument('--check', action='store_true', help='Compare onnxruntime with PyTorch (needs onnxruntime)')
    return parser.parse_args(argv)


def main(args):
    net, info = load_sr_network(args.model, opt_path=args.opt, expect_scale=args.scale or None)
    if info['needs_boxes']:
        raise SystemExit(f'{args.model} holds {info["type"]}, which needs component boxes: export the student')
    output = args.output or os.path.splitext(args.model)[0] + '.onnx'
    export_onnx(net, info['lq_size'], output, opset=args.opset, dynamic_batch=not args.static_batch)
    print(f'{info["type"]} x{info["scale"]} ({info["lq_size"]} -> {info["out_size"]}) exported to {output}')
    if args.check:
        for batch in (1,) if args.static_batch else CHECK_BATCHES:
            diff = check_onnx(net, output, info['lq_size'], batch=batch)
            print(f'onnxruntime vs PyTorch at batch {batch}: max abs difference {diff:.2e}')
            if diff > CHECK_TOLERANCE:
                raise SystemExit(f'onnxruntime differs from PyTorch by {diff:.2e} > {CHECK_TOLERANCE} at batch {batch}')
    return output


if __name__ == '__main__':
    main(parse_args())
