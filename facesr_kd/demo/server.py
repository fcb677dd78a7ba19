"""A local web demo of face super-resolution: upload photos, compare input and result, download the results.

``facesr-kd-demo --model CKPT`` serves one page (``static/index.html``, ``app.js``, ``style.css``). Someone picks
one or more photos, an upscale, the detector options (only the centre face, aligned input) and a colour fix,
and gets, for each photo, the whole input beside the result, each face's network input beside the restored
face, the number of faces found, and a PNG download of the result.

Why the standard library and not Gradio: the page is served by :class:`http.server.ThreadingHTTPServer` and is a
static HTML page with vanilla JavaScript. It works offline with nothing to download, adds no runtime
dependency, and loads no fonts, scripts or styles from a CDN (its Content-Security-Policy allows only its own
origin, plus ``data:`` and ``blob:`` images).

How a request works:

* ``POST /api/restore`` takes ``multipart/form-data``: one or more ``files`` and the fields ``upscale``,
  ``color_fix``, ``only_center_face`` and ``aligned``. The body is parsed here (:func:`parse_multipart`; the
  ``cgi`` module is gone in Python 3.13). The answer is JSON: one entry per file, with base64 PNG data URLs.
  Nothing is kept on the server between requests, so two browser tabs never see each other's results.
* One :class:`~facesr_kd.inference.FaceSRRestorer` is built once and shared. Each photo gets a shallow copy of
  it with the request's upscale and colour fix. The copy shares the network and the detector, and those calls
  run under one lock, because torch modules are shared between the server's threads.
* Bad input gets a short message on the page, never a stack trace: a file that is not an image, an image too
  large for the chosen upscale (refused from its header by :func:`~facesr_kd.face.image_io.read_image`, before
  it is decoded), a photo with no face (it is still upscaled), or an upload body over ``max_body_bytes``
  (HTTP 413 with a JSON message). One bad file does not stop the others. Unexpected errors are logged with
  their traceback; the page only says that the error was logged.

From Python::

    from facesr_kd.demo import DemoApp, build_restorer, make_server

    app = DemoApp(build_restorer('student_x8.pth', det_model='retinaface_mobile0.25', model_root='weights',
                                 offline=True))
    server = make_server(app, '127.0.0.1', 0)   # port 0: any free port; server.server_address has it
    server.serve_forever()
"""

import base64
import copy
import email.message
import email.parser
import email.utils
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from facesr_kd.face.colour import COLOR_FIXES, DEFAULT_COLOR_FIX
from facesr_kd.face.image_io import ImageReadError, image_size, read_image
from facesr_kd.inference import (
    DEFAULT_MAX_PIXELS,
    FaceSRRestorer,
    ImageTooLargeError,
    NotSquareError,
    to_bgr8,
)

import cv2
import numpy as np

logger = logging.getLogger('facesr_kd.demo')

# Largest request body (all the photos of one upload together).
MAX_BODY_BYTES = 50 * 1000 * 1000
# A body over the limit is still read (and thrown away), up to this many bytes, so that the browser gets the
# 413 answer instead of a reset connection. A larger one is answered and the connection closed.
DRAIN_MAX_BYTES = 1 << 30
UPSCALES = (1, 2, 4)
DEFAULT_UPSCALE = 2
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
# URL path -> (file in STATIC_DIR, content type). Nothing else is served from the disk.
STATIC_FILES = {
    '/': ('index.html', 'text/html; charset=utf-8'),
    '/index.html': ('index.html', 'text/html; charset=utf-8'),
    '/app.js': ('app.js', 'text/javascript; charset=utf-8'),
    '/style.css': ('style.css', 'text/css; charset=utf-8'),
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
INTERNAL_ERROR = 'internal error while restoring it; the server log has the details'
PNG_COMPRESSION = 3


class UploadError(ValueError):
    """A request that cannot be served as a whole; ``status`` is its HTTP status (400, 411, 413, 415)."""

    def __init__(self, message, status=HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = int(status)


@dataclass
class Part:
    """One part of a ``multipart/form-data`` body.

    Attributes:
        name (str): The form field.
        filename (str | None): The file name sent with a file (None for a plain field).
        content_type (str | None): The part's own content type, if given.
        data (bytes): The content.
    """

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(body, content_type):
    """Split a ``multipart/form-data`` body into its parts (RFC 7578).

    Part headers are parsed with :mod:`email.parser` (decoded as UTF-8, which browsers use for file names);
    contents are kept as bytes, whatever they hold.

    Args:
        body (bytes): The request body.
        content_type (str): The request's ``Content-Type`` header (it carries the boundary).

    Returns:
        list[Part]: The parts, in order.

    Raises:
        UploadError: Not ``multipart/form-data`` (415), no boundary, or a malformed or truncated body (400).
    """
    header = email.message.Message()
    header['Content-Type'] = content_type or ''
    if header.get_content_type() != 'multipart/form-data':
        raise UploadError(
            f'expected multipart/form-data (an HTML form with files), got {content_type or "no content type"}',
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        )
    boundary = header.get_boundary()
    if not boundary or len(boundary) > 200:
        raise UploadError('multipart/form-data without a valid boundary')
    delimiter = b'--' + boundary.encode('latin-1')
    pos = 0 if body.startswith(delimiter) else body.find(b'\r\n' + delimiter)
    if pos < 0:
        raise UploadError('malformed form data: the boundary does not occur in the body')
    pos = pos + len(delimiter) + (0 if pos == 0 else 2)
    parts = []
    while True:
        if body[pos : pos + 2] == b'--':  # the closing delimiter
            return parts
        end_of_line = body.find(b'\r\n', pos)
        if end_of_line < 0 or body[pos:end_of_line].strip(b' \t'):
            raise UploadError('malformed form data: text after a boundary')
        start = end_of_line + 2
        end = body.find(b'\r\n' + delimiter, start)
        if end < 0:
            raise UploadError('malformed form data: truncated (no closing boundary)')
        head, sep, data = body[start:end].partition(b'\r\n\r\n')
        if not sep:
            raise UploadError('malformed form data: a part without the blank line after its headers')
        headers = email.parser.Parser().parsestr(head.decode('utf-8', 'replace') + '\r\n\r\n', headersonly=True)
        if headers.get_content_disposition() != 'form-data':
            raise UploadError('malformed form data: a part without Content-Disposition: form-data')
        name = headers.get_param('name', header='content-disposition')
        if not isinstance(name, str):
            name = email.utils.collapse_rfc2231_value(name) if name else ''
        part_type = headers.get('Content-Type')
        parts.append(Part(name, headers.get_filename(), part_type, data))
        pos = end + 2 + len(delimiter)


def parse_options(fields, upscales=UPSCALES):
    """The restore options of a form's plain fields.

    Args:
        fields (dict[str, str]): Field name -> value (``upscale``, ``color_fix``, ``only_center_face``,
            ``aligned``; missing ones take their defaults).
        upscales (tuple[int]): The upscales offered.

    Returns:
        dict: ``upscale`` (int), ``color_fix`` (str), ``only_center_face`` (bool), ``aligned`` (bool).

    Raises:
        UploadError: An upscale or colour fix that is not offered (400).
    """
    raw = fields.get('upscale', str(DEFAULT_UPSCALE)).strip()
    try:
        upscale = float(raw)
    except ValueError:
        upscale = math.nan
    if not math.isfinite(upscale) or upscale not in upscales:
        raise UploadError(f'upscale must be one of {", ".join(map(str, upscales))}, got {raw[:20]!r}')
    color_fix = fields.get('color_fix', DEFAULT_COLOR_FIX).strip()
    if color_fix not in COLOR_FIXES:
        raise UploadError(f'colour fix must be one of {", ".join(COLOR_FIXES)}, got {color_fix[:20]!r}')

    def flag(name):
        return fields.get(name, '').strip().lower() in ('1', 'on', 'true', 'yes')

    return {
        'upscale': int(upscale),
        'color_fix': color_fix,
        'only_center_face': flag('only_center_face'),
        'aligned': flag('aligned'),
    }


def _to_uint8(img):
    """``img`` as uint8 (float32 in [0, 255] rounded and clipped)."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_data_url(img, bit_depth=8):
    """A ``data:image/png;base64,...`` URL of a BGR, BGRA or gray image (uint8, uint16, or float32 in [0, 255]).

    Args:
        img (ndarray): The image.
        bit_depth (int): 16 writes a 16-bit PNG (a float32 image is scaled from [0, 255]); 8 an 8-bit one.
    """
    if bit_depth == 16:
        if img.dtype != np.uint16:
            img = np.clip(np.rint(img.astype(np.float32) * 257.0), 0, 65535).astype(np.uint16)
    else:
        img = _to_uint8(img)
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError(f'PNG encoding failed for an image of shape {img.shape}')
    return 'data:image/png;base64,' + base64.b64encode(buf.tobytes()).decode('ascii')


def display_name(filename):
    """The base name of an uploaded file as the browser sent it, for messages (at most 200 characters)."""
    name = re.split(r'[\\/]', filename or '')[-1].strip()
    name = ''.join(ch for ch in name if ch.isprintable())
    return name[:200] or 'upload'


def download_name(name, suffix):
    """A safe file name for a result's download: the upload's stem, ``_<suffix>``, ``.png``."""
    stem = os.path.splitext(name)[0]
    stem = re.sub(r'[^\w.-]+', '_', stem).strip('._')[:100] or 'photo'
    return f'{stem}_{suffix}.png'


def _mp(pixels):
    return f'{pixels / 1e6:.3g} MP'


def build_restorer(
    model_path,
    det_model='retinaface_resnet50',
    model_root=None,
    offline=False,
    device='auto',
    max_pixels=DEFAULT_MAX_PIXELS,
    **kwargs,
):
    """The demo's :class:`~facesr_kd.inference.FaceSRRestorer`, with its detector already built.

    Args:
        model_path (str): A facesr_kd checkpoint: a student, a lite student, the teacher, RCAN, SRFBN.
        det_model (str): ``'retinaface_resnet50'`` or ``'retinaface_mobile0.25'``.
        model_root (str | None): Folder with the detector weights (default: facexlib's own folder).
        offline (bool): Never download anything: the detector weights must be in ``model_root``.
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'``...
        max_pixels (int): Refuse photos whose upscaled size is over this many pixels.
        **kwargs: More :class:`~facesr_kd.inference.FaceSRRestorer` arguments (``opt_path``, ``scale``...).

    Returns:
        FaceSRRestorer: The restorer.

    Raises:
        FileNotFoundError: The checkpoint, or (offline) the detector weights, are missing; the message names the
            file, its URL and ``--model-root``.
        facesr_kd.utils.checkpoint.CheckpointError: The checkpoint cannot be used (the message says why).
        ValueError: A bad argument.
    """
    if not os.path.isfile(model_path):
        raise FileNotFoundError(
            f'checkpoint not found: {model_path}; pass --model with a student (DFDNetStudent, LiteFaceStudent) '
            'or teacher, RCAN, SRFBN checkpoint, e.g. experiments/<name>/models/net_g_latest.pth'
        )
    restorer = FaceSRRestorer(
        model_path=model_path,
        det_model=det_model,
        model_root=model_root,
        offline=offline,
        device=device,
        max_pixels=max_pixels,
        **kwargs,
    )
    restorer.detector  # noqa: B018  (built now: missing weights stop the demo before it serves)
    return restorer


class DemoApp:
    """The demo's logic, without HTTP: one restorer, built once, shared by every request.

    Args:
        restorer (FaceSRRestorer): The restorer (any network it takes: students, lite students, the teacher).
            Its ``upscale`` and ``color_fix`` are only defaults: each photo is restored by a shallow copy with the
            request's.
        max_body_bytes (int): Largest request body; larger uploads get HTTP 413.
        upscales (tuple[int]): The upscales offered on the page.
        note (str | None): A line shown under the model's name on the page (e.g. that its weights are random).

    Attributes:
        lock (threading.Lock): Held around every call into the restorer's network and detector.
    """

    def __init__(self, restorer, max_body_bytes=MAX_BODY_BYTES, upscales=UPSCALES, note=None):
        self.restorer = restorer
        self.max_body_bytes = int(max_body_bytes)
        self.upscales = tuple(int(u) for u in upscales)
        self.note = note
        self.lock = threading.Lock()

    def info(self):
        """What the page shows and offers: the model, the options and their defaults, the upload limit."""
        r = self.restorer
        info = r.info
        default_upscale = r.upscale if r.upscale in self.upscales else min(self.upscales)
        return {
            'model': {
                'type': info.get('type'),
                'scale': info.get('scale'),
                'lq_size': r.lq_size,
                'out_size': r.out_size,
                'needs_boxes': r.needs_boxes,
                'device': str(r.device),
            },
            'detector': r.det_model,
            'note': self.note,
            'upscales': list(self.upscales),
            'default_upscale': int(default_upscale),
            'color_fixes': list(COLOR_FIXES),
            'default_color_fix': r.color_fix,
            'max_body_bytes': self.max_body_bytes,
            'max_pixels': r.max_pixels,
        }

    # ----------------------------------------------------------------------------------------------------------
    def handle_restore(self, body, content_type):
        """Serve one ``POST /api/restore``.

        Args:
            body (bytes): The request body (``multipart/form-data``).
            content_type (str): Its ``Content-Type`` header.

        Returns:
            tuple[int, dict]: The HTTP status and the JSON answer: ``results`` (one entry per file, see
            :meth:`restore_upload`) and ``options``; or ``error`` (a message) with a 4xx status.
        """
        try:
            parts = parse_multipart(body, content_type)
            fields = {p.name: p.data.decode('utf-8', 'replace') for p in parts if p.filename is None}
            options = parse_options(fields, self.upscales)
        except UploadError as err:
            logger.info('request refused: %s', err)
            return err.status, {'error': str(err)}
        # A file input with nothing chosen sends an empty part with an empty file name.
        files = [p for p in parts if p.filename is not None and (p.filename or p.data)]
        if not files:
            return HTTPStatus.BAD_REQUEST, {'error': 'no photo in the upload: choose one or more image files'}
        results = [self.restore_upload(p.filename, p.data, **options) for p in files]
        return HTTPStatus.OK, {'results': results, 'options': options}

    def restore_upload(
        self, filename, data, upscale=DEFAULT_UPSCALE, color_fix=None, only_center_face=False, aligned=False
    ):
        """Restore one uploaded file; bad input gives an entry with a message, never an exception.

        Args:
            filename (str): The file's name, as sent (shown in messages and used for the download's name).
            data (bytes): The file's bytes.
            upscale (int): Upscaling of the whole photo.
            color_fix (str | None): ``'wavelet'``, ``'meanstd'`` or ``'none'``; None: the restorer's.
            only_center_face (bool): Restore only the face nearest the centre.
            aligned (bool): The file is an aligned face crop (square): no detection, the result is the face.

        Returns:
            dict: ``name``, ``ok``; when not ``ok``, ``error`` (a short reason). When ``ok``: ``faces`` (how many
            were restored), ``message`` (None, or e.g. that no face was found), ``notes``, ``input`` and
            ``output`` (``{'url': PNG data URL, 'width', 'height'}``: the photo as read and the result, for an
            aligned crop the restored face), ``download`` (a file name for the result), ``crops`` (per face:
            ``input`` and ``restored`` data URLs), ``upscale``, ``aligned`` and ``seconds``.
        """
        name = display_name(filename)
        try:
            result = self._restore(name, data, upscale, color_fix, only_center_face, aligned)
        except ImageReadError as err:
            reason = self._read_error(err, data, upscale, aligned)
            logger.info('%s refused: %s', name, reason)
            return {'name': name, 'ok': False, 'error': reason}
        except (ImageTooLargeError, NotSquareError, _Refused) as err:
            logger.info('%s refused: %s', name, err)
            return {'name': name, 'ok': False, 'error': str(err)}
        except Exception:  # noqa: BLE001  (logged with its traceback; the page gets a short reason)
            logger.exception('restoring %s failed', name)
            return {'name': name, 'ok': False, 'error': INTERNAL_ERROR}
        logger.info('%s: %d face(s), x%d, %.2f s', name, result['faces'], upscale, result['seconds'].get('total', 0.0))
        return {'name': name, 'ok': True, **result}

    def _restorer_for(self, upscale, color_fix):
        """A shallow copy of the shared restorer with this request's options; it shares network and detector."""
        restorer = copy.copy(self.restorer)
        restorer.upscale = upscale
        if color_fix is not None:
            restorer.color_fix = color_fix
        return restorer

    def _restore(self, name, data, upscale, color_fix, only_center_face, aligned):
        t0 = time.perf_counter()
        if not data:
            raise _Refused('empty file: not an image')
        restorer = self._restorer_for(upscale, color_fix)
        with tempfile.TemporaryDirectory(prefix='facesr_kd_demo_') as tmp:
            path = os.path.join(tmp, 'upload')
            with open(path, 'wb') as f:
                f.write(data)
            img, alpha, img_info = read_image(path, max_pixels=restorer.max_input_pixels(aligned))
        arr = img if alpha is None else np.dstack([img, alpha])
        if aligned:
            self._check_aligned(restorer, img.shape[:2])
        with self.lock:
            cropped, restored, restored_img = restorer.enhance(
                arr, aligned=aligned, only_center_face=only_center_face, paste_back=True
            )
        stats = restorer.last_stats
        notes = []
        if img_info.get('frames', 1) > 1:
            notes.append(f'{img_info["frames"]} frames or pages: only the first is restored')
        preview = to_bgr8(img)
        if alpha is not None:
            preview = np.dstack([preview, _to_uint8(alpha)])
        if aligned:
            output, suffix, bit_depth = restored[0], 'facesr', 8
        else:
            output, suffix, bit_depth = restored_img, f'facesr_x{upscale}', img_info['bit_depth']
        message = None
        if not aligned and not restored:
            message = f'No face found: the photo is only upscaled x{upscale}.'
        elif aligned:
            message = 'Aligned face crop: restored as it is, without detection.'
        crops = [{'input': png_data_url(lq), 'restored': png_data_url(face)} for lq, face in zip(cropped, restored)]
        return {
            'faces': len(restored),
            'message': message,
            'notes': notes,
            'upscale': upscale,
            'aligned': aligned,
            'input': {'url': png_data_url(preview), 'width': img.shape[1], 'height': img.shape[0]},
            'output': {'url': png_data_url(output, bit_depth), 'width': output.shape[1], 'height': output.shape[0]},
            'download': download_name(name, suffix),
            'crops': crops,
            'face_size': {'input': restorer.lq_size, 'output': restorer.out_size},
            'seconds': {
                'detect': round(stats.get('detect_s', 0.0), 3),
                'sr': round(stats.get('sr_s', 0.0), 3),
                'total': round(time.perf_counter() - t0, 3),
            },
        }

    @staticmethod
    def _check_aligned(restorer, shape):
        h, w = shape
        try:
            restorer.check_aligned(h, w)
        except NotSquareError as err:
            raise _Refused(
                f'{w}x{h} is not square: "aligned face crop" takes square face crops only; untick it to find the '
                'faces of a whole photo'
            ) from err

    def _read_error(self, err, data, upscale, aligned):
        """A short reason for an :class:`ImageReadError` (without the temporary file's path)."""
        detail = str(err).removeprefix(f'{err.path}: ')
        if err.reason == 'too_large':
            limit = self._restorer_for(upscale, None).max_input_pixels(aligned)
            try:
                size = image_size(data)
            except Exception:  # noqa: BLE001  (Pillow refused it: its size stays unknown)
                size = None
            if size and limit:
                w, h = size
                if aligned:
                    return f'too large: {w}x{h} is {_mp(w * h)}, over the limit of {_mp(limit)} for a face crop'
                return (
                    f'too large: {w}x{h} is {_mp(w * h)}; at upscale x{upscale} at most {_mp(limit)} can be restored '
                    f'(a {_mp(self.restorer.max_pixels)} result): choose a smaller upscale or a smaller photo'
                )
            return f'too large: {detail}'
        if err.reason == 'truncated':
            return f'damaged image: {detail}'
        return f'not an image: {detail}'


class _Refused(ValueError):
    """An upload refused with a message meant for the page."""


# --------------------------------------------------------------------------------------------------------------
class DemoRequestHandler(BaseHTTPRequestHandler):
    """HTTP front of a :class:`DemoApp` (``self.server.app``): the page, ``GET /api/info``, ``POST /api/restore``."""

    server_version = 'facesr-kd-demo'
    timeout = 120  # seconds without a byte from the client before its connection is dropped

    @property
    def app(self):
        return self.server.app

    def log_message(self, format, *args):  # noqa: A002  (BaseHTTPRequestHandler's signature)
        logger.info('%s %s', self.address_string(), format % args)

    def _send(self, status, body, content_type, extra=()):
        self.send_response(int(status))
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.send_header('X-Content-Type-Options', 'nosniff')
        self.send_header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
        self.send_header('Referrer-Policy', 'no-referrer')
        for key, value in extra:
            self.send_header(key, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def _send_json(self, status, payload):
        self._send(status, json.dumps(payload).encode('utf-8'), 'application/json; charset=utf-8')

    def do_GET(self):  # noqa: N802  (BaseHTTPRequestHandler's name)
        path = urlsplit(self.path).path
        if path in STATIC_FILES:
            file_name, content_type = STATIC_FILES[path]
            with open(os.path.join(STATIC_DIR, file_name), 'rb') as f:
                self._send(HTTPStatus.OK, f.read(), content_type)
        elif path == '/api/info':
            self._send_json(HTTPStatus.OK, self.app.info())
        elif path == '/favicon.ico':
            self._send(HTTPStatus.NO_CONTENT, b'', 'image/x-icon')
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {'error': f'not found: {path[:200]}'})

    def do_POST(self):  # noqa: N802  (BaseHTTPRequestHandler's name)
        try:
            self._post()
        except (ConnectionError, TimeoutError) as err:
            logger.info('%s: connection lost (%s)', self.address_string(), err)
            self.close_connection = True
        except Exception:  # noqa: BLE001  (logged; the client gets JSON, not a traceback)
            logger.exception('POST %s failed', self.path)
            self.close_connection = True
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {'error': 'internal error; the server log has it'})

    def _post(self):
        if urlsplit(self.path).path != '/api/restore':
            self._drain(self._content_length(default=0))
            self._send_json(HTTPStatus.NOT_FOUND, {'error': f'not found: {self.path[:200]}'})
            return
        if self.headers.get('Transfer-Encoding'):
            self.close_connection = True
            self._send_json(HTTPStatus.LENGTH_REQUIRED, {'error': 'send the upload with a Content-Length'})
            return
        length = self._content_length()
        if length is None:
            self.close_connection = True
            self._send_json(HTTPStatus.LENGTH_REQUIRED, {'error': 'send the upload with a Content-Length'})
            return
        limit = self.app.max_body_bytes
        if length > limit:
            logger.info('upload of %d bytes refused (limit %d)', length, limit)
            self._drain(length)
            message = (
                f'the upload is {length / 1e6:.3g} MB, over the limit of {limit / 1e6:.3g} MB: send fewer or '
                'smaller photos at a time'
            )
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {'error': message})
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            self._send_json(HTTPStatus.BAD_REQUEST, {'error': 'incomplete upload: the connection ended early'})
            return
        status, payload = self.app.handle_restore(body, self.headers.get('Content-Type', ''))
        self._send_json(status, payload)

    def _content_length(self, default=None):
        """The request's Content-Length; None when it is missing or not a number."""
        raw = self.headers.get('Content-Length')
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            return None
        return value if value >= 0 else None

    def _drain(self, length):
        """Read and drop ``length`` body bytes (at most :data:`DRAIN_MAX_BYTES`; past that the connection closes)."""
        self.close_connection = True
        if not length or length > DRAIN_MAX_BYTES:
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)


class DemoServer(ThreadingHTTPServer):
    """A :class:`~http.server.ThreadingHTTPServer` holding its :class:`DemoApp` (``app``)."""

    daemon_threads = True

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, DemoRequestHandler)

    @property
    def url(self):
        """The page's address (``http://host:port/``)."""
        host, port = self.server_address[:2]
        if ':' in host:
            host = f'[{host}]'
        return f'http://{host}:{port}/'


def make_server(app, host='127.0.0.1', port=7860):
    """A :class:`DemoServer` for ``app`` bound to ``host:port`` (port 0: a free port), not yet serving.

    Raises:
        OSError: The address cannot be bound (e.g. the port is taken).
    """
    return DemoServer((host, int(port)), app)


def serve(
    model_path,
    det_model='retinaface_resnet50',
    model_root=None,
    offline=False,
    host='127.0.0.1',
    port=7860,
    device='auto',
    max_pixels=DEFAULT_MAX_PIXELS,
    max_body_bytes=MAX_BODY_BYTES,
    ready=None,
    **kwargs,
):
    """Build the restorer and serve the demo until interrupted (Ctrl+C).

    Args:
        model_path (str): The checkpoint (see :func:`build_restorer`).
        det_model (str): The detector.
        model_root (str | None): Folder with the detector weights.
        offline (bool): Never download anything.
        host (str): Address to listen on (``127.0.0.1``: this machine only).
        port (int): Port (0: any free port).
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'``...
        max_pixels (int): Refuse photos whose upscaled size exceeds this many pixels.
        max_body_bytes (int): Largest upload.
        ready (callable | None): Called with the :class:`DemoServer` once it listens (the default prints its URL).
        **kwargs: More :class:`~facesr_kd.inference.FaceSRRestorer` arguments.

    Raises:
        FileNotFoundError, facesr_kd.utils.checkpoint.CheckpointError, ValueError: From :func:`build_restorer`.
        OSError: The address cannot be bound (the message says which).
    """
    restorer = build_restorer(
        model_path,
        det_model=det_model,
        model_root=model_root,
        offline=offline,
        device=device,
        max_pixels=max_pixels,
        **kwargs,
    )
    app = DemoApp(restorer, max_body_bytes=max_body_bytes)
    try:
        server = make_server(app, host, port)
    except OSError as err:
        raise OSError(err.errno, f'cannot listen on {host}:{port}: {err.strerror or err}') from err
    with server:
        if ready is None:
            info = restorer.info
            print(
                f'{info["type"]} x{info["scale"]} ({info["lq_size"]} -> {info["out_size"]}) on {restorer.device}, '
                f'detector {det_model}'
            )
            if host not in ('127.0.0.1', 'localhost', '::1'):
                print(f'warning: listening on {host}: anyone who can reach this machine can use the demo')
            print(f'facesr_kd demo at {server.url} (Ctrl+C stops it)', flush=True)
        else:
            ready(server)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print('stopped')
