"""The web demo (facesr_kd.demo, facesr-kd-demo, on Gradio) without a browser.

The logic (:class:`DemoApp`) is tested in process; the page is served by ``facesr-kd-demo`` in a subprocess on an
ephemeral loopback port and driven through ``gradio_client``, with its own ``GRADIO_TEMP_DIR`` and ``TMPDIR``
so that what reaches the disk can be checked. Whole photos are read in place from ``../shared/data/faces`` and
detected with the staged facexlib RetinaFace mobilenet0.25 weights, offline (those tests skip, naming the folder,
without them). The network is the tiny RANDOM-weight student of ``conftest.student_ckpt``: the faces it returns
are meaningless; the tests check the demo (results per file, messages, limits, the queue, memory).

Without Gradio the tests that need it skip, naming the package, unless ``FACESR_KD_REQUIRE_BROWSER=1`` (CI),
which makes them fail.
"""

import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

from facesr_kd.cli import demo as cli
from facesr_kd.demo import DemoApp, Refused
from facesr_kd.demo.app import display_name, download_name
from facesr_kd.inference import FaceSRRestorer

import cv2
import numpy as np
import pytest

from .conftest import FACEXLIB_WEIGHTS, README_COUNTS, SHARED_DATA

FACES = SHARED_DATA / 'faces'
DET_ARGS = ['--det-model', 'retinaface_mobile0.25', '--model-root', str(FACEXLIB_WEIGHTS), '--offline']
REQUIRE_BROWSER = os.environ.get('FACESR_KD_REQUIRE_BROWSER') == '1'


def require_gradio():
    """Skip (fail under FACESR_KD_REQUIRE_BROWSER=1) when gradio or gradio_client is missing."""
    for module in ('gradio', 'gradio_client'):
        try:
            __import__(module)
        except ImportError:
            message = f'{module} is not installed (pip install "facesr_kd[demo]")'
            if REQUIRE_BROWSER:
                pytest.fail(f'{message}; FACESR_KD_REQUIRE_BROWSER=1 forbids skipping the demo tests')
            pytest.skip(message)


def png_bytes(img):
    return cv2.imencode('.png', img)[1].tobytes()


def png_bomb(side=30000):
    """A PNG whose header says ``side`` x ``side`` (RGB) and whose data is one tiny deflate stream."""

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    ihdr = struct.pack('>IIBBBBB', side, side, 8, 2, 0, 0, 0)
    return (
        b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\0' * 4096)) + chunk(b'IEND', b'')
    )


def random_face(side, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------ no Gradio, no staged data
def test_names_are_made_safe():
    assert display_name('../../etc/passwd') == 'passwd' and display_name('a\\b\\c.png') == 'c.png'
    assert display_name('a\x00b\n.png') == 'ab.png' and len(display_name('x' * 5000 + '.png')) == 200
    assert display_name('') == 'upload'
    for name in ('../../evil.png', 'a\x00b.png', 'x' * 5000 + '.png', 'ph\u00f6to \u7167.jpg', '....'):
        safe = download_name(display_name(name), 'facesr_x2')
        assert re.fullmatch(r'[A-Za-z0-9_.-]{1,120}\.png', safe) and '..' not in safe and '/' not in safe, safe


@pytest.fixture(scope='module')
def aligned_app(tmp_path_factory, student_ckpt):
    """A DemoApp whose restorer has no detector weights (an empty model root): only aligned crops work, and bad
    files are refused before any detection. Output limit 1 MP, 3 files per request."""
    empty = tmp_path_factory.mktemp('no_weights')
    restorer = FaceSRRestorer(
        model_path=student_ckpt, det_model='retinaface_mobile0.25', model_root=str(empty), offline=True,
        device='cpu', max_pixels=1_000_000,
    )  # fmt: skip
    app = DemoApp(restorer, max_files=3)
    yield app
    app.close()


def test_bad_files_get_messages_and_the_others_are_restored(aligned_app, tmp_path):
    face = png_bytes(random_face(64))
    files = {
        'notes.txt': b'not an image at all',
        'empty.png': b'',
        'cut.png': face[: len(face) // 2],
        'bomb.png': png_bomb(),
        'wide.png': png_bytes(random_face(64)[:40]),
        'face.png': face,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [(str(tmp_path / n), n) for n in files]
    results = [r for i in range(0, 6, 3) for r in aligned_app.restore_files(paths[i : i + 3], 1, aligned=True)]
    by_name = {r['name']: r for r in results}
    assert by_name['notes.txt']['error'].startswith('not an image:')
    assert by_name['empty.png']['error'] == 'empty file: not an image'
    assert by_name['cut.png']['error'].startswith('damaged image: truncated PNG file')
    assert by_name['bomb.png']['error'].startswith('too large: 30000x30000 is 900 MP, over the limit of 1 MP')
    assert (
        by_name['wide.png']['error'].startswith('64x40 is not square') and 'untick it' in by_name['wide.png']['error']
    )
    for r in results:
        assert str(tmp_path) not in r.get('error', '')
    ok = by_name['face.png']
    assert ok['ok'] and ok['faces'] == 1 and ok['message'].startswith('aligned face crop')
    assert os.path.basename(ok['download']) == 'face_facesr.png'
    assert cv2.imread(ok['download']).shape == (256, 256, 3)
    lq, restored = ok['crops'][0]
    assert cv2.imread(lq).shape == (32, 32, 3) and cv2.imread(restored).shape == (256, 256, 3)
    assert Path(ok['download']).resolve().is_relative_to(Path(aligned_app.work_dir).resolve())


def test_request_limits(aligned_app, tmp_path):
    path = tmp_path / 'a.png'
    path.write_bytes(png_bytes(random_face(64)))
    with pytest.raises(Refused, match='4 files: at most 3 photos per request'):
        aligned_app.restore_files([str(path)] * 4, 1, aligned=True)
    with pytest.raises(Refused, match='no photo'):
        aligned_app.restore_files([], 1)
    for bad in ('3', 'nan', 'x', None):
        with pytest.raises(Refused, match='upscale must be one of 1, 2, 4'):
            aligned_app.restore_files([str(path)], bad)
    with pytest.raises(Refused, match='colour fix must be one of'):
        aligned_app.restore_files([str(path)], 1, color_fix='sepia')
    huge = tmp_path / 'huge.png'
    huge.write_bytes(png_bytes(np.zeros((1100, 1000, 3), np.uint8)))
    (r,) = aligned_app.restore_files([str(huge)], 2)
    assert 'at upscale x2 at most 0.25 MP can be restored' in r['error']


def test_internal_error_is_logged_not_shown(aligned_app, tmp_path, caplog, monkeypatch):
    path = tmp_path / 'ok.png'
    path.write_bytes(png_bytes(random_face(64)))

    def broken(*args, **kwargs):
        raise RuntimeError('secret internals')

    monkeypatch.setattr(aligned_app.restorer, 'enhance', broken)
    with caplog.at_level('INFO', logger='facesr_kd.demo'):
        (r,) = aligned_app.restore_files([str(path)], 1, aligned=True)
    assert r == {
        'name': 'ok.png',
        'ok': False,
        'error': 'internal error while restoring it; the server log has the details',
    }
    assert 'secret internals' in caplog.text and 'RuntimeError' in caplog.text


def test_cli_help_and_bad_options(capsys):
    with pytest.raises(SystemExit) as err:
        cli.parse_args(['--help'])
    out = capsys.readouterr().out
    assert err.value.code == 0 and '--offline' in out and '--max-files' in out and '--max-queue' in out
    for argv in (['--model', 'x.pth', '--port', '70000'], ['--model', 'x.pth', '--max-upload-mb', 'nan'],
                 ['--model', 'x.pth', '--max-files', '0'], ['--max-queue', '0']):  # fmt: skip
        with pytest.raises(SystemExit) as err:
            cli.parse_args(argv)
        assert err.value.code == 2


def test_cli_without_gradio_says_how_to_install(monkeypatch, student_ckpt, capsys):
    monkeypatch.setitem(sys.modules, 'gradio', None)  # the import fails
    assert cli.main(['--model', student_ckpt, '--offline', '--port', '0']) == 1
    assert 'pip install "facesr_kd[demo]"' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ with Gradio
def test_cli_missing_checkpoint_and_detector_weights(tmp_path, student_ckpt, capsys):
    require_gradio()
    assert cli.main(['--model', str(tmp_path / 'none.pth'), '--offline', '--port', '0']) == 1
    assert 'is neither a checkpoint file nor a zoo model' in capsys.readouterr().err
    argv = ['--model', student_ckpt, '--det-model', 'retinaface_mobile0.25', '--model-root', str(tmp_path),
            '--offline', '--port', '0']  # fmt: skip
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert 'detection_mobilenet0.25_Final.pth not found in' in err and str(tmp_path) in err


def test_build_demo_returns_blocks_with_a_bounded_queue(aligned_app):
    require_gradio()
    from facesr_kd.demo import build_demo

    import gradio as gr

    demo = build_demo(app=aligned_app, max_queue=7, concurrency=1)
    assert isinstance(demo, gr.Blocks) and demo.facesr_app is aligned_app
    assert demo._queue.max_size == 7
    (fn,) = [f for f in demo.fns.values() if f.api_name == 'restore']
    assert fn.concurrency_limit == 1
    assert os.environ['GRADIO_ANALYTICS_ENABLED'] == 'False' and demo.analytics_enabled is False


class DemoProcess:
    """``facesr-kd-demo`` in a subprocess on 127.0.0.1 and a free port, with its own temporary folders."""

    def __init__(self, root, ckpt, *args):
        self.root = Path(root)
        self.gradio_tmp, self.tmp = self.root / 'gradio', self.root / 'tmp'
        self.gradio_tmp.mkdir(parents=True)
        self.tmp.mkdir()
        env = {**os.environ, 'GRADIO_TEMP_DIR': str(self.gradio_tmp), 'TMPDIR': str(self.tmp), 'OMP_NUM_THREADS': '1'}
        cmd = [sys.executable, '-m', 'facesr_kd.cli.demo', '--model', ckpt, *DET_ARGS, '--device', 'cpu', '--port', '0']
        self.proc = subprocess.Popen(
            [*cmd, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.root
        )
        self.lines = []
        self.url = None
        deadline = time.monotonic() + 120
        for line in self.proc.stdout:
            self.lines.append(line)
            if m := re.search(r'facesr_kd demo at (http://127\.0\.0\.1:\d+/?)', line):
                self.url = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        if self.url is None:
            self.close()
            raise AssertionError('facesr-kd-demo did not start:\n' + ''.join(self.lines))
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def peak_rss(self):
        """The process's peak resident memory so far (VmHWM), in bytes."""
        status = Path(f'/proc/{self.proc.pid}/status').read_text()
        return int(re.search(r'VmHWM:\s+(\d+) kB', status).group(1)) * 1024

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope='module')
def served(tmp_path_factory, shared_data, student_ckpt):
    require_gradio()
    server = DemoProcess(tmp_path_factory.mktemp('demo_server'), student_ckpt, '--max-upload-mb', '20')
    yield server
    server.close()


@pytest.fixture(scope='module')
def client(served):
    from gradio_client import Client

    return Client(served.url, verbose=False)


def restore(client, paths, upscale='2', color_fix='wavelet', aligned=False, centre=False):
    from gradio_client import handle_file

    return client.predict(
        [handle_file(str(p)) for p in paths], upscale, color_fix, aligned, centre, api_name='/restore'
    )


@pytest.mark.slow
def test_whole_photo_and_bad_files_through_the_page(served, client, tmp_path):
    photo = FACES / 'whole' / 'codeformer_01.jpg'
    data = photo.read_bytes()
    (tmp_path / 'garbage.jpg').write_bytes(b'\x00\x01garbage' * 10)
    (tmp_path / 'cut.jpg').write_bytes(data[: len(data) // 3])
    (tmp_path / 'bomb.png').write_bytes(png_bomb())
    slider, gallery, downloads, status, _ = restore(
        client, [photo, tmp_path / 'garbage.jpg', tmp_path / 'cut.jpg', tmp_path / 'bomb.png']
    )
    n = README_COUNTS[photo.name]
    h, w = cv2.imread(str(photo)).shape[:2]
    lines = status.splitlines()
    assert lines[0] == '1 of 4 restored, 3 not restored'
    assert lines[1] == f'- `codeformer_01.jpg`: {n} faces found, result {2 * w}x{2 * h}'
    assert lines[2].startswith('- `garbage.jpg`: not an image:')
    assert lines[3].startswith('- `cut.jpg`: damaged image: truncated JPEG file')
    assert lines[4].startswith('- `bomb.png`: too large: 30000x30000 is 900 MP')
    assert 'Traceback' not in status and str(served.root) not in status
    before, after = (cv2.imread(p) for p in slider)
    assert before.shape == after.shape == (2 * h, 2 * w, 3)
    assert len(gallery) == 2 * n and gallery[0]['caption'] == 'face 1: network input'
    assert cv2.imread(gallery[0]['image']).shape == (32, 32, 3) and cv2.imread(gallery[1]['image']).shape[0] == 256
    (download,) = downloads
    assert os.path.basename(download) == 'codeformer_01_facesr_x2.png'
    assert cv2.imread(download).shape == (2 * h, 2 * w, 3)


@pytest.mark.slow
def test_hostile_names_and_too_many_files(served, client, tmp_path):
    """Names with ../, NUL or 5,000 characters, sent as they are to Gradio's upload route, never reach the disk;
    an 11th file is refused with a message; a file over --max-upload-mb is refused (413)."""
    import httpx
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    face = png_bytes(random_face(64))
    upload = served.url.rstrip('/') + '/gradio_api/upload'
    stored = []
    for name in ('../../evil_up.png', 'nul\x00evil.png', 'L' * 5000 + '.png'):
        answer = httpx.post(upload, files=[('files', (name, face, 'image/png'))], timeout=60)
        if len(name) == 5004 and answer.status_code == 413:  # Gradio refuses such part headers outright
            assert 'Headers exceeded maximum allowed size' in answer.text
            continue
        assert answer.status_code == 200, answer.text
        stored += answer.json()
    assert len(stored) >= 2
    for path in stored:
        assert Path(path).resolve().is_relative_to(served.gradio_tmp.resolve()), path
    on_disk = [p for p in served.root.rglob('*')] + list(served.root.parent.iterdir())
    for p in on_disk:
        assert '\x00' not in p.name and len(p.name.encode()) <= 255 and 'evil_up' not in str(p.parent), p
    assert not (served.root.parent / 'evil_up.png').exists() and not (served.gradio_tmp.parent / 'evil_up.png').exists()
    big = tmp_path / 'big.png'
    big.write_bytes(np.random.default_rng(1).integers(0, 256, 21_000_000, dtype=np.uint8).tobytes())
    answer = httpx.post(
        served.url.rstrip('/') + '/gradio_api/upload', files=[('files', ('big.png', big.read_bytes()))], timeout=60
    )
    assert answer.status_code == 413
    small = tmp_path / 'small.png'
    small.write_bytes(face)
    with pytest.raises(AppError, match='11 files: at most 10 photos per request'):
        client.predict([handle_file(str(small))] * 11, '1', 'none', True, False, api_name='/restore')


@pytest.mark.slow
def test_twenty_concurrent_requests_are_queued_and_all_answered(served, client, tmp_path):
    from gradio_client import handle_file

    paths = []
    for i in range(20):
        p = tmp_path / f'crop{i}.png'
        p.write_bytes(png_bytes(random_face(64, seed=i)))
        paths.append(p)
    jobs = [client.submit([handle_file(str(p))], '1', 'none', True, False, api_name='/restore') for p in paths]
    answers = [job.result(timeout=300) for job in jobs]
    assert len(answers) == 20
    for i, (_, _, downloads, status, _) in enumerate(answers):
        assert status.splitlines()[1].startswith(f'- `crop{i}.png`: 1 face found'), status
        assert os.path.basename(downloads[0]) == f'crop{i}_facesr.png'


@pytest.mark.slow
def test_peak_memory_of_five_8000px_uploads_is_that_of_one(served, client, tmp_path):
    """One restore runs at a time and a photo is decoded only inside it: five 8000x8000 photos sent at once peak
    at no more than 1.5x the memory of one."""
    from gradio_client import handle_file

    ramp = np.linspace(0, 255, 8000, dtype=np.float32).astype(np.uint8)
    img = np.dstack([np.broadcast_to(ramp, (8000, 8000))] * 3)
    paths = []
    for i in range(5):
        p = tmp_path / f'big{i}.png'
        cv2.imwrite(str(p), np.ascontiguousarray(img[:, :, ::-1] if i % 2 else img), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        paths.append(p)
    del img
    (_, _, _, status, _) = restore(client, [paths[0]], '1', 'none')
    assert '- `big0.png`: 0 faces found, result 8000x8000' in status, status
    one = served.peak_rss()
    jobs = [client.submit([handle_file(str(p))], '1', 'none', False, False, api_name='/restore') for p in paths]
    for i, job in enumerate(jobs):
        status = job.result(timeout=600)[3]
        assert f'- `big{i}.png`: 0 faces found, result 8000x8000' in status, status
    five = served.peak_rss()
    print(f'peak RSS: one 8000x8000 upload {one / 1e9:.2f} GB, five at once {five / 1e9:.2f} GB')
    assert one > 8000 * 8000 * 3 * 2  # the photo and its result were really in memory
    assert five <= 1.5 * one, (one, five)
