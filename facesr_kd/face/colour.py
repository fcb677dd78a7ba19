"""Colour-faithful paste-back: keep a restored face's low-frequency colour that of the photo.

A super-resolution network may shift a face's colours (a random-weight one shifts them arbitrarily; a trained
one slightly, e.g. towards the training set's skin tones). Pasted back, the face then no longer matches the
skin of the neck and the ears around it. The reference for the right colour is the network's own input, the
aligned low-resolution face, bicubic-upsampled to the output size: its low-frequency band (what a 32x32 face
holds) is the photo's colour; only the high frequencies are the network's to add.

Two fixes (:data:`COLOR_FIXES`), applied to each restored face before it is pasted (:func:`apply_color_fix`):

* ``'wavelet'`` (CodeFormer's ``wavelet_reconstruction``): the restored face's low-pass band is replaced by the
  reference's; the low pass is five levels of a dilated 3x3 binomial blur (dilation 1, 2, 4, 8, 16;
  :func:`wavelet_lowpass`). Details are kept, local colour follows the input.
* ``'meanstd'``: per-channel mean and standard deviation in CIE Lab matched to the reference's over the whole
  face (one global colour correction per face; local colour errors stay).

:func:`paste_colour_error` measures the result: the mean CIE76 colour difference (Delta E, in Lab) between the
low-pass-filtered pasted photo and the upscaled input photo, within the face regions
(:func:`face_region_mask`).
"""

from facesr_kd.face.align import paste_inverse

import cv2
import numpy as np

COLOR_FIXES = ('none', 'meanstd', 'wavelet')
DEFAULT_COLOR_FIX = 'wavelet'
WAVELET_LEVELS = 5
# Blur of paste_colour_error, in output pixels: removes the detail a restorer adds, keeps the colour.
ERROR_SIGMA = 4.0
_BINOMIAL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 16


def check_color_fix(method):
    """Refuse an unknown colour fix.

    Raises:
        ValueError: ``method`` is not one of :data:`COLOR_FIXES`.
    """
    if method not in COLOR_FIXES:
        raise ValueError(f'color_fix must be one of {COLOR_FIXES}, got {method!r}')
    return method


def to_lab(bgr):
    """(H, W, 3) BGR in [0, 255] (any dtype) as float32 CIE Lab (L in [0, 100])."""
    return cv2.cvtColor(np.clip(np.asarray(bgr, dtype=np.float32) / 255.0, 0, 1), cv2.COLOR_BGR2LAB)


def from_lab(lab):
    """Float32 CIE Lab as (H, W, 3) float32 BGR in [0, 255]."""
    return np.clip(cv2.cvtColor(np.asarray(lab, dtype=np.float32), cv2.COLOR_LAB2BGR) * 255.0, 0, 255)


def wavelet_lowpass(img, levels=WAVELET_LEVELS):
    """The low-frequency band of an image: ``levels`` dilated 3x3 binomial blurs (CodeFormer's ``wavelet_blur``).

    Level ``i`` blurs with the kernel dilated by ``2**i`` (borders replicated), so five levels keep structures
    larger than about 30 pixels. ``img - wavelet_lowpass(img)`` is the sum of CodeFormer's high-frequency bands.

    Args:
        img (ndarray): (H, W) or (H, W, C) image.
        levels (int): Number of levels.

    Returns:
        ndarray: float32, the shape of ``img``.
    """
    low = np.asarray(img, dtype=np.float32)
    for i in range(levels):
        r = 2**i
        kernel = np.zeros((2 * r + 1, 2 * r + 1), dtype=np.float32)
        kernel[::r, ::r] = _BINOMIAL
        low = cv2.filter2D(low, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    return low


def wavelet_color_fix(face, reference, levels=WAVELET_LEVELS):
    """``face`` with its low-frequency band replaced by ``reference``'s (both (S, S, 3) BGR in [0, 255]).

    Returns:
        ndarray: float32 BGR in [0, 255].
    """
    face = np.asarray(face, dtype=np.float32)
    out = face - wavelet_lowpass(face, levels) + wavelet_lowpass(reference, levels)
    return np.clip(out, 0, 255)


def meanstd_color_fix(face, reference, eps=1e-3):
    """``face`` with each CIE Lab channel's mean and standard deviation set to ``reference``'s.

    A channel that is flat in ``face`` (standard deviation under ``eps``) only has its mean moved.

    Returns:
        ndarray: float32 BGR in [0, 255].
    """
    lab, ref = to_lab(face), to_lab(reference)
    mu, sd = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
    mu_r, sd_r = ref.reshape(-1, 3).mean(0), ref.reshape(-1, 3).std(0)
    gain = np.where(sd > eps, sd_r / np.maximum(sd, eps), 1.0).astype(np.float32)
    return from_lab((lab - mu) * gain + mu_r)


def apply_color_fix(face, reference, method=DEFAULT_COLOR_FIX):
    """Make a restored face's colour follow its reference (see the module docstring).

    Args:
        face (ndarray): (S, S, 3) restored face, BGR, float or uint8 in [0, 255].
        reference (ndarray): (S, S, 3) the network's input bicubic-upsampled to S, same range.
        method (str): One of :data:`COLOR_FIXES`.

    Returns:
        ndarray: float32 BGR in [0, 255] (``face`` as float32 for ``'none'``).

    Raises:
        ValueError: Unknown ``method``, or the two images differ in shape.
    """
    check_color_fix(method)
    face = np.asarray(face, dtype=np.float32)
    if method == 'none':
        return face
    if np.shape(reference) != face.shape:
        raise ValueError(f'face {face.shape} and reference {np.shape(reference)} differ in shape')
    if method == 'wavelet':
        return wavelet_color_fix(face, reference)
    return meanstd_color_fix(face, reference)


def face_region_mask(shape, affine, face_size, upscale, erode=True):
    """Where a pasted face covers the upscaled photo: the aligned square mapped back, as :func:`paste_face` does.

    Args:
        shape (tuple): (H, W) of the upscaled photo.
        affine (ndarray): (2, 3) photo -> aligned face matrix, for a face of side ``face_size``.
        face_size (int): Side of the aligned face.
        upscale (float): Output pixels per photo pixel.
        erode (bool): Leave out the feathered rim (``face_size / 10`` of the face, in output pixels), where the
            face and the photo are blended; the rest is the face only.

    Returns:
        ndarray: (H, W) bool.
    """
    h, w = shape[:2]
    inverse = paste_inverse(affine, upscale)
    mask = cv2.warpAffine(np.ones((face_size, face_size), np.float32), inverse, (w, h)) > 0.5
    if erode:
        side = np.sqrt(mask.sum())
        k = max(int(side / 10), 1)
        mask = cv2.erode(mask.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0
    return mask


def paste_colour_error(pasted, reference, mask, sigma=ERROR_SIGMA):
    """Mean CIE76 Delta E between two low-pass-filtered images within ``mask``.

    Used with the pasted photo and the upscaled input photo (the background before any face is pasted) and the
    union of the faces' :func:`face_region_mask`: how far the pasted faces' colours are from the photo's. A
    Gaussian blur of ``sigma`` pixels first removes the detail a restorer is meant to add, so that colour is
    what is compared. About 1 is invisible side by side, 2-10 is seen at a glance, over 10 is another colour.

    Args:
        pasted (ndarray): (H, W, 3) BGR in [0, 255], uint8, uint16 scaled to 255 beforehand, or float.
        reference (ndarray): (H, W, 3) BGR, same range.
        mask (ndarray): (H, W) bool or weights.
        sigma (float): Gaussian blur in pixels; 0: none.

    Returns:
        float: The weighted mean Delta E.

    Raises:
        ValueError: Shapes differ, or ``mask`` is empty.
    """
    pasted, reference = np.asarray(pasted, dtype=np.float32), np.asarray(reference, dtype=np.float32)
    weights = np.asarray(mask, dtype=np.float32)
    if pasted.shape != reference.shape or pasted.shape[:2] != weights.shape:
        raise ValueError(f'shapes differ: pasted {pasted.shape}, reference {reference.shape}, mask {weights.shape}')
    if weights.sum() <= 0:
        raise ValueError('the mask is empty: no face region to compare')
    if sigma:
        pasted = cv2.GaussianBlur(pasted, (0, 0), sigma)
        reference = cv2.GaussianBlur(reference, (0, 0), sigma)
    delta = np.linalg.norm(to_lab(pasted) - to_lab(reference), axis=2)
    return float((delta * weights).sum() / weights.sum())
