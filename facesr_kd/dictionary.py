"""Build the teacher's component dictionaries from prepared HR faces.

For every face: VGG19 encoder features (relu2_2, relu3_4, relu4_4, conv5_4) of the HR face at the output size,
component crops (left eye, right eye, nose, mouth) per level resized to the dictionary templates, exactly as
the teacher crops them. Per component and level, streaming mini-batch K-means (scikit-learn's
``MiniBatchKMeans.partial_fit``) turns the crops into K atoms, so memory stays bounded whatever the number of
faces: about ``max(kmeans_batch, K)`` crops per component and level are buffered, plus the centres. Faces are
visited in a seeded random order. The output file is what ``DFDNetTeacher(dict_path=...)`` loads.

K-means needs at least K crops: with fewer faces than ``--num-atoms`` the builder stops with an error (it does
not silently build a smaller dictionary, which the teacher would refuse anyway). Before any encoder work every
face is checked (:func:`check_faces`): one that cannot be decoded, is truncated, is not square, is not the size
its boxes were measured at, or has a box that is empty, not finite or outside the face is skipped with a
warning and counted; the build fails only if fewer than K faces remain. The output path is checked first too,
so a wrong ``-o`` does not throw away a finished build.

Example::

    facesr-kd-dictionary --gt-dir datasets/vggface2_256/train/hr \\
        --boxes datasets/vggface2_256/train/boxes.json -o datasets/vggface2_256/dictionary_k512.pth
"""

import os
import sys
from pathlib import Path

from facesr_kd.archs.component_dictionary import LEVELS, dictionary_shapes, extract_component_crops
from facesr_kd.archs.component_dictionary import save_dictionary as save_dictionary_file
from facesr_kd.archs.vgg19 import VGG19Features
from facesr_kd.face.components import COMPONENTS, load_boxes_file, template_boxes
from facesr_kd.face.image_io import IMAGE_EXTENSIONS, ImageReadError, read_image
from facesr_kd.utils.files import check_writable

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

RANDOM_VGG_WARNING = (
    '\n' + '!' * 100 + '\n'
    '!! WARNING: --vgg-random: the encoder has RANDOM weights. The dictionary is only good for testing the code\n'
    '!! path; it is NOT meaningful and must not be used to train or evaluate a teacher.\n' + '!' * 100 + '\n'
)
# Box coordinates may overshoot the face by this many pixels (of the box file's face size) from rounding.
BOX_TOLERANCE = 0.5
# Skipped faces named in the warning; the rest are counted.
MAX_LISTED = 10


def list_faces(gt_dir, meta_info=None, start=None, end=None, limit=None):
    """Keys (paths relative to ``gt_dir``, POSIX style) of the HR faces to use, sorted.

    Args:
        gt_dir (str): Folder of HR faces (searched recursively).
        meta_info (str | None): BasicSR meta-info file; the first token of each line is a key. Default: every
            image under ``gt_dir``.
        start (str | None): Keep keys whose path without extension is >= ``start`` (string order, e.g. '00100').
        end (str | None): Keep keys whose path without extension is <= ``end``.
        limit (int | None): Keep the first ``limit`` keys after filtering.

    Returns:
        list[str]: Keys.
    """
    if not os.path.isdir(gt_dir):
        raise FileNotFoundError(f'--gt-dir {gt_dir} is not a folder')
    if meta_info:
        if not os.path.isfile(meta_info):
            raise FileNotFoundError(f'--meta-info {meta_info} not found')
        with open(meta_info) as f:
            keys = sorted(line.split()[0] for line in f if line.strip())
    else:
        root = Path(gt_dir)
        keys = sorted(p.relative_to(root).as_posix() for p in root.rglob('*') if p.suffix.lower() in IMAGE_EXTENSIONS)
    stem = lambda k: os.path.splitext(k)[0]  # noqa: E731
    keys = [k for k in keys if (start is None or stem(k) >= start) and (end is None or stem(k) <= end)]
    if limit is not None:
        keys = keys[:limit]
    if not keys:
        raise ValueError(f'no faces selected in {gt_dir} (meta_info={meta_info}, start={start}, end={end})')
    return keys


def face_boxes(keys, out_size, boxes_file=None, use_template=False):
    """Component boxes of every face in output pixels.

    Args:
        keys (list[str]): Face keys.
        out_size (int): Output size (boxes are scaled from the box file's face size to it).
        boxes_file (str | None): JSON box file (``facesr_kd.face.components.save_boxes_file``).
        use_template (bool): Use the fixed FFHQ-template boxes for every face instead.

    Returns:
        tuple[ndarray, int | None]: (N, 4, 4) float32 boxes, and the HR size of the box file (None: template).

    Raises:
        FileNotFoundError: ``boxes_file`` does not exist.
        ValueError: ``boxes_file`` is not a box file.
        KeyError: A face has no boxes in it.
    """
    if use_template == (boxes_file is not None):
        raise ValueError('give exactly one of --boxes FILE and --template-boxes')
    if use_template:
        return np.repeat(template_boxes(out_size)[None].astype(np.float32), len(keys), axis=0), None
    if not os.path.isfile(boxes_file):
        raise FileNotFoundError(
            f'--boxes {boxes_file} not found: it is written by facesr-kd-prepare beside the HR faces '
            '(<split>/boxes.json); or use --template-boxes'
        )
    try:
        boxes, meta = load_boxes_file(boxes_file)
        size = meta['size']
    except (ValueError, KeyError, TypeError, AttributeError) as err:  # JSON, layout, a missing or odd entry
        raise ValueError(f'--boxes {boxes_file} is not a box file written by facesr-kd-prepare: {err!r}') from err
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f'--boxes {boxes_file}: face size must be a positive integer, got {size!r}')
    missing = [k for k in keys if k not in boxes]
    if missing:
        raise KeyError(
            f'{len(missing)} selected faces have no boxes in {boxes_file} (e.g. {missing[:3]}); keys '
            'must be paths relative to --gt-dir. Re-run the data preparation or use --template-boxes.'
        )
    scale = out_size / size
    return np.stack([boxes[k] for k in keys]).astype(np.float32) * scale, size


def box_problem(boxes, size):
    """Why a face's component boxes cannot be used (a reason), or None.

    The teacher clamps boxes to the face, so a box outside it would silently become a crop of the face's edge:
    such faces are skipped rather than clamped, as are empty and non-finite boxes.

    Args:
        boxes (ndarray): (4, 4) ``[x1, y1, x2, y2]`` in the pixels of a ``size`` x ``size`` face.
        size (float): Side of the face the boxes are measured on.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if not np.isfinite(boxes).all():
        return 'a component box is not finite'
    for name, (x1, y1, x2, y2) in zip(COMPONENTS, boxes):
        if x2 <= x1 or y2 <= y1:
            return f'{name} box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] is empty'
        if min(x1, y1) < -BOX_TOLERANCE or max(x2, y2) > size + BOX_TOLERANCE:
            return f'{name} box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] is outside the {size:g}x{size:g} face'
    return None


def check_faces(gt_dir, keys, boxes, out_size, hr_size, progress=False):
    """The faces a dictionary can be built from: each is decoded and its size and boxes are checked.

    Args:
        gt_dir (str): Folder of HR faces.
        keys (list[str]): Face keys.
        boxes (ndarray): (N, 4, 4) boxes in output pixels (:func:`face_boxes`).
        out_size (int): Output size.
        hr_size (int | None): Size the box file was measured at (None: template boxes, any square size).
        progress (bool): Show a progress bar.

    Returns:
        tuple[list[int], dict[str, str]]: Indices of the usable faces, and the skipped ones (key -> reason).
    """
    good, skipped = [], {}
    for i, key in enumerate(tqdm(keys, desc='checking faces', unit='face', disable=not progress)):
        path = os.path.join(gt_dir, key)
        try:
            _, _, info = read_image(path)
        except ImageReadError as err:
            skipped[key] = str(err).removeprefix(f'{path}: ')
            continue
        h, w = info['height'], info['width']
        if hr_size is not None and (h, w) != (hr_size, hr_size):
            skipped[key] = f'{w}x{h}, but its boxes are for {hr_size}x{hr_size} faces'
        elif h != w:
            skipped[key] = f'{w}x{h} is not square: HR faces are aligned square crops'
        elif (problem := box_problem(boxes[i] * (h / out_size), h)) is not None:  # in the face's own pixels
            skipped[key] = problem
        else:
            good.append(i)
    return good, skipped


class HRFaces(Dataset):
    """HR faces as (3, out_size, out_size) RGB tensors in [0, 1], with their boxes."""

    def __init__(self, gt_dir, keys, boxes, out_size, hr_size):
        self.gt_dir, self.keys, self.boxes = gt_dir, keys, boxes
        self.out_size, self.hr_size = out_size, hr_size

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        path = os.path.join(self.gt_dir, self.keys[i])
        img, _, _ = read_image(path)  # uint8, or float32 in [0, 255] for 16-bit files; the alpha is not used
        h, w = img.shape[:2]
        if self.hr_size is not None and (h, w) != (self.hr_size, self.hr_size):
            raise ValueError(f'{path} is {w}x{h} but its boxes are for {self.hr_size}x{self.hr_size} faces')
        if (h, w) != (self.out_size, self.out_size):
            interp = cv2.INTER_AREA if h > self.out_size else cv2.INTER_CUBIC
            img = cv2.resize(img, (self.out_size, self.out_size), interpolation=interp)
        img = torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))).float().clamp(0, 255) / 255
        return img, torch.from_numpy(self.boxes[i])


def check_output_file(output):
    """Refuse, before any work, an output the dictionary could not be written to.

    Raises:
        IsADirectoryError: ``output`` is a folder.
        NotADirectoryError: Its folder cannot exist because a file is in the way.
        PermissionError: Its folder is not writable.
    """
    if os.path.isdir(output):
        raise IsADirectoryError(f'-o {output} is a folder: give a .pth file name')
    check_writable(output, f'-o {output}')


def build_dictionary(
    gt_dir,
    output,
    keys=None,
    boxes_file=None,
    use_template_boxes=False,
    num_atoms=512,
    out_size=256,
    batch_size=16,
    kmeans_batch=1024,
    epochs=1,
    seed=0,
    vgg_weights=None,
    vgg_random=False,
    device='cpu',
    num_workers=0,
    progress=True,
):
    """Build a component dictionary and write it to ``output``.

    Args:
        gt_dir (str): Folder of prepared HR faces.
        output (str): Output ``.pth`` (the file ``DFDNetTeacher`` loads).
        keys (list[str] | None): Faces to use (paths relative to ``gt_dir``); default: all (:func:`list_faces`).
        boxes_file (str | None): JSON box file of the faces.
        use_template_boxes (bool): Use the FFHQ-template boxes instead of a box file.
        num_atoms (int): Atoms per component and level (K).
        out_size (int): Output size of the teacher (faces are resized to it).
        batch_size (int): Faces per encoder batch.
        kmeans_batch (int): Crops per K-means update (at least K are used for the first one).
        epochs (int): Passes over the faces.
        seed (int): Seed of the face order, K-means and (with ``vgg_random``) the encoder.
        vgg_weights (str | None): ImageNet VGG19 weights file; None: torchvision's cache.
        vgg_random (bool): Random encoder weights (tests only; the dictionary is not meaningful).
        device (str): Device of the encoder.
        num_workers (int): Image-loading workers.
        progress (bool): Show a progress bar.

    Returns:
        dict: The saved dictionary (file format of :mod:`facesr_kd.archs.component_dictionary`); ``num_faces``
        counts the faces used, ``num_skipped`` those skipped by :func:`check_faces`.

    Raises:
        ValueError: A setting is out of range, or fewer than ``num_atoms`` usable faces (the message counts the
            skipped ones).
        FileNotFoundError, KeyError, OSError: From :func:`face_boxes` and :func:`check_output_file`, before any
            encoder work.
    """
    from sklearn.cluster import MiniBatchKMeans

    for name, value, low in (
        ('num_atoms', num_atoms, 1),
        ('batch_size', batch_size, 1),
        ('kmeans_batch', kmeans_batch, 1),
        ('epochs', epochs, 1),
        ('num_workers', num_workers, 0),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(f'{name} must be an integer >= {low}, got {value!r}')
    if not isinstance(out_size, int) or out_size < 16 or out_size % 16:
        raise ValueError(f'out_size must be a positive multiple of 16, got {out_size!r}')
    check_output_file(output)
    keys = list_faces(gt_dir) if keys is None else list(keys)
    if len(keys) < num_atoms:
        raise ValueError(
            f'{len(keys)} faces give {len(keys)} crops per component and level, fewer than '
            f'num_atoms={num_atoms}: use more faces or a smaller --num-atoms'
        )
    boxes, hr_size = face_boxes(keys, out_size, boxes_file, use_template_boxes)
    good, skipped = check_faces(gt_dir, keys, boxes, out_size, hr_size, progress=progress)
    if skipped:
        listed = ''.join(f'\n  {k}: {r}' for k, r in list(skipped.items())[:MAX_LISTED])
        more = f'\n  ... and {len(skipped) - MAX_LISTED} more' if len(skipped) > MAX_LISTED else ''
        print(f'warning: {len(skipped)} of {len(keys)} faces skipped:{listed}{more}', file=sys.stderr, flush=True)
    if len(good) < num_atoms:
        raise ValueError(
            f'only {len(good)} of {len(keys)} faces are usable ({len(skipped)} skipped, see the warning), fewer '
            f'than num_atoms={num_atoms}: fix or remove the skipped faces, or use a smaller --num-atoms'
        )
    keys, boxes = [keys[i] for i in good], boxes[good]
    torch.manual_seed(seed)
    if vgg_random:
        print(RANDOM_VGG_WARNING, file=sys.stderr, flush=True)
    try:
        encoder = VGG19Features(LEVELS, pretrained=not vgg_random, weights_path=vgg_weights).to(device).eval()
    except FileNotFoundError as e:
        raise FileNotFoundError(f'{e} (here: --vgg-weights FILE)') from e
    shapes = dictionary_shapes(out_size)
    chunk = max(kmeans_batch, num_atoms)
    kmeans = {
        key: MiniBatchKMeans(
            n_clusters=num_atoms, batch_size=chunk, n_init=1, compute_labels=False, random_state=seed + i
        )
        for i, key in enumerate(shapes)
    }
    buffers = {key: [] for key in shapes}

    def flush(key, force=False):
        rows = sum(len(b) for b in buffers[key])
        initialised = hasattr(kmeans[key], 'cluster_centers_')
        if rows and (rows >= chunk or (force and (initialised or rows >= num_atoms))):
            kmeans[key].partial_fit(np.concatenate(buffers[key]))
            buffers[key] = []

    dataset = HRFaces(gt_dir, keys, boxes, out_size, hr_size)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size, shuffle=True, num_workers=num_workers, generator=generator)
    bar = tqdm(total=epochs * len(loader), desc='dictionary', unit='batch', disable=not progress)
    with torch.no_grad():
        for _ in range(epochs):
            for imgs, batch_boxes in loader:
                crops = extract_component_crops(encoder(imgs.to(device)), batch_boxes, out_size)
                for key, crop in crops.items():
                    buffers[key].append(crop.flatten(1).float().cpu().numpy())
                    flush(key)
                bar.update()
            for key in shapes:
                flush(key, force=True)
    bar.close()
    atoms = {
        key: torch.from_numpy(kmeans[key].cluster_centers_.astype(np.float32)).view(num_atoms, *shape)
        for key, shape in shapes.items()
    }
    return save_dictionary_file(
        output,
        atoms,
        out_size,
        num_faces=len(keys),
        num_skipped=len(skipped),
        seed=int(seed),
        epochs=int(epochs),
        vgg='random' if vgg_random else 'imagenet',
        boxes='template' if use_template_boxes else os.path.basename(boxes_file),
    )
