"""Hostile input to preparation and image reading (issue 13): no file or option aborts a batch, hangs a run,
exhausts memory or loses finished work, and nothing is dropped without a word.

Most inputs are generated (small aligned faces need no detector); the detector tests read ../shared/data.
"""

import errno
import json
import os
import re
import textwrap
import threading
import zlib

from facesr_kd.cli import prepare as cli
from facesr_kd.data import prepare as prep
from facesr_kd.face import detection, image_io
from facesr_kd.face.image_io import ImageReadError, read_image, write_image
from facesr_kd.utils.files import atomic_write

import cv2
import numpy as np
import pytest
from PIL import Image

from .conftest import FACEXLIB_WEIGHTS, SHARED_DATA, require_shared_data, run_python

# Aligned 64x64 faces, x8: no detector, a few ms per photo.
ALIGNED = ['--aligned', '--size', '64', '--scale', '8', '--min-photo-size', '8', '--no-progress']


def _face(seed, size=64):
    """A smooth synthetic 'face' (each seed a different picture), uint8 BGR."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def _faces(folder, names, size=64):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), _face(i, size))
    return folder


def _solid_png(width, height, rows_per_block=50):
    """A valid black RGB PNG of any size, built without its pixels: its deflate stream is one compressed block
    of rows repeated (each ends with a full flush, so the copies are identical) and Adler-32 of zeros."""
    block = bytes(1 + 3 * width) * rows_per_block  # filter byte 0, then black pixels
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    n = height // rows_per_block
    adler = ((len(block) * n % 65521) << 16) | 1
    idat = b'\x78\xda' + first + again * (n - 1) + tail + adler.to_bytes(4, 'big')

    def chunk(kind, payload):
        return len(payload).to_bytes(4, 'big') + kind + payload + zlib.crc32(kind + payload).to_bytes(4, 'big')

    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) + chunk(b'IEND', b'')


def _skipped(out):
    """skipped.txt as {(path, reason): detail}."""
    lines = (out / 'skipped.txt').read_text().splitlines()
    return {tuple(line.split('\t')[:2]): (line.split('\t') + [''])[2] for line in lines}


def _records(out):
    return {r['photo']: r for r in prep.load_records(str(out))}


def _temp_files(out):
    return [p for p in out.rglob('*') if '.tmp' in p.name]


# ---------------------------------------------------------------------------------------------------------------
# Row 1: the detector's working copy is bounded in pixels, whatever the aspect ratio


class _RecordingDetector:
    """Stands in for RetinaFace: records the working copy and finds one face at a fixed place on it."""

    def __init__(self):
        self.shapes = []

    def detect_faces(self, img, conf_threshold, nms_threshold=0.4, use_origin_size=True):
        self.shapes.append(img.shape)
        h, w = img.shape[:2]
        box = [0.25 * w, 0.25 * h, 0.75 * w, 0.75 * h]
        landmarks = [0.4 * w, 0.4 * h, 0.6 * w, 0.4 * h, 0.5 * w, 0.5 * h, 0.42 * w, 0.6 * h, 0.58 * w, 0.6 * h]
        return np.array([box + [0.99] + landmarks])


@pytest.mark.parametrize(
    ('height', 'width', 'resize'), [(2, 1000, 640), (32, 12000, 640), (12000, 32, 640), (3000, 4000, None)]
)
def test_detector_copy_is_bounded_whatever_the_shape(height, width, resize):
    detector = _RecordingDetector()
    img = np.zeros((height, width, 3), np.uint8)
    faces = detection.detect_faces(detector, img, resize=resize)
    ((h, w, _),) = detector.shapes
    # Unbounded, 2x1000 at short side 640 would be a 640x320000 copy (205 MP, GBs inside the network).
    assert max(h, w) <= detection.DET_MAX_SIDE and h * w <= detection.DET_MAX_PIXELS, (h, w)
    assert min(h, w) >= 1
    # Boxes and landmarks come back in photo pixels: the fake face spans the middle half of the photo.
    np.testing.assert_allclose(faces[0]['box'], [0.25 * width, 0.25 * height, 0.75 * width, 0.75 * height],
                               rtol=0.02, atol=2)  # fmt: skip


def test_detector_copy_of_ordinary_photos_is_as_before():
    # 1280x886 at short side 640 is facexlib's 924x640, unchanged by the bounds.
    detector = _RecordingDetector()
    detection.detect_faces(detector, np.zeros((886, 1280, 3), np.uint8), resize=640)
    detection.detect_faces(detector, np.zeros((256, 256, 3), np.uint8), resize=None)
    assert detector.shapes == [(640, 924, 3), (256, 256, 3)]
    assert detection.detection_scale(886, 1280, 640) == (886 / 640, (924, 640))
    # 10:1 panorama: the long side binds before the short side reaches 640.
    scale, (w, h) = detection.detection_scale(640, 6400, 640)
    assert w == detection.DET_MAX_SIDE and h == int(640 / scale) == 409


def test_prepare_on_extreme_aspect_photos_finishes_and_reports(tmp_path, shared_data):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'strip_2x1000.png'), np.full((2, 1000, 3), 200, np.uint8))
    cv2.imwrite(str(src / 'strip_32x12000.png'), np.full((32, 12000, 3), 90, np.uint8))
    (src / 'astronaut.png').symlink_to(SHARED_DATA / 'faces' / 'whole' / 'skimage_astronaut.png')
    out = tmp_path / 'out'
    args = ['-i', str(src), '-o', str(out), '--det-model', 'retinaface_mobile0.25', '--model-root',
            str(FACEXLIB_WEIGHTS), '--workers', '1', '--min-photo-size', '1', '--max-upscale', '100', '--min-inside',
            '0', '--no-progress']  # fmt: skip
    assert cli.main(args) == 0
    records = _records(out)
    assert records['strip_2x1000.png']['reason'] == records['strip_32x12000.png']['reason'] == 'no_face'
    assert records['astronaut.png']['status'] == 'ok' and records['astronaut.png']['detected'] == 1
    assert ('strip_32x12000.png', 'no_face') in _skipped(out)


# ---------------------------------------------------------------------------------------------------------------
# Row 2: the pixel limit is checked from the header, before decoding


def test_huge_png_is_refused_from_its_header(tmp_path, monkeypatch):
    path = tmp_path / 'bomb.png'
    path.write_bytes(_solid_png(20000, 20000))
    assert path.stat().st_size < 1_500_000  # 1.2 MB on disk, 1.2 GB decoded

    def no_decoding(*args, **kwargs):
        raise AssertionError('decoded a file that its header says is over the limit')

    monkeypatch.setattr(image_io.cv2, 'imdecode', no_decoding)
    monkeypatch.setattr(image_io, '_pil_decodes', no_decoding)
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert err.value.reason == 'too_large'
    message = str(err.value)
    assert '20000x20000 is 400 MP, over the limit of 128 MP (max_pixels=128000000)' in message
    assert 'bomb.png' in message and '--max-pixels' in message
    with pytest.raises(ImageReadError, match=r'over the limit of 0\.1 MP \(max_pixels=100000\)'):
        read_image(path, max_pixels=100_000)
    # A file bigger than any image within the limit is not even read into memory.
    monkeypatch.setattr(image_io, '_MAX_METADATA_BYTES', 0)
    with pytest.raises(
        ImageReadError, match=r'the file is 1\.17 MB, larger than any image within the limit of 0\.001 MP'
    ) as err:
        read_image(path, max_pixels=1000)
    assert err.value.reason == 'too_large'


@pytest.mark.parametrize('ext', ['.png', '.jpg', '.bmp', '.webp', '.tiff', '.gif'])
def test_header_sizes_of_every_format(tmp_path, ext):
    img = _face(0, 48)[:, :40]
    path = tmp_path / f'img{ext}'
    if ext == '.gif':
        Image.fromarray(img[..., ::-1]).save(path)
    else:
        cv2.imwrite(str(path), img)
    data = path.read_bytes()
    assert image_io.image_size(data) == (40, 48)
    assert read_image(path, max_pixels=40 * 48)[2]['width'] == 40
    with pytest.raises(
        ImageReadError, match=r'40x48 is 0\.00192 MP, over the limit of 0\.00192 MP \(max_pixels=1919\)'
    ) as err:
        read_image(path, max_pixels=40 * 48 - 1)
    assert err.value.reason == 'too_large'


def test_progressive_and_exif_jpeg_headers(tmp_path):
    pil = Image.fromarray(_face(1, 64)[:50])
    exif = Image.Exif()
    exif[0x0112] = 6
    pil.save(tmp_path / 'p.jpg', progressive=True, exif=exif)
    assert image_io.image_size((tmp_path / 'p.jpg').read_bytes()) == (64, 50)
    img, _, info = read_image(tmp_path / 'p.jpg', max_pixels=64 * 50)
    assert img.shape[:2] == (64, 50) and info['orientation'] == 6


def test_prepare_max_pixels_refuses_then_a_higher_limit_retries(tmp_path, capsys):
    src = _faces(tmp_path / 'in', ['a.png', 'b.png'])
    cv2.imwrite(str(src / 'c_big.png'), _face(7, 100))
    (src / 'd_bomb.png').write_bytes(_solid_png(20000, 20000))
    out = tmp_path / 'out'
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', '--max-pixels', '5000', *ALIGNED]) == 0
    skipped = _skipped(out)
    assert 'c_big.png: 100x100 is 0.01 MP, over the limit of 0.005 MP' in skipped[('c_big.png', 'too_large')]
    assert '20000x20000' in skipped[('d_bomb.png', 'too_large')]
    assert (out / 'meta_info.txt').read_text().split() == ['a.png', 'b.png']
    assert "photos skipped: {'too_large': 2}" in capsys.readouterr().out
    # --max-pixels is no saved option: raising it needs no --overwrite, and the refused photos are read again.
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', '--max-pixels', '20000', *ALIGNED]) == 0
    records = _records(out)
    assert records['c_big.png']['status'] == 'ok' and records['d_bomb.png']['reason'] == 'too_large'
    assert (out / 'meta_info.txt').read_text().split() == ['a.png', 'b.png', 'c_big.png']
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['processed'] == 2 and summary['resumed'] == 2


# ---------------------------------------------------------------------------------------------------------------
# Row 3: a worker killed (as by the out-of-memory killer) fails the run; a re-run resumes

KILLING_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time

    from facesr_kd.data import prepare as prep

    _process_photo = prep._process_photo


    def process_or_die(rel, *args):
        # Top level of the main script: the forkserver's workers run it too (as __mp_main__).
        if rel == os.environ.get('KILL_ON'):
            time.sleep(0.5)  # the other photos finish first
            os.kill(os.getpid(), signal.SIGKILL)
        return _process_photo(rel, *args)


    prep._process_photo = process_or_die

    if __name__ == '__main__':
        from facesr_kd.cli.prepare import main

        sys.exit(main(sys.argv[1:]))
    """
)


def test_killed_worker_fails_the_run_and_a_rerun_resumes(tmp_path, repo_root):
    names = [f'{i:02d}.png' for i in range(6)]
    src = _faces(tmp_path / 'in', names)
    out = tmp_path / 'out'
    script = tmp_path / 'prepare_with_kill.py'
    script.write_text(KILLING_SCRIPT)
    args = [script, '-i', src, '-o', out, '--workers', '2', *ALIGNED]
    proc = run_python(args, cwd=repo_root, env={'KILL_ON': '05.png'}, timeout=180, check=False)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert 'a worker process died' in proc.stdout and 'out-of-memory killer' in proc.stdout
    assert '05.png' in proc.stdout and 're-run the same command to resume' in proc.stdout
    journaled = set(_records(out))
    assert journaled and '05.png' not in journaled  # finished photos are kept; the lost one is not journaled
    assert not (out / 'meta_info.txt').exists()

    # The re-run (in this process, the same resumption) finishes the job.
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['resumed'] == len(journaled) and summary['processed'] == 6 - len(journaled)
    assert (out / 'meta_info.txt').read_text().split() == names
    assert not _temp_files(out)


# ---------------------------------------------------------------------------------------------------------------
# Row 4: a write failure (full disk) is journaled as failed, leaves no temporary file, and is retried


def _failing_writes(monkeypatch, victim, err):
    """Make the face writer fail, after half a file, for paths containing ``victim``."""
    real = image_io.write_bytes

    def write_bytes(path, data):
        if victim in os.path.basename(path):
            with atomic_write(path, 'wb') as f:
                f.write(data[: len(data) // 2])
                raise OSError(err, os.strerror(err), path)
        return real(path, data)

    monkeypatch.setattr(image_io, 'write_bytes', write_bytes)


def test_full_disk_stops_the_run_and_the_rerun_retries_the_photo(tmp_path, monkeypatch, capsys):
    names = ['a.png', 'b.png', 'c.png', 'd.png', 'e.png']
    src = _faces(tmp_path / 'in', names)
    out = tmp_path / 'out'
    args = ['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]
    with monkeypatch.context() as patch:
        _failing_writes(patch, 'c.png', errno.ENOSPC)
        assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert 'no space left on the device writing the faces of c.png' in err and 're-run the same command' in err
    records = _records(out)
    assert set(records) == {'a.png', 'b.png', 'c.png'}  # the run stopped at the full disk
    assert records['c.png']['status'] == 'failed' and records['c.png']['errno'] == errno.ENOSPC
    assert not (out / 'hr' / 'c.png').exists() and not _temp_files(out)

    assert cli.main(args) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['resumed'] == 2 and summary['processed'] == 3 and summary['photos_failed'] == 0
    assert (out / 'meta_info.txt').read_text().split() == names
    assert cv2.imread(str(out / 'hr' / 'c.png')).shape == (64, 64, 3)


def test_other_write_errors_fail_the_photo_not_the_batch(tmp_path, monkeypatch, capsys):
    src = _faces(tmp_path / 'in', ['a.png', 'b.png', 'c.png'])
    out = tmp_path / 'out'
    args = ['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]
    with monkeypatch.context() as patch:
        _failing_writes(patch, 'b.png', errno.EIO)
        assert cli.main(args) == 1
    captured = capsys.readouterr()
    assert '1 photos could not be written (write_failed' in captured.err
    assert 'photos failed (retried by the next run): 1' in captured.out
    assert _skipped(out)[('b.png', 'write_failed')].startswith('OSError: [Errno 5]')
    assert (out / 'meta_info.txt').read_text().split() == ['a.png', 'c.png'] and not _temp_files(out)
    # A journal of an earlier version recorded such a failure as a final 'error': it is retried too.
    with open(out / 'records.jsonl', 'a') as f:
        stat = os.stat(src / 'a.png')
        old = {'photo': 'a.png', 'stat': [stat.st_size, stat.st_mtime_ns], 'status': 'skipped', 'reason': 'error',
               'faces': [], 'message': "OSError: [Errno 28] No space left on device: 'hr/a.png.tmp1'"}  # fmt: skip
        f.write(json.dumps(old) + '\n')
    assert cli.main(args) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['processed'] == 2 and summary['resumed'] == 1 and summary['faces_kept'] == 3


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    src = _faces(tmp_path / 'in', ['a.png'])
    out = tmp_path / 'out'
    proc = run_python(['-c', 'import os; print(os.getpid())'], cwd=tmp_path)
    dead_pid = int(proc.stdout.split()[-1])
    (out / 'hr').mkdir(parents=True)
    (out / 'hr' / f'x.png.tmp{dead_pid}').write_bytes(b'half')
    (out / 'hr' / f'y.png.tmp{os.getpid()}').write_bytes(b'being written')  # a live writer's: kept
    prep.prepare_faces(str(src), str(out), aligned=True, size=64, min_photo_size=8, workers=1, progress=False)
    assert sorted(p.name for p in _temp_files(out)) == [f'y.png.tmp{os.getpid()}']


# ---------------------------------------------------------------------------------------------------------------
# Row 5: photos sharing a stem get unique keys, the same whatever --workers


def test_same_stem_photos_get_unique_keys_independent_of_workers(tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'x.jpg'), _face(1), [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(src / 'x.png'), _face(2))
    cv2.imwrite(str(src / 'x_jpg.png'), _face(3))  # already holds the name x.jpg would get
    cv2.imwrite(str(src / 'y.png'), _face(4))
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f'out{workers}'
        assert cli.main(['-i', str(src), '-o', str(out), '--workers', str(workers), *ALIGNED]) == 0
        outputs[workers] = out
    keys = (outputs[1] / 'meta_info.txt').read_text().split()
    assert keys == ['x_jpg.png', 'x_jpg2.png', 'x_png.png', 'y.png']
    for key in keys:
        a, b = (cv2.imread(str(outputs[w] / 'hr' / key)) for w in (1, 2))
        np.testing.assert_array_equal(a, b)
    assert (outputs[2] / 'meta_info.txt').read_text().split() == keys
    for key, seed in [('x_jpg2.png', 1), ('x_png.png', 2), ('x_jpg.png', 3), ('y.png', 4)]:
        hr = cv2.imread(str(outputs[1] / 'hr' / key)).astype(int)
        assert np.abs(hr - _face(seed)).mean() < 2, key
    records = _records(outputs[1])
    assert records['x.jpg']['stem'] == 'x_jpg2' and 'stem' not in records['y.png']


def test_colliding_keys_of_an_earlier_run_are_redone_and_cleaned(tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'x.png'), _face(2))
    cv2.imwrite(str(src / 'x.bmp'), _face(5))
    out = tmp_path / 'out'
    # What the earlier version journaled: both photos wrote hr/x.png (the last one won).
    for folder in ('hr', 'lr_x8'):
        (out / folder).mkdir(parents=True)
        cv2.imwrite(str(out / folder / 'x.png'), _face(5, 64 if folder == 'hr' else 8))
    with open(out / 'records.jsonl', 'w') as f:
        for name in ('x.bmp', 'x.png'):
            st = os.stat(src / name)
            face = {'key': 'x.png', 'kept': True, 'reason': None, 'zoom': 1.0, 'boxes': [[0, 0, 1, 1]] * 4}
            f.write(json.dumps({'photo': name, 'stat': [st.st_size, st.st_mtime_ns], 'status': 'ok', 'reason': None,
                                'detected': 1, 'faces': [face]}) + '\n')  # fmt: skip
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]) == 0
    assert (out / 'meta_info.txt').read_text().split() == ['x_bmp.png', 'x_png.png']
    assert sorted(p.name for p in (out / 'hr').iterdir()) == ['x_bmp.png', 'x_png.png']
    assert sorted(p.name for p in (out / 'lr_x8').iterdir()) == ['x_bmp.png', 'x_png.png']


# ---------------------------------------------------------------------------------------------------------------
# Row 6: numeric options are checked before anything runs


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['--size', '0'], '--size must be at least 1, got 0'),
        (['--size', '-256'], '--size must be at least 1'),
        (['--scale', '0'], '--scale must be at least 1'),
        (['--scale', '3'], '--size 256 is not divisible by --scale 3'),
        (['--det-resize', '-1'], '--det-resize must be 0 (off) or positive, got -1'),
        (['--max-pixels', '-1'], '--max-pixels must be at least 1, got -1'),
        (['--max-pixels', '0'], '--max-pixels must be at least 1, got 0'),
        (['--workers', '0'], '--workers must be at least 1, got 0'),
        (['--workers', '-3'], '--workers must be at least 1, got -3'),
        (['--conf-threshold', '1.5'], '--conf-threshold must be in [0, 1], got 1.5'),
        (['--conf-threshold', '-0.1'], '--conf-threshold must be in [0, 1]'),
        (['--conf-threshold', 'nan'], '--conf-threshold must be a finite number'),
        (['--min-inside', '2'], '--min-inside must be in [0, 1], got 2'),
        (['--max-upscale', '0'], '--max-upscale must be greater than 0, got 0'),
        (['--max-upscale', 'inf'], '--max-upscale must be a finite number'),
        (['--eye-dist-threshold', '-1'], '--eye-dist-threshold must be 0 (off) or positive'),
        (['--min-photo-size', '-1'], '--min-photo-size must be at least 0'),
        (['--faces-per-photo', '0'], '--faces-per-photo must be at least 1, got 0 (leave it out for no cap)'),
        (['--max-per-identity', '-2'], '--max-per-identity must be at least 1'),
        (['--start', '-1'], '--start must be at least 0'),
        (['--start', '5', '--end', '5'], '--end 5 must be greater than --start 5'),
        (['--size', 'abc'], "argument --size: invalid int value: 'abc'"),
    ],
)
def test_cli_rejects_bad_numbers_at_parse_time(tmp_path, capsys, argv, message):
    src = _faces(tmp_path / 'in', ['a.png'])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['-i', str(src), '-o', str(tmp_path / 'out'), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    ('option', 'message'),
    [
        ({'size': 0}, '--size must be at least 1'),
        ({'size': 100, 'scale': 8}, 'not divisible'),
        ({'workers': 0}, '--workers must be at least 1'),
        ({'det_resize': -640}, '--det-resize must be at least 1 (0: none)'),
        ({'max_pixels': -1}, '--max-pixels must be at least 1'),
        ({'conf_threshold': 2}, '--conf-threshold must be in [0, 1]'),
        ({'faces_per_photo': -1}, '--faces-per-photo must be at least 1'),
        ({'size': 2.5}, '--size must be an integer, got 2.5'),
        ({'size': None}, '--size must be given'),
    ],
)
def test_library_rejects_bad_numbers_before_writing(tmp_path, option, message):
    src = _faces(tmp_path / 'in', ['a.png'])
    with pytest.raises(ValueError, match=re.escape(message)):
        prep.prepare_faces(str(src), str(tmp_path / 'out'), aligned=True, progress=False, **option)
    assert not (tmp_path / 'out').exists()
    with pytest.raises(ValueError):
        prep.check_options(**option)


# ---------------------------------------------------------------------------------------------------------------
# Row 7: a run that prepares nothing exits non-zero


def test_every_photo_skipped_exits_non_zero(tmp_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    for name in ('a.png', 'b.png'):
        cv2.imwrite(str(src / name), _face(0, 6))
    out = tmp_path / 'out'
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]) == 1
    err = capsys.readouterr().err
    assert 'error: no face was prepared from the 2 photos in ' in err and "{'tiny': 2}" in err
    assert set(_skipped(out)) == {('a.png', 'tiny'), ('b.png', 'tiny')}
    assert (out / 'meta_info.txt').read_text() == ''


def test_no_photo_at_all_exits_non_zero(tmp_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    (src / 'notes.txt').write_text('not a photo')
    out = tmp_path / 'out'
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]) == 1
    err = capsys.readouterr().err
    assert 'error: no photos in' in err and "{'unsupported_extension': 1}" in err
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert cli.main(['-i', str(empty), '-o', str(tmp_path / 'out2'), '--workers', '1', *ALIGNED]) == 1
    assert 'error: no photos in' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# Row 8: animations, gray + alpha, broken links, other files: reported, never silent


def test_unusual_files_are_reported(tmp_path, capsys):
    src = _faces(tmp_path / 'in', ['face.png'])
    frames = [Image.fromarray(_face(i)[..., ::-1]) for i in (1, 2, 3)]
    frames[0].save(src / 'anim.png', save_all=True, append_images=frames[1:])
    frames[0].save(src / 'anim.webp', save_all=True, append_images=frames[1:], lossless=True)
    frames[0].save(src / 'clip.gif', save_all=True, append_images=frames[1:])
    gray = cv2.cvtColor(_face(4), cv2.COLOR_BGR2GRAY)
    Image.fromarray(np.dstack([gray, np.full_like(gray, 200)]), 'LA').save(src / 'gray_alpha.png')
    (src / 'notes.txt').write_text('a sidecar file')
    (src / 'gone.jpg').symlink_to(tmp_path / 'nowhere.jpg')
    os.mkfifo(src / 'pipe.jpg')  # reading it would block forever
    (src / 'sub').mkdir()
    (src / 'sub' / 'loop').symlink_to(src)
    (src / '.hidden.png').write_bytes(b'')

    out = tmp_path / 'out'
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]) == 0
    printed = capsys.readouterr().out
    skipped = _skipped(out)
    assert skipped[('anim.png', 'first_frame')] == 'only the first of its 3 frames was used'
    assert skipped[('anim.webp', 'first_frame')] == 'only the first of its 3 frames was used'
    assert skipped[('clip.gif', 'unsupported_extension')].startswith('.gif, not one of .jpg')
    assert ('notes.txt', 'unsupported_extension') in skipped
    assert 'nowhere.jpg, which does not exist' in skipped[('gone.jpg', 'broken_link')]
    assert ('pipe.jpg', 'not_a_file') in skipped and ('sub/loop', 'symlink_loop') in skipped
    assert not any(path.startswith('.hidden') for path, _ in skipped)
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['files_ignored'] == {
        'broken_link': 1, 'not_a_file': 1, 'symlink_loop': 1, 'unsupported_extension': 2}  # fmt: skip
    assert summary['converted'] == {'alpha': 1, 'first_frame': 2, 'gray': 1}
    assert "files not taken as photos: {'broken_link': 1" in printed and "'first_frame': 2" in printed
    records = _records(out)
    assert records['gray_alpha.png']['color'] == 'gray_alpha' and records['anim.png']['frames'] == 3
    keys = ['anim_png.png', 'anim_webp.png', 'face.png', 'gray_alpha.png']  # anim.* share a stem
    assert (out / 'meta_info.txt').read_text().split() == keys
    np.testing.assert_array_equal(cv2.imread(str(out / 'hr' / 'anim_png.png')), _face(1))


def test_read_image_reports_frames_gray_alpha_and_refuses_fifos(tmp_path):
    frames = [Image.fromarray(np.full((20, 30, 3), v, np.uint8)) for v in (10, 200, 90)]
    frames[0].save(tmp_path / 'anim.gif', save_all=True, append_images=frames[1:])
    img, alpha, info = read_image(tmp_path / 'anim.gif')
    assert info['format'] == 'gif' and info['frames'] == 3 and info['color'] == 'bgr' and alpha is None
    assert (img == 10).all()

    gray = np.arange(200, dtype=np.uint8).reshape(10, 20)
    Image.fromarray(np.dstack([gray, 255 - gray]), 'LA').save(tmp_path / 'la.png')
    img, alpha, info = read_image(tmp_path / 'la.png')
    assert info['color'] == 'gray_alpha' and info['frames'] == 1
    np.testing.assert_array_equal(img[..., 1], gray)
    np.testing.assert_array_equal(alpha, 255 - gray)
    # Written back as gray + alpha, not RGBA.
    write_image(str(tmp_path / 'back.png'), np.dstack([img, alpha]), color='gray')
    with Image.open(tmp_path / 'back.png') as im:
        assert im.mode == 'LA'
        np.testing.assert_array_equal(np.asarray(im)[..., 0], gray)

    os.mkfifo(tmp_path / 'pipe.png')
    errors = []

    def read():
        errors.append(pytest.raises(ImageReadError, read_image, tmp_path / 'pipe.png'))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=20)
    if reader.is_alive():  # unblock the reader before failing
        with open(tmp_path / 'pipe.png', 'wb'):
            pass
        pytest.fail('read_image blocked on a FIFO')
    assert errors[0].value.reason == 'unreadable' and 'not a regular file' in str(errors[0].value)


def test_list_entries_matching_no_photo_are_reported(tmp_path, capsys):
    src = _faces(tmp_path / 'in', ['a.png', 'b.png'])
    (tmp_path / 'list.txt').write_text('a\nmissing.jpg\nb.png\n')
    out = tmp_path / 'out'
    assert cli.main(['-i', str(src), '-o', str(out), '--list', str(tmp_path / 'list.txt'), '--workers', '1',
                     *ALIGNED]) == 0  # fmt: skip
    assert '--list entries matching no photo: 1 (missing.jpg)' in capsys.readouterr().out
    assert json.loads((out / 'summary.json').read_text())['list_not_found'] == ['missing.jpg']


# ---------------------------------------------------------------------------------------------------------------
# Row 9: --aligned refuses a photo that is not square


def test_aligned_refuses_a_whole_photo(tmp_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'group.jpg'), cv2.resize(_face(3), (491, 310)))
    out = tmp_path / 'out'
    assert cli.main(['-i', str(src), '-o', str(out), '--workers', '1', *ALIGNED]) == 1
    assert _skipped(out) == {('group.jpg', 'not_square'): '491x310'}
    assert "{'not_square': 1}" in capsys.readouterr().err
    assert not (out / 'hr').exists() or not any((out / 'hr').iterdir())


def test_shared_data_whole_photo_with_aligned_is_not_square(tmp_path):
    require_shared_data()
    src = tmp_path / 'in'
    src.mkdir()
    (src / 'codeformer_00.jpg').symlink_to(SHARED_DATA / 'faces' / 'whole' / 'codeformer_00.jpg')
    summary = prep.prepare_faces(str(src), str(tmp_path / 'out'), aligned=True, workers=1, progress=False)
    assert summary['photos_skipped'] == {'not_square': 1} and summary['faces_kept'] == 0
    assert prep.run_errors(summary)
