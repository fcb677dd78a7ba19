"""Robust photo loading (grayscale, RGBA, 16-bit, EXIF orientation, clear errors for bad files) and writing."""

import io
import os

from facesr_kd.utils.files import write_bytes

import cv2
import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
# Formats that keep 16 bits per channel when written.
SIXTEEN_BIT_EXTS = ('png', 'tif', 'tiff')
# Extensions OpenCV writes; another one (none, .jfif, .gif...) is written as PNG.
WRITABLE_EXTS = ('png', 'jpg', 'jpeg', 'bmp', 'webp', 'tif', 'tiff')


class ImageReadError(ValueError):
    """A file that cannot be used as an image. ``reason`` is ``'unreadable'``, ``'truncated'`` or ``'unsupported'``."""

    def __init__(self, path, reason, detail):
        super().__init__(f'{path}: {detail}')
        self.path = path
        self.reason = reason


def _format(data):
    if data[:3] == b'\xff\xd8\xff':
        return 'jpeg'
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return 'png'
    if data[:2] == b'BM':
        return 'bmp'
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'webp'
    if data[:4] in (b'II*\x00', b'MM\x00*'):
        return 'tiff'
    return 'unknown'


def _has_trailer(data, fmt):
    """Whether a JPEG ends with its EOI marker / a PNG with its IEND chunk (else it may be truncated)."""
    tail = data[-64:].rstrip(b'\x00\r\n ')
    if fmt == 'jpeg':
        return tail.endswith(b'\xff\xd9')
    if fmt == 'png':
        return b'IEND' in tail
    return True


def _pil_decodes(data):
    """Whether PIL can decode the whole file (it raises on truncated data where OpenCV may fill with gray)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception:  # noqa: BLE001  (any decoder failure means the same here)
        return False
    return True


def _exif_orientation(data):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001
        return 1


def read_image(path):
    """Read a photo as BGR, whatever its storage.

    Grayscale becomes 3-channel BGR; an alpha channel is split off and returned separately; 16-bit images are
    returned as float32 in [0, 255]; the EXIF orientation of JPEGs is applied (as ``cv2.imread`` does).

    Args:
        path (str): Image file.

    Returns:
        tuple: ``(img, alpha, info)``: ``img`` (H, W, 3) BGR, uint8 for 8-bit files, float32 in [0, 255] for
        16-bit ones; ``alpha`` (H, W) in the same dtype and range, or None; ``info`` dict with ``format``,
        ``bit_depth`` (8 or 16), ``color`` (``'gray'``, ``'gray_alpha'``, ``'bgr'`` or ``'bgra'``), ``height``,
        ``width`` and ``orientation`` (EXIF, 1 = upright).

    Raises:
        ImageReadError: (a ValueError) when the file cannot be read, is truncated or has an unsupported pixel
            type; ``.reason`` tells which.
    """
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise ImageReadError(path, 'unreadable', f'cannot open file ({e.strerror or e})') from e
    if not data:
        raise ImageReadError(path, 'unreadable', 'empty file')
    fmt = _format(data)
    orientation = _exif_orientation(data) if fmt == 'jpeg' else 1
    # IMREAD_UNCHANGED keeps alpha and 16 bits but ignores EXIF orientation; JPEGs have no alpha, so a rotated
    # JPEG is decoded with flags that apply the orientation.
    flags = cv2.IMREAD_UNCHANGED if orientation == 1 else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, flags)
    truncated = not _has_trailer(data, fmt) and not _pil_decodes(data)
    if img is None or truncated:
        if truncated and fmt in ('jpeg', 'png'):
            raise ImageReadError(path, 'truncated', f'truncated {fmt.upper()} file ({len(data)} bytes)')
        raise ImageReadError(path, 'unreadable', f'not a decodable image (format: {fmt}, {len(data)} bytes)')

    if img.dtype == np.uint8:
        bit_depth = 8
    elif img.dtype == np.uint16:
        bit_depth = 16
        img = img.astype(np.float32) * (255.0 / 65535.0)
    else:
        raise ImageReadError(path, 'unsupported', f'unsupported pixel type {img.dtype}')

    alpha = None
    if img.ndim == 2:
        color = 'gray'
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 1:
        color = 'gray'
        img = cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 2:
        color = 'gray_alpha'
        alpha = np.ascontiguousarray(img[..., 1])
        img = cv2.cvtColor(np.ascontiguousarray(img[..., 0]), cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 3:
        color = 'bgr'
    elif img.shape[2] == 4:
        color = 'bgra'
        alpha = np.ascontiguousarray(img[..., 3])
        img = np.ascontiguousarray(img[..., :3])
    else:
        raise ImageReadError(path, 'unsupported', f'unsupported channel count {img.shape[2]}')
    info = {
        'format': fmt,
        'bit_depth': bit_depth,
        'color': color,
        'height': int(img.shape[0]),
        'width': int(img.shape[1]),
        'orientation': orientation,
    }
    return img, alpha, info


def output_extension(ext):
    """The extension (no dot, lower case) to write an image as: ``ext`` if OpenCV writes it, else ``'png'``."""
    ext = ext.lstrip('.').lower()
    return ext if ext in WRITABLE_EXTS else 'png'


def write_image(path, img, bit_depth=8, color='bgr', png_compression=None):
    """Write an image atomically, in the input's layout: gray stays gray, 16-bit stays 16-bit where the format
    allows it (PNG, TIFF); an alpha channel is dropped for JPEG.

    Args:
        path (str): Output file; its extension picks the format (see :func:`output_extension`).
        img (ndarray): (H, W) or (H, W, 3|4) BGR[A], uint8 or float in [0, 255].
        bit_depth (int): 8, or 16 to write 16-bit where the format allows it.
        color (str): ``'bgr'``, or ``'gray'`` to write one channel.
        png_compression (int | None): PNG compression level 0-9 (OpenCV's default when None).

    Raises:
        OSError: The image cannot be encoded or written (the message names the file).
    """
    if color == 'gray' and img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    ext = os.path.splitext(path)[1].lower().lstrip('.')
    if bit_depth == 16 and ext in SIXTEEN_BIT_EXTS:
        img = np.clip(np.rint(img.astype(np.float32) * (65535.0 / 255.0)), 0, 65535).astype(np.uint16)
    elif img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if ext in ('jpg', 'jpeg') and img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    params = [cv2.IMWRITE_PNG_COMPRESSION, png_compression] if ext == 'png' and png_compression is not None else []
    try:
        ok, buf = cv2.imencode(f'.{ext}', img, params)
    except cv2.error as err:
        raise OSError(f'cannot encode {path} as .{ext}: {err}') from err
    if not ok:
        raise OSError(f'cannot encode {path} as .{ext}')
    write_bytes(path, buf.tobytes())
