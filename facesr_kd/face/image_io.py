"""Robust photo loading (grayscale, RGBA, 16-bit, EXIF orientation, clear errors for bad files) and writing.

Hostile files are refused before they cost memory or time: the image size is read from the file header (PNG
IHDR, JPEG SOF, BMP, WebP and GIF headers; Pillow's lazy ``Image.open`` for the rest) and an image over
``max_pixels`` is refused before it is decoded (a 1 MB PNG can hold 20000x20000 pixels, 1.2 GB decoded);
anything but a regular file (a FIFO would block the reader forever) is refused without being opened for a
blocking read.
"""

import io
import os
import stat
import warnings

from facesr_kd.utils.files import write_bytes

import cv2
import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
# Formats that keep 16 bits per channel when written.
SIXTEEN_BIT_EXTS = ('png', 'tif', 'tiff')
# Extensions OpenCV writes; another one (none, .jfif, .gif...) is written as PNG.
WRITABLE_EXTS = ('png', 'jpg', 'jpeg', 'bmp', 'webp', 'tif', 'tiff')
# Default pixel limit of read_image: 128 MP. The largest common camera sensors (Fujifilm GFX100 and Hasselblad
# X2D, 100-102 MP) pass; decoded, such a photo is at most 384 MB as 8-bit BGR and 2.3 GB as 16-bit (uint16 plus
# its float32 copy), which one process can afford. Larger files (200 MP phone modes, stitched panoramas,
# decompression bombs) are refused unless the caller raises the limit.
DEFAULT_READ_MAX_PIXELS = 128_000_000
# Most bytes per pixel of a file read_image decodes (uncompressed 16-bit RGBA), and room for metadata: a file
# larger than max_pixels * this + that cannot hold an image within the limit and is not read into memory.
_MAX_FILE_BYTES_PER_PIXEL = 8
_MAX_METADATA_BYTES = 64 << 20
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageReadError(ValueError):
    """A file that cannot be used as an image.

    ``reason`` is ``'unreadable'``, ``'truncated'``, ``'unsupported'`` or ``'too_large'`` (over the pixel limit
    of :func:`read_image`, refused before decoding).
    """

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
    if data[:6] in (b'GIF87a', b'GIF89a'):
        return 'gif'
    return 'unknown'


def _png_chunks(data):
    """(type, payload) of a PNG's chunks up to the first IDAT (the header part)."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], 'big')
        kind = data[pos + 4 : pos + 8]
        if kind == b'IDAT':
            return
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 12 + length


def _jpeg_size(data):
    """(width, height) from a JPEG's first start-of-frame segment, or None."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            return int.from_bytes(data[pos + 7 : pos + 9], 'big'), int.from_bytes(data[pos + 5 : pos + 7], 'big')
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], 'big')
    return None


def _webp_size(data):
    """(width, height) from a WebP's first chunk (VP8X canvas, VP8L or VP8 frame header), or None."""
    kind = data[12:16]
    if kind == b'VP8X' and len(data) >= 30:
        return int.from_bytes(data[24:27], 'little') + 1, int.from_bytes(data[27:30], 'little') + 1
    if kind == b'VP8L' and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], 'little')
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b'VP8 ' and len(data) >= 30 and data[23:26] == b'\x9d\x01\x2a':
        return int.from_bytes(data[26:28], 'little') & 0x3FFF, int.from_bytes(data[28:30], 'little') & 0x3FFF
    return None


class _PillowBombError(Exception):
    """Pillow refused to open an image over its decompression-bomb limit (its size stays unknown)."""


def _pil_size(data):
    """(width, height) from Pillow's lazy header parse (no pixel is decoded), or None; raises ImportError."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.size
        except Image.DecompressionBombError as e:
            raise _PillowBombError(str(e)) from e
        except Exception:  # noqa: BLE001  (not an image Pillow can parse)
            return None


def image_size(data, fmt=None):
    """The (width, height) an image file declares in its header, without decoding it.

    Args:
        data (bytes): The file's bytes (the header is enough for PNG, BMP, WebP and GIF).
        fmt (str | None): Its format as :func:`_format` names it; detected when None.

    Returns:
        tuple[int, int] | None: The declared size (before any EXIF rotation), or None when the header cannot be
        parsed.
    """
    fmt = fmt or _format(data)
    if fmt == 'png':
        if data[12:16] != b'IHDR' or len(data) < 24:
            return None
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    if fmt == 'jpeg':
        return _jpeg_size(data)
    if fmt == 'bmp' and len(data) >= 26:
        if int.from_bytes(data[14:18], 'little') == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
            return int.from_bytes(data[18:20], 'little'), int.from_bytes(data[20:22], 'little')
        width = int.from_bytes(data[18:22], 'little', signed=True)
        height = int.from_bytes(data[22:26], 'little', signed=True)  # negative: rows stored top-down
        return abs(width), abs(height)
    if fmt == 'webp':
        return _webp_size(data)
    if fmt == 'gif' and len(data) >= 10:
        return int.from_bytes(data[6:8], 'little'), int.from_bytes(data[8:10], 'little')
    return _pil_size(data)


def _frame_count(data, fmt):
    """How many frames (animation) or pages (TIFF) a file holds; OpenCV decodes only the first."""
    if fmt == 'png':
        for kind, payload in _png_chunks(data):
            if kind == b'acTL' and len(payload) >= 4:
                return max(int.from_bytes(payload[:4], 'big'), 1)
        return 1
    if fmt == 'webp':
        frames, pos = 0, 12
        while pos + 8 <= len(data):
            frames += data[pos : pos + 4] == b'ANMF'
            pos += 8 + (int.from_bytes(data[pos + 4 : pos + 8], 'little') + 1) // 2 * 2
        return max(frames, 1)
    if fmt in ('gif', 'tiff'):
        try:
            from PIL import Image

            with warnings.catch_warnings():
                warnings.simplefilter('ignore', Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    return int(getattr(im, 'n_frames', 1))
        except Exception:  # noqa: BLE001  (Pillow missing or refusing it: count what OpenCV reads)
            return 1
    return 1


def _png_gray_alpha(data):
    """Whether a PNG is stored as gray + alpha (colour type 4), which OpenCV decodes as BGRA."""
    return data[12:16] == b'IHDR' and len(data) > 25 and data[25] == 4


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

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except Image.DecompressionBombError:  # over Pillow's own limit: it cannot tell; OpenCV decides
            return True
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


def _read_file(path, max_pixels):
    """The bytes of a regular file, refusing other file types and files too large for ``max_pixels``."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_BINARY', 0))
    except OSError as e:
        raise ImageReadError(path, 'unreadable', f'cannot open file ({e.strerror or e})') from e
    with os.fdopen(fd, 'rb') as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(path, 'unreadable', 'not a regular file')
        if max_pixels and st.st_size > max_pixels * _MAX_FILE_BYTES_PER_PIXEL + _MAX_METADATA_BYTES:
            raise ImageReadError(
                path,
                'too_large',
                f'the file is {st.st_size / 1e6:.3g} MB, larger than any image within the limit of '
                f'{_megapixels(max_pixels)} can be (max_pixels={max_pixels}); raise it (--max-pixels) to read it',
            )
        try:
            return f.read()
        except OSError as e:
            raise ImageReadError(path, 'unreadable', f'cannot read file ({e.strerror or e})') from e


def _megapixels(pixels):
    return f'{pixels / 1e6:.3g} MP'


def _check_size(path, data, fmt, max_pixels):
    """Refuse, from the header alone, a file whose size cannot be read or is over ``max_pixels``."""
    try:
        size = image_size(data, fmt)
    except ImportError:
        size = None
    except _PillowBombError as e:
        raise ImageReadError(path, 'too_large', f"over Pillow's decompression-bomb limit, size not read ({e})") from e
    if size is None or min(size) <= 0:
        if fmt in ('jpeg', 'png') and not _has_trailer(data, fmt):
            raise ImageReadError(path, 'truncated', f'truncated {fmt.upper()} file ({len(data)} bytes)')
        raise ImageReadError(
            path, 'unreadable', f'not a decodable image, no size in its header (format: {fmt}, {len(data)} bytes)'
        )
    width, height = size
    if max_pixels and width * height > max_pixels:
        raise ImageReadError(
            path,
            'too_large',
            f'{width}x{height} is {_megapixels(width * height)}, over the limit of {_megapixels(max_pixels)} '
            f'(max_pixels={max_pixels}); raise it (--max-pixels) to read the image',
        )


def read_image(path, max_pixels=DEFAULT_READ_MAX_PIXELS):
    """Read a photo as BGR, whatever its storage.

    Grayscale becomes 3-channel BGR; an alpha channel is split off and returned separately; 16-bit images are
    returned as float32 in [0, 255]; the EXIF orientation of JPEGs is applied (as ``cv2.imread`` does). Of an
    animation (GIF, APNG, animated WebP) or a multi-page TIFF only the first frame is read; ``info['frames']``
    says how many there are. The size is checked against ``max_pixels`` from the file header, before decoding.

    Args:
        path (str): Image file.
        max_pixels (int | None): Refuse images with more pixels (``'too_large'``), before decoding them.
            Default :data:`DEFAULT_READ_MAX_PIXELS` (128 MP); None: no limit (OpenCV's own 2^30 still applies).

    Returns:
        tuple: ``(img, alpha, info)``: ``img`` (H, W, 3) BGR, uint8 for 8-bit files, float32 in [0, 255] for
        16-bit ones; ``alpha`` (H, W) in the same dtype and range, or None; ``info`` dict with ``format``,
        ``bit_depth`` (8 or 16), ``color`` (``'gray'``, ``'gray_alpha'``, ``'bgr'`` or ``'bgra'``), ``height``,
        ``width``, ``orientation`` (EXIF, 1 = upright) and ``frames`` (1 unless the file is animated or has
        pages; only the first was read).

    Raises:
        ImageReadError: (a ValueError) when the file cannot be read, is truncated, has an unsupported pixel
            type or is over ``max_pixels``; ``.reason`` tells which.
    """
    path = os.fspath(path)
    data = _read_file(path, max_pixels)
    if not data:
        raise ImageReadError(path, 'unreadable', 'empty file')
    fmt = _format(data)
    _check_size(path, data, fmt, max_pixels)
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
    elif img.shape[2] == 4 and fmt == 'png' and _png_gray_alpha(data):
        color = 'gray_alpha'  # OpenCV expands gray + alpha to BGRA
        alpha = np.ascontiguousarray(img[..., 3])
        img = np.ascontiguousarray(img[..., :3])
    elif img.shape[2] == 4 and fmt == 'gif' and (img[..., 3] == 255).all():
        color = 'bgr'  # OpenCV gives GIFs an alpha channel even when no pixel is transparent
        img = np.ascontiguousarray(img[..., :3])
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
        'frames': _frame_count(data, fmt),
    }
    return img, alpha, info


def output_extension(ext):
    """The extension (no dot, lower case) to write an image as: ``ext`` if OpenCV writes it, else ``'png'``."""
    ext = ext.lstrip('.').lower()
    return ext if ext in WRITABLE_EXTS else 'png'


def write_image(path, img, bit_depth=8, color='bgr', png_compression=None):
    """Write an image atomically, in the input's layout: gray stays gray, 16-bit stays 16-bit where the format
    allows it (PNG, TIFF); an alpha channel is dropped for JPEG.

    Gray with alpha (``color='gray'`` and a BGRA or (H, W, 2) image) is written as an 8-bit gray + alpha PNG;
    OpenCV writes no two-channel image, so a 16-bit one, or another format that keeps alpha, is written as
    BGRA with equal colour channels, and JPEG and BMP get the gray channel only.

    Args:
        path (str): Output file; its extension picks the format (see :func:`output_extension`).
        img (ndarray): (H, W), (H, W, 2) gray + alpha or (H, W, 3|4) BGR[A], uint8 or float in [0, 255].
        bit_depth (int): 8, or 16 to write 16-bit where the format allows it.
        color (str): ``'bgr'``, or ``'gray'`` to write one channel (plus alpha, see above).
        png_compression (int | None): PNG compression level 0-9 (OpenCV's default when None).

    Raises:
        OSError: The image cannot be encoded or written (the message names the file).
    """
    ext = os.path.splitext(path)[1].lower().lstrip('.')
    alpha = None
    if img.ndim == 3 and img.shape[2] == 2:
        img, alpha, color = img[..., 0], img[..., 1], 'gray'
    elif color == 'gray' and img.ndim == 3:
        if img.shape[2] == 4:
            alpha = img[..., 3]
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_BGR2GRAY)
    if bit_depth == 16 and ext in SIXTEEN_BIT_EXTS:
        img, alpha = (_to_dtype(a, np.uint16) if a is not None else None for a in (img, alpha))
    else:
        img, alpha = (_to_dtype(a, np.uint8) if a is not None else None for a in (img, alpha))
    if alpha is not None:
        if ext == 'png' and img.dtype == np.uint8:
            return _write_gray_alpha_png(path, img, alpha, png_compression)
        if ext in ('jpg', 'jpeg', 'bmp'):
            alpha = None
        else:
            img = np.dstack([img, img, img, alpha])
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


def _to_dtype(img, dtype):
    """uint8 (or uint16) from an image in [0, 255] of any dtype; 16 bits scale [0, 255] to [0, 65535]."""
    if dtype == np.uint16:
        return np.clip(np.rint(img.astype(np.float32) * (65535.0 / 255.0)), 0, 65535).astype(np.uint16)
    return img if img.dtype == np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _write_gray_alpha_png(path, gray, alpha, png_compression):
    from PIL import Image

    buf = io.BytesIO()
    level = 6 if png_compression is None else png_compression
    Image.fromarray(np.dstack([gray, alpha]), 'LA').save(buf, 'PNG', compress_level=level)
    write_bytes(path, buf.getvalue())
