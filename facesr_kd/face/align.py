"""Five-point face alignment to the FFHQ template and paste-back, as facexlib does it, without its parsing model.

The affine matrices here map photo pixels to aligned-face pixels (2x3, OpenCV convention, pixel centres at
integer coordinates).
"""

from facesr_kd.face.components import FFHQ_TEMPLATE_512

import cv2
import numpy as np

# facexlib's fill for crop pixels that fall outside the photo (BGR gray).
BORDER_VALUE = (135, 133, 132)
_BORDERS = {'constant': cv2.BORDER_CONSTANT, 'reflect': cv2.BORDER_REFLECT, 'reflect101': cv2.BORDER_REFLECT101}


def face_template(size):
    """The five-point FFHQ template (left eye, right eye, nose, left and right mouth corner) for a face of side size.

    Returns:
        ndarray: (5, 2) float64 x, y.
    """
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def estimate_affine(landmarks5, size):
    """Similarity transform from a photo's five landmarks to the template of a ``size`` x ``size`` face.

    Args:
        landmarks5 (ndarray): (5, 2) landmarks in photo pixels.
        size (int): Side of the aligned face.

    Returns:
        ndarray: (2, 3) float64 affine matrix, photo -> aligned face (LMEDS fit, as facexlib).
    """
    landmarks5 = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    affine, _ = cv2.estimateAffinePartial2D(landmarks5, face_template(size), method=cv2.LMEDS)
    if affine is None:
        raise ValueError(f'cannot fit a similarity transform to landmarks {landmarks5.tolist()}')
    return affine


def affine_scale(affine):
    """The zoom of a similarity matrix: aligned pixels per photo pixel (> 1 means the face is enlarged)."""
    affine = np.asarray(affine, dtype=np.float64)
    return float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))


def transform_points(points, affine):
    """Apply a 2x3 affine matrix to (N, 2) points.

    Returns:
        ndarray: (N, 2) float64 points.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    affine = np.asarray(affine, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def warp_face(img, affine, size, border='constant', border_value=BORDER_VALUE, antialias=False):
    """Crop the aligned face out of a photo.

    Args:
        img (ndarray): (H, W, C) or (H, W) photo.
        affine (ndarray): (2, 3) photo -> face matrix (:func:`estimate_affine`).
        size (int): Side of the aligned face.
        border (str): ``'constant'`` (``border_value``, facexlib's gray), ``'reflect'`` or ``'reflect101'``.
        border_value (tuple): Fill for ``border='constant'``.
        antialias (bool): When the face is shrunk (zoom < 1), first shrink the photo region with area
            averaging so the bilinear warp does not alias. facexlib does not; prepared training faces do.

    Returns:
        ndarray: (size, size[, C]) crop, same dtype as ``img``.
    """
    affine = np.asarray(affine, dtype=np.float64)
    border_mode = _BORDERS[border]
    zoom = affine_scale(affine)
    if antialias and zoom < 1:
        # The photo region the crop covers, plus a margin for the bilinear taps, shrunk by `zoom` with INTER_AREA.
        inv = cv2.invertAffineTransform(affine)
        corners = transform_points([[0, 0], [size, 0], [0, size], [size, size]], inv)
        h, w = img.shape[:2]
        x0, y0 = np.floor(corners.min(0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            region = img[y0:y1, x0:x1]
            rw, rh = max(int(round((x1 - x0) * zoom)), 1), max(int(round((y1 - y0) * zoom)), 1)
            small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            sx, sy = rw / (x1 - x0), rh / (y1 - y0)
            # small pixel (u, v) <-> photo pixel (x0 + (u + 0.5) / sx - 0.5, y0 + (v + 0.5) / sy - 0.5)
            to_photo = np.array([[1 / sx, 0, x0 + 0.5 / sx - 0.5], [0, 1 / sy, y0 + 0.5 / sy - 0.5], [0, 0, 1]])
            small_affine = affine @ to_photo
            if border != 'constant':
                return cv2.warpAffine(small, small_affine, (size, size), borderMode=border_mode)
            # The shrunk region stops at the photo's edge: warp with edge replication, then fill what lies
            # outside the photo.
            out = cv2.warpAffine(small, small_affine, (size, size), borderMode=cv2.BORDER_REPLICATE)
            outside = ~inside_mask(img.shape[:2], affine, size)
            out[outside] = np.asarray(border_value[: out.shape[2]] if out.ndim == 3 else border_value[0], out.dtype)
            return out
    return cv2.warpAffine(img, affine, (size, size), borderMode=border_mode, borderValue=border_value)


def inside_mask(shape, affine, size):
    """Which aligned-face pixels sample the photo (True) rather than the padding outside it (False).

    Args:
        shape (tuple): (H, W) of the photo.
        affine (ndarray): (2, 3) photo -> face matrix.
        size (int): Side of the aligned face.

    Returns:
        ndarray: (size, size) bool.
    """
    inv = cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    px = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    py = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    h, w = shape[:2]
    return (px >= -0.5) & (px <= w - 0.5) & (py >= -0.5) & (py <= h - 0.5)


def inside_fraction(shape, affine, size):
    """Fraction of the aligned face that lies inside the photo (1.0: a true crop with no padding)."""
    return float(inside_mask(shape, affine, size).mean())


def paste_inverse(affine, upscale):
    """The (2, 3) map from aligned-face pixels to the photo upscaled by ``upscale``, pixel centres onto centres
    as ``cv2.resize`` upscales (photo pixel ``p`` -> output ``(p + 0.5) * upscale - 0.5``).

    facexlib shifts by ``0.5 * upscale``, half an output pixel more, which costs 0.76 dB of face-region PSNR at x4
    on the photo benchmark.

    Args:
        affine (ndarray): (2, 3) photo -> aligned face matrix.
        upscale (float): Output pixels per photo pixel.
    """
    inverse = cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64)) * upscale
    inverse[:, 2] += 0.5 * (upscale - 1)
    return inverse


def paste_face(img_upscaled, face, affine, upscale, face_size=None, soft_mask=True):
    """Paste a restored aligned face back into the (already upscaled) photo.

    Follows facexlib's ``paste_faces_to_input_image`` without the parsing model: the face is warped back with
    the inverse similarity (:func:`paste_inverse`: pixel centres onto centres) and blended through a square mask
    eroded and blurred in proportion to the face area.

    Args:
        img_upscaled (ndarray): (H*upscale, W*upscale, C) photo, C = 1, 3 or 4 (alpha kept), uint8, uint16 or
            float; or (H', W') gray.
        face (ndarray): (s, s, 3) restored face, BGR, same value range as ``img_upscaled``.
        affine (ndarray): (2, 3) photo -> aligned face matrix (:func:`estimate_affine`).
        upscale (float): Output pixels per photo pixel.
        face_size (int | None): Side of the aligned face ``affine`` was estimated for; None: ``s``. Give it when
            the restored face is larger than the aligned one (e.g. aligned at 32, restored at 256).
        soft_mask (bool): Feathered edges (facexlib's); False pastes the eroded square mask as is.

    Returns:
        ndarray: The blended photo, same shape and dtype as ``img_upscaled``.
    """
    out_dtype = img_upscaled.dtype
    base = img_upscaled.astype(np.float32)
    gray = base.ndim == 2
    if gray:
        base = base[..., None]
    h_up, w_up = base.shape[:2]
    face = np.asarray(face).astype(np.float32)
    if face.ndim == 2:
        face = face[..., None]
    affine = np.asarray(affine, dtype=np.float64)
    if face_size is not None and face_size != face.shape[0]:
        affine = affine * (face.shape[0] / face_size)
    inverse = paste_inverse(affine, upscale)
    inv_face = cv2.warpAffine(face, inverse, (w_up, h_up))
    if inv_face.ndim == 2:
        inv_face = inv_face[..., None]
    mask = np.ones(face.shape[:2], dtype=np.float32)
    inv_mask = cv2.warpAffine(mask, inverse, (w_up, h_up))
    erode = max(int(2 * upscale), 1)
    inv_mask = cv2.erode(inv_mask, np.ones((erode, erode), np.uint8))
    if soft_mask:
        w_edge = int(np.sum(inv_mask) ** 0.5) // 20
        if w_edge > 0:
            inv_mask = cv2.erode(inv_mask, np.ones((w_edge * 2, w_edge * 2), np.uint8))
            inv_mask = cv2.GaussianBlur(inv_mask, (w_edge * 2 + 1, w_edge * 2 + 1), 0)
    inv_mask = inv_mask[..., None]
    color = base[..., :3] if base.shape[2] >= 3 else base
    if color.shape[2] == 1 and inv_face.shape[2] == 3:
        inv_face = cv2.cvtColor(inv_face, cv2.COLOR_BGR2GRAY)[..., None]
    blended = inv_mask * inv_face + (1 - inv_mask) * color
    if base.shape[2] == 4:
        blended = np.concatenate([blended, base[..., 3:]], axis=2)
    if gray:
        blended = blended[..., 0]
    if np.issubdtype(out_dtype, np.integer):
        info = np.iinfo(out_dtype)
        return np.clip(np.rint(blended), info.min, info.max).astype(out_dtype)
    return blended.astype(out_dtype)


def face_box(affine, size, shape, margin):
    """The axis-aligned photo box around the aligned ``size`` x ``size`` face that ``affine`` makes, in whole
    pixels, grown by ``margin`` pixels of context on each side and clipped to the photo.

    Args:
        affine (ndarray): (2, 3) photo -> aligned face matrix.
        size (int): Side of the aligned face.
        shape (tuple): (H, W) of the photo.
        margin (int): Context pixels around the face's square.

    Returns:
        tuple[int, int, int, int]: ``(x0, y0, x1, y1)``, ``x1``/``y1`` exclusive; empty (``x1 <= x0``) when the
        face lies outside the photo.
    """
    h, w = shape[:2]
    corners = transform_points([[0, 0], [size, 0], [0, size], [size, size]], cv2.invertAffineTransform(affine))
    x0, y0 = np.floor(corners.min(0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(0)).astype(int) + margin
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)


def paste_box(region, face, feather, edges=(True, True, True, True)):
    """Blend a restored box of the photo over the same box of the upscaled photo, feathered at its sides.

    The weight of ``face`` rises linearly from 0 at a feathered side to 1 at ``feather`` pixels in; a side
    that is the photo's own border (``edges`` False) is not feathered, there is nothing beyond it to blend with.

    Args:
        region (ndarray): (h, w, C) the box of the upscaled photo, uint8, uint16 or float.
        face (ndarray): (h, w, C) the restored box, same value range.
        feather (float): Width of the blend, in pixels of ``region``.
        edges (tuple[bool, bool, bool, bool]): Feather the top, bottom, left, right side.

    Returns:
        ndarray: The blended box, ``region``'s shape and dtype.
    """
    if face.shape[:2] != region.shape[:2]:
        raise ValueError(f'restored box {face.shape[:2]} and photo box {region.shape[:2]} differ in size')
    h, w = region.shape[:2]
    feather = max(float(feather), 1.0)

    def ramp(n, start, end):
        d = np.arange(n, dtype=np.float32) + 0.5
        r = np.ones(n, np.float32)
        if start:
            r = np.minimum(r, d / feather)
        if end:
            r = np.minimum(r, d[::-1] / feather)
        return np.clip(r, 0, 1)

    top, bottom, left, right = edges
    mask = np.minimum(ramp(h, top, bottom)[:, None], ramp(w, left, right)[None])[..., None]
    blended = mask * np.asarray(face, np.float32) + (1 - mask) * region.astype(np.float32)
    if np.issubdtype(region.dtype, np.integer):
        info = np.iinfo(region.dtype)
        return np.clip(np.rint(blended), info.min, info.max).astype(region.dtype)
    return blended.astype(region.dtype)
