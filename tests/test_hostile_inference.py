"""Hostile input for facesr-kd-infer (issue 13): odd files and options are reported, never abort or hang a batch.

Each test asserts the message, the exit status and what was (or was not) written. Photos come from
``../shared/data/faces`` (tests that need them take the ``shared_data`` fixture and skip without it); the
checkpoint is a tiny DFDNetStudent with RANDOM weights (and a random VGG encoder), so the restored faces are
meaningless: only the pipeline is checked. Tests without photos use synthetic images and a bicubic stand-in
network, with no detector.
"""

import contextlib
import io
import os
import struct
import threading
import zlib

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd import inference
from facesr_kd.cli import inference as cli
from facesr_kd.inference import FaceSRRestorer, NotSquareError, list_inputs, output_names, restore_paths

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from .conftest import FACEXLIB_WEIGHTS, SHARED_DATA

FACES = SHARED_DATA / 'faces'
DET_ARGS = ['--det-model', 'retinaface_mobile0.25', '--model-root', str(FACEXLIB_WEIGHTS), '--offline']


class BicubicX8(torch.nn.Module):
    """Stand-in SR network: bicubic x8 (32 -> 256)."""

    def forward(self, lq):
        return F.interpolate(lq, scale_factor=8, mode='bicubic', align_corners=False).clamp(0, 1)


BICUBIC_INFO = {'type': 'BicubicX8', 'lq_size': 32, 'out_size': 256, 'scale': 8, 'needs_boxes': False}


def bicubic_restorer(**kwargs):
    return FaceSRRestorer(net=BicubicX8(), info=BICUBIC_INFO, device='cpu', **kwargs)


def call_main(argv):
    """``cli.main(argv)`` with its stdout and stderr captured: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def write_gray_alpha16_png(path, gray, alpha):
    """A 16-bit gray + alpha PNG (colour type 4), which neither OpenCV nor PIL writes."""
    h, w = gray.shape
    rows = np.dstack([gray, alpha]).astype('>u2').reshape(h, -1)
    raw = b''.join(b'\x00' + row.tobytes() for row in rows)

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    header = chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 4, 0, 0, 0))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + header + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*') if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------------------------
# One run over a folder of awkward entries (rows 1, 2 and 7 of the issue).


@pytest.fixture(scope='module')
def hostile_run(tmp_path_factory, shared_data, student_ckpt):
    root = tmp_path_factory.mktemp('hostile')
    inputs = root / 'in'
    inputs.mkdir()
    small = FACES / 'whole' / 'codeformer_01.jpg'  # 248x189, 4 small faces
    photo = cv2.imread(str(small))
    # Row 1: a JPEG without extension and one named .jfif (OpenCV writes neither); they also share a stem.
    (inputs / 'face').write_bytes(small.read_bytes())
    (inputs / 'face.jfif').write_bytes((FACES / 'whole' / 'codeformer_00.jpg').read_bytes())
    # Row 2: two inputs with the stem "a", different content of the same size.
    cv2.imwrite(str(inputs / 'a.tif'), photo)
    cv2.imwrite(str(inputs / 'a.webp'), photo[:, ::-1], [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    # Row 7: an animated GIF, a gray + alpha PNG, and entries that are not images.
    frames = [Image.fromarray(photo[..., ::-1]), Image.new('RGB', photo.shape[1::-1])]
    frames[0].save(inputs / 'anim.gif', save_all=True, append_images=frames[1:])
    gray = cv2.cvtColor(cv2.imread(str(FACES / 'whole' / 'skimage_astronaut.png')), cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (256, 256), interpolation=cv2.INTER_AREA)
    alpha = np.tile(np.linspace(0, 255, 256).astype(np.uint8), (256, 1))
    Image.fromarray(np.dstack([gray, alpha]), 'LA').save(inputs / 'gray_alpha.png')
    write_gray_alpha16_png(
        inputs / 'gray16_alpha.png', gray[::2, ::2].astype(np.uint16) * 257, alpha[::2, ::2].astype(np.uint16) * 257
    )
    os.symlink(inputs / 'gone.jpg', inputs / 'broken.jpg')
    (inputs / '.hidden.jpg').write_bytes(small.read_bytes())
    (inputs / 'sub').mkdir()
    os.mkfifo(inputs / 'pipe.png')
    (inputs / 'notes.txt').write_text('not an image')
    out = root / 'out'
    argv = ['-i', str(inputs), '-o', str(out), '--model', student_ckpt, '--upscale', '1', *DET_ARGS]
    code, stdout, stderr = call_main(argv)
    return {'in': inputs, 'out': out, 'code': code, 'stdout': stdout, 'stderr': stderr, 'photo': photo}


def test_odd_folder_does_not_abort_the_batch(hostile_run):
    run = hostile_run
    assert run['code'] == 0, run['stderr']
    assert '7/12 inputs' in run['stdout'] and '5 skipped, 4 with notes' in run['stdout']
    written = set(os.listdir(run['out'] / 'restored_imgs'))
    assert written == {
        'face.png', 'face_jfif.png', 'a_tif.tif', 'a_webp.webp', 'anim.png', 'gray_alpha.png', 'gray16_alpha.png'
    }  # fmt: skip


def test_no_extension_and_jfif_written_as_png(hostile_run):
    """Row 1: these used to abort the batch (cv2.error: could not find a writer)."""
    out, stdout = hostile_run['out'], hostile_run['stdout']
    for name, src in (('face', 'codeformer_01.jpg'), ('face_jfif', 'codeformer_00.jpg')):
        path = out / 'restored_imgs' / f'{name}.png'
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        assert cv2.imread(str(path)).shape == cv2.imread(str(FACES / 'whole' / src)).shape
        assert (out / 'cropped_faces' / f'{name}_00.png').is_file()
    assert f'{hostile_run["in"] / "face"}: the input has no extension: written as .png' in stdout
    assert f'{hostile_run["in"] / "face.jfif"}: written as .png: OpenCV cannot write .jfif' in stdout


def test_same_stem_outputs_do_not_overwrite(hostile_run):
    """Row 2: a.tif and a.webp give a_tif.* and a_webp.*, each the result of its own input."""
    out, photo = hostile_run['out'], hostile_run['photo'].astype(np.float32)
    tif = cv2.imread(str(out / 'restored_imgs' / 'a_tif.tif')).astype(np.float32)
    webp = cv2.imread(str(out / 'restored_imgs' / 'a_webp.webp')).astype(np.float32)
    assert np.abs(tif - webp).mean() > 10
    assert np.abs(tif - photo).mean() < np.abs(webp - photo).mean()
    assert np.abs(webp - photo[:, ::-1]).mean() < np.abs(tif - photo[:, ::-1]).mean()
    faces = os.listdir(out / 'restored_faces')
    assert any(f.startswith('a_tif_') for f in faces) and any(f.startswith('a_webp_') for f in faces)
    assert not any(f.startswith('a_0') for f in faces)


def test_animated_gif_first_frame_said(hostile_run):
    """Row 7: the first frame is restored, and the run says so."""
    out, stdout, gif = hostile_run['out'], hostile_run['stdout'], hostile_run['in'] / 'anim.gif'
    assert f'{gif}: 2 frames or pages: only the first is restored' in stdout
    assert f'{gif}: written as .png: OpenCV cannot write .gif' in stdout
    res = cv2.imread(str(out / 'restored_imgs' / 'anim.png'), cv2.IMREAD_UNCHANGED)
    assert res.shape[:2] == hostile_run['photo'].shape[:2]
    assert res[..., :3].mean() > 40  # the photo, not the black second frame


def test_gray_alpha_kept(hostile_run):
    """Row 7: gray + alpha used to come back as RGBA without a word; 8-bit it is written as gray + alpha."""
    src, out = hostile_run['in'] / 'gray_alpha.png', hostile_run['out']
    res = out / 'restored_imgs' / 'gray_alpha.png'
    assert res.read_bytes()[25] == 4  # PNG colour type 4: gray + alpha
    face = cv2.imread(str(out / 'restored_faces' / 'gray_alpha_00.png'))
    assert np.abs(face[..., 0].astype(int) - face[..., 2]).mean() > 1  # the random network adds colour...
    with Image.open(res) as im:  # ...which the photo does not keep
        assert im.mode == 'LA' and im.size == (256, 256)
        alpha = np.asarray(im)[..., 1].astype(int)
    assert np.abs(alpha - np.asarray(Image.open(src))[..., 1]).max() <= 1
    assert str(src) + ':' not in hostile_run['stdout']  # nothing lost, nothing to say


def test_gray_alpha_16bit_written_as_rgba_and_said(hostile_run):
    """16-bit gray + alpha has no writer: a 16-bit RGBA PNG with equal colour channels, and a note."""
    src = hostile_run['in'] / 'gray16_alpha.png'
    assert f'{src}: {inference.GRAY_ALPHA_16_NOTE}' in hostile_run['stdout']
    res = cv2.imread(str(hostile_run['out'] / 'restored_imgs' / 'gray16_alpha.png'), cv2.IMREAD_UNCHANGED)
    assert res.shape == (128, 128, 4) and res.dtype == np.uint16
    assert np.array_equal(res[..., 0], res[..., 1]) and np.array_equal(res[..., 1], res[..., 2])
    expected = np.tile(np.linspace(0, 255, 256).astype(np.uint8)[::2], (128, 1)).astype(int) * 257
    assert np.abs(res[..., 3].astype(int) - expected).max() <= 257


def test_non_images_reported_with_a_reason(hostile_run):
    """Row 7: broken links, hidden names, folders, FIFOs and text files are each reported, none silently."""
    stdout, inputs = hostile_run['stdout'], hostile_run['in']
    expected = {
        'broken.jpg': 'broken symbolic link',
        '.hidden.jpg': 'hidden (its name starts with a dot)',
        'sub': 'a folder: inputs are not searched recursively',
        'pipe.png': 'not a regular file (a FIFO)',
        'notes.txt': 'not a decodable image',  # (image_io's wording)
    }
    for name, reason in expected.items():
        line = next((ln for ln in stdout.splitlines() if ln.startswith(f'skip {inputs / name}: ')), '')
        assert reason in line, (name, line)
    assert 'skip ' + str(inputs / 'notes.txt') + ': ' + str(inputs) not in stdout  # the path is not repeated


# ---------------------------------------------------------------------------------------------------------------
# Row 3: nothing restorable is an error.


def test_only_a_text_file_exits_1(tmp_path, shared_data, student_ckpt):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'notes.txt').write_text('hello')
    out = tmp_path / 'out'
    code, stdout, stderr = call_main(['-i', str(tmp_path / 'in'), '-o', str(out), '--model', student_ckpt, *DET_ARGS])
    assert code == 1
    assert 'error: none of the 1 inputs could be restored' in stderr
    assert 'notes.txt: not a decodable image' in stdout
    assert files_under(out) == []


@pytest.mark.parametrize('content', ['empty', 'only_hidden_and_broken'])
def test_nothing_to_try_exits_1_before_loading(tmp_path, monkeypatch, content):
    folder = tmp_path / 'in'
    folder.mkdir()
    if content == 'only_hidden_and_broken':
        (folder / '.DS_Store').write_bytes(b'\0')
        os.symlink(folder / 'missing.png', folder / 'link.png')
    monkeypatch.setattr(cli, 'build_restorer', lambda args: pytest.fail('the model was loaded'))
    code, _, stderr = call_main(['-i', str(folder), '-o', str(tmp_path / 'out')])
    assert code == 1
    if content == 'empty':
        assert stderr.strip() == f'error: no files in {folder}'
    else:
        assert f'error: nothing to restore in {folder}: 2 entries skipped' in stderr
        assert '.DS_Store: hidden' in stderr and 'link.png: broken symbolic link' in stderr
    assert not (tmp_path / 'out').exists()


# ---------------------------------------------------------------------------------------------------------------
# Row 4: outputs that cannot be written stop the run before any work.


@pytest.mark.parametrize(
    ('case', 'message'),
    [
        ('output_is_file', 'is a file, not a folder: pass another -o'),
        ('result_folder_is_file', 'restored_imgs is a file: move it away or pass another -o'),
        ('picture_inside_file', 'cannot be written: {root}/taken.png is a file, not a folder'),
        ('picture_is_folder', 'is a folder: give a file name such as cmp.png'),
        ('picture_unknown_ext', 'give a file name ending in one of .png'),
        ('picture_is_input', 'is one of the inputs: it would be overwritten'),
    ],
)
def test_unwritable_outputs_refused_before_work(tmp_path, monkeypatch, case, message):
    inputs = tmp_path / 'in'
    inputs.mkdir()
    cv2.imwrite(str(inputs / 'photo.png'), np.full((8, 8, 3), 128, np.uint8))
    (tmp_path / 'taken.png').write_bytes(b'keep')
    out, extra = tmp_path / 'out', []
    if case == 'output_is_file':
        out = tmp_path / 'taken.png'
    elif case == 'result_folder_is_file':
        out.mkdir()
        (out / 'restored_imgs').write_bytes(b'keep')
    elif case == 'picture_inside_file':
        extra = ['--before-after', str(tmp_path / 'taken.png' / 'x.png')]
    elif case == 'picture_is_folder':
        extra = ['--before-after', str(tmp_path)]
    elif case == 'picture_unknown_ext':
        extra = ['--before-after', str(tmp_path / 'cmp.jfif')]
    else:
        extra = ['--before-after', str(inputs / 'photo.png')]
    before = files_under(tmp_path)
    monkeypatch.setattr(cli, 'build_restorer', lambda args: pytest.fail('the model was loaded'))
    code, _, stderr = call_main(['-i', str(inputs), '-o', str(out), *extra])
    assert code == 1
    assert stderr.startswith('error: ') and message.format(root=tmp_path) in stderr, stderr
    assert files_under(tmp_path) == before
    assert (tmp_path / 'taken.png').read_bytes() == b'keep'


def test_restore_paths_checks_outputs_before_reading(tmp_path, monkeypatch):
    """The library refuses too (a file as output folder), before any input is read."""
    (tmp_path / 'file').write_bytes(b'')
    monkeypatch.setattr(inference, 'read_image', lambda *a, **k: pytest.fail('an input was read'))
    with pytest.raises(NotADirectoryError, match='is a file, not a folder'):
        restore_paths(bicubic_restorer(), [str(tmp_path / 'x.png')], str(tmp_path / 'file'))
    with pytest.raises(ValueError, match='must not contain a path separator'):
        restore_paths(bicubic_restorer(), [str(tmp_path / 'x.png')], str(tmp_path / 'o'), suffix='../../x')


# ---------------------------------------------------------------------------------------------------------------
# Row 5: --aligned refuses non-square inputs per file.


def test_aligned_refuses_non_square_and_goes_on(tmp_path, shared_data, student_ckpt):
    inputs = tmp_path / 'in'
    inputs.mkdir()
    for src in (FACES / 'whole' / 'codeformer_00.jpg', FACES / 'real_lq' / 'gfpgan_Adele_crop.png'):
        os.symlink(src, inputs / src.name)
    out = tmp_path / 'out'
    argv = ['-i', str(inputs), '-o', str(out), '--model', student_ckpt, '--aligned', '--device', 'cpu']
    code, stdout, _ = call_main(argv)
    assert code == 0
    assert f'skip {inputs / "codeformer_00.jpg"}: NotSquareError: 491x310 is not square' in stdout
    assert 'run without --aligned' in stdout
    assert files_under(out) == [
        'cmp/gfpgan_Adele_crop_00.png',
        'cropped_faces/gfpgan_Adele_crop_00.png',
        'restored_faces/gfpgan_Adele_crop_00.png',
    ]


def test_aligned_square_tolerance_and_size():
    restorer = bicubic_restorer(max_pixels=500_000)
    _, restored, _ = restorer.enhance(np.zeros((510, 512, 3), np.uint8), aligned=True)  # within 1%
    assert restored[0].shape == (256, 256, 3)
    with pytest.raises(NotSquareError, match='512x500 is not square'):
        restorer.enhance(np.zeros((500, 512, 3), np.uint8), aligned=True)
    with pytest.raises(inference.ImageTooLargeError, match='800x800 aligned crop is 0.6 MP, over the 0.5 MP limit'):
        restorer.enhance(np.zeros((800, 800, 3), np.uint8), aligned=True)
    with pytest.raises(ValueError, match=r'100x100 upscaled x0.001 is 0x0 pixels'):
        bicubic_restorer(upscale=0.001).check_size(100, 100)


# ---------------------------------------------------------------------------------------------------------------
# Row 6: numeric and other options are checked by argparse (status 2, message).


@pytest.mark.parametrize(
    ('option', 'message'),
    [
        (['--batch-size', '-1'], '--batch-size must be positive, got -1'),
        (['--batch-size', '0'], '--batch-size must be positive, got 0'),
        (['--det-resize', '-5'], '--det-resize must be 0 (detect at the original size) or positive, got -5'),
        (['--max-pixels', '-1'], '--max-pixels must be positive, got -1'),
        (['--upscale', 'nan'], '--upscale must be a positive number, got nan'),
        (['--upscale', 'inf'], '--upscale must be a positive number, got inf'),
        (['--upscale', '0'], '--upscale must be a positive number, got 0.0'),
        (['--before-after-width', '0'], '--before-after-width must be positive, got 0'),
        (['--conf', '1.5'], '--conf must be in [0, 1], got 1.5'),
        (['--conf', 'nan'], '--conf must be in [0, 1], got nan'),
        (['--bg-tile', '-1'], '--bg-tile must be 0 (no tiles) or positive, got -1'),
        (['--eye-dist-threshold', 'nan'], '--eye-dist-threshold must be 0 (keep every face) or positive, got nan'),
        (['--suffix', '../x'], "--suffix must not contain a path separator, got '../x'"),
        (['--device', 'banana'], "--device 'banana' is not a device"),
    ],
)
def test_bad_options_exit_2(option, message):
    code, _, stderr = call_main(['-i', 'in', *option])
    assert code == 2
    assert f'error: {message}' in stderr


# ---------------------------------------------------------------------------------------------------------------
# Row 7 without photos: listing, FIFOs never opened, oversized files never read.


def test_list_inputs_reports_what_it_does_not_try(tmp_path):
    (tmp_path / 'b.jpg').write_bytes(b'x')
    (tmp_path / 'a.txt').write_text('x')
    (tmp_path / 'noext').write_bytes(b'x')
    (tmp_path / '.hidden.png').write_bytes(b'x')
    (tmp_path / 'sub').mkdir()
    os.symlink(tmp_path / 'nowhere', tmp_path / 'broken.png')
    os.symlink(tmp_path / 'b.jpg', tmp_path / 'link.jpg')
    os.mkfifo(tmp_path / 'fifo.jpg')
    paths, skipped = list_inputs(str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ['a.txt', 'b.jpg', 'link.jpg', 'noext']
    reasons = {os.path.basename(p): r for p, r in skipped.items()}
    assert reasons == {
        '.hidden.png': 'hidden (its name starts with a dot)',
        'broken.png': f'broken symbolic link (to {tmp_path / "nowhere"}, which does not exist)',
        'fifo.jpg': 'not a regular file (a FIFO)',
        'sub': 'a folder: inputs are not searched recursively',
    }
    assert list_inputs(str(tmp_path / 'link.jpg')) == ([str(tmp_path / 'link.jpg')], {})
    with pytest.raises(ValueError, match=r'fifo.jpg: not a regular file \(a FIFO\)'):
        list_inputs(str(tmp_path / 'fifo.jpg'))
    with pytest.raises(FileNotFoundError, match='broken.png is a broken symbolic link'):
        list_inputs(str(tmp_path / 'broken.png'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        list_inputs(str(tmp_path / 'missing'))


def test_fifo_huge_file_and_bomb_skipped_unread(tmp_path, monkeypatch):
    """A FIFO never blocks the run; a file or a header too large for the restorer's input limit is not decoded."""
    fifo = tmp_path / 'pipe.png'
    os.mkfifo(fifo)
    stop = threading.Event()

    def unblock():  # if the FIFO were opened for reading, give it EOF so that the test fails instead of hanging
        while not stop.wait(0.2):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                continue  # no reader: fine

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    huge = tmp_path / 'huge.png'
    with open(huge, 'wb') as f:
        f.truncate(100 * 2**20)  # sparse: no disk used
    bomb = tmp_path / 'bomb.png'  # declares 20000x20000 in its header (1.2 GB decoded), 1 KB on disk
    ihdr = struct.pack('>IIBBBBB', 20000, 20000, 8, 2, 0, 0, 0)
    header = b'\x89PNG\r\n\x1a\n' + struct.pack('>I', 13) + b'IHDR' + ihdr
    bomb.write_bytes(header + bytes(1000))
    restorer = bicubic_restorer(upscale=2, max_pixels=4_000_000)  # inputs up to 1 MP
    monkeypatch.setattr(inference.cv2, 'imdecode', lambda *a: pytest.fail('a refused file was decoded'))
    try:
        summary = restore_paths(restorer, [str(fifo), str(huge), str(bomb)], str(tmp_path / 'out'))
    finally:
        stop.set()
    skipped = summary['skipped']
    assert set(skipped) == {str(fifo), str(huge), str(bomb)} and not summary['faces']
    # The wording is facesr_kd.face.image_io's; what matters here is which file was refused, and why.
    assert 'not a regular file' in skipped[str(fifo)]
    assert skipped[str(huge)].startswith('the file is 105 MB, larger than any image within the limit')
    assert skipped[str(bomb)].startswith('20000x20000 is 400') and 'over the' in skipped[str(bomb)]
    assert files_under(tmp_path / 'out') == []


def test_output_names_never_collide():
    paths = ['d/a.tif', 'd/a.webp', 'd/a.png', 'd/a.PNG', 'd/a_png.jpg', 'd/b', 'd/b.jpg', 'd/c.jpg', 'e/c.jpg']
    names = output_names(paths)
    assert names['d/a.tif'] == 'a_tif' and names['d/a.webp'] == 'a_webp' and names['d/b'] == 'b'
    assert names['d/b.jpg'] == 'b_jpg'
    assert len({n.casefold() for n in names.values()}) == len(paths), names


def test_before_after_picture_is_bounded(tmp_path, monkeypatch, capsys):
    """Its rows are held in memory: the picture stops growing at BEFORE_AFTER_MAX_PIXELS and says so."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f'face{i}.png'
        cv2.imwrite(str(path), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        paths.append(str(path))
    monkeypatch.setattr(inference, 'BEFORE_AFTER_MAX_PIXELS', 2 * 256 * 128)
    picture = tmp_path / 'cmp.png'
    summary = restore_paths(
        bicubic_restorer(), paths, str(tmp_path / 'out'), aligned=True, before_after=str(picture),
        before_after_width=256,
    )  # fmt: skip
    assert sum(summary['faces'].values()) == 3
    assert cv2.imread(str(picture)).shape == (2 * 128, 256, 3)
    assert f'before/after picture full (0 MP at most): {paths[2]} and the inputs after it are not in it' in (
        capsys.readouterr().out
    )


# ---------------------------------------------------------------------------------------------------------------
# Row 9 (issue 14): the background upsampler runs on the chosen device.


@pytest.mark.parametrize(('device', 'cuda', 'expected'), [('cuda', True, 'cuda'), ('auto', False, 'cpu')])
def test_bg_upsampler_built_on_the_chosen_device(tmp_path, monkeypatch, device, cuda, expected):
    calls = {}

    class FakeRestorer:
        def __init__(self, **kwargs):
            calls['restorer'] = kwargs

        def needs_detector(self, aligned):
            return False

    def fake_bg(name, model_path=None, tile=400, device='cpu', half=False):
        calls['bg'] = (name, device)
        return 'upsampler'

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(cli, 'build_bg_upsampler', fake_bg)
    monkeypatch.setattr(cli, 'FaceSRRestorer', FakeRestorer)
    model = tmp_path / 'model.pth'
    model.write_bytes(b'')
    args = cli.parse_args(['-i', 'x', '--model', str(model), '--bg-upsampler', 'realesrgan', '--device', device,
                           '--aligned'])  # fmt: skip
    cli.build_restorer(args)
    assert calls['bg'] == ('realesrgan', expected)
    assert calls['restorer']['bg_upsampler'] == 'upsampler' and calls['restorer']['device'] == device


def test_cuda_device_without_cuda_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    model = tmp_path / 'model.pth'
    model.write_bytes(b'')
    inputs = tmp_path / 'in'
    inputs.mkdir()
    cv2.imwrite(str(inputs / 'photo.png'), np.zeros((8, 8, 3), np.uint8))
    code, _, stderr = call_main(['-i', str(inputs), '-o', str(tmp_path / 'out'), '--model', str(model), '--device',
                                 'cuda'])  # fmt: skip
    assert code == 1
    assert stderr.strip() == 'error: --device cuda: CUDA is not available here; use --device cpu or auto'


def test_before_after_write_failure_keeps_the_results(tmp_path, monkeypatch, capsys):
    """A picture that fails at the very end (disk full) is reported; the restored faces are already written."""
    path = tmp_path / 'face.png'
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    picture = str(tmp_path / 'cmp.png')
    real_write = inference.write_image

    def write(target, *args, **kwargs):
        if target == picture:
            raise OSError(28, 'No space left on device')
        return real_write(target, *args, **kwargs)

    monkeypatch.setattr(inference, 'write_image', write)
    summary = restore_paths(bicubic_restorer(), [str(path)], str(tmp_path / 'out'), aligned=True, before_after=picture)
    assert summary['faces'] == {str(path): 1}
    assert 'No space left on device' in summary['before_after_error']
    assert 'error: before/after picture not written: [Errno 28] No space left on device' in capsys.readouterr().out
    written = ['cmp/face_00.png', 'cropped_faces/face_00.png', 'restored_faces/face_00.png']
    assert files_under(tmp_path / 'out') == written


def test_half_refused_on_cpu_before_work(tmp_path, student_ckpt):
    photo = tmp_path / 'in.png'
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    code, out, err = call_main(['-i', str(photo), '-o', str(tmp_path / 'out'), '--model', student_ckpt, '--device',
                                'cpu', '--half', '--aligned'])  # fmt: skip
    assert code == 1
    assert '--half (float16) runs on CUDA only' in out + err
    assert not files_under(tmp_path / 'out')
    with pytest.raises(ValueError, match='CUDA only'):
        inference.build_bg_upsampler('realesrgan', device='cpu', half=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_half_on_cuda_matches_fp32_within_fp16_tolerance(student_ckpt):
    face = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    outs = []
    for half in (False, True):
        restorer = FaceSRRestorer(student_ckpt, device='cuda', half=half, bg_upsampler='none')
        outs.append(restorer.enhance(face, aligned=True)[1][0].astype(np.float32))
    assert np.abs(outs[0] - outs[1]).max() <= 3.0  # 8-bit levels
