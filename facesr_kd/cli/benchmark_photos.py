"""``facesr-kd-benchmark-photos``: whole photos shrunk (x4, x8, INTER_AREA), restored with the face restorer (the zoo
by default) and scored face by face against the originals beside plain bicubic (see
:mod:`facesr_kd.benchmarks.photos` and docs/photo_benchmark.md)."""

import argparse
import math
import sys

from facesr_kd.benchmarks.photos import run_benchmark
from facesr_kd.face.detection import DET_MODELS
from facesr_kd.inference import CROP_METHODS, DEFAULT_CROP_METHOD, SOFT_FACE_PSNR, FaceSRRestorer
from facesr_kd.utils.checkpoint import CheckpointError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Shrink whole photos, restore them with facesr-kd-infer's restorer and score each face region "
        'against the original photo beside bicubic upscaling of the same small photo.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('-i', '--input', nargs='+', required=True, help='Photo files or folders')
    parser.add_argument('-o', '--output', required=True, help='Output folder (faces.csv, faces.md, pictures)')
    parser.add_argument('--factors', type=int, nargs='+', default=[4, 8], help='Shrink / upscale factors')
    parser.add_argument(
        '--no-shrink',
        action='store_true',
        help='Do not shrink: restore the photos at --upscale and score against their own bicubic upscale '
        '(the large-faces check: a kept face scores as the plain upscale)',
    )
    parser.add_argument('--upscale', type=float, default=2, help='Upscale with --no-shrink')
    parser.add_argument('--model', default=None, help='Zoo name or checkpoint; default: the whole zoo, per face')
    parser.add_argument(
        '--scale', type=int, default=0, help='Use only zoo models / a checkpoint of this scale (0: any)'
    )
    parser.add_argument(
        '--keep-larger',
        type=float,
        default=None,
        help='Keep faces over this times the model input (see facesr-kd-infer)',
    )
    parser.add_argument('--crop', default=DEFAULT_CROP_METHOD, choices=CROP_METHODS, help='Face crop (facesr-kd-infer)')
    parser.add_argument(
        '--soft-psnr', type=float, default=SOFT_FACE_PSNR, help='Keep soft faces (see facesr-kd-infer); 0: off'
    )
    parser.add_argument('--color-fix', default='wavelet', help='Colour fix of the pasted faces (facesr-kd-infer)')
    parser.add_argument('--det-model', default='retinaface_mobile0.25', choices=sorted(DET_MODELS))
    parser.add_argument('--model-root', default=None, help='Folder with the facexlib detector weights')
    parser.add_argument(
        '--picture', default=None, help='Photo (file name) of the comparison picture; default: most faces'
    )
    parser.add_argument('--note', default='', help='A line for the top of faces.md (what the models are)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, auto')
    parser.add_argument('--no-progress', action='store_true', help='No progress bar')
    args = parser.parse_args(argv)
    if any(f < 1 for f in args.factors):
        parser.error(f'--factors must be >= 1, got {args.factors}')
    if not math.isfinite(args.upscale) or args.upscale <= 0:
        parser.error(f'--upscale must be positive, got {args.upscale}')
    if args.keep_larger is not None and (not math.isfinite(args.keep_larger) or args.keep_larger < 0):
        parser.error(f'--keep-larger must be 0 or positive, got {args.keep_larger}')
    if not math.isfinite(args.soft_psnr) or args.soft_psnr < 0:
        parser.error(f'--soft-psnr must be 0 (off) or a PSNR in dB, got {args.soft_psnr}')
    if args.upscale == int(args.upscale):
        args.upscale = int(args.upscale)
    return args


def main(argv=None):
    """Run the benchmark; 0 on success, 1 when the setup fails or no face could be scored."""
    args = parse_args(argv)
    try:
        restorer = FaceSRRestorer(
            model_path=args.model,
            bg_upsampler='bicubic',
            det_model=args.det_model,
            model_root=args.model_root,
            device=args.device,
            offline=True,
            scale=args.scale or None,
            color_fix=args.color_fix,
            keep_larger=args.keep_larger,
            soft_psnr=args.soft_psnr,
            crop_method=args.crop,
        )
        restorer.detector  # noqa: B018  (missing detector weights stop the run before it starts)
        result = run_benchmark(
            restorer,
            args.input,
            args.output,
            factors=args.factors,
            shrink_photo=not args.no_shrink,
            upscale=args.upscale,
            picture=args.picture,
            note=args.note,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, CheckpointError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    for factor, s in result['summary'].items():
        print(
            f'x{factor}: {s["faces"]} faces in {s["photos"]} photos: bicubic {s["mean_psnr_bicubic"]:.2f} dB, '
            f'ours {s["mean_psnr_ours"]:.2f} dB (mean gain {s["mean_gain_db"]:+.2f}, worst {s["min_gain_db"]:+.2f}, '
            f'{s["faces_below_bicubic_by_0.2dB"]} faces > 0.2 dB below bicubic); models {s["models"]}'
            if s['mean_psnr_ours'] is not None
            else f'x{factor}: {s["faces"]} faces, no finite PSNR (models {s["models"]})'
        )
    files = result['files']
    print(f'written: {files["csv"]}, {files["markdown"]}, {", ".join(files["pictures"])}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
