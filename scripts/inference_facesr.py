"""Restore the faces of real photos (or aligned face crops) with a facesr_kd checkpoint.

Detects faces with facexlib's RetinaFace, aligns each to the FFHQ template at the model's input size (32x32
for the x8 students), super-resolves it, and pastes it back into the upscaled photo. Any checkpoint written by
facesr_kd (``arch`` inside) works: the DFDNet-style students, the lightweight ``LiteFaceStudent`` ("lite",
"tiny"), the teacher, ``FaceRCAN`` / RCAN and SRFBN; BasicSR checkpoints without ``arch`` take ``--opt``. The
network runs in its cheapest CPU form (inference mode, spectral norms baked, channels-last where that measured
faster: see ``facesr_kd.inference.prepare_network``). Writes, like GFPGAN's ``inference_gfpgan.py``::

    <output>/cropped_faces/<name>_<i>.png    network inputs (aligned LR faces)
    <output>/restored_faces/<name>_<i>.png   restored faces
    <output>/cmp/<name>_<i>.png              input (bicubic-upsampled) | restored, side by side
    <output>/restored_imgs/<name>.<ext>      whole photos, upscaled, faces pasted back (not with --aligned)

Example (offline, the staged mobilenet0.25 detector)::

    python scripts/inference_facesr.py -i ../shared/data/faces/whole -o results/whole \\
        --model experiments/pretrained_models/DFDNetStudent_x8.pth --upscale 2 \\
        --det-model retinaface_mobile0.25 --model-root ../shared/data/weights/facexlib --offline

The lightweight student, the same way::

    python scripts/inference_facesr.py -i ../shared/data/faces/whole -o results/whole_lite \\
        --model experiments/lite_student_distill_x8_vggface2/models/net_g_latest.pth --upscale 2 \\
        --det-model retinaface_mobile0.25 --model-root ../shared/data/weights/facexlib --offline
"""

import argparse
import os
import sys
import time

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facesr_kd.face.detection import DET_MODELS  # noqa: E402
from facesr_kd.face.image_io import ImageReadError, read_image  # noqa: E402
from facesr_kd.inference import (  # noqa: E402
    BG_UPSAMPLERS,
    BOX_SOURCES,
    DEFAULT_MAX_PIXELS,
    FaceSRRestorer,
    build_bg_upsampler,
)
from facesr_kd.utils.checkpoint import CheckpointError  # noqa: E402

DEFAULT_MODEL = 'experiments/pretrained_models/DFDNetStudent_x8.pth'
SIXTEEN_BIT_EXTS = ('png', 'tif', 'tiff')


def list_inputs(path):
    """A file, or every non-hidden file of a folder (sorted); non-images are reported and skipped later."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise SystemExit(f'error: input {path} does not exist')
    names = sorted(n for n in os.listdir(path) if not n.startswith('.'))
    return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]


def write_image(path, img, bit_depth=8, color='bgr', png_compression=None):
    """Write ``img`` (BGR[A], uint8 or float32 in [0, 255]) in the input's layout: gray stays gray, 16-bit stays
    16-bit where the format allows it (PNG, TIFF)."""
    if color == 'gray' and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    ext = os.path.splitext(path)[1].lower().lstrip('.')
    if bit_depth == 16 and ext in SIXTEEN_BIT_EXTS:
        img = np.clip(np.rint(img.astype(np.float32) * (65535.0 / 255.0)), 0, 65535).astype(np.uint16)
    elif img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if ext in ('jpg', 'jpeg') and img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, png_compression] if ext == 'png' and png_compression is not None else []
    if not cv2.imwrite(path, img, params):
        raise OSError(f'cannot write {path}')


def to_bgr8(img):
    """An 8-bit, 3-channel copy of a BGR[A] (uint8, or float32 in [0, 255]) or gray image, for pictures."""
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    img = img[..., :3]
    return img if img.dtype == np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)


def before_after_row(before, after, width):
    """``before | after`` side by side, resized to ``width`` (area filter when shrinking)."""
    before = cv2.resize(to_bgr8(before), after.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    row = np.hstack([before, to_bgr8(after)])
    height = max(int(round(row.shape[0] * width / row.shape[1])), 1)
    interp = cv2.INTER_AREA if width < row.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(row, (width, height), interpolation=interp)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Face super-resolution of real photos with a facesr_kd checkpoint.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('-i', '--input', required=True, help='Input image or folder')
    parser.add_argument('-o', '--output', default='results', help='Output folder')
    parser.add_argument(
        '--model',
        default=DEFAULT_MODEL,
        help='Checkpoint: a student (DFDNetStudent, LiteFaceStudent), or the teacher, FaceRCAN / RCAN, SRFBN',
    )
    parser.add_argument('--opt', default=None, help='Option file for a checkpoint without an `arch` entry')
    parser.add_argument('--scale', type=int, default=8, help='Refuse a checkpoint of another scale (0: any)')
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
        '--before-after',
        default=None,
        help='Also write one PNG of "input (bicubic) | result" rows: the whole photos, or the faces with --aligned',
    )
    parser.add_argument('--before-after-width', type=int, default=1024, help='Width of the --before-after picture')
    args = parser.parse_args(argv)
    if args.upscale <= 0:
        parser.error('--upscale must be positive')
    if args.upscale == int(args.upscale):
        args.upscale = int(args.upscale)
    return args


def build_restorer(args):
    """The :class:`FaceSRRestorer` for ``args``; setup errors exit with their message (no traceback)."""
    if not os.path.isfile(args.model):
        raise SystemExit(
            f'error: checkpoint not found: {args.model}; pass --model with a student (DFDNetStudent, LiteFaceStudent) '
            'or teacher, RCAN, SRFBN checkpoint, e.g. experiments/<name>/models/net_g_latest.pth'
        )
    try:
        bg = build_bg_upsampler(args.bg_upsampler, args.bg_model, tile=args.bg_tile, device='cpu')
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
        )
        if restorer.needs_detector(args.aligned):
            restorer.detector  # noqa: B018  (build it now: missing weights stop the run before it starts)
    except (FileNotFoundError, CheckpointError, ImportError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    return restorer


def main(args):
    """Run the restorer over the inputs; return a summary dict (per-photo face counts, skipped files, timings)."""
    restorer = build_restorer(args)
    info = restorer.info
    print(
        f'{info["type"]} x{info["scale"]}: faces {info["lq_size"]} -> {info["out_size"]} on {restorer.device}'
        + (', channels-last' if restorer.channels_last else '')
        + (f'; component boxes: {args.box_source}' if restorer.needs_boxes else '')
    )
    paths = list_inputs(args.input)
    summary = {'faces': {}, 'no_face': [], 'skipped': {}, 'boxes_s': 0.0, 'sr_s': 0.0, 'detect_s': 0.0}
    suffix = f'_{args.suffix}' if args.suffix else ''
    rows = []
    start = time.perf_counter()
    for path in tqdm(paths, desc='photos', unit='img', disable=len(paths) < 2):
        name, in_ext = os.path.splitext(os.path.basename(path))
        try:
            img, alpha, img_info = read_image(path)
            arr = img if alpha is None else np.dstack([img, alpha])
            cropped, restored, restored_img = restorer.enhance(
                arr, aligned=args.aligned, only_center_face=args.only_center_face, paste_back=True
            )
        except ImageReadError as err:
            tqdm.write(f'skip {path}: {err}')
            summary['skipped'][path] = str(err)
            continue
        except Exception as err:  # noqa: BLE001  (bad input is reported and skipped, never fatal to a batch)
            tqdm.write(f'skip {path}: {type(err).__name__}: {err}')
            summary['skipped'][path] = f'{type(err).__name__}: {err}'
            continue
        stats = restorer.last_stats
        for key in ('boxes_s', 'sr_s', 'detect_s'):
            summary[key] += stats[key]
        summary['faces'][path] = len(restored)
        if not restored:
            summary['no_face'].append(path)
            tqdm.write(f'{path}: no face found; saving the photo upscaled x{args.upscale} only')
        elif stats['box_fallbacks']:
            tqdm.write(f'{path}: landmarks not found on {stats["box_fallbacks"]} face(s); used template boxes')

        for idx, (lq, face) in enumerate(zip(cropped, restored)):
            tag = f'{name}_{idx:02d}'
            write_image(os.path.join(args.output, 'cropped_faces', f'{tag}.png'), lq)
            write_image(os.path.join(args.output, 'restored_faces', f'{tag}{suffix}.png'), face)
            up = cv2.resize(lq, face.shape[1::-1], interpolation=cv2.INTER_CUBIC)
            write_image(os.path.join(args.output, 'cmp', f'{tag}.png'), np.hstack([up, face]))
        if restored_img is not None:
            ext = in_ext.lstrip('.').lower() if args.ext == 'auto' else args.ext.lstrip('.').lower()
            if restored_img.ndim == 3 and restored_img.shape[2] == 4:
                ext = 'png'
            color = 'gray' if img_info['color'] in ('gray', 'gray_alpha') and alpha is None else 'bgr'
            out_path = os.path.join(args.output, 'restored_imgs', f'{name}{suffix}.{ext}')
            write_image(out_path, restored_img, img_info['bit_depth'], color)
        if args.before_after:
            if restored_img is not None:
                rows.append(before_after_row(arr, restored_img, args.before_after_width))
            else:  # faces: at most their own size
                width = min(args.before_after_width, 2 * restorer.out_size)
                rows.extend(before_after_row(lq, face, width) for lq, face in zip(cropped, restored))

    if args.before_after and rows:
        write_image(args.before_after, np.vstack(rows), png_compression=9)
        size = os.path.getsize(args.before_after)
        print(f'before/after picture: {args.before_after} ({size / 1e6:.2f} MB)')
    done = len(summary['faces'])
    total_faces = sum(summary['faces'].values())
    print(
        f'{done}/{len(paths)} inputs, {total_faces} faces, {len(summary["no_face"])} without a face, '
        f'{len(summary["skipped"])} skipped, in {time.perf_counter() - start:.1f} s '
        f'(detection {summary["detect_s"]:.1f} s, super-resolution {summary["sr_s"]:.1f} s). Results in {args.output}'
    )
    if restorer.needs_boxes and total_faces:
        print(
            f'teacher component boxes ({args.box_source}): {summary["boxes_s"]:.2f} s for {total_faces} faces '
            f'({1000 * summary["boxes_s"] / total_faces:.1f} ms/face)'
        )
    return summary


if __name__ == '__main__':
    main(parse_args())
