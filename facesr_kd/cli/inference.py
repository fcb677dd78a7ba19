"""Restore the faces of real photos (or aligned face crops) with a facesr_kd checkpoint.

Detects faces with facexlib's RetinaFace, super-resolves each and pastes it back into the upscaled photo. With
no ``--model`` (the zoo shipped in ``facesr_kd/weights``, ``facesr-kd-models`` lists it) each face is restored
where it lies, at its own size, by the zoo model of the ``--upscale`` (``--crop native``); a face larger than
``--keep-larger`` times that model's training input is kept, upscaled with the photo, never shrunk. Other archs
get the face aligned and shrunk to their input (``--crop``). Any checkpoint written by
facesr_kd (``arch`` inside) works: the DFDNet-style students, the lightweight ``LiteFaceStudent`` ("lite",
"tiny"), the teacher, ``FaceRCAN`` / RCAN and SRFBN; BasicSR checkpoints without ``arch`` take ``--opt``. The
network runs in its cheapest CPU form (inference mode, spectral norms baked, channels-last where that measured
faster: see ``facesr_kd.inference.prepare_network``). The library is :mod:`facesr_kd.inference`
(:class:`~facesr_kd.inference.FaceSRRestorer`, :func:`~facesr_kd.inference.restore_paths`). Writes, like
GFPGAN's ``inference_gfpgan.py``::

    <output>/cropped_faces/<name>_<i>.png    network inputs (the face's box of the photo, or aligned LR faces)
    <output>/restored_faces/<name>_<i>.png   restored faces
    <output>/cmp/<name>_<i>.png              input (bicubic-upsampled) | restored, side by side
    <output>/restored_imgs/<name>.<ext>      whole photos, upscaled, faces pasted back (not with --aligned)
    <output>/debug/<name>.png                with --draw-boxes: the input with every detection drawn, kept
                                             ones green with '#<i> score' (their <name>_<i> files), rejected
                                             ones orange, dashed, with the reason (score, eye distance,
                                             not the centre face)
    <output>/<name>.mp4                      videos (.mp4 .mov .mkv .avi .webm, or any file with --video):
                                             every frame restored, faces tracked with smoothed landmarks,
                                             same frame rate, frame count and audio (facesr_kd.video; needs
                                             pip install "facesr_kd[video]"). An interrupted run resumes from
                                             <output>/.<name>.frames/; a finished <name>.mp4 is not redone.

Faces pasted into the photos keep the photo's colour (``--color-fix wavelet``, the default: their
low-frequency band is the bicubic-upsampled input's, as CodeFormer's colour fix; ``meanstd``: Lab mean / std
matching; ``none``). ``restored_faces/`` and ``cmp/`` show the network's own output, before the fix.

Inputs that cannot be used (not an image, truncated, too large, a non-square crop with ``--aligned``, a FIFO...)
are reported with the reason and skipped; the run exits 1 when none could be restored, and before any work when
an output cannot be written. Two inputs never write the same result (``a.tif`` and ``a.webp`` give ``a_tif``
and ``a_webp``).

Example (offline, the staged mobilenet0.25 detector, the zoo)::

    facesr-kd-infer -i ../shared/data/faces/whole -o results/whole --upscale 2 \\
        --det-model retinaface_mobile0.25 --model-root ../shared/data/weights/facexlib --offline

A checkpoint of your own, the same way::

    facesr-kd-infer -i ../shared/data/faces/whole -o results/whole_lite \\
        --model experiments/lite_student_distill_x8_vggface2/models/net_g_latest.pth --upscale 2 \\
        --det-model retinaface_mobile0.25 --model-root ../shared/data/weights/facexlib --offline
"""

import argparse
import math
import os
import sys

from facesr_kd.face.colour import COLOR_FIXES, DEFAULT_COLOR_FIX
from facesr_kd.face.detection import DET_MODELS
from facesr_kd.inference import (
    BG_UPSAMPLERS,
    BOX_SOURCES,
    CROP_METHODS,
    DEFAULT_CROP_METHOD,
    DEFAULT_KEEP_LARGER,
    DEFAULT_MAX_PIXELS,
    NATIVE_KEEP_LARGER,
    SOFT_FACE_PSNR,
    FaceSRRestorer,
    build_bg_upsampler,
    check_outputs,
    list_inputs,
    output_names,
    resolve_device,
    restore_paths,
)
from facesr_kd.utils.checkpoint import CheckpointError
from facesr_kd.video import VIDEO_EXTS, check_video_output, ffmpeg_available, restore_videos, split_inputs
from facesr_kd.zoo import resolve_model

import torch


def restorer_device(device):
    """The device the background upsampler runs on: the restorer's (``'auto'`` resolved)."""
    return str(resolve_device(device))


def parse_args(argv=None):
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description='Face super-resolution of real photos with a facesr_kd checkpoint.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('-i', '--input', required=True, help='Input image, video or folder')
    parser.add_argument('-o', '--output', default='results', help='Output folder')
    parser.add_argument(
        '--model',
        default=None,
        help='Default: the zoo shipped in the package (facesr-kd-models lists it), each face restored at its own '
        'size by the model of the upscale (--crop). Or a zoo name, or a checkpoint: a student (DFDNetStudent, '
        'LiteFaceStudent), the teacher, FaceRCAN / RCAN, SRFBN',
    )
    parser.add_argument('--opt', default=None, help='Option file for a checkpoint without an `arch` entry')
    parser.add_argument(
        '--scale',
        type=int,
        default=0,
        help='Refuse a checkpoint of another scale; with the zoo, use its models of that scale only (0: any)',
    )
    parser.add_argument(
        '--keep-larger',
        type=float,
        default=None,
        help=f'Keep (do not restore, never shrink: upscale with the photo) a face larger than this times the input '
        f"its model was trained at (--crop native: the upscale's model; else the largest model input). Default: "
        f'{NATIVE_KEEP_LARGER:g} with --crop native; else {DEFAULT_KEEP_LARGER} with zoo models, 0 (restore every '
        'face) for a --model path',
    )
    parser.add_argument(
        '--soft-psnr',
        type=float,
        default=SOFT_FACE_PSNR,
        help='--crop native: keep (upscale with the photo) a face that holds no detail at its own pixel scale, '
        'i.e. within this many dB PSNR of itself shrunk x2 and enlarged back (an old scan, an enlarged photo); '
        '0: restore them too',
    )
    parser.add_argument(
        '--crop',
        default=DEFAULT_CROP_METHOD,
        choices=CROP_METHODS,
        help='How LiteFaceStudent (zoo) faces reach the network: native = each face restored where it lies, at its '
        'own size, by the model of the --upscale (no resampling); area / gauss = cropped from the photo at the '
        'input of the model its size calls for; two-step = warp to 256, then shrink (the other archs always)',
    )
    parser.add_argument('--aligned', action='store_true', help='Inputs are aligned face crops (FFHQ-style)')
    parser.add_argument('--only-center-face', action='store_true', help='Restore only the centre face')
    parser.add_argument('--upscale', type=float, default=2, help='Upscaling of the whole photo')
    parser.add_argument(
        '--bg-upsampler', default='bicubic', choices=BG_UPSAMPLERS, help='Background: none = Lanczos resize'
    )
    parser.add_argument('--bg-model', default=None, help='RealESRGAN_x2plus.pth for --bg-upsampler realesrgan')
    parser.add_argument('--bg-tile', type=int, default=400, help='Tile size of the learned upsampler (0: none)')
    parser.add_argument('--ext', default='auto', help='Extension of the whole photos: auto (as the input), png, jpg')
    parser.add_argument('--suffix', default=None, help='Suffix of the restored faces and photos')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:1...')
    parser.add_argument('--model-root', default=None, help='Folder with the facexlib detector weights')
    parser.add_argument('--det-model', default='retinaface_resnet50', choices=sorted(DET_MODELS))
    parser.add_argument('--det-resize', type=int, default=640, help='Short side the photo is detected at (0: as is)')
    parser.add_argument('--conf', type=float, default=0.97, help='Detector score threshold')
    parser.add_argument('--eye-dist-threshold', type=float, default=5, help='Skip faces with eyes closer (pixels)')
    parser.add_argument(
        '--box-source', default='detect', choices=BOX_SOURCES, help='Teacher: landmarks on the input or template'
    )
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS, help='Refuse larger upscaled photos')
    parser.add_argument('--batch-size', type=int, default=8, help='Faces per forward pass')
    parser.add_argument('--offline', action='store_true', help='Never download weights')
    parser.add_argument(
        '--half', action='store_true', help='float16 network and background upsampler (CUDA only; refused on CPU)'
    )
    parser.add_argument(
        '--before-after',
        default=None,
        help='Also write one PNG of "input (bicubic) | result" rows: the whole photos, or the faces with --aligned',
    )
    parser.add_argument('--before-after-width', type=int, default=1024, help='Width of the --before-after picture')
    parser.add_argument(
        '--color-fix',
        default=DEFAULT_COLOR_FIX,
        choices=COLOR_FIXES,
        help="Keep the photo's colour in the pasted faces: wavelet = low-frequency band of the input, "
        'meanstd = Lab mean / std of the input, none = the network output as it is (restored_faces/ and cmp/ '
        'always hold the network output)',
    )
    parser.add_argument(
        '--draw-boxes',
        action='store_true',
        help='Also write debug/<name>.png: every detection drawn, kept faces with their index, rejected ones '
        'with the reason (whole photos only)',
    )
    parser.add_argument(
        '--video',
        action='store_true',
        help='Treat every input file as a video (videos are recognised by extension otherwise: '
        + ' '.join('.' + e for e in VIDEO_EXTS)
        + ')',
    )
    args = parser.parse_args(argv)
    if not math.isfinite(args.upscale) or args.upscale <= 0:
        parser.error(f'--upscale must be a positive number, got {args.upscale}')
    for name in ('batch_size', 'max_pixels', 'before_after_width'):
        if getattr(args, name) <= 0:
            parser.error(f'--{name.replace("_", "-")} must be positive, got {getattr(args, name)}')
    if args.det_resize < 0:
        parser.error(f'--det-resize must be 0 (detect at the original size) or positive, got {args.det_resize}')
    if not 0 <= args.conf <= 1:
        parser.error(f'--conf must be in [0, 1], got {args.conf}')
    if args.bg_tile < 0:
        parser.error(f'--bg-tile must be 0 (no tiles) or positive, got {args.bg_tile}')
    if not math.isfinite(args.eye_dist_threshold) or args.eye_dist_threshold < 0:
        parser.error(f'--eye-dist-threshold must be 0 (keep every face) or positive, got {args.eye_dist_threshold}')
    if args.suffix and (os.sep in args.suffix or (os.altsep and os.altsep in args.suffix)):
        parser.error(f'--suffix must not contain a path separator, got {args.suffix!r}')
    if args.keep_larger is not None and (not math.isfinite(args.keep_larger) or args.keep_larger < 0):
        parser.error(f'--keep-larger must be 0 (restore every face) or positive, got {args.keep_larger}')
    if not math.isfinite(args.soft_psnr) or args.soft_psnr < 0:
        parser.error(f'--soft-psnr must be 0 (off) or a PSNR in dB, got {args.soft_psnr}')
    if args.scale < 0:
        parser.error(f'--scale must be 0 (any) or positive, got {args.scale}')
    if args.draw_boxes and args.aligned:
        parser.error('--draw-boxes draws the detections of whole photos; --aligned inputs are not detected')
    if args.device != 'auto':
        try:
            torch.device(args.device)
        except (RuntimeError, ValueError) as err:
            parser.error(f'--device {args.device!r} is not a device (auto, cpu, cuda, cuda:1...): {err}')
    if args.upscale == int(args.upscale):
        args.upscale = int(args.upscale)
    return args


def build_restorer(args):
    """The :class:`FaceSRRestorer` for ``args``; setup errors exit with their message (no traceback)."""
    if args.model is not None:
        try:
            resolve_model(args.model)
        except FileNotFoundError as err:
            raise SystemExit(f'error: {err}') from err
    device = restorer_device(args.device)
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit(f'error: --device {args.device}: CUDA is not available here; use --device cpu or auto')
    try:
        bg = build_bg_upsampler(args.bg_upsampler, args.bg_model, tile=args.bg_tile, device=device, half=args.half)
        restorer = FaceSRRestorer(
            model_path=args.model,
            upscale=args.upscale,
            bg_upsampler=bg,
            det_model=args.det_model,
            model_root=args.model_root,
            device=args.device,
            offline=args.offline,
            opt_path=args.opt,
            scale=args.scale or None,
            box_source=args.box_source,
            det_resize=args.det_resize or None,
            conf_threshold=args.conf,
            eye_dist_threshold=args.eye_dist_threshold or None,
            max_pixels=args.max_pixels,
            batch_size=args.batch_size,
            half=args.half,
            color_fix=args.color_fix,
            keep_larger=args.keep_larger,
            soft_psnr=args.soft_psnr,
            crop_method=args.crop,
        )
        if restorer.needs_detector(args.aligned):
            restorer.detector  # noqa: B018  (build it now: missing weights stop the run before it starts)
    except (FileNotFoundError, CheckpointError, ImportError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    return restorer


def describe_restorer(restorer):
    """One line: the models (zoo names, arch, scale, sizes), the size policy and the device."""
    models = '; '.join(
        (f'{m.name}: ' if m.name != m.info['type'] else '')
        + f'{m.info["type"]} x{m.info["scale"]}, faces {m.lq_size} -> {m.out_size}'
        + (', channels-last' if m.channels_last else '')
        for m in restorer.models
    )
    source = f'zoo {restorer.zoo_root}' if restorer.from_zoo else 'checkpoint'
    keep = f'faces over {restorer.keep_larger:g} x {restorer.keep_limit()[1]} kept' if restorer.keep_larger else ''
    keep = keep or 'every face restored'
    if restorer.native:
        keep += ', each at its own size'
    return f'{models} ({source}; {keep}) on {restorer.device}'


def run(args):
    """Restore every input of parsed arguments; return :func:`~facesr_kd.inference.restore_paths`'s summary.

    The inputs are listed and the outputs checked (:func:`~facesr_kd.inference.check_outputs`) before the
    checkpoint and the detector are loaded, so a wrong ``-o`` or ``--before-after`` costs nothing. Videos (by
    extension, or every input with ``--video``) go to :func:`facesr_kd.video.restore_videos`; their results are
    in the summary's ``videos`` (input -> its summary) and their failures in ``skipped`` with the photos'.

    Raises:
        SystemExit: The input, checkpoint, detector weights or outputs are missing or wrong, or the input holds
            nothing to try (the message says which and what to do).
    """
    try:
        paths, skipped = list_inputs(args.input)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    if not paths:
        if not skipped:
            raise SystemExit(f'error: no files in {args.input}')
        listed = '; '.join(f'{os.path.basename(p)}: {r}' for p, r in list(skipped.items())[:5])
        more = f' (and {len(skipped) - 5} more)' if len(skipped) > 5 else ''
        raise SystemExit(f'error: nothing to restore in {args.input}: {len(skipped)} entries skipped: {listed}{more}')
    images, videos = split_inputs(paths, force_video=args.video)
    if videos and args.aligned:
        raise SystemExit('error: --aligned takes aligned face crops; videos are restored as whole frames: leave it out')
    missing_ffmpeg = ffmpeg_available() if videos else None
    if missing_ffmpeg and not images:
        raise SystemExit(f'error: {missing_ffmpeg}')
    try:
        if images:
            check_outputs(args.output, images, args.aligned, args.before_after, args.draw_boxes)
        if videos:
            check_video_output(args.output)
    except (OSError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    restorer = build_restorer(args)
    print(describe_restorer(restorer) + (f'; component boxes: {args.box_source}' if restorer.needs_boxes else ''))
    if not images:
        for path, reason in skipped.items():
            print(f'skip {path}: {reason}')
        summary = {'faces': {}, 'skipped': dict(skipped), 'before_after_error': None}
    else:
        summary = _restore_images(args, restorer, images, skipped)
    if videos and (args.before_after or args.draw_boxes):
        print('note: --before-after and --draw-boxes are for photos; the videos get none')
    found = restore_videos(
        restorer, videos, args.output, args.only_center_face, args.suffix, progress=True, names=output_names(videos)
    )
    summary['videos'] = found['videos']
    summary['skipped'].update(found['skipped'])
    if videos:
        done, bad = len(found['videos']), len(found['skipped'])
        print(f'{done}/{len(videos)} videos restored, {bad} skipped. Results in {args.output}')
    return summary


def _restore_images(args, restorer, paths, skipped):
    """:func:`~facesr_kd.inference.restore_paths` with the options of ``args``; its errors exit with their message."""
    try:
        return restore_paths(
            restorer,
            paths,
            args.output,
            aligned=args.aligned,
            only_center_face=args.only_center_face,
            ext=args.ext,
            suffix=args.suffix,
            before_after=args.before_after,
            before_after_width=args.before_after_width,
            skipped=skipped,
            draw_boxes=args.draw_boxes,
        )
    except (OSError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err


def main(argv=None):
    """Restore every input.

    Returns:
        int: 0; 1 when the setup fails (the ``error:`` line goes to stderr), no input could be restored, or the
        before/after picture could not be written. Bad options exit with argparse's status 2.
    """
    try:
        summary = run(parse_args(argv))
    except SystemExit as err:
        if isinstance(err.code, str):
            print(err.code, file=sys.stderr)
            return 1
        raise
    if not summary['faces'] and not summary.get('videos'):
        total = len(summary['skipped'])
        print(f'error: none of the {total} inputs could be restored (each is reported above)', file=sys.stderr)
        return 1
    if summary['before_after_error']:
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
