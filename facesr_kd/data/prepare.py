"""Prepare aligned face super-resolution data: detect, align, crop, downscale, and record component boxes.

Input is a VGGFace2 root (identity folders under ``train/`` and ``test/``, prepared separately) or any folder
tree of face photos; ``--aligned`` takes faces that are already FFHQ-aligned and skips detection.

Output layout (``<split>/`` only for a VGGFace2-style input with ``train/``/``test/``)::

    OUTPUT/[<split>/]hr/<rel>.png          aligned HR faces, size x size
    OUTPUT/[<split>/]lr_x<scale>/<rel>.png MATLAB-bicubic LR faces, size/scale
    OUTPUT/[<split>/]meta_info.txt         BasicSR meta_info: one HR path relative to hr/ per line
    OUTPUT/[<split>/]boxes.json            component boxes per face (facesr_kd.face.components format)
    OUTPUT/[<split>/]records.jsonl         per-photo journal (what resumption reads)
    OUTPUT/[<split>/]skipped.txt           photo<TAB>reason<TAB>detail: photos skipped or failed, faces dropped,
                                           files not taken, photos of which only the first frame was used
    OUTPUT/[<split>/]hr.lmdb, lr_x8.lmdb   with --lmdb (BasicSR lmdb, key = <rel> without .png)
    OUTPUT/prepare_config.json, summary.json

``<rel>`` is the photo's path below the input (split) folder without its extension, plus ``_<k>`` (two
digits, faces of a photo numbered largest first) when faces are detected, e.g. ``n000002/0001_01_00.png``.
Photos that share a path without extension (``x.jpg`` and ``x.png``) get theirs in the name too (``x_jpg``,
``x_png``), decided from the whole input listing, so keys are unique and the same whatever ``--workers``.

Input that could hurt a run is reported, never silent, and never stops the batch: files with other extensions,
broken links, non-regular files, unreadable folders and symlink loops are listed in ``skipped.txt`` and
counted in the summary (``files_ignored``); photos over ``max_pixels`` are refused from their header before
decoding (``too_large``); only the first frame of an animation is used, and said so (``first_frame``). Hidden
files and folders (a name starting with ``.``) are not looked at. A photo whose faces cannot be written
(``write_failed``: an OSError, e.g. a full disk) is journaled as failed and retried by the next run; a full
disk stops the run at once. A worker process that dies (the out-of-memory killer) stops the run with a
:class:`PreparationError` instead of a hang. Either way every finished photo stays journaled and re-running the
same command resumes.

Example::

    facesr-kd-prepare -i VGGFace2 -o datasets/vggface2_256 --faces-per-photo 1
"""

import contextlib
import errno
import importlib.util
import inspect
import json
import math
import multiprocessing
import os
import os.path as osp
import re
import shutil
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from stat import S_ISREG

from facesr_kd.data.face_sr_dataset import downscale_like_prepare
from facesr_kd.face.align import (
    affine_scale,
    estimate_affine,
    face_template,
    inside_fraction,
    transform_points,
    warp_face,
)
from facesr_kd.face.components import (
    COMPONENTS,
    boxes_from_landmarks5,
    boxes_from_landmarks68,
    load_boxes_file,
    save_boxes_file,
    template_boxes,
)
from facesr_kd.face.detection import (
    DET_MODELS,
    build_detector,
    default_model_root,
    detect_faces,
    detector_weights_path,
    missing_weights_message,
)
from facesr_kd.face.image_io import (
    DEFAULT_READ_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageReadError,
    read_image,
    write_image,
)
from facesr_kd.utils.files import write_text

import cv2
import numpy as np
import torch
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from tqdm import tqdm

DLIB68_FILE = 'shape_predictor_68_face_landmarks.dat'
DLIB68_URL = 'http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2 (decompress it)'
DEBIAN_DLIB_DIR = '/usr/share/dlib'
# Reasons a whole photo yields nothing, and reasons a detected face is not kept.
PHOTO_REASONS = (
    'unreadable',
    'truncated',
    'unsupported',
    'too_large',
    'tiny',
    'no_face',
    'not_square',
    'identity_cap',
    'error',
)
FACE_REASONS = ('too_small', 'outside', 'per_photo_cap', 'identity_cap', 'no_landmarks68')
# Why a photo failed (journaled with status 'failed': the next run retries it).
FAILURE_REASONS = ('write_failed',)
# Why a file of the input folder is not taken as a photo.
IGNORED_REASONS = (
    'unsupported_extension',
    'broken_link',
    'not_a_file',
    'symlink_loop',
    'duplicate_link',
    'unreadable_folder',
)
# Skips a re-run looks at again: they depend on an option outside CONFIG_KEYS, and re-checking costs a header read.
RETRIED_REASONS = ('too_large',)
_DISK_FULL = (errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC))
# atomic_write's temporary files: '<name>.tmp<pid>'.
_TEMP_NAME = re.compile(r'\.tmp(\d+)$')
# Skip reasons worth a line in the progress output (the others are the expected outcome of filtering).
_REPORTED = ('unreadable', 'truncated', 'unsupported', 'too_large', 'error', 'write_failed')
# Options that change what a face's output looks like; a re-run with other values needs --overwrite.
CONFIG_KEYS = (
    'aligned',
    'det_model',
    'size',
    'scale',
    'conf_threshold',
    'det_resize',
    'eye_dist_threshold',
    'max_upscale',
    'min_inside',
    'min_photo_size',
    'faces_per_photo',
    'max_per_identity',
    'landmarks',
    'aligned_boxes',
    'border',
)


class PreparationError(RuntimeError):
    """The run stopped before the end (disk full, a worker process died); finished photos stay journaled and
    re-running the same command resumes."""


def default_workers():
    """The number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def prepare_faces(
    input_dir,
    output_dir,
    aligned=False,
    det_model='retinaface_resnet50',
    model_root=None,
    size=256,
    scale=8,
    conf_threshold=0.97,
    det_resize=640,
    eye_dist_threshold=5.0,
    max_upscale=1.0,
    min_inside=0.9,
    min_photo_size=32,
    faces_per_photo=None,
    max_per_identity=None,
    landmarks='five',
    aligned_boxes='template',
    border='constant',
    start=None,
    end=None,
    id_list=None,
    lmdb=False,
    workers=None,
    device='cpu',
    overwrite=False,
    progress=True,
    max_pixels=DEFAULT_READ_MAX_PIXELS,
):
    """Prepare aligned HR/LR faces, meta_info and component boxes from a folder of photos.

    Args:
        input_dir (str): VGGFace2 root (with ``train/`` and/or ``test/``) or any folder tree of photos.
        output_dir (str): Output root (layout in the module docstring).
        aligned (bool): Inputs are FFHQ-aligned square faces: no detection, one face per photo, resized to
            ``size`` if needed.
        det_model (str): ``'retinaface_resnet50'`` or ``'retinaface_mobile0.25'``.
        model_root (str | None): Folder with the detector (and dlib) weights. Default: facexlib's weights folder.
        size (int): Side of the HR faces.
        scale (int): Downscale factor of the LR faces (``size`` must be divisible by it).
        conf_threshold (float): Detector score threshold, in [0, 1].
        det_resize (int | None): Detect on a copy with this short side (GFPGAN's 640); None or 0: original size.
            The copy's long side and area are bounded either way (:func:`facesr_kd.face.detection.detect_faces`).
        eye_dist_threshold (float | None): Ignore detections whose eye distance (photo pixels) is smaller; None
            or 0 keeps every detection.
        max_upscale (float): Drop faces that would be enlarged more than this to fill ``size`` (1.0: only true
            crops, the photo has at least as many pixels as the crop).
        min_inside (float): Drop faces whose crop has less than this fraction inside the photo (the rest is
            padding).
        min_photo_size (int): Skip photos whose short side is smaller.
        faces_per_photo (int | None): Keep at most this many faces per photo (the largest that pass the size
            checks). 1 keeps the main face of VGGFace2-style photos. None or 0: no cap.
        max_per_identity (int | None): Keep at most this many faces per identity (top-level folder), the first
            in sorted order. None or 0: no cap.
        landmarks (str): ``'five'``: boxes from the five detector landmarks; ``'dlib68'``: from dlib's 68-point
            predictor on the HR face (needs ``dlib`` and ``shape_predictor_68_face_landmarks.dat`` in
            ``model_root`` or from an installed ``face-recognition-models``; faces where dlib finds no face are
            dropped).
        aligned_boxes (str): With ``aligned``: ``'template'`` (fixed FFHQ-template boxes) or ``'detect'``
            (five landmarks detected on the aligned face; template boxes where none is found, counted).
        border (str): Fill of crop pixels outside the photo: ``'constant'`` (facexlib's gray) or ``'reflect'``.
        start (int | None): First photo (index into the sorted, list-filtered photos of each split).
        end (int | None): One past the last photo.
        id_list (str | None): File of photos to take, one per line: paths relative to the split folder, with or
            without extension.
        lmdb (bool): Also write ``hr.lmdb`` and ``lr_x<scale>.lmdb``.
        workers (int | None): Processes (at least 1); default all cores.
        device (str): Where the detector runs, ``'cpu'`` or ``'cuda'`` (then each worker holds a detector on
            the GPU; use few workers).
        overwrite (bool): Discard a previous run in ``output_dir`` (its journal, HR/LR folders and LMDBs).
        progress (bool): Show a progress bar.
        max_pixels (int | None): Refuse photos with more pixels (``too_large``), from their header, before
            decoding them (:func:`facesr_kd.face.image_io.read_image`); None: no limit. Not part of the saved
            options: a re-run with another value looks at the refused photos again.

    Returns:
        dict: Summary: ``photos``, ``photos_read``, ``photos_skipped`` (reason -> count), ``photos_failed``
        (photos journaled as failed, retried by the next run), ``files_ignored`` (reason -> count of files not
        taken as photos), ``faces_detected``, ``faces_kept``, ``faces_dropped`` (reason -> count),
        ``converted`` (gray/alpha/16-bit/first_frame counts), ``processed`` and ``resumed`` (photos done now
        and found done), ``faces_written``, ``seconds``, ``faces_per_second``, ``box_source``, ``splits`` (the
        same per split), ``output`` and, with ``id_list``, ``list_not_found`` (its entries that match no photo).

    Raises:
        FileNotFoundError: A model file is missing (the message names it, its URL and where it goes), or the
            input folder is missing.
        ValueError: Bad options (the message names the option), or ``output_dir`` holds a run with other
            options and ``overwrite`` is False.
        PreparationError: The run stopped: the disk is full, or a worker process died (killed, e.g. by the
            out-of-memory killer). Finished photos are journaled; a re-run resumes.
        OSError: The output cannot be written (its folder, the journal, meta_info...).
    """
    cfg = _config(dict(locals()))  # the arguments, by name
    if not osp.isdir(input_dir):
        raise FileNotFoundError(f'input folder {input_dir} does not exist')
    _check_models(cfg)
    t0 = time.time()
    os.makedirs(output_dir, exist_ok=True)
    _check_previous_run(output_dir, cfg, overwrite)
    entries = _read_id_list(id_list) if id_list else None
    selection = _selection(entries) if entries is not None else None

    split_summaries, names = {}, set()
    for split, split_in in _find_splits(input_dir):
        split_out = osp.join(output_dir, split) if split else output_dir
        if overwrite:
            _clear_split(split_out, cfg['scale'])
        listing, ignored = _scan_folder(split_in, exclude=output_dir)
        names.update(listing)
        names.update(osp.splitext(p)[0] for p in listing)
        photos = _select(listing, selection, cfg['start'], cfg['end'])
        split_summaries[split or '.'] = _prepare_split(
            split_in, split_out, photos, listing, ignored, cfg, lmdb, cfg['workers'], progress
        )

    summary = _merge_summaries(split_summaries)
    if entries is not None:
        summary['list_not_found'] = [e for e in entries if e not in names and osp.splitext(e)[0] not in names]
    summary['seconds'] = round(time.time() - t0, 3)
    summary['faces_per_second'] = round(summary['faces_written'] / max(summary['seconds'], 1e-9), 3)
    summary['output'] = osp.abspath(output_dir)
    write_text(osp.join(output_dir, 'summary.json'), json.dumps(summary, indent=2) + '\n', skip_same=True)
    return summary


def check_options(**options):
    """Check :func:`prepare_faces` options (its keyword arguments) without touching any file.

    Raises:
        ValueError: The first bad option; the message names it (``--size must be ...``).
        TypeError: An argument :func:`prepare_faces` does not take.
    """
    bound = inspect.signature(prepare_faces).bind(None, None, **options)
    bound.apply_defaults()
    _config(bound.arguments)


# ---------------------------------------------------------------------------------------------------------------
# Checks and planning (main process)


def _flag(name):
    return {'id_list': '--list'}.get(name, '--' + name.replace('_', '-'))


def _int_option(args, name, low, zero_is_none=False):
    """``args[name]`` as an int >= ``low``; None stays None (and 0 becomes None with ``zero_is_none``)."""
    value = args[name]
    if value is None or (zero_is_none and not isinstance(value, bool) and value == 0):
        return None
    try:
        number = int(value)
        exact = not isinstance(value, bool) and number == float(value)
    except (TypeError, ValueError, OverflowError):
        exact = False
    if not exact:
        raise ValueError(f'{_flag(name)} must be an integer, got {value!r}')
    if number < low:
        extra = ' (0: none)' if zero_is_none else ''
        raise ValueError(f'{_flag(name)} must be at least {low}{extra}, got {number}')
    return number


def _float_option(args, name, low, high=math.inf, low_open=False, zero_is_none=False):
    """``args[name]`` as a finite float in [low, high] (``(low, high]`` with ``low_open``)."""
    value = args[name]
    if value is None or (zero_is_none and value == 0):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{_flag(name)} must be a number, got {value!r}') from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError(f'{_flag(name)} must be a finite number, got {value!r}')
    if number < low or (low_open and number == low) or number > high:
        interval = f'{"(" if low_open else "["}{low:g}, {high:g}]' if high < math.inf else None
        wanted = f'in {interval}' if interval else ('greater than' if low_open else 'at least') + f' {low:g}'
        raise ValueError(f'{_flag(name)} must be {wanted}, got {number:g}')
    return number


def _config(args):
    """The checked, normalised options of a :func:`prepare_faces` call (``args``: its arguments by name)."""
    cfg = {
        'aligned': bool(args['aligned']),
        'det_model': args['det_model'],
        'size': _int_option(args, 'size', 1),
        'scale': _int_option(args, 'scale', 1),
        'conf_threshold': _float_option(args, 'conf_threshold', 0, 1),
        'det_resize': _int_option(args, 'det_resize', 1, zero_is_none=True),
        'eye_dist_threshold': _float_option(args, 'eye_dist_threshold', 0, zero_is_none=True),
        'max_upscale': _float_option(args, 'max_upscale', 0, low_open=True),
        'min_inside': _float_option(args, 'min_inside', 0, 1),
        'min_photo_size': _int_option(args, 'min_photo_size', 0),
        'faces_per_photo': _int_option(args, 'faces_per_photo', 1, zero_is_none=True),
        'max_per_identity': _int_option(args, 'max_per_identity', 1, zero_is_none=True),
        'landmarks': args['landmarks'],
        'aligned_boxes': args['aligned_boxes'],
        'border': args['border'],
    }
    for name in ('size', 'scale', 'conf_threshold', 'max_upscale', 'min_inside', 'min_photo_size'):
        if cfg[name] is None:
            raise ValueError(f'{_flag(name)} must be given, got None')
    if cfg['det_model'] not in DET_MODELS:
        raise ValueError(f'--det-model must be one of {sorted(DET_MODELS)}, got {cfg["det_model"]!r}')
    if cfg['size'] % cfg['scale']:
        raise ValueError(f'--size {cfg["size"]} is not divisible by --scale {cfg["scale"]}')
    if cfg['landmarks'] not in ('five', 'dlib68'):
        raise ValueError(f'--landmarks must be five or dlib68, got {cfg["landmarks"]!r}')
    if cfg['aligned_boxes'] not in ('template', 'detect'):
        raise ValueError(f'--aligned-boxes must be template or detect, got {cfg["aligned_boxes"]!r}')
    if cfg['border'] not in ('constant', 'reflect'):
        raise ValueError(f'--border must be constant or reflect, got {cfg["border"]!r}')
    workers = _int_option(args, 'workers', 1)
    start, end = _int_option(args, 'start', 0), _int_option(args, 'end', 0)
    if start is not None and end is not None and end <= start:
        raise ValueError(f'--end {end} must be greater than --start {start} (the range selects no photo)')
    cfg.update(
        model_root=args['model_root'],
        device=args['device'],
        max_pixels=_int_option(args, 'max_pixels', 1),
        workers=default_workers() if workers is None else workers,
        start=start,
        end=end,
    )
    return cfg


def _needs_detector(cfg):
    return not cfg['aligned'] or cfg['aligned_boxes'] == 'detect'


def _check_models(cfg):
    """Fail at once, before any work, when a model file is missing."""
    if _needs_detector(cfg):
        detector_weights_path(cfg['det_model'], cfg['model_root'])
    if cfg['landmarks'] == 'dlib68':
        _dlib68_path(cfg['model_root'])


def _dlib68_path(model_root):
    """dlib's 68-point model: in ``model_root``, else from the ``face-recognition-models`` package or Debian's
    ``libdlib-data`` when either is installed (the same file, CC0)."""
    try:
        import dlib  # noqa: F401
    except ImportError as e:
        raise ImportError(
            '--landmarks dlib68 needs the dlib Python binding: pip install -e ".[landmarks]" (dlib-bin, prebuilt, '
            'and face-recognition-models, which carries the 68-point model), or pip install dlib (compiles with '
            'CMake)'
        ) from e
    root = default_model_root() if model_root is None else osp.expanduser(model_root)
    for path in (osp.join(root, DLIB68_FILE), *_installed_dlib68_files()):
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        missing_weights_message(DLIB68_FILE, DLIB68_URL, root)
        + " It also comes with pip install face-recognition-models==0.3.0 or Debian's libdlib-data."
    )


def _installed_dlib68_files():
    """Where installed packages put dlib's 68-point model (looked up without importing them)."""
    spec = importlib.util.find_spec('face_recognition_models')
    if spec is not None and spec.origin:
        yield osp.join(osp.dirname(spec.origin), 'models', DLIB68_FILE)
    yield osp.join(DEBIAN_DLIB_DIR, DLIB68_FILE)


def _box_source(cfg):
    if cfg['landmarks'] == 'dlib68':
        return 'landmarks68'
    if cfg['aligned'] and cfg['aligned_boxes'] == 'template':
        return 'template'
    return 'landmarks5'


def _check_previous_run(output_dir, cfg, overwrite):
    path = osp.join(output_dir, 'prepare_config.json')
    saved = {k: v for k, v in cfg.items() if k in CONFIG_KEYS}
    if osp.isfile(path) and not overwrite:
        with open(path) as f:
            previous = json.load(f)
        diff = {k: (previous.get(k), v) for k, v in saved.items() if previous.get(k) != v}
        if diff:
            details = ', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in sorted(diff.items()))
            raise ValueError(
                f'{output_dir} was prepared with other options ({details}); use another output folder '
                'or --overwrite to discard that run'
            )
    write_text(path, json.dumps(saved, indent=2, sort_keys=True) + '\n', skip_same=True)


def _clear_split(split_out, scale):
    for name in ('hr', f'lr_x{scale}', 'hr.lmdb', f'lr_x{scale}.lmdb'):
        if osp.isdir(osp.join(split_out, name)):
            shutil.rmtree(osp.join(split_out, name))
    for name in ('records.jsonl', 'meta_info.txt', 'boxes.json', 'skipped.txt'):
        if osp.isfile(osp.join(split_out, name)):
            os.remove(osp.join(split_out, name))


def _find_splits(input_dir):
    """VGGFace2 layout (``train/``, ``test/``): one split each; anything else: the whole tree as one."""
    splits = [(s, osp.join(input_dir, s)) for s in ('train', 'test') if osp.isdir(osp.join(input_dir, s))]
    return splits or [('', input_dir)]


def _scan_folder(root, exclude=None):
    """Every file below ``root``: the photos, and the files not taken with the reason.

    Each real folder and each real file is taken once, by its resolved path. The tree itself is walked first;
    then the folders that symlinks lead to, unless already walked: a link to a folder walked before is not
    followed again and is reported as ``symlink_loop`` when following links would lead back to it (a link
    to a folder above it, or sibling folders linking to each other), else as ``duplicate_link``; a link to a
    photo already taken is a ``duplicate_link`` too.

    Args:
        root (str): Folder to walk.
        exclude (str | None): A folder not to descend into (the output, when it lies inside the input).

    Returns:
        tuple: ``(photos, ignored)``: photo paths relative to ``root`` (POSIX separators, sorted), and sorted
        ``(path, reason, detail)`` of the other files (reasons in :data:`IGNORED_REASONS`).
    """
    photos, ignored = [], []
    exclude = osp.realpath(exclude) if exclude else None
    walked = {}  # real folder -> its path relative to root, as walked
    taken = {}  # real file -> its path relative to root
    dir_links = []  # (relative path, real folder it is in, real target)
    file_links = []  # (full path, relative path)

    def rel_path(path):
        rel = osp.relpath(path, root)
        return rel.replace(os.sep, '/')

    def on_error(err):
        ignored.append((rel_path(err.filename or root), 'unreadable_folder', err.strerror or str(err)))

    def under(path, folder):
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    def walk(top):
        # followlinks=False: links to folders are listed, not entered; they wait in dir_links.
        for dirpath, dirnames, filenames in os.walk(top, onerror=on_error):
            real = osp.realpath(dirpath)
            walked.setdefault(real, rel_path(dirpath))
            kept = []
            for d in sorted(dirnames):
                full = osp.join(dirpath, d)
                if d.startswith('.'):
                    continue
                if osp.islink(full):
                    target = osp.realpath(full)
                    if target != exclude:
                        dir_links.append((rel_path(full), real, target))
                    continue
                target = osp.join(real, d)
                if target == exclude:
                    continue
                if target in walked:  # inside a linked folder: reached before by another way
                    ignored.append((rel_path(full), 'duplicate_link', f'{target}, already walked as {walked[target]}/'))
                    continue
                kept.append(d)
            dirnames[:] = kept
            for name in filenames:
                if name.startswith('.'):
                    continue
                full = osp.join(dirpath, name)
                if osp.islink(full) and osp.exists(full):
                    file_links.append((full, rel_path(full)))  # taken after every real file is known
                else:
                    take(full, rel_path(full), osp.join(real, name))

    def take(full, rel, real_file):
        try:
            mode = os.stat(full).st_mode
        except OSError as e:
            if osp.islink(full):
                ignored.append((rel, 'broken_link', f'points to {os.readlink(full)}, which does not exist'))
            else:
                ignored.append((rel, 'not_a_file', e.strerror or str(e)))
            return
        if not S_ISREG(mode):
            ignored.append((rel, 'not_a_file', 'not a regular file (a FIFO, socket or device)'))
        elif not osp.basename(full).lower().endswith(IMAGE_EXTENSIONS):
            ext = osp.splitext(full)[1] or 'no extension'
            ignored.append((rel, 'unsupported_extension', f'{ext}, not one of {" ".join(IMAGE_EXTENSIONS)}'))
        elif real_file in taken:
            ignored.append((rel, 'duplicate_link', f'the same file as {taken[real_file]}, taken once'))
        else:
            taken[real_file] = rel
            photos.append(rel)

    walk(root)
    revisits = []
    done = 0
    while done < len(dir_links):  # links found in linked folders are appended and handled in turn
        rel, parent, target = dir_links[done]
        done += 1
        if target in walked or under(parent, target):
            revisits.append((rel, parent, target))
        else:
            walk(osp.join(root, rel))
    for full, rel in file_links:
        take(full, rel, osp.realpath(full))
    looping = _links_in_loops(dir_links)
    for rel, _, target in revisits:
        seen = walked.get(target)
        where = f'{seen}/' if seen not in (None, '.') else ('the input folder' if seen == '.' else target)
        if rel in looping:
            ignored.append(
                (rel, 'symlink_loop', f'links to {target} ({where}), which links lead back here: walked once')
            )
        else:
            ignored.append((rel, 'duplicate_link', f'links to {target}, already walked as {where}'))
    return sorted(photos), sorted(ignored)


def _links_in_loops(links):
    """The links (``(relative path, real folder it is in, real target)``) that following links leads back to.

    Link ``a`` leads to link ``b`` when ``b`` lies inside ``a``'s target; a link is in a loop when a chain of
    such steps comes back to it (a link inside its own target is one step).
    """

    def inside(path, folder):
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    following = {rel: [r for r, parent, _ in links if inside(parent, target)] for rel, _, target in links}
    looping = set()
    for start in following:
        stack, seen = list(following[start]), set()
        while stack:
            rel = stack.pop()
            if rel == start:
                looping.add(start)
                break
            if rel not in seen:
                seen.add(rel)
                stack.extend(following[rel])
    return looping


def _select(photos, selection=None, start=None, end=None):
    """``photos`` filtered by ``selection`` (a set of paths and paths without extension), then sliced."""
    if selection is not None:
        photos = [p for p in photos if p in selection or osp.splitext(p)[0] in selection]
    return photos[start:end]


def _list_photos(root, selection=None, start=None, end=None, exclude=None):
    """Photo paths relative to ``root`` (POSIX separators), sorted, filtered by ``selection`` then sliced.

    ``exclude`` is a folder not to descend into (the output, when it lies inside the input).
    """
    return _select(_scan_folder(root, exclude)[0], selection, start, end)


def _read_id_list(path):
    """The entries of an id list file (first word of each line; ``#`` lines are comments), POSIX separators."""
    with open(path) as f:
        entries = [line.strip().split()[0] for line in f if line.strip() and not line.startswith('#')]
    return [e.replace(os.sep, '/') for e in entries]


def _selection(entries):
    return set(entries) | {osp.splitext(e)[0] for e in entries}


def _output_stems(photos):
    """The output name (without ``.png``) of each photo: its path without extension, unique among ``photos``.

    Photos sharing a path without extension get their extension in it (``x.jpg`` -> ``x_jpg``), and a number
    after that if still needed (``x.JPG`` and ``x.jpg``: ``x_jpg``, ``x_jpg2``); no name another photo has.
    """
    plain = [osp.splitext(p)[0] for p in photos]
    counts = Counter(plain)
    taken = set(plain)
    stems = {}
    for path, stem in zip(photos, plain):
        if counts[stem] == 1:
            stems[path] = stem
            continue
        base = f'{stem}_{osp.splitext(path)[1].lstrip(".").lower()}'
        name, n = base, 1
        while name in taken:
            n += 1
            name = f'{base}{n}'
        taken.add(name)
        stems[path] = name
    return stems


def _identity(rel):
    return rel.split('/', 1)[0] if '/' in rel else ''


def _photo_stat(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _load_journal(path):
    """Photo records of a previous run, by photo; a half-written last line (a killed run) is ignored."""
    records = {}
    if not osp.isfile(path):
        return records
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get('photo'), str) and 'status' in rec:
                records[rec['photo']] = rec
    return records


def load_records(output_dir, split=None):
    """The per-photo records of a prepared output (one dict per photo, sorted by photo path).

    Args:
        output_dir (str): The output root given to :func:`prepare_faces`.
        split (str | None): ``'train'`` or ``'test'`` for a VGGFace2-style output; None for a single tree.
    """
    records = _load_journal(osp.join(output_dir, split or '', 'records.jsonl'))
    return [records[k] for k in sorted(records)]


def _is_done(rec, stat, stem, split_out, scale):
    """Whether a journaled photo needs no work: unchanged file, same output name, a final outcome, faces on disk."""
    if rec is None or rec.get('stat') != stat or rec.get('stem', osp.splitext(rec['photo'])[0]) != stem:
        return False
    if rec['status'] == 'failed' or rec.get('reason') in RETRIED_REASONS:
        return False
    if rec.get('reason') == 'error' and '[Errno' in rec.get('message', ''):
        return False  # an OSError (full disk...) that earlier versions journaled as a final error
    for face in rec.get('faces', []):
        if face.get('kept'):
            key = face['key']
            if not (
                osp.isfile(osp.join(split_out, 'hr', key)) and osp.isfile(osp.join(split_out, f'lr_x{scale}', key))
            ):
                return False
    return True


def _remove_stale_temps(split_out, scale):
    """Delete temporary files of face writes whose writing process is gone (a killed worker left them)."""
    for name in ('hr', f'lr_x{scale}'):
        for dirpath, _, filenames in os.walk(osp.join(split_out, name)):
            for fname in filenames:
                match = _TEMP_NAME.search(fname)
                if match and not _pid_alive(int(match.group(1))):
                    with contextlib.suppress(OSError):
                        os.remove(osp.join(dirpath, fname))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _safe_key(key):
    """Whether a journaled face key is a relative path inside the output folder (a tampered journal is not)."""
    norm = osp.normpath(key)
    return not osp.isabs(norm) and norm != '..' and not norm.startswith('..' + os.sep)


def _remove_orphans(split_out, scale, replaced, records):
    """Delete the face files of redone photos' previous records that no current record claims any more."""
    claimed = {f['key'] for rec in records.values() for f in rec.get('faces', []) if f.get('kept')}
    for rec in replaced.values():
        for face in rec.get('faces', []):
            key = face.get('key')
            if face.get('kept') and key not in claimed and _safe_key(key):
                for name in ('hr', f'lr_x{scale}'):
                    with contextlib.suppress(OSError):
                        os.remove(osp.join(split_out, name, key))


def _prepare_split(split_in, split_out, photos, listing, ignored, cfg, lmdb, workers, progress):
    os.makedirs(split_out, exist_ok=True)
    _remove_stale_temps(split_out, cfg['scale'])
    journal_path = osp.join(split_out, 'records.jsonl')
    records = _load_journal(journal_path)
    stems = _output_stems(listing)
    todo, resumed = [], 0
    stats = {rel: _photo_stat(osp.join(split_in, rel)) for rel in photos}
    for rel in photos:
        if _is_done(records.get(rel), stats[rel], stems[rel], split_out, cfg['scale']):
            resumed += 1
        else:
            todo.append(rel)
    replaced = {rel: records[rel] for rel in todo if rel in records}

    # One task per photo, or per identity when identities are capped (so the cap is applied in sorted order).
    if cfg['max_per_identity']:
        todo_set, groups, kept = set(todo), {}, Counter()
        for rel in photos:
            if rel in todo_set:
                groups.setdefault(_identity(rel), []).append(rel)
            else:
                kept[_identity(rel)] += sum(1 for f in records[rel].get('faces', []) if f.get('kept'))
        tasks = [
            {'photos': [(r, stats[r], stems[r]) for r in rels], 'identity_kept': kept[ident]}
            for ident, rels in groups.items()
        ]
    else:
        tasks = [{'photos': [(rel, stats[rel], stems[rel])], 'identity_kept': 0} for rel in todo]

    task_cfg = dict(cfg, split_in=split_in, split_out=split_out)
    n_workers = max(1, min(workers, len(tasks)))
    processed = []
    if tasks:
        _ensure_journal_newline(journal_path)
        desc = osp.basename(split_out.rstrip('/')) or 'faces'
        pbar = tqdm(total=len(todo), unit='photo', disable=not progress, desc=desc)
        try:
            with open(journal_path, 'a') as journal, contextlib.closing(_run_tasks(tasks, task_cfg, n_workers)) as run:
                for recs in run:
                    for rec in recs:
                        journal.write(json.dumps(rec, separators=(',', ':')) + '\n')
                        records[rec['photo']] = rec
                        processed.append(rec['photo'])
                        if rec['status'] != 'ok' and rec['reason'] in _REPORTED:
                            pbar.write(f'skipped {rec["photo"]}: {rec["reason"]} ({rec.get("message", "")})')
                    journal.flush()
                    pbar.update(len(recs))
                    full = next((rec for rec in recs if rec.get('errno') in _DISK_FULL), None)
                    if full is not None:
                        raise PreparationError(
                            f'no space left on the device writing the faces of {full["photo"]} ({full["message"]}). '
                            f'{len(processed) - 1} photos finished in this run are journaled in {journal_path}: free '
                            'some space and re-run the same command to resume (that photo is retried).'
                        )
        except _WorkerDied as e:
            shown = ', '.join(e.photos[:5]) + (f' and {len(e.photos) - 5} more' if len(e.photos) > 5 else '')
            raise PreparationError(
                f'a worker process died while preparing {split_in}: it was killed (the out-of-memory killer does '
                f'this when memory runs out) or crashed, working on one of: {shown}. {len(processed)} photos '
                f'finished in this run are journaled in {journal_path} ({resumed + len(processed)} of '
                f'{len(photos)} done): re-run the same command to resume. If memory ran out, use fewer --workers '
                f'or a lower --max-pixels. ({e.detail})'
            ) from e
        finally:
            pbar.close()
    _remove_orphans(split_out, cfg['scale'], replaced, records)

    selected = [records[rel] for rel in photos if rel in records]
    _write_outputs(split_out, selected, ignored, cfg, lmdb)
    summary = _summarize(selected, ignored, cfg)
    summary['processed'] = len(processed)
    summary['resumed'] = resumed
    processed_set = set(processed)
    summary['faces_written'] = sum(
        1 for rec in selected if rec['photo'] in processed_set for f in rec.get('faces', []) if f.get('kept')
    )
    return summary


def _ensure_journal_newline(path):
    if osp.isfile(path) and osp.getsize(path):
        with open(path, 'rb+') as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b'\n':
                f.write(b'\n')


class _WorkerDied(Exception):
    """A worker process died; ``photos``: those of the tasks it may have been working on."""

    def __init__(self, photos, detail):
        super().__init__(detail)
        self.photos = photos
        self.detail = detail


def _run_tasks(tasks, cfg, n_workers):
    """Yield each task's photo records in task order (deterministic whatever the number of workers).

    Raises:
        _WorkerDied: A worker process died (killed by a signal, e.g. by the out-of-memory killer, or crashed).
            The records of every task that had finished were yielded first.
    """
    if n_workers == 1:
        threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
        try:
            _init_worker(cfg)
            for task in tasks:
                yield _run_task(task)
        finally:
            torch.set_num_threads(threads)
            cv2.setNumThreads(cv2_threads)
            _STATE.clear()
        return
    # Not 'fork': a parent that has run torch ops holds an OpenMP pool that deadlocks forked children. A fork
    # server imports torch and the package once, then forks clean workers from it.
    if 'forkserver' in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context('forkserver')
        ctx.set_forkserver_preload(['torch', 'cv2', 'facesr_kd', __name__])
    else:
        ctx = multiprocessing.get_context('spawn')
    # A pool of processes whose futures fail when one of them dies (multiprocessing.Pool would wait forever for
    # the lost task). Tasks go in chunks (one photo when detecting; up to 8 cheap aligned ones), at most
    # 2 per worker in flight, and come back in order.
    per_chunk = 1 if _needs_detector(cfg) else max(1, min(8, len(tasks) // (4 * n_workers)))
    chunks = [tasks[i : i + per_chunk] for i in range(0, len(tasks), per_chunk)]
    executor = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg,))
    pending, submitted, finished = deque(), 0, False
    try:
        while pending or submitted < len(chunks):
            try:
                while submitted < len(chunks) and len(pending) < 2 * n_workers:
                    pending.append((chunks[submitted], executor.submit(_run_chunk, chunks[submitted])))
                    submitted += 1
                results = pending[0][1].result()
            except BrokenProcessPool as e:
                lost = []
                for chunk, future in pending:
                    if future.done() and not future.cancelled() and future.exception() is None:
                        yield from future.result()
                    else:
                        lost.extend(rel for task in chunk for rel, *_ in task['photos'])
                raise _WorkerDied(lost, str(e)) from e
            pending.popleft()
            yield from results
        finished = True
    finally:
        if not finished:  # stopped early (an error, a full disk, Ctrl-C): do not wait for running tasks
            _terminate_workers(executor)
        executor.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(executor):
    terminate = getattr(executor, 'terminate_workers', None)  # Python 3.14+
    if terminate is not None:
        with contextlib.suppress(Exception):
            terminate()
        return
    for process in list((getattr(executor, '_processes', None) or {}).values()):
        with contextlib.suppress(Exception):
            process.terminate()


# ---------------------------------------------------------------------------------------------------------------
# Workers

_STATE = {}


def _init_worker(cfg):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _STATE['cfg'] = cfg
    detector = (
        build_detector(cfg['det_model'], cfg['model_root'], device=cfg['device']) if _needs_detector(cfg) else None
    )
    _STATE['detector'] = detector
    if cfg['landmarks'] == 'dlib68':
        import dlib

        _STATE['dlib'] = (dlib.get_frontal_face_detector(), dlib.shape_predictor(_dlib68_path(cfg['model_root'])))


def _run_chunk(tasks):
    return [_run_task(task) for task in tasks]


def _run_task(task):
    cfg = _STATE['cfg']
    kept = task['identity_kept']
    records = []
    for rel, stat, stem in task['photos']:
        cap = cfg['max_per_identity']
        if cap is not None and kept >= cap:
            rec = {'photo': rel, 'stat': stat, 'status': 'skipped', 'reason': 'identity_cap', 'faces': []}
        else:
            try:
                rec = _process_photo(rel, stat, cfg, None if cap is None else cap - kept, stem)
            except OSError as e:  # writing failed (a full disk...): not final, the next run retries the photo
                rec = {
                    'photo': rel,
                    'stat': stat,
                    'status': 'failed',
                    'reason': 'write_failed',
                    'faces': [],
                    'message': f'{type(e).__name__}: {e}',
                    'errno': e.errno,
                }
            except Exception as e:  # noqa: BLE001  (a bad photo never stops the run; it is reported)
                rec = {
                    'photo': rel,
                    'stat': stat,
                    'status': 'skipped',
                    'reason': 'error',
                    'faces': [],
                    'message': f'{type(e).__name__}: {e}',
                }
        if stem != osp.splitext(rel)[0]:
            rec['stem'] = stem
        kept += sum(1 for f in rec['faces'] if f.get('kept'))
        records.append(rec)
    return records


def _process_photo(rel, stat, cfg, identity_left, stem=None):
    stem = osp.splitext(rel)[0] if stem is None else stem
    rec = {'photo': rel, 'stat': stat, 'status': 'ok', 'reason': None, 'detected': 0, 'faces': []}
    try:
        img, _, info = read_image(osp.join(cfg['split_in'], rel), max_pixels=cfg['max_pixels'])
    except ImageReadError as e:
        return dict(rec, status='skipped', reason=e.reason, message=str(e))
    rec['color'], rec['bit_depth'] = info['color'], info['bit_depth']
    if info['frames'] > 1:
        rec['frames'] = info['frames']
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if min(img.shape[:2]) < cfg['min_photo_size']:
        return dict(rec, status='skipped', reason='tiny', message=f'{img.shape[1]}x{img.shape[0]}')
    if cfg['aligned']:
        return _process_aligned(rec, stem, img, cfg)
    return _process_detected(rec, stem, img, cfg, identity_left)


def _process_detected(rec, stem, img, cfg, identity_left):
    size = cfg['size']
    faces = detect_faces(_STATE['detector'], img, cfg['conf_threshold'], cfg['det_resize'], cfg['eye_dist_threshold'])
    rec['detected'] = len(faces)
    if not faces:
        return dict(rec, status='skipped', reason='no_face')
    n_kept = 0
    for k, face in enumerate(faces):
        affine = estimate_affine(face['landmarks5'], size)
        entry = {
            'key': f'{stem}_{k:02d}.png',
            'kept': False,
            'reason': None,
            'score': round(face['score'], 4),
            'zoom': round(affine_scale(affine), 4),
            'inside': round(inside_fraction(img.shape, affine, size), 4),
        }
        if entry['zoom'] > cfg['max_upscale']:
            entry['reason'] = 'too_small'
        elif entry['inside'] < cfg['min_inside']:
            entry['reason'] = 'outside'
        elif cfg['faces_per_photo'] is not None and n_kept >= cfg['faces_per_photo']:
            entry['reason'] = 'per_photo_cap'
        elif identity_left is not None and n_kept >= identity_left:
            entry['reason'] = 'identity_cap'
        else:
            hr = warp_face(img, affine, size, border=cfg['border'], antialias=True)
            lm5 = transform_points(face['landmarks5'], affine)
            entry['landmarks5'] = np.round(lm5, 2).tolist()
            _finish_face(entry, hr, lm5, cfg)
            n_kept += entry['kept']
        rec['faces'].append(entry)
    return rec


def _process_aligned(rec, stem, img, cfg):
    size = cfg['size']
    h, w = img.shape[:2]
    rec['detected'] = 1
    if h != w:
        return dict(rec, status='skipped', reason='not_square', message=f'{w}x{h}')
    entry = {'key': f'{stem}.png', 'kept': False, 'reason': None, 'zoom': round(size / h, 4)}
    rec['faces'].append(entry)
    if size / h > cfg['max_upscale']:
        entry['reason'] = 'too_small'
        return rec
    interpolation = cv2.INTER_AREA if h > size else cv2.INTER_CUBIC
    hr = img if h == size else cv2.resize(img, (size, size), interpolation=interpolation)
    lm5 = None
    if cfg['aligned_boxes'] == 'detect':
        faces = detect_faces(_STATE['detector'], hr, cfg['conf_threshold'], None, cfg['eye_dist_threshold'])
        if faces:
            template = face_template(size)
            lm5 = min((f['landmarks5'] for f in faces), key=lambda lm: float(np.abs(lm - template).mean()))
            entry['landmarks5'] = np.round(lm5, 2).tolist()
        else:
            entry['box_fallback'] = 'template'
    _finish_face(entry, hr, lm5, cfg)
    return rec


def _finish_face(entry, hr, lm5, cfg):
    """Boxes from landmarks on the HR face; write HR and LR. Sets ``kept`` or a drop ``reason``."""
    size = cfg['size']
    if cfg['landmarks'] == 'dlib68':
        lm68 = _dlib_landmarks68(hr)
        if lm68 is None:
            entry['reason'] = 'no_landmarks68'
            return
        boxes = boxes_from_landmarks68(lm68, size)
    elif lm5 is not None:
        boxes = boxes_from_landmarks5(lm5, size)
    else:
        boxes = template_boxes(size)
    lr = _downscale(hr, cfg['scale'])
    write_image(osp.join(cfg['split_out'], 'hr', entry['key']), hr)
    write_image(osp.join(cfg['split_out'], f'lr_x{cfg["scale"]}', entry['key']), lr)
    entry['boxes'] = np.round(boxes, 2).tolist()
    entry['kept'] = True


def _dlib_landmarks68(hr):
    """68 iBUG points from dlib on the aligned face (the dlib face nearest the template centre), or None."""
    detector, predictor = _STATE['dlib']
    rgb = cv2.cvtColor(hr, cv2.COLOR_BGR2RGB)
    rects = list(detector(rgb, 1))
    if not rects:
        return None
    cx, cy = face_template(hr.shape[0]).mean(0)
    rect = min(rects, key=lambda r: ((r.left() + r.right()) / 2 - cx) ** 2 + ((r.top() + r.bottom()) / 2 - cy) ** 2)
    shape = predictor(rgb, rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def _downscale(hr, scale):
    """MATLAB-style bicubic downscaling (BasicSR's ``imresize``), uint8 in and out, as the dataset does it."""
    lr = downscale_like_prepare(hr.astype(np.float32) / 255.0, scale)
    return np.rint(lr * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Outputs and summary (main process)


def _write_outputs(split_out, records, ignored, cfg, lmdb):
    kept = sorted((f['key'], f['boxes']) for rec in records for f in rec.get('faces', []) if f.get('kept'))
    keys = [k for k, _ in kept]
    write_text(osp.join(split_out, 'meta_info.txt'), ''.join(f'{k}\n' for k in keys), skip_same=True)
    source = _box_source(cfg)
    boxes_path = osp.join(split_out, 'boxes.json')
    boxes = {k: b for k, b in kept}
    current = None
    if osp.isfile(boxes_path):
        try:
            current = load_boxes_file(boxes_path)
        except (ValueError, KeyError):
            current = None
    wanted = {k: np.asarray(b, dtype=np.float32) for k, b in boxes.items()}
    same = (
        current is not None
        and current[1] == {'size': cfg['size'], 'source': source, 'components': list(COMPONENTS)}
        and current[0].keys() == wanted.keys()
        and all(np.allclose(current[0][k], wanted[k]) for k in wanted)
    )
    if not same:
        save_boxes_file(boxes_path, boxes, cfg['size'], source)
    lines = []
    for rec in records:
        if rec['status'] != 'ok':
            lines.append(f'{rec["photo"]}\t{rec["reason"]}\t{rec.get("message", "")}'.rstrip('\t') + '\n')
        elif rec.get('frames', 1) > 1:
            lines.append(f'{rec["photo"]}\tfirst_frame\tonly the first of its {rec["frames"]} frames was used\n')
        for f in rec.get('faces', []):
            if not f.get('kept') and f.get('reason'):
                lines.append(f'{rec["photo"]}\t{f["reason"]}\t{f["key"]}\n')
    lines.extend(f'{path}\t{reason}\t{detail}\n' for path, reason, detail in ignored)
    write_text(osp.join(split_out, 'skipped.txt'), ''.join(lines), skip_same=True)
    if lmdb and keys:
        for name in ('hr', f'lr_x{cfg["scale"]}'):
            _write_lmdb(osp.join(split_out, name), osp.join(split_out, f'{name}.lmdb'), keys)


def _write_lmdb(folder, lmdb_path, keys):
    """BasicSR lmdb of ``keys`` (rebuilt only when its key list changed; built aside and swapped in)."""
    names = [osp.splitext(k)[0] for k in keys]
    meta = osp.join(lmdb_path, 'meta_info.txt')
    if osp.isfile(meta):
        with open(meta) as f:
            if [line.split(' ')[0] for line in f if line.strip()] == [f'{n}.png' for n in names]:
                return
    tmp = f'{lmdb_path[: -len(".lmdb")]}.tmp.lmdb'
    if osp.isdir(tmp):
        shutil.rmtree(tmp)
    make_lmdb_from_imgs(folder, tmp, keys, names)
    if osp.isdir(lmdb_path):
        shutil.rmtree(lmdb_path)
    os.replace(tmp, lmdb_path)


def _summarize(records, ignored, cfg):
    skipped = Counter(rec['reason'] for rec in records if rec['status'] == 'skipped')
    dropped = Counter(f['reason'] for rec in records for f in rec.get('faces', []) if not f.get('kept'))
    converted = Counter()
    for rec in records:
        if rec.get('color') in ('gray', 'gray_alpha'):
            converted['gray'] += 1
        if rec.get('color') in ('bgra', 'gray_alpha'):
            converted['alpha'] += 1
        if rec.get('bit_depth') == 16:
            converted['16bit'] += 1
        if rec.get('frames', 1) > 1:
            converted['first_frame'] += 1
    unread = ('unreadable', 'truncated', 'unsupported', 'too_large', 'identity_cap', 'error')
    return {
        'photos': len(records),
        'photos_read': sum(1 for rec in records if rec['status'] == 'ok' or rec['reason'] not in unread),
        'photos_skipped': dict(sorted(skipped.items())),
        'photos_failed': sum(1 for rec in records if rec['status'] == 'failed'),
        'files_ignored': dict(sorted(Counter(reason for _, reason, _ in ignored).items())),
        'faces_detected': sum(rec.get('detected', 0) for rec in records),
        'faces_kept': sum(1 for rec in records for f in rec.get('faces', []) if f.get('kept')),
        'faces_dropped': dict(sorted(dropped.items())),
        'box_fallback': sum(1 for rec in records for f in rec.get('faces', []) if f.get('box_fallback')),
        'converted': dict(sorted(converted.items())),
        'box_source': _box_source(cfg),
    }


def _merge_summaries(splits):
    total = {'splits': splits}
    for key in (
        'photos',
        'photos_read',
        'photos_failed',
        'faces_detected',
        'faces_kept',
        'box_fallback',
        'processed',
        'resumed',
        'faces_written',
    ):
        total[key] = sum(s[key] for s in splits.values())
    for key in ('photos_skipped', 'files_ignored', 'faces_dropped', 'converted'):
        merged = Counter()
        for s in splits.values():
            merged.update(s[key])
        total[key] = dict(sorted(merged.items()))
    total['box_source'] = next(iter(splits.values()))['box_source'] if splits else None
    return total


# ---------------------------------------------------------------------------------------------------------------
# Command line


def format_summary(summary):
    """A readable multi-line summary."""
    lines = [
        f'photos: {summary["photos"]} ({summary["processed"]} processed now, {summary["resumed"]} done before), '
        f'read: {summary["photos_read"]}',
        f'photos skipped: {summary["photos_skipped"] or "none"}',
    ]
    if summary.get('photos_failed'):
        lines.append(f'photos failed (retried by the next run): {summary["photos_failed"]}')
    if summary.get('files_ignored'):
        lines.append(f'files not taken as photos: {summary["files_ignored"]}')
    if summary.get('list_not_found'):
        missing = summary['list_not_found']
        shown = ', '.join(missing[:5]) + (f' and {len(missing) - 5} more' if len(missing) > 5 else '')
        lines.append(f'--list entries matching no photo: {len(missing)} ({shown})')
    lines += [
        f'faces detected: {summary["faces_detected"]}, kept: {summary["faces_kept"]}, '
        f'dropped: {summary["faces_dropped"] or "none"}',
        f'converted inputs: {summary["converted"] or "none"}; boxes from: {summary["box_source"]}'
        + (f' ({summary["box_fallback"]} template fallbacks)' if summary['box_fallback'] else ''),
        f'{summary["faces_written"]} faces written in {summary["seconds"]:.1f} s '
        f'({summary["faces_per_second"]:.2f} faces/s) to {summary["output"]}',
    ]
    if any(summary.get(k) for k in ('photos_skipped', 'photos_failed', 'files_ignored', 'faces_dropped')):
        lines.append('the reasons, per file: skipped.txt in the output folder (of each split)')
    return '\n'.join(lines)


def run_errors(summary, input_dir=None):
    """Why a finished run counts as failed (for a non-zero exit status), as sentences; empty if it did not.

    A run fails when it found no photo, prepared no face at all (every photo skipped or every face dropped),
    or left photos failed (they are retried by the next run).
    """
    errors = []
    where = f' in {input_dir}' if input_dir else ''
    ignored = summary.get('files_ignored') or {}
    if not summary['photos']:
        found = f'; {sum(ignored.values())} other files were not taken ({ignored})' if ignored else ''
        errors.append(f'no photos{where} (files ending in {" ".join(IMAGE_EXTENSIONS)}){found}')
    elif not summary['faces_kept']:
        errors.append(
            f'no face was prepared from the {summary["photos"]} photos{where} (photos skipped: '
            f'{summary["photos_skipped"] or "none"}; faces dropped: {summary["faces_dropped"] or "none"}); the '
            'reason for each is in skipped.txt'
        )
    if summary.get('photos_failed'):
        errors.append(
            f'{summary["photos_failed"]} photos could not be written (write_failed, see skipped.txt); re-run the '
            'same command to retry them'
        )
    return errors
