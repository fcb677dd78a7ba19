"""``facesr-kd-prepare``: detect, align and crop faces into HR/LR pairs with meta_info and component boxes.

The library is :mod:`facesr_kd.data.prepare`; see its docstring for the output layout.

Exit status: 0 when faces were prepared; 2 for bad options (checked before any file is touched); 1 for a setup
error (missing input or weights, another run's options in the output), a stopped run (full disk, a dead worker
process: re-running resumes), a run that found no photo or prepared no face, or photos that failed to write.
"""

import argparse
import sys

from facesr_kd.data.prepare import (
    PreparationError,
    check_options,
    default_workers,
    format_summary,
    prepare_faces,
    run_errors,
)
from facesr_kd.face.image_io import DEFAULT_READ_MAX_PIXELS


def build_parser():
    parser = argparse.ArgumentParser(
        description='Detect, align and crop faces; write HR/LR pairs, meta_info and component boxes.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('-i', '--input', required=True, help='VGGFace2 root (train/, test/) or a folder of photos')
    parser.add_argument('-o', '--output', required=True, help='output root')
    parser.add_argument('--aligned', action='store_true', help='inputs are FFHQ-aligned faces: no detection')
    parser.add_argument(
        '--det-model', default='retinaface_resnet50', choices=['retinaface_resnet50', 'retinaface_mobile0.25']
    )
    parser.add_argument('--model-root', default=None, help="folder with the weight files (default: facexlib's)")
    parser.add_argument('--size', type=int, default=256, help='side of the HR faces')
    parser.add_argument('--scale', type=int, default=8, help='LR downscale factor (must divide --size)')
    parser.add_argument('--conf-threshold', type=float, default=0.97, help='detector score threshold, in [0, 1]')
    parser.add_argument('--det-resize', type=int, default=640, help='detect with this short side; 0: original size')
    parser.add_argument(
        '--eye-dist-threshold', type=float, default=5.0, help='ignore faces with smaller eye distance; 0: keep all'
    )
    parser.add_argument(
        '--max-upscale', type=float, default=1.0, help='drop faces enlarged more than this (1: true crops only)'
    )
    parser.add_argument(
        '--min-inside', type=float, default=0.9, help='drop faces whose crop is less inside the photo, in [0, 1]'
    )
    parser.add_argument('--min-photo-size', type=int, default=32, help='skip photos with a smaller short side')
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_READ_MAX_PIXELS,
                        help='refuse photos with more pixels, from their header, before decoding them')  # fmt: skip
    parser.add_argument('--faces-per-photo', type=int, default=None, help='keep at most N faces per photo')
    parser.add_argument('--max-per-identity', type=int, default=None, help='keep at most N faces per identity')
    parser.add_argument('--landmarks', default='five', choices=['five', 'dlib68'], help='landmarks for the boxes')
    parser.add_argument(
        '--aligned-boxes', default='template', choices=['template', 'detect'], help='boxes of --aligned faces'
    )
    parser.add_argument('--border', default='constant', choices=['constant', 'reflect'], help='fill outside the photo')
    parser.add_argument('--start', type=int, default=None, help='first photo index (sorted, per split)')
    parser.add_argument('--end', type=int, default=None, help='one past the last photo index')
    parser.add_argument('--list', dest='id_list', default=None, help='file of photos to take (relative paths)')
    parser.add_argument('--lmdb', action='store_true', help='also write hr.lmdb and lr_x<scale>.lmdb')
    parser.add_argument('--workers', type=int, default=default_workers(), help='processes')
    parser.add_argument('--device', default='cpu', help='detector device (cpu, cuda)')
    parser.add_argument('--overwrite', action='store_true', help='discard a previous run in the output folder')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def _positive_or_none(parser, args, name):
    """A count option that means "no cap" when absent: given, it must be positive (0 would keep no face)."""
    value = getattr(args, name)
    if value is not None and value < 1:
        parser.error(f'--{name.replace("_", "-")} must be at least 1, got {value} (leave it out for no cap)')


def parse_options(argv=None):
    """Parse and check the command line; return the keyword arguments of :func:`prepare_faces` (and exit with
    status 2 and a message naming the option when one is bad)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, flag in (('det_resize', '--det-resize'), ('eye_dist_threshold', '--eye-dist-threshold')):
        if getattr(args, name) < 0:
            parser.error(f'{flag} must be 0 (off) or positive, got {getattr(args, name)}')
    _positive_or_none(parser, args, 'faces_per_photo')
    _positive_or_none(parser, args, 'max_per_identity')
    options = {
        'aligned': args.aligned,
        'det_model': args.det_model,
        'model_root': args.model_root,
        'size': args.size,
        'scale': args.scale,
        'conf_threshold': args.conf_threshold,
        'det_resize': args.det_resize or None,
        'eye_dist_threshold': args.eye_dist_threshold or None,
        'max_upscale': args.max_upscale,
        'min_inside': args.min_inside,
        'min_photo_size': args.min_photo_size,
        'faces_per_photo': args.faces_per_photo,
        'max_per_identity': args.max_per_identity,
        'landmarks': args.landmarks,
        'aligned_boxes': args.aligned_boxes,
        'border': args.border,
        'start': args.start,
        'end': args.end,
        'id_list': args.id_list,
        'lmdb': args.lmdb,
        'workers': args.workers,
        'device': args.device,
        'overwrite': args.overwrite,
        'progress': not args.no_progress,
        'max_pixels': args.max_pixels,
    }
    try:
        check_options(**options)
    except ValueError as e:
        parser.error(str(e))
    return args.input, args.output, options


def main(argv=None):
    """Run :func:`~facesr_kd.data.prepare.prepare_faces` from the command line (exit status: module docstring)."""
    input_dir, output_dir, options = parse_options(argv)
    try:
        summary = prepare_faces(input_dir, output_dir, **options)
    except (OSError, ImportError, ValueError, PreparationError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_summary(summary))
    errors = run_errors(summary, input_dir)
    for message in errors:
        print(f'error: {message}', file=sys.stderr)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
