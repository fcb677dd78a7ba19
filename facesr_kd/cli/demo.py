"""``facesr-kd-demo``: a local web page to restore the faces of your photos.

Serves, on ``http://127.0.0.1:7860/`` by default, a page where you upload photos, pick the upscale, the detector
options and the colour fix, compare each photo's input with its result and each face's network input with the
restored face, and download the results as PNG. The server is the standard library's ``ThreadingHTTPServer``
with a static page: it works offline, needs nothing beyond facesr_kd's own dependencies and loads nothing from
the internet. The library is :mod:`facesr_kd.demo.server`.

Example (offline, the staged mobilenet0.25 detector)::

    facesr-kd-demo --model experiments/pretrained_models/DFDNetStudent_x8.pth \\
        --det-model retinaface_mobile0.25 --model-root ../shared/data/weights/facexlib --offline
"""

import argparse
import logging
import math
import sys

from facesr_kd.demo.server import MAX_BODY_BYTES, serve
from facesr_kd.face.detection import DET_MODELS
from facesr_kd.inference import DEFAULT_MAX_PIXELS
from facesr_kd.utils.checkpoint import CheckpointError

import torch


def parse_args(argv=None):
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description='A local web page to restore the faces of photos with a facesr_kd checkpoint.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        '--model',
        required=True,
        help='Checkpoint: a student (DFDNetStudent, LiteFaceStudent), or the teacher, FaceRCAN / RCAN, SRFBN',
    )
    parser.add_argument('--opt', default=None, help='Option file for a checkpoint without an `arch` entry')
    parser.add_argument('--scale', type=int, default=8, help='Refuse a checkpoint of another scale (0: any)')
    parser.add_argument('--det-model', default='retinaface_resnet50', choices=sorted(DET_MODELS))
    parser.add_argument('--model-root', default=None, help='Folder with the facexlib detector weights')
    parser.add_argument(
        '--offline',
        action='store_true',
        help="Never download anything: the detector weights must be in --model-root (default: facexlib's folder)",
    )
    parser.add_argument('--host', default='127.0.0.1', help='Address to listen on (127.0.0.1: this machine only)')
    parser.add_argument('--port', type=int, default=7860, help='Port (0: any free port)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:1...')
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS, help='Refuse larger upscaled photos')
    parser.add_argument(
        '--max-upload-mb', type=float, default=MAX_BODY_BYTES / 1e6, help='Largest upload (all its photos), in MB'
    )
    parser.add_argument('-q', '--quiet', action='store_true', help='Do not log every request')
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f'--port must be in [0, 65535], got {args.port}')
    if args.max_pixels <= 0:
        parser.error(f'--max-pixels must be positive, got {args.max_pixels}')
    if not math.isfinite(args.max_upload_mb) or args.max_upload_mb <= 0:
        parser.error(f'--max-upload-mb must be a positive number, got {args.max_upload_mb}')
    if args.device != 'auto':
        try:
            torch.device(args.device)
        except (RuntimeError, ValueError) as err:
            parser.error(f'--device {args.device!r} is not a device (auto, cpu, cuda, cuda:1...): {err}')
    return args


def main(argv=None):
    """Serve the demo until Ctrl+C.

    Returns:
        int: 0 after Ctrl+C; 1 when the checkpoint or the detector weights are missing or wrong, or the address
        cannot be bound (the ``error:`` line goes to stderr). Bad options exit with argparse's status 2.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format='%(asctime)s %(message)s')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        print(f'error: --device {args.device}: CUDA is not available here; use --device cpu or auto', file=sys.stderr)
        return 1
    try:
        serve(
            args.model,
            det_model=args.det_model,
            model_root=args.model_root,
            offline=args.offline,
            host=args.host,
            port=args.port,
            device=args.device,
            max_pixels=args.max_pixels,
            max_body_bytes=int(args.max_upload_mb * 1e6),
            opt_path=args.opt,
            scale=args.scale or None,
        )
    except (OSError, CheckpointError, ImportError, ValueError) as err:  # missing files, bad checkpoint, port taken
        message = err.strerror if isinstance(err, OSError) and err.strerror and not err.filename else err
        print(f'error: {message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
