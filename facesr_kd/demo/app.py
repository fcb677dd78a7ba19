"""The web demo of face super-resolution, on Gradio: upload photos, compare input and result, download them.

``facesr-kd-demo`` (or :func:`build_demo` + :func:`launch`) serves one page: upload one or more photos, pick an
upscale, a colour fix and the detector options (aligned face crop, only the centre face), and get for the photo
chosen an input | result slider of the whole photo, a gallery of its faces (each one's network input, then the
restored face), a message per file, and PNG downloads of the full-size results. Gradio's ``Examples`` offers
scikit-image's astronaut photo (NASA, public domain) when scikit-image is installed; without it there is no
example (nothing else is shipped).

Limits (the work cannot pile up):

* Gradio's queue runs one restore at a time (``concurrency_limit``, default 1) and holds at most ``max_queue``
  waiting requests (default 32); more get "queue full". A photo is decoded only inside the queued call, so
  simultaneous uploads wait as files on disk, not as decoded pixels.
* ``max_file_size`` (default 50 MB) is passed to ``launch``: a larger file is refused by Gradio's upload route
  (HTTP 413) before it is stored. At most ``max_files`` (default 10) photos per request; Gradio's own upload
  parser stops at 1,000 parts.
* Each photo is checked from its header before it is decoded (:func:`facesr_kd.face.image_io.read_image`):
  non-images, empty and truncated files and decompression bombs get a message; an image whose upscaled size is
  over ``max_pixels`` too. Gradio stores uploads under names it sanitises (no path separators, NUL or control
  characters, at most 200 bytes); this module writes only names it makes (:func:`download_name`).

Offline: nothing is fetched from the internet. :func:`set_offline_env` (called before Gradio is imported)
sets ``GRADIO_ANALYTICS_ENABLED=False`` (no telemetry, no version check), ``HF_HUB_OFFLINE=1`` and
``HF_HUB_DISABLE_TELEMETRY=1``; the Blocks are built with ``analytics_enabled=False``; the theme uses system
fonts only (Gradio's default theme loads Google Fonts); ``launch`` runs with ``share=False``, ``ssr_mode=False``
(no Node server), ``mcp_server=False`` and ``pwa=False``. The page's scripts and styles come from the Gradio
wheel. It listens on 127.0.0.1 unless told otherwise.

From Python::

    from facesr_kd.demo import build_demo, launch

    demo = build_demo('student_x8.pth', det_model='retinaface_mobile0.25', model_root='weights', offline=True)
    launch(demo, port=7860)   # blocks until Ctrl+C; launch(demo, block=False) returns the URL
"""

import copy
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid

from facesr_kd.face.colour import COLOR_FIXES, DEFAULT_COLOR_FIX
from facesr_kd.face.image_io import ImageReadError, image_size, read_image, write_image
from facesr_kd.inference import DEFAULT_MAX_PIXELS, FaceSRRestorer, ImageTooLargeError, NotSquareError, to_bgr8

import cv2
import numpy as np

logger = logging.getLogger('facesr_kd.demo')

UPSCALES = (1, 2, 4)
DEFAULT_UPSCALE = 2
MAX_FILE_BYTES = 50 * 1000 * 1000
MAX_FILES = 10
MAX_QUEUE = 32
CONCURRENCY = 1
# The slider and the gallery show previews whose long side is at most this; the downloads are full size.
PREVIEW_SIDE = 1600
# Result folders older than this are removed when a new request comes.
KEEP_RESULTS_S = 3600
INTERNAL_ERROR = 'internal error while restoring it; the server log has the details'
GRADIO_MISSING = 'the web demo needs Gradio: pip install "facesr_kd[demo]" (or pip install "gradio>=6")'
OFFLINE_ENV = {'GRADIO_ANALYTICS_ENABLED': 'False', 'HF_HUB_OFFLINE': '1', 'HF_HUB_DISABLE_TELEMETRY': '1'}


def set_offline_env():
    """Set the environment variables that keep Gradio and huggingface_hub offline (see the module docstring).

    Values already set are kept, except that analytics are always off.
    """
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'


def import_gradio():
    """Import Gradio, offline.

    Raises:
        ImportError: Gradio is not installed (the message says how to install it).
    """
    set_offline_env()
    try:
        import gradio
    except ImportError as err:
        raise ImportError(GRADIO_MISSING) from err
    return gradio


class Refused(ValueError):
    """An upload refused with a message meant for the page."""


def display_name(filename):
    """The name an upload is shown with: its last path component, printable, at most 200 characters."""
    name = re.split(r'[\\/]', str(filename or ''))[-1]
    name = ''.join(ch for ch in name if ch.isprintable())
    return name[:200] or 'upload'


def download_name(name, suffix):
    """A safe file name for a result's download: the upload's stem, ``_<suffix>``, ``.png``."""
    stem = os.path.splitext(name)[0]
    stem = re.sub(r'[^\w.-]+', '_', stem, flags=re.ASCII).strip('._')[:100] or 'photo'
    return f'{stem}_{suffix}.png'


def _mp(pixels):
    return f'{pixels / 1e6:.3g} MP'


def _rgb(img):
    """An 8-bit RGB(A) copy of a BGR(A) image (uint8 or float in [0, 255])."""
    img = to_bgr8(img[..., :3]) if img.ndim == 3 and img.shape[2] == 4 else to_bgr8(img)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _fit(img, side):
    """``img`` shrunk (INTER_AREA) so that its long side is at most ``side``."""
    h, w = img.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def build_restorer(
    model_path=None,
    det_model='retinaface_resnet50',
    model_root=None,
    offline=False,
    device='auto',
    max_pixels=DEFAULT_MAX_PIXELS,
    **kwargs,
):
    """The demo's :class:`~facesr_kd.inference.FaceSRRestorer`, with its detector already built.

    Args:
        model_path (str | None): A facesr_kd checkpoint (a student, a lite student, the teacher, RCAN, SRFBN)
            or a zoo name; None: the restorer's default (the model zoo shipped in the package).
        det_model (str): ``'retinaface_resnet50'`` or ``'retinaface_mobile0.25'``.
        model_root (str | None): Folder with the detector weights (default: facexlib's own folder).
        offline (bool): Never download anything: the detector weights must be in ``model_root``.
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'``...
        max_pixels (int): Refuse photos whose upscaled size is over this many pixels.
        **kwargs: More :class:`~facesr_kd.inference.FaceSRRestorer` arguments (``opt_path``, ``scale``...).

    Returns:
        FaceSRRestorer: The restorer.

    Raises:
        FileNotFoundError: The checkpoint (or, without one, any zoo model), or (offline) the detector weights,
            are missing; the message says what to pass.
        facesr_kd.utils.checkpoint.CheckpointError: The checkpoint cannot be used (the message says why).
        ValueError: A bad argument.
    """
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
    """The demo's logic, without the page: one restorer, built once, shared by every request.

    Args:
        restorer (FaceSRRestorer): The restorer. Its ``upscale`` and ``color_fix`` are only defaults: each photo
            is restored by a shallow copy with the request's (it shares the network and the detector).
        max_files (int): Most photos per request.
        upscales (tuple[int]): The upscales offered.
        note (str | None): A line shown under the model's name (e.g. that its weights are random).
        work_dir (str | None): Where results are written (default: a new temporary folder, removed with
            :meth:`close`).

    Attributes:
        lock (threading.Lock): Held around every call into the restorer's network and detector, and around
            decoding, so that one photo at a time is in memory.
    """

    def __init__(self, restorer, max_files=MAX_FILES, upscales=UPSCALES, note=None, work_dir=None):
        if int(max_files) < 1:
            raise ValueError(f'max_files must be at least 1, got {max_files}')
        self.restorer = restorer
        self.max_files = int(max_files)
        self.upscales = tuple(int(u) for u in upscales)
        self.note = note
        self._own_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix='facesr_kd_demo_')
        os.makedirs(self.work_dir, exist_ok=True)
        self.lock = threading.Lock()

    def close(self):
        """Remove the results folder (when this app made it)."""
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    @property
    def default_upscale(self):
        up = self.restorer.upscale
        return int(up) if up in self.upscales else min(self.upscales)

    def model_line(self):
        """One line naming the model(s), their face sizes, the device and the detector."""
        r = self.restorer
        models = getattr(r, 'models', None) or [r]
        names = '; '.join(
            f'{getattr(m, "name", None) or m.info.get("type")} x{m.info.get("scale")} ({m.lq_size} -> {m.out_size} '
            'faces)'
            for m in models
        )
        return f'{names} on {r.device}, detector {r.det_model}'

    def _prune(self):
        cutoff = time.time() - KEEP_RESULTS_S
        for entry in os.scandir(self.work_dir):
            try:
                if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                pass

    def restore_files(self, files, upscale=DEFAULT_UPSCALE, color_fix=None, only_center_face=False, aligned=False):
        """Restore the photos of one request; bad files give entries with a message, never an exception.

        Args:
            files (list[str | tuple[str, str]]): Paths of the uploaded files, or ``(path, name shown)``.
            upscale (int): Upscaling of the whole photo (one of ``upscales``).
            color_fix (str | None): ``'wavelet'``, ``'meanstd'`` or ``'none'``; None: the restorer's.
            only_center_face (bool): Restore only the face nearest the centre.
            aligned (bool): The files are aligned face crops (square): no detection, the result is the face.

        Returns:
            list[dict]: One per file, see :meth:`restore_file`.

        Raises:
            Refused: No file, more than ``max_files``, or an upscale or colour fix not offered.
        """
        files = list(files or [])
        if not files:
            raise Refused('no photo: upload one or more image files')
        if len(files) > self.max_files:
            raise Refused(f'{len(files)} files: at most {self.max_files} photos per request; send fewer at a time')
        try:
            upscale_f = float(upscale)
        except (TypeError, ValueError):
            upscale_f = float('nan')
        if upscale_f not in self.upscales:
            raise Refused(f'upscale must be one of {", ".join(map(str, self.upscales))}, got {str(upscale)[:20]!r}')
        if color_fix is not None and color_fix not in COLOR_FIXES:
            raise Refused(f'colour fix must be one of {", ".join(COLOR_FIXES)}, got {str(color_fix)[:20]!r}')
        self._prune()
        out_dir = os.path.join(self.work_dir, uuid.uuid4().hex)
        os.makedirs(out_dir)
        results = []
        for i, item in enumerate(files):
            path, name = item if isinstance(item, tuple) else (item, os.path.basename(str(item)))
            results.append(
                self.restore_file(path, name, os.path.join(out_dir, str(i)), int(upscale_f), color_fix,
                                  bool(only_center_face), bool(aligned))
            )  # fmt: skip
        return results

    def restore_file(self, path, name, out_dir, upscale, color_fix=None, only_center_face=False, aligned=False):
        """Restore one uploaded file into ``out_dir``.

        Returns:
            dict: ``name``, ``ok``; when not ``ok``, ``error`` (a short reason). When ``ok``: ``faces`` (how many
            were restored), ``message`` (None, or e.g. that no face was found), ``notes``, ``size`` and
            ``out_size`` (``(width, height)`` of the photo and of the result), ``download`` (the full-size PNG
            result), ``input_preview`` and ``output_preview`` (same-size PNG previews for the slider),
            ``crops`` (per face: ``(network input PNG, restored PNG)``) and ``seconds``.
        """
        name = display_name(name)
        try:
            result = self._restore(path, name, out_dir, upscale, color_fix, only_center_face, aligned)
        except ImageReadError as err:
            reason = self._read_error(err, path, upscale, aligned)
            logger.info('%s refused: %s', name, reason)
            return {'name': name, 'ok': False, 'error': reason}
        except (ImageTooLargeError, NotSquareError, Refused) as err:
            logger.info('%s refused: %s', name, err)
            return {'name': name, 'ok': False, 'error': str(err)}
        except Exception:  # noqa: BLE001  (logged with its traceback; the page gets a short reason)
            logger.exception('restoring %s failed', name)
            return {'name': name, 'ok': False, 'error': INTERNAL_ERROR}
        logger.info('%s: %d face(s), x%d, %.2f s', name, result['faces'], upscale, result['seconds'])
        return {'name': name, 'ok': True, **result}

    def _restorer_for(self, upscale, color_fix):
        restorer = copy.copy(self.restorer)
        restorer.upscale = upscale
        if color_fix is not None:
            restorer.color_fix = color_fix
        return restorer

    def _restore(self, path, name, out_dir, upscale, color_fix, only_center_face, aligned):
        t0 = time.perf_counter()
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise Refused('empty file: not an image')
        restorer = self._restorer_for(upscale, color_fix)
        with self.lock:  # one photo decoded at a time
            img, alpha, img_info = read_image(path, max_pixels=restorer.max_input_pixels(aligned))
            if aligned:
                h, w = img.shape[:2]
                try:
                    restorer.check_aligned(h, w)
                except NotSquareError as err:
                    raise Refused(
                        f'{w}x{h} is not square: "aligned face crop" takes square face crops only; untick it to '
                        'find the faces of a whole photo'
                    ) from err
            arr = img if alpha is None else np.dstack([img, alpha])
            cropped, restored, restored_img = restorer.enhance(
                arr, aligned=aligned, only_center_face=only_center_face, paste_back=True
            )
            del arr
            os.makedirs(out_dir)
            if aligned:
                output, suffix, bit_depth = restored[0], 'facesr', 8
            else:
                output, suffix, bit_depth = restored_img, f'facesr_x{upscale}', img_info['bit_depth']
            download = os.path.join(out_dir, download_name(name, suffix))
            write_image(download, output, bit_depth=bit_depth, png_compression=1)
            out_preview = _rgb(_fit(output, PREVIEW_SIDE))
            ph, pw = out_preview.shape[:2]
            in_preview = cv2.resize(_rgb(img), (pw, ph), interpolation=cv2.INTER_CUBIC)
            size, out_size = (img.shape[1], img.shape[0]), (output.shape[1], output.shape[0])
            del img, alpha, output, restored_img
        previews = {}
        for key, im in (('input_preview', in_preview), ('output_preview', out_preview)):
            previews[key] = os.path.join(out_dir, f'{key}.png')
            cv2.imwrite(previews[key], cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        crops = []
        for k, (lq, face) in enumerate(zip(cropped, restored)):
            pair = []
            for tag, im in (('input', lq), ('restored', face)):
                p = os.path.join(out_dir, f'face{k + 1}_{tag}.png')
                cv2.imwrite(p, to_bgr8(im))
                pair.append(p)
            crops.append(tuple(pair))
        notes = []
        if img_info.get('frames', 1) > 1:
            notes.append(f'{img_info["frames"]} frames or pages: only the first is restored')
        message = None
        if not aligned and not restored:
            message = f'no face found: the photo is only upscaled x{upscale}'
        elif aligned:
            message = 'aligned face crop: restored as it is, without detection'
        return {
            'faces': len(restored),
            'message': message,
            'notes': notes,
            'size': size,
            'out_size': out_size,
            'download': download,
            'crops': crops,
            **previews,
            'seconds': round(time.perf_counter() - t0, 3),
        }

    def _read_error(self, err, path, upscale, aligned):
        """A short reason for an :class:`ImageReadError` (without the upload's path on the server)."""
        detail = str(err).removeprefix(f'{err.path}: ')
        if err.reason == 'too_large':
            limit = self._restorer_for(upscale, None).max_input_pixels(aligned)
            try:
                with open(path, 'rb') as f:
                    size = image_size(f.read(1 << 20))
            except Exception:  # noqa: BLE001  (its size stays unknown)
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


def summary(results):
    """The Markdown shown under the results: one line per file (its faces, or why it was refused)."""
    ok = sum(r['ok'] for r in results)
    lines = [f'{ok} of {len(results)} restored' + (f', {len(results) - ok} not restored' if ok < len(results) else '')]
    for r in results:
        name = r['name'].replace('`', "'")
        if r['ok']:
            text = f'{r["faces"]} face{"" if r["faces"] == 1 else "s"} found'
            w, h = r['out_size']
            text += f', result {w}x{h}'
            if r['message']:
                text += f'; {r["message"]}'
            for note in r['notes']:
                text += f'; {note}'
        else:
            text = r['error']
        lines.append(f'- `{name}`: {text}')
    return '\n'.join(lines)


def _view(results, index):
    """The slider value and the gallery of result ``index`` (None, [] when it is missing or failed)."""
    if not results or not 0 <= index < len(results) or not results[index]['ok']:
        return None, []
    r = results[index]
    gallery = []
    for k, (lq, face) in enumerate(r['crops'], 1):
        gallery += [(lq, f'face {k}: network input'), (face, f'face {k}: restored')]
    return (r['input_preview'], r['output_preview']), gallery


def _sample_photo(work_dir):
    """scikit-image's astronaut photo (NASA, public domain) as a PNG in ``work_dir``, or None without skimage."""
    try:
        from skimage import data
    except ImportError:
        return None
    try:
        img = data.astronaut()
    except Exception:  # noqa: BLE001  (a broken scikit-image install: no example)
        logger.warning('scikit-image could not give its astronaut photo: no example on the page')
        return None
    path = os.path.join(work_dir, 'astronaut.png')
    cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def offline_theme(gr):
    """Gradio's default theme with system fonts only (the default loads Google Fonts)."""
    return gr.themes.Default(
        font=['ui-sans-serif', 'system-ui', 'sans-serif'], font_mono=['ui-monospace', 'Consolas', 'monospace']
    )


def build_demo(
    model=None,
    *,
    restorer=None,
    app=None,
    note=None,
    max_files=MAX_FILES,
    concurrency=CONCURRENCY,
    max_queue=MAX_QUEUE,
    example=True,
    **restorer_kwargs,
):
    """The demo page as Gradio Blocks, with its queue set up (not yet launched).

    Args:
        model (str | None): Checkpoint or zoo name for :func:`build_restorer`; None: the restorer's default (the
            packaged model zoo).
        restorer (FaceSRRestorer | None): A restorer to use instead (``model`` and ``restorer_kwargs`` unused).
        app (DemoApp | None): A :class:`DemoApp` to use instead of one around ``restorer``.
        note (str | None): A line shown under the model's name.
        max_files (int): Most photos per request.
        concurrency (int): Restores run at once (the queue's concurrency limit).
        max_queue (int): Most requests waiting in the queue; more get "queue full".
        example (bool): Offer scikit-image's astronaut photo as an example (when scikit-image is installed).
        **restorer_kwargs: :func:`build_restorer` arguments (``det_model``, ``model_root``, ``offline``...).

    Returns:
        gradio.Blocks: The page; ``blocks.facesr_app`` is its :class:`DemoApp`.

    Raises:
        ImportError: Gradio is missing (the message says how to install it).
    """
    gr = import_gradio()
    if app is None:
        if restorer is None:
            restorer = build_restorer(model, **restorer_kwargs)
        app = DemoApp(restorer, max_files=max_files, note=note)
    if int(concurrency) < 1 or int(max_queue) < 1:
        raise ValueError(f'concurrency and max_queue must be at least 1, got {concurrency} and {max_queue}')

    def restore(files, upscale, color_fix, aligned, only_center_face):
        paths = [
            (getattr(f, 'name', f), getattr(f, 'orig_name', None) or os.path.basename(str(f))) for f in files or []
        ]
        try:
            results = app.restore_files(paths, upscale, color_fix, only_center_face, aligned)
        except Refused as err:
            raise gr.Error(str(err)) from err
        names = [f'{i + 1}. {r["name"]}' for i, r in enumerate(results)]
        first = next((i for i, r in enumerate(results) if r['ok']), 0)
        slider, gallery = _view(results, first)
        downloads = [r['download'] for r in results if r['ok']] or None
        return (
            slider,
            gallery,
            downloads,
            summary(results),
            gr.Dropdown(choices=list(zip(names, range(len(names)))), value=first, visible=len(results) > 1),
            results,
        )

    def show(results, index):
        return _view(results, int(index) if index is not None else 0)

    with gr.Blocks(title='facesr_kd face restoration', analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            f'## facesr_kd: face super-resolution\n{app.model_line()}' + (f'\n\n**{note}**' if note else ''),
            elem_id='model',
        )
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(label=f'Photos (at most {app.max_files})', file_count='multiple', elem_id='files')
                upscale = gr.Radio(
                    [str(u) for u in app.upscales], value=str(app.default_upscale), label='Upscale', elem_id='upscale'
                )
                color_fix = gr.Radio(
                    list(COLOR_FIXES), value=app.restorer.color_fix or DEFAULT_COLOR_FIX, label='Colour fix',
                    elem_id='color_fix',
                )  # fmt: skip
                aligned = gr.Checkbox(label='Aligned face crops (no detection)', elem_id='aligned')
                centre = gr.Checkbox(label='Only the centre face', elem_id='centre')
                run = gr.Button('Restore', variant='primary', elem_id='submit')
                sample = _sample_photo(app.work_dir) if example else None
                if sample:
                    gr.Examples([[[sample]]], inputs=[files], label='Example (scikit-image astronaut, NASA)')
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id='status')
                photo = gr.Dropdown(label='Photo shown', choices=[], visible=False, elem_id='photo')
                slider = gr.ImageSlider(label='Input | result', type='filepath', elem_id='slider')
                gallery = gr.Gallery(
                    label='Faces: network input, restored', columns=4, height='auto', elem_id='faces',
                    object_fit='contain',
                )  # fmt: skip
                downloads = gr.File(label='Download (full-size PNG)', file_count='multiple', elem_id='downloads')
        state = gr.State([])
        run.click(
            restore,
            inputs=[files, upscale, color_fix, aligned, centre],
            outputs=[slider, gallery, downloads, status, photo, state],
            api_name='restore',
            concurrency_limit=int(concurrency),
            concurrency_id='restore',
        )
        photo.change(show, inputs=[state, photo], outputs=[slider, gallery], api_visibility='private', queue=False)
    demo.queue(max_size=int(max_queue), default_concurrency_limit=int(concurrency))
    demo.facesr_app = app
    return demo


def free_port(host='127.0.0.1'):
    """A port free on ``host`` now (the OS picks it)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(demo, host='127.0.0.1', port=7860, max_file_size=MAX_FILE_BYTES, block=True, quiet=False):
    """Serve ``demo`` (from :func:`build_demo`) offline on ``host:port``.

    Args:
        demo (gradio.Blocks): The page.
        host (str): Address to listen on (``127.0.0.1``: this machine only).
        port (int): Port (0: a free one).
        max_file_size (int): Largest file one upload may hold, in bytes.
        block (bool): Serve until Ctrl+C (True), or return once it listens (False; ``demo.close()`` stops it).
        quiet (bool): Less output from Gradio.

    Returns:
        str: The page's address.

    Raises:
        OSError: The address cannot be bound.
    """
    gr = import_gradio()
    port = int(port) or free_port(host)
    app = getattr(demo, 'facesr_app', None)
    try:
        _, url, _ = demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            prevent_thread_lock=True,
            max_file_size=int(max_file_size),
            ssr_mode=False,
            mcp_server=False,
            pwa=False,
            quiet=quiet,
            show_error=False,
            footer_links=['api'],
            theme=offline_theme(gr),
            allowed_paths=[app.work_dir] if app else None,
        )
    except OSError as err:
        reason = err.strerror or "the port is taken, or the address is not one of this machine's"
        raise OSError(err.errno, f'cannot listen on {host}:{port}: {reason}') from err
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
            if app:
                app.close()
    return url
