"""Facial component boxes (left eye, right eye, nose, mouth) in the pixel coordinates of an aligned face.

Boxes are ``[x1, y1, x2, y2]`` floats, ``x2``/``y2`` exclusive, clamped to the image. "Left" is the image's
left. The rules follow DFDNet: an eye box covers brow and eye points, the nose box points 29-35 and the mouth
box points 48-67 of the 68-point (iBUG) scheme; the box is a square centred on the mean of its points with
half-size ``max(max(x-range, y-range) / 2, 16)`` at 512 scale, scaled with the face size.
"""

import json

from facesr_kd.utils.files import write_json

import numpy as np

COMPONENTS = ('left_eye', 'right_eye', 'nose', 'mouth')
# DFDNet's dictionary template sizes (pixels at 512 scale), in COMPONENTS order.
PART_SIZES_512 = (80, 80, 50, 110)
MIN_HALF_512 = 16.0

# Five-point FFHQ template at 512 (left eye, right eye, nose tip, left and right mouth corner), as used by
# facexlib's FaceRestoreHelper for 512x512 FFHQ-style crops.
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)

_LANDMARKS68 = {
    'left_eye': list(range(17, 22)) + list(range(36, 42)),
    'right_eye': list(range(22, 27)) + list(range(42, 48)),
    'nose': list(range(29, 36)),
    'mouth': list(range(48, 68)),
}
# From five points: where the mean of each component's 68-point group sits relative to the five points, and
# its half-size, measured on the 512 FFHQ template (eye boxes sit a little above the pupils because they
# include the brow).
_EYE_RAISE_512 = 18.0
_HALF_512 = {'left_eye': 40.0, 'right_eye': 40.0, 'nose': 25.0, 'mouth': 55.0}


def _square(center, half, size):
    x, y = center
    box = np.array([x - half, y - half, x + half, y + half], dtype=np.float64)
    return np.clip(box, 0, size)


def boxes_from_landmarks68(landmarks, size):
    """Component boxes from 68 iBUG landmarks.

    Args:
        landmarks (ndarray): (68, 2) x, y in the pixels of a ``size`` x ``size`` aligned face.
        size (int): Side of the aligned face.

    Returns:
        ndarray: (4, 4) float boxes in :data:`COMPONENTS` order.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise ValueError(f'expected (68, 2) landmarks, got {landmarks.shape}')
    min_half = MIN_HALF_512 * size / 512
    boxes = []
    for name in COMPONENTS:
        pts = landmarks[_LANDMARKS68[name]]
        half = max((pts.max(0) - pts.min(0)).max() / 2, min_half)
        boxes.append(_square(pts.mean(0), half, size))
    return np.stack(boxes)


def boxes_from_landmarks5(landmarks, size):
    """Component boxes from the five detector landmarks (eyes, nose tip, mouth corners).

    The 68-point rules cannot be applied to five points, so the boxes are placed where those rules put them
    on the FFHQ template, moved with the five points and scaled with the inter-ocular distance.

    Args:
        landmarks (ndarray): (5, 2) x, y in the pixels of a ``size`` x ``size`` aligned face.
        size (int): Side of the aligned face.

    Returns:
        ndarray: (4, 4) float boxes in :data:`COMPONENTS` order.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ValueError(f'expected (5, 2) landmarks, got {lm.shape}')
    scale = size / 512
    template_iod = np.linalg.norm(FFHQ_TEMPLATE_512[1] - FFHQ_TEMPLATE_512[0]) * scale
    ratio = np.linalg.norm(lm[1] - lm[0]) / template_iod
    min_half = MIN_HALF_512 * scale
    raise_ = np.array([0.0, -_EYE_RAISE_512 * scale * ratio])
    centers = {'left_eye': lm[0] + raise_, 'right_eye': lm[1] + raise_, 'nose': lm[2], 'mouth': (lm[3] + lm[4]) / 2}
    return np.stack([_square(centers[n], max(_HALF_512[n] * scale * ratio, min_half), size) for n in COMPONENTS])


def template_boxes(size):
    """Fixed component boxes for a face aligned to the FFHQ template at ``size`` (no landmarks needed).

    Returns:
        ndarray: (4, 4) float boxes in :data:`COMPONENTS` order.
    """
    return boxes_from_landmarks5(FFHQ_TEMPLATE_512 * size / 512, size)


def flip_boxes(boxes, width):
    """Boxes of the horizontally mirrored image: x mirrored, left and right eye swapped.

    Args:
        boxes (ndarray | Tensor): (..., 4, 4) boxes in :data:`COMPONENTS` order.
        width (int): Image width.

    Returns:
        Same type as ``boxes``.
    """
    flipped = boxes.clone() if hasattr(boxes, 'clone') else np.array(boxes, copy=True)
    flipped[..., 0] = width - boxes[..., 2]
    flipped[..., 2] = width - boxes[..., 0]
    flipped[..., [0, 1], :] = flipped[..., [1, 0], :]
    return flipped


def template_sizes(out_size, stride):
    """Dictionary template side per component at one feature level (at least 2, so variances exist).

    Args:
        out_size (int): Output face size (128, 256 or 512).
        stride (int): Stride of the feature level relative to the face (2, 4, 8 or 16).

    Returns:
        tuple[int]: One side length per component in :data:`COMPONENTS` order.
    """
    return tuple(max(int(p * out_size / 512) // stride, 2) for p in PART_SIZES_512)


BOX_SOURCES = ('landmarks68', 'landmarks5', 'template')


def save_boxes_file(path, boxes, size, source):
    """Write the component boxes of a prepared face set (atomically: a crash never leaves half a file).

    Args:
        path (str): Output ``.json`` file.
        boxes (dict[str, ndarray]): Face key (its HR file path relative to the HR folder, e.g.
            ``'n000002/0001_01.png'``) to a (4, 4) box array in :data:`COMPONENTS` order, HR pixels.
        size (int): Side of the HR faces.
        source (str): Where the boxes come from, one of :data:`BOX_SOURCES`.
    """
    if source not in BOX_SOURCES:
        raise ValueError(f'box source must be one of {BOX_SOURCES}, got {source!r}')
    data = {
        'size': int(size),
        'source': source,
        'components': list(COMPONENTS),
        'boxes': {k: np.round(np.asarray(v, dtype=np.float64), 3).tolist() for k, v in sorted(boxes.items())},
    }
    write_json(path, data)


def load_boxes_file(path):
    """Read a file written by :func:`save_boxes_file`.

    Returns:
        tuple[dict[str, ndarray], dict]: Face key to (4, 4) float32 boxes, and the metadata
        (``size``, ``source``, ``components``).
    """
    with open(path) as f:
        data = json.load(f)
    if data.get('components') != list(COMPONENTS):
        raise ValueError(f'{path}: components must be {list(COMPONENTS)}, got {data.get("components")}')
    boxes = {k: np.asarray(v, dtype=np.float32).reshape(4, 4) for k, v in data['boxes'].items()}
    meta = {k: data[k] for k in ('size', 'source', 'components')}
    return boxes, meta
