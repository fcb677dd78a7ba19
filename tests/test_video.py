"""Video restoration: facesr-kd-infer -i clip.mp4 and facesr_kd.video.

The clips are made here with imageio-ffmpeg's ffmpeg: a staged photo (``faces/whole/skimage_astronaut.png``,
read in place from ``../shared/data``) shrunk so the face is about 45 pixels wide, seen through a 128x96 window
that moves 2 pixels a frame, at 10 fps for 2 seconds, with a 440 Hz sine as the audio track. Faces are
detected with the staged facexlib RetinaFace mobilenet0.25 weights, offline, and restored by a tiny
``LiteFaceStudent`` (16 -> 128) with RANDOM weights, made here: the restored faces are meaningless, the tests
check the pipeline (frame count, frame rate, audio, tracks, resuming, bad input), and that network keeps the
file fast on one thread (DFDNetStudent's tiny test checkpoint takes about a second a face).
"""

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd import video
from facesr_kd.archs.lite_student_arch import LiteFaceStudent
from facesr_kd.cli import inference as cli
from facesr_kd.inference import FaceSRRestorer
from facesr_kd.utils.checkpoint import save_sr_checkpoint

import cv2
import numpy as np
import pytest
import torch

from .conftest import FACEXLIB_WEIGHTS, REPO_ROOT, SHARED_DATA, require_shared_data

try:
    import imageio_ffmpeg
except ImportError:
    imageio_ffmpeg = None
# The tests that make or read clips need imageio-ffmpeg's binary (the others run without it).
needs_ffmpeg = pytest.mark.skipif(
    imageio_ffmpeg is None, reason='imageio_ffmpeg not installed: pip install imageio-ffmpeg (or facesr_kd[video])'
)

FPS, SECONDS, SIZE = 10, 2, (128, 96)
DET_ARGS = ['--det-model', 'retinaface_mobile0.25', '--model-root', str(FACEXLIB_WEIGHTS), '--offline']
FAST_ARGS = [*DET_ARGS, '--det-resize', '0', '--device', 'cpu', '--keep-larger', '0']  # restore the clip's big face
ARCH = {'type': 'LiteFaceStudent', 'out_size': 128, 'scale': 8, 'num_feat': 8, 'num_block': 1, 'feat_channels': 4}


def ffmpeg(*args):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-v', 'error', '-y', *map(str, args)], check=True)


def face_frames(n=FPS * SECONDS):
    """``n`` 128x96 BGR frames of the astronaut's face, moving 2 px a frame to the left."""
    require_shared_data()
    photo = cv2.imread(str(SHARED_DATA / 'faces' / 'whole' / 'skimage_astronaut.png'))
    photo = cv2.resize(photo, (224, 224), interpolation=cv2.INTER_AREA)
    w, h = SIZE
    return [np.ascontiguousarray(photo[10 : 10 + h, 14 + 2 * i : 14 + 2 * i + w]) for i in range(n)]


def make_clip(path, seconds=SECONDS, audio='aac'):
    """Write a clip of :func:`face_frames` at FPS with a sine-tone track (``audio``: an ffmpeg codec, or None)."""
    frames = face_frames(FPS * seconds)
    raw = path.with_suffix('.rgb')
    raw.write_bytes(b''.join(f.tobytes() for f in frames))
    args = ['-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', f'{SIZE[0]}x{SIZE[1]}', '-framerate', FPS, '-i', raw]
    if audio:
        args += ['-f', 'lavfi', '-i', f'sine=frequency=440:duration={seconds}', '-c:a', audio]
    ffmpeg(*args, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-f', 'matroska' if path.suffix != '.mp4' else 'mp4', path)
    raw.unlink()
    return path


def audio_seconds(path):
    """Duration of a file's first audio track, from its decoded samples (mono, 44.1 kHz, s16)."""
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    args = [exe, '-v', 'error', '-i', str(path), '-map', '0:a:0', '-ac', '1', '-ar', '44100', '-f', 's16le', '-']
    pcm = subprocess.run(args, capture_output=True, check=True).stdout
    return len(pcm) / 2 / 44100


def decoded(path):
    """Every frame of a video, as one array (small test clips only)."""
    info = video.probe(str(path))
    return np.stack(list(video.read_frames(str(path), info)))


@pytest.fixture(scope='module')
def lite_ckpt(tmp_path_factory):
    """A tiny x8 LiteFaceStudent (16 -> 128), RANDOM weights (a random ``to_rgb``: not its bicubic skip)."""
    torch.manual_seed(0)
    net = LiteFaceStudent(out_size=128, scale=8, num_feat=8, num_block=1, feat_channels=4)
    torch.nn.init.normal_(net.to_rgb.weight, std=0.05)
    path = tmp_path_factory.mktemp('lite') / 'lite_x8.pth'
    save_sr_checkpoint(str(path), net, ARCH)
    return str(path)


@pytest.fixture(scope='module')
def restorer(lite_ckpt, shared_data):
    return FaceSRRestorer(
        model_path=lite_ckpt,
        upscale=2,
        det_model='retinaface_mobile0.25',
        model_root=str(FACEXLIB_WEIGHTS),
        offline=True,
        device='cpu',
        det_resize=None,
        keep_larger=0,  # the clip's face is over 4 x the x8 model's 32 px input: restore it all the same
    )


def run_cli(argv):
    """``cli.main(argv)`` in this process; returns its status and what it printed (stdout and stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue() + err.getvalue()


@pytest.fixture(scope='module')
def batch_run(tmp_path_factory, lite_ckpt, shared_data):
    """A CLI run over a folder with a good clip (AAC audio), a corrupt .mp4 and a text file, then the same again.

    Returns:
        dict: ``inputs``, ``out``, ``summary`` (of the first run), ``text`` (what it printed), ``mtime`` (of the
        result after it), ``rc2`` and ``text2`` (the second run's status and output).
    """
    root = tmp_path_factory.mktemp('video_batch')
    inputs = root / 'in'
    inputs.mkdir()
    make_clip(inputs / 'clip.mp4')
    (inputs / 'broken.mp4').write_bytes(np.random.default_rng(0).bytes(4000))
    (inputs / 'notes.txt').write_text('not a picture')
    out = root / 'out'
    argv = ['-i', str(inputs), '-o', str(out), '--model', lite_ckpt, *FAST_ARGS]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary = cli.run(cli.parse_args(argv))
    mtime = os.stat(out / 'clip.mp4').st_mtime_ns
    rc2, text2 = run_cli(argv)
    return {'inputs': inputs, 'out': out, 'summary': summary, 'text': buf.getvalue(), 'mtime': mtime}, rc2, text2


@needs_ffmpeg
def test_video_keeps_frames_fps_and_audio(batch_run):
    run, _, _ = batch_run
    clip, result = run['inputs'] / 'clip.mp4', run['out'] / 'clip.mp4'
    assert result.is_file() and not (run['out'] / '.clip.frames').exists()
    info = video.probe(str(result))
    assert info['fps'] == Fraction(FPS) and info['frames'] == FPS * SECONDS
    assert (info['width'], info['height']) == (2 * SIZE[0], 2 * SIZE[1])
    assert imageio_ffmpeg.count_frames_and_secs(str(result))[0] == FPS * SECONDS  # decoded, not just counted
    assert info['has_audio'] and info['audio_codecs'] == ['aac']  # AAC is copied
    assert abs(audio_seconds(result) - audio_seconds(clip)) <= 0.05
    assert abs(audio_seconds(result) - SECONDS) <= 0.05
    done = run['summary']['videos'][str(clip)]
    assert done['status'] == 'done' and done['frames'] == FPS * SECONDS
    assert done['faces'] == FPS * SECONDS and done['tracks'] == 1  # one face, one track through the clip
    assert done['size'] == (2 * SIZE[0], 2 * SIZE[1])


@needs_ffmpeg
def test_batch_reports_bad_inputs(batch_run):
    """A corrupt video and a non-video are reported by name with the reason; the good clip is still restored."""
    run, _, _ = batch_run
    broken, notes = str(run['inputs'] / 'broken.mp4'), str(run['inputs'] / 'notes.txt')
    assert set(run['summary']['skipped']) == {broken, notes}
    assert 'not a readable video' in run['summary']['skipped'][broken]
    assert f'skip {broken}: not a readable video' in run['text'] and f'skip {notes}:' in run['text']
    assert '1/2 videos restored, 1 skipped' in run['text']


@needs_ffmpeg
def test_finished_video_is_not_redone(batch_run):
    run, rc2, text2 = batch_run
    result = run['out'] / 'clip.mp4'
    assert rc2 == 0
    assert f'{result} exists, not redone' in text2
    assert os.stat(result).st_mtime_ns == run['mtime']


@needs_ffmpeg
def test_only_bad_videos_exit_1(tmp_path, lite_ckpt, capsys, shared_data):
    bad = tmp_path / 'broken.mov'
    bad.write_bytes(b'garbage' * 100)
    assert cli.main(['-i', str(bad), '-o', str(tmp_path / 'out'), '--model', lite_ckpt, *FAST_ARGS]) == 1
    captured = capsys.readouterr()
    assert f'skip {bad}: not a readable video' in captured.out
    assert 'none of the 1 inputs could be restored' in captured.err


def test_missing_ffmpeg_names_the_extra(tmp_path, lite_ckpt, monkeypatch, capsys):
    clip = tmp_path / 'clip.mp4'
    clip.write_bytes(b'whatever')
    monkeypatch.setitem(sys.modules, 'imageio_ffmpeg', None)  # import imageio_ffmpeg raises ImportError
    with pytest.raises(video.FFmpegNotFoundError, match=r'pip install "facesr_kd\[video\]"'):
        video.ffmpeg_exe()
    assert cli.main(['-i', str(clip), '-o', str(tmp_path / 'out'), '--model', lite_ckpt, *FAST_ARGS]) == 1
    assert 'pip install "facesr_kd[video]"' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()  # refused before any work


@needs_ffmpeg
def test_video_flag_forces_an_unusual_extension(tmp_path, lite_ckpt, capsys, shared_data):
    """--video sends a file of any name to the video path; a clip without audio gets none."""
    clip = make_clip(tmp_path / 'clip.mp4', seconds=1, audio=None)
    odd = clip.rename(tmp_path / 'clip.bin')
    args = ['-i', str(odd), '-o', str(tmp_path / 'out'), '--model', lite_ckpt, *FAST_ARGS]
    assert cli.main(args) == 1  # without --video it is an image that does not decode
    assert 'clip.bin' in capsys.readouterr().out
    summary = cli.run(cli.parse_args([*args, '--video']))
    done = summary['videos'][str(odd)]
    assert done['status'] == 'done' and done['frames'] == FPS and done['has_audio'] is False
    assert not video.probe(done['output'])['has_audio']


def test_enhance_with_given_faces(restorer):
    """enhance(faces=...) restores exactly what detection would, from the landmarks given, without detecting."""
    frame = face_frames(1)[0]
    faces = restorer.detect(frame)
    assert len(faces) == 1
    expected = restorer.enhance(frame)
    detect = restorer.detect
    try:
        restorer.detect = None  # not called
        given = restorer.enhance(frame, faces=[{'landmarks5': faces[0]['landmarks5'], 'track_id': 3}])
    finally:
        restorer.detect = detect
    for a, b in zip(expected[:2], given[:2]):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    np.testing.assert_array_equal(expected[2], given[2])
    assert restorer.last_stats['detections'][0]['track_id'] == 3
    shifted = restorer.enhance(frame, faces=[{'landmarks5': faces[0]['landmarks5'] + 3}])
    assert not np.array_equal(shifted[0][0], expected[0][0])
    assert restorer.enhance(frame, faces=[])[0] == []


@needs_ffmpeg
def test_interrupted_library_run_resumes_to_the_same_result(tmp_path, restorer, monkeypatch):
    """A run stopped after 7 frames and resumed writes the very frames an uninterrupted run writes."""
    clip = make_clip(tmp_path / 'clip.mkv', audio=None)
    whole = video.restore_video(str(clip), str(tmp_path / 'whole'), restorer, progress=False)
    real_write = video.write_image

    def stop_at_7(path, img, *args, **kwargs):
        if path.endswith('000007.png'):
            raise KeyboardInterrupt
        real_write(path, img, *args, **kwargs)

    monkeypatch.setattr(video, 'write_image', stop_at_7)
    with pytest.raises(KeyboardInterrupt):
        video.restore_video(str(clip), str(tmp_path / 'parts'), restorer, progress=False)
    monkeypatch.setattr(video, 'write_image', real_write)
    assert sorted(os.listdir(tmp_path / 'parts' / '.clip.frames')) == [f'{i:06d}.png' for i in range(7)] + [
        'journal.json'
    ]
    resumed = video.restore_video(str(clip), str(tmp_path / 'parts'), restorer, progress=False)
    assert (resumed['resumed_at'], resumed['computed'], resumed['frames']) == (7, FPS * SECONDS - 7, FPS * SECONDS)
    assert whole['tracks'] == 1 and resumed['tracks'] == 0  # the track continued from the journal
    np.testing.assert_array_equal(decoded(whole['output']), decoded(resumed['output']))
    # Other settings: the work folder is not reused.
    monkeypatch.setattr(video, 'write_image', stop_at_7)
    with pytest.raises(KeyboardInterrupt):
        video.restore_video(str(clip), str(tmp_path / 'other'), restorer, progress=False)
    monkeypatch.setattr(video, 'write_image', real_write)
    center = video.restore_video(str(clip), str(tmp_path / 'other'), restorer, only_center_face=True, progress=False)
    assert center['resumed_at'] == 0 and 'only_center_face' in center['restarted']


@needs_ffmpeg
def test_killed_cli_run_resumes_without_rewriting_frames(tmp_path, lite_ckpt, monkeypatch, capsys, shared_data):
    """SIGKILL a CLI run once some frames are written; the rerun resumes there and leaves those frames alone."""
    clip = make_clip(tmp_path / 'clip.mkv', audio='pcm_s16le')
    out = tmp_path / 'out'
    work = out / '.clip.frames'
    args = ['-i', str(clip), '-o', str(out), '--model', lite_ckpt, *FAST_ARGS]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    proc = subprocess.Popen(
        [sys.executable, '-m', 'facesr_kd.cli.inference', *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if work.is_dir() and len([n for n in os.listdir(work) if n.endswith('.png')]) >= 3:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        log = proc.communicate()[0].decode(errors='replace')
    assert proc.returncode == -signal.SIGKILL, f'the run was not killed mid-way ({proc.returncode}):\n{log[-3000:]}'
    assert not (out / 'clip.mp4').exists()
    before = {n: os.stat(work / n) for n in os.listdir(work) if n.endswith('.png')}
    k = len(before)
    assert 3 <= k < FPS * SECONDS and sorted(before) == [f'{i:06d}.png' for i in range(k)]

    written, at_encode = [], {}
    real_write, real_encode = video.write_image, video.encode_frames

    def spy_write(path, *a, **kw):
        written.append(os.path.basename(path))
        real_write(path, *a, **kw)

    def spy_encode(frames_dir, *a, **kw):
        at_encode.update({n: os.stat(os.path.join(frames_dir, n)) for n in before})
        real_encode(frames_dir, *a, **kw)

    monkeypatch.setattr(video, 'write_image', spy_write)
    monkeypatch.setattr(video, 'encode_frames', spy_encode)
    assert cli.main(args) == 0
    assert f'resuming at frame {k} of {FPS * SECONDS}' in capsys.readouterr().out
    assert written == [f'{i:06d}.png' for i in range(k, FPS * SECONDS)]
    for name, st in before.items():  # the frames written before the kill are the same files, untouched
        assert (at_encode[name].st_ino, at_encode[name].st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name
    result = out / 'clip.mp4'
    assert not work.exists()
    assert imageio_ffmpeg.count_frames_and_secs(str(result))[0] == FPS * SECONDS
    assert video.probe(str(result))['fps'] == Fraction(FPS)
    assert abs(audio_seconds(result) - SECONDS) <= 0.05
