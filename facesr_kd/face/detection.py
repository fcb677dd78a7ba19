"""Face detection with facexlib's RetinaFace, offline-first.

The detector is built without facexlib's ``FaceRestoreHelper`` (whose constructor always downloads the
parsing model) and its weights are read from a local folder; a missing file is an error that names the file,
the URL it normally comes from and where to put it.

:func:`detect_faces` reproduces ``FaceRestoreHelper.get_face_landmarks_5(resize=..., eye_dist_threshold=...)``
as GFPGAN and CodeFormer call it: the photo is resized (LANCZOS4) so that its short side equals ``resize``
(small photos are enlarged too), detected at that size with facexlib's ``use_origin_size=True`` and the boxes
and landmarks are scaled back to the photo's pixels.
"""

import os

from facesr_kd.utils.checkpoint import load_file, strip_module_prefix

import cv2
import numpy as np
import torch

# Bounds of the detector's working copy. With resize=640 they only bind past a 6.4:1 aspect ratio; 4 MP costs
# retinaface_mobile0.25 about 0.5 GB and 3 s on one CPU thread.
DET_MAX_SIDE = 4096
DET_MAX_PIXELS = 4_000_000
_FACEXLIB_URL = 'https://github.com/xinntao/facexlib/releases/download/v0.1.0/'
DET_MODELS = {
    'retinaface_resnet50': {
        'file': 'detection_Resnet50_Final.pth',
        'url': _FACEXLIB_URL + 'detection_Resnet50_Final.pth',
        'network': 'resnet50',
    },
    'retinaface_mobile0.25': {
        'file': 'detection_mobilenet0.25_Final.pth',
        'url': _FACEXLIB_URL + 'detection_mobilenet0.25_Final.pth',
        'network': 'mobile0.25',
    },
}


def default_model_root():
    """Folder where facexlib itself keeps downloaded weights (``<site-packages>/facexlib/weights``)."""
    import facexlib

    return os.path.join(os.path.dirname(os.path.abspath(facexlib.__file__)), 'weights')


def missing_weights_message(file_name, url, model_root, option='--model-root'):
    """The error text for a weight file that is not where it is looked for."""
    return (
        f'{file_name} not found in {model_root}. It normally comes from {url} ; download it on a machine with '
        f'internet access and put it at {os.path.join(model_root, file_name)} (or pass {option} DIR with the '
        'folder that holds it).'
    )


def detector_weights_path(det_model='retinaface_resnet50', model_root=None):
    """Path of a detector's weight file, checked to exist.

    Args:
        det_model (str): A key of :data:`DET_MODELS`.
        model_root (str | None): Folder holding the file. Default: facexlib's own weights folder.

    Returns:
        str: The weight file.

    Raises:
        ValueError: Unknown ``det_model``.
        FileNotFoundError: The file is missing; the message names it, its URL and ``--model-root``.
    """
    if det_model not in DET_MODELS:
        raise ValueError(f'unknown detector {det_model!r}; choose one of {sorted(DET_MODELS)}')
    entry = DET_MODELS[det_model]
    model_root = default_model_root() if model_root is None else os.path.expanduser(model_root)
    path = os.path.join(model_root, entry['file'])
    if not os.path.isfile(path):
        raise FileNotFoundError(missing_weights_message(entry['file'], entry['url'], model_root))
    return path


def build_detector(det_model='retinaface_resnet50', model_root=None, device='cpu', offline=True):
    """Build a facexlib RetinaFace detector with local weights.

    Args:
        det_model (str): ``'retinaface_resnet50'`` or ``'retinaface_mobile0.25'``.
        model_root (str | None): Folder holding the weight file. Default: facexlib's own weights folder.
        device (str | torch.device): Where the detector runs.
        offline (bool): If True a missing file raises :class:`FileNotFoundError`; if False facexlib downloads
            it into ``model_root``.

    Returns:
        facexlib.detection.retinaface.RetinaFace: The detector in eval mode.
    """
    from facexlib.detection.retinaface import RetinaFace

    if det_model not in DET_MODELS:
        raise ValueError(f'unknown detector {det_model!r}; choose one of {sorted(DET_MODELS)}')
    if not offline:
        from facexlib.detection import init_detection_model

        return init_detection_model(det_model, half=False, device=device, model_rootpath=model_root)
    path = detector_weights_path(det_model, model_root)
    state = strip_module_prefix(load_file(path))
    model = RetinaFace(network_name=DET_MODELS[det_model]['network'], half=False, device=torch.device(device))
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)


def detection_scale(height, width, resize=640, max_side=DET_MAX_SIDE, max_pixels=DET_MAX_PIXELS):
    """Photo pixels per working-copy pixel for :func:`detect_faces`, and the working copy's (width, height).

    Args:
        height (int): Photo height.
        width (int): Photo width.
        resize (int | None): Wanted short side of the copy; None: the photo's own size.
        max_side (int | None): Largest long side of the copy; None: no bound.
        max_pixels (int | None): Largest area of the copy; None: no bound.

    Returns:
        tuple: ``(scale, (w, h))``; ``scale`` is 1.0 and the size the photo's when no resize is needed.
    """
    scale = min(height, width) / resize if resize is not None else 1.0
    if max_side is not None:
        scale = max(scale, max(height, width) / max_side)
    if max_pixels is not None:
        scale = max(scale, (height * width / max_pixels) ** 0.5)
    if scale == 1.0:
        return scale, (width, height)
    return scale, (max(int(width / scale), 1), max(int(height / scale), 1))


def detect_faces(
    detector,
    img_bgr,
    conf_threshold=0.97,
    resize=640,
    eye_dist_threshold=None,
    nms_threshold=0.4,
    max_side=DET_MAX_SIDE,
    max_pixels=DET_MAX_PIXELS,
):
    """Detect faces and their five landmarks.

    Args:
        detector: A detector from :func:`build_detector`.
        img_bgr (ndarray): (H, W, 3) BGR image, uint8 or float in [0, 255].
        conf_threshold (float): Minimum score (facexlib's restoration helper uses 0.97).
        resize (int | None): Detect on a copy whose short side is ``resize`` (LANCZOS4), as
            ``FaceRestoreHelper.get_face_landmarks_5(resize=...)`` does; None detects at the original size.
            Either way the copy is bounded by ``max_side`` and ``max_pixels``.
        eye_dist_threshold (float | None): Drop faces whose eye distance (in input pixels) is smaller.
        nms_threshold (float): IoU of facexlib's non-maximum suppression.
        max_side (int | None): Largest long side of the working copy (:data:`DET_MAX_SIDE`); None: no bound.
        max_pixels (int | None): Largest area of the working copy (:data:`DET_MAX_PIXELS`); None: no bound.

    Returns:
        list[dict]: One dict per face with ``'box'`` (4,) x1, y1, x2, y2, ``'score'`` float and
        ``'landmarks5'`` (5, 2) (left eye, right eye, nose, left and right mouth corner; "left" as seen in the
        image), all float64 in input image pixels. Ordered by box area, largest first (ties: left to right,
        then top to bottom).
    """
    img = np.asarray(img_bgr)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'expected an (H, W, 3) BGR image, got shape {img.shape}')
    h, w = img.shape[:2]
    scale, size = detection_scale(h, w, resize, max_side, max_pixels)
    if scale != 1.0:
        # LANCZOS4 as facexlib; area averaging where a bound shrinks the photo further than `resize` would.
        bounded = resize is None or scale > min(h, w) / resize
        interpolation = cv2.INTER_AREA if bounded and scale > 1 else cv2.INTER_LANCZOS4
        img = cv2.resize(img, size, interpolation=interpolation)
    with torch.no_grad():
        dets = detector.detect_faces(img, conf_threshold, nms_threshold=nms_threshold, use_origin_size=True)
    faces = []
    for det in np.asarray(dets, dtype=np.float64):
        landmarks = det[5:15].reshape(5, 2) * scale
        if eye_dist_threshold is not None and np.linalg.norm(landmarks[0] - landmarks[1]) < eye_dist_threshold:
            continue
        faces.append({'box': det[:4] * scale, 'score': float(det[4]), 'landmarks5': landmarks})
    faces.sort(key=lambda f: (-(f['box'][2] - f['box'][0]) * (f['box'][3] - f['box'][1]), f['box'][0], f['box'][1]))
    return faces
