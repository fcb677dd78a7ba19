"""``facesr-kd-demo``: a local web page (Gradio) to restore the faces of your photos.

Serves, on ``http://127.0.0.1:7860/`` by default, a page where you upload photos, pick the upscale, the colour
fix and the detector options, compare each photo's input with its result on a slider and each face's network
input with the restored face, and download the results as PNG. It needs the ``[demo]`` extra (``pip install
"facesr_kd[demo]"``: Gradio 6). It runs offline: no CDN, no telemetry (``GRADIO_ANALYTICS_ENABLED=False``,
``HF_HUB_OFFLINE=1``, system fonts, no share link); see :mod:`facesr_kd.demo.app`, the library.

Example (offline, the staged mobilenet0.25 detector)::

    facesr-kd-demo --model experiments/pretrained_models/DFDNetStudent_x8.pth \\
        --det-model retinaface_mobile0.25 --model-root ../shared/data/weights/facexlib --offline
"""

import argparse
import logging
import math
import sys

from facesr_kd.demo.app import CONCURRENCY, MAX_FILE_BYTES, MAX_FILES, MAX_QUEUE, build_demo, launch
from facesr_kd.face.detection import DET_MODELS
from facesr_kd.inference import DEFAULT_MAX_PIXELS
from facesr_kd.utils.checkpoint import CheckpointError

import torch


def parse_args(argv=None):
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description='A local web page (Gradio) to restore the faces of photos with a facesr_kd checkpoint.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        '--model',
        default=None,
        help='Default: the zoo shipped in the package (facesr-kd-models lists it), each face restored at its own '
        'size by the model of the upscale (--crop). Or a zoo name, or a checkpoint: a student (DFDNetStudent, '
        'LiteFaceStudent), the teacher, FaceRCAN / RCAN, SRFBN',
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
        '--max-upload-mb', type=float, default=MAX_FILE_BYTES / 1e6, help='Largest file of an upload, in MB'
    )
    parser.add_argument('--max-files', type=int, default=MAX_FILES, help='Most photos per request')
    parser.add_argument('--max-queue', type=int, default=MAX_QUEUE, help='Most requests waiting; more: "queue full"')
    parser.add_argument('--concurrency', type=int, default=CONCURRENCY, help='Restores run at once')
    parser.add_argument('--note', default=None, help='A line shown under the model name (e.g. what it was trained on)')
    parser.add_argument('-q', '--quiet', action='store_true', help='Do not log every photo')
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f'--port must be in [0, 65535], got {args.port}')
    if args.max_pixels <= 0:
        parser.error(f'--max-pixels must be positive, got {args.max_pixels}')
    if not math.isfinite(args.max_upload_mb) or args.max_upload_mb <= 0:
        parser.error(f'--max-upload-mb must be a positive number, got {args.max_upload_mb}')
    for flag in ('max_files', 'max_queue', 'concurrency'):
        if getattr(args, flag) < 1:
            parser.error(f'--{flag.replace("_", "-")} must be at least 1, got {getattr(args, flag)}')
    if args.device != 'auto':
        try:
            torch.device(args.device)
        except (RuntimeError, ValueError) as err:
            parser.error(f'--device {args.device!r} is not a device (auto, cpu, cuda, cuda:1...): {err}')
    return args


def main(argv=None):
    """Serve the demo until Ctrl+C.

    Returns:
        int: 0 after Ctrl+C; 1 when Gradio, the checkpoint or the detector weights are missing or wrong, or the
        address cannot be bound (the ``error:`` line goes to stderr). Bad options exit with argparse's status 2.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format='%(asctime)s %(message)s')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        print(f'error: --device {args.device}: CUDA is not available here; use --device cpu or auto', file=sys.stderr)
        return 1
    try:
        demo = build_demo(
            args.model,
            det_model=args.det_model,
            model_root=args.model_root,
            offline=args.offline,
            device=args.device,
            max_pixels=args.max_pixels,
            opt_path=args.opt,
            scale=args.scale or None,
            max_files=args.max_files,
            max_queue=args.max_queue,
            concurrency=args.concurrency,
            note=args.note,
        )
        print(demo.facesr_app.model_line())
        if args.host not in ('127.0.0.1', 'localhost', '::1'):
            print(f'warning: listening on {args.host}: anyone who can reach this machine can use the demo')
        url = launch(demo, args.host, args.port, int(args.max_upload_mb * 1e6), block=False, quiet=True)
    except (OSError, CheckpointError, ImportError, ValueError) as err:  # missing files, bad checkpoint, port taken
        message = err.strerror if isinstance(err, OSError) and err.strerror and not err.filename else err
        print(f'error: {message}', file=sys.stderr)
        return 1
    print(f'facesr_kd demo at {url} (Ctrl+C stops it)', flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
        demo.facesr_app.close()
    print('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
