"""Face super-resolution of videos: every frame restored, faces tracked, the result muxed with the source's audio.

``facesr-kd-infer -i clip.mp4 -o OUT --model CKPT`` (or any input with a video extension, :data:`VIDEO_EXTS`,
or ``--video``) writes ``OUT/<name>.mp4``: the same frame count and exact (rational) frame rate as the source,
its audio (copied when it is AAC, else re-encoded to AAC), H.264 in yuv420p. ffmpeg is the one shipped by the
``imageio-ffmpeg`` wheel (``pip install "facesr_kd[video]"``).

Pipeline (:func:`restore_video`):

1. :func:`probe` reads the container with ``ffmpeg -i`` (frame rate as a :class:`fractions.Fraction`, size after
   the display rotation, audio streams) and counts the video packets with a stream copy (nothing decoded).
2. Frames are decoded one at a time through an ffmpeg ``rawvideo`` / ``bgr24`` pipe (:func:`read_frames`): only
   the current frame is in memory, whatever the length of the video.
3. Each frame's faces are detected with the restorer's detector, linked to the faces of the previous frames and
   their landmarks smoothed (:class:`facesr_kd.face.tracking.FaceTracker`), so the aligned crops do not jitter;
   the frame is restored from those landmarks (:meth:`facesr_kd.inference.FaceSRRestorer.enhance` with
   ``faces=``).
4. Each restored frame is written atomically to the work folder ``OUT/.<name>.frames/%06d.png``, after a JSON
   journal (``journal.json``) holding the tracker state after that frame. A run that is killed resumes at the
   first missing frame ("resuming at frame k of n"), with the tracker as it was, and never rewrites the frames
   already there. The journal also holds the source's identity and the settings (network weights, upscale,
   detector...): a work folder made with other settings is started again, and the run says so.
5. When every frame is there, ffmpeg encodes the image sequence once at the source's frame rate and muxes the
   source's audio (``-map 0:v -map 1:a?``) into a temporary file, which is renamed to ``OUT/<name>.mp4``; the
   work folder is then removed. An output that already exists is not redone (the run says so: delete it to
   restore the video again).

Limits: the output is constant frame rate (a variable-frame-rate source keeps its frames, evenly timed at its
average rate); subtitles, data streams and a second video stream are not carried over; an odd output width
or height is cropped by one pixel (yuv420p needs even sides). A file that ends before the data its header
announces (a truncated download) is restored as far as it goes, and the run says so: the frames read and those
the header's duration gives.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from fractions import Fraction

from facesr_kd.face.image_io import write_image
from facesr_kd.face.tracking import FaceTracker
from facesr_kd.utils.files import check_writable, write_json

import numpy as np
from tqdm import tqdm

VIDEO_EXTS = ('mp4', 'mov', 'mkv', 'avi', 'webm')
INSTALL_HINT = 'pip install "facesr_kd[video]"'
JOURNAL_VERSION = 1
FRAME_PATTERN = '%06d.png'
# Tracker settings used by default (see facesr_kd.face.tracking.FaceTracker).
DEFAULT_TRACKER = {'min_iou': 0.3, 'max_centre_shift': 0.5, 'max_missed': 5, 'min_cutoff': 1.0, 'beta': 2.0}


class FFmpegNotFoundError(ImportError):
    """No ffmpeg binary: the ``imageio-ffmpeg`` package is not installed (or its binary is missing)."""


class VideoReadError(ValueError):
    """A file cannot be read as a video (not a video, truncated, no video stream)."""


class VideoWriteError(OSError):
    """ffmpeg failed to encode the restored frames."""


def is_video(path):
    """Whether ``path`` has a video extension (:data:`VIDEO_EXTS`, any case)."""
    return os.path.splitext(str(path))[1].lstrip('.').lower() in VIDEO_EXTS


def split_inputs(paths, force_video=False):
    """Split inputs into images and videos (by extension, or all videos with ``force_video``).

    Returns:
        tuple[list[str], list[str]]: ``(images, videos)``, each in the order given.
    """
    videos = [p for p in paths if force_video or is_video(p)]
    chosen = set(videos)
    return [p for p in paths if p not in chosen], videos


def ffmpeg_exe():
    """Path of the ffmpeg binary shipped by ``imageio-ffmpeg`` (or named by ``IMAGEIO_FFMPEG_EXE``).

    Raises:
        FFmpegNotFoundError: ``imageio-ffmpeg`` is not installed or has no binary; the message says what to install.
    """
    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise FFmpegNotFoundError(
            f'video input needs ffmpeg, from the imageio-ffmpeg package, which is not installed: {INSTALL_HINT} '
            '(or pip install imageio-ffmpeg)'
        ) from err
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise FFmpegNotFoundError(f'imageio-ffmpeg has no ffmpeg binary ({err}); reinstall it: {INSTALL_HINT}') from err


def ffmpeg_available():
    """None when ffmpeg can be run, else the reason (the :class:`FFmpegNotFoundError` message)."""
    try:
        ffmpeg_exe()
    except FFmpegNotFoundError as err:
        return str(err)
    return None


def parse_rate(text):
    """An exact frame rate from ffmpeg's printed one (``'25'``, ``'29.97'``, ``'23.98'``, ``'1k'``).

    ffmpeg prints rates with two decimals at most; the NTSC rates (``N * 1000 / 1001``) are recognised and
    returned exactly (``'29.97'`` is ``30000/1001``), others as the printed decimal (``'12.50'`` is ``25/2``).

    Returns:
        Fraction: Frames per second.

    Raises:
        ValueError: Not a positive number.
    """
    text = text.strip()
    value = float(text[:-1]) * 1000 if text.endswith('k') else float(text)
    if not value > 0:
        raise ValueError(f'not a frame rate: {text!r}')
    if value == int(value):
        return Fraction(int(value))
    ntsc = Fraction(round(value * 1.001) * 1000, 1001)
    if round(value * 1.001) and abs(float(ntsc) - value) < 0.006:
        return ntsc
    return Fraction(value).limit_denominator(100)


_STREAM = re.compile(r'^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$')
_SIZE = re.compile(r', (\d+)x(\d+)[ ,]')
_FPS = re.compile(r', ([\d.]+k?) fps')
_TBR = re.compile(r', ([\d.]+k?) tbr')
_ROTATION = re.compile(r'rotation of (-?[\d.]+) degrees')
_DURATION = re.compile(r'Duration: (\d+):(\d+):(\d+(?:\.\d+)?)')
# What ffmpeg's demuxers say when a file stops before the data its header announces (mov/mp4, matroska).
_ENDED_EARLY = re.compile(r'partial file|File ended prematurely')


def _run(args, timeout=None):
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def _error_tail(stderr, lines=3):
    """The last lines of ffmpeg's stderr, joined, for a message."""
    kept = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return '; '.join(kept[-lines:]) or 'no message'


def parse_ffmpeg_info(stderr):
    """The streams of ``ffmpeg -i``'s stderr (the ``Input #0`` part).

    Returns:
        dict: ``video`` (the first video stream that is not an attached picture: ``index``, ``codec``,
        ``width``, ``height`` as decoded, i.e. after the display rotation, ``rotation``, ``fps`` Fraction or
        None), ``audio`` (list of ``{'index', 'codec'}``), ``duration`` (seconds or None).
    """
    text = stderr.split('Stream mapping:')[0].split('Output #0')[0]
    lines = text.splitlines()
    video, audio = None, []
    for i, line in enumerate(lines):
        match = _STREAM.match(line)
        if not match:
            continue
        index, kind, rest = int(match.group(1)), match.group(2), match.group(3)
        if kind == 'Audio':
            audio.append({'index': index, 'codec': rest.split(',')[0].split()[0]})
        elif kind == 'Video' and video is None and '(attached pic)' not in rest:
            size = _SIZE.search(rest + ' ')
            rate = _FPS.search(rest) or _TBR.search(rest)
            rotation = 0.0
            for follow in lines[i + 1 :]:
                if _STREAM.match(follow):
                    break
                rot = _ROTATION.search(follow)
                if rot:
                    rotation = float(rot.group(1))
            width, height = (int(size.group(1)), int(size.group(2))) if size else (None, None)
            if size and round(rotation) % 180 == 90:
                width, height = height, width
            video = {
                'index': index,
                'codec': rest.split(',')[0].split()[0],
                'width': width,
                'height': height,
                'rotation': rotation,
                'fps': parse_rate(rate.group(1)) if rate else None,
            }
    match = _DURATION.search(text)
    duration = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3)) if match else None
    return {'video': video, 'audio': audio, 'duration': duration}


def probe(path):
    """What :func:`restore_video` needs to know of a video, without decoding it.

    Args:
        path (str): The video file.

    Returns:
        dict: ``fps`` (Fraction), ``frames`` (video packets, counted by a stream copy: the frame count of
        every ordinary video), ``width``, ``height`` (of the decoded frames), ``rotation``, ``video_index``,
        ``codec``, ``has_audio``, ``audio_codecs``, ``duration`` (seconds or None), ``expected_frames`` (the
        header's duration times the frame rate, or None) and ``ended_early`` (what ffmpeg said when the file
        stops before the data its header announces, e.g. a truncated download; else None).

    Raises:
        FFmpegNotFoundError: No ffmpeg.
        VideoReadError: ffmpeg cannot read the file, or it has no video stream, size or frame rate.
    """
    exe = ffmpeg_exe()
    if not os.path.isfile(path):
        raise VideoReadError(f'{path}: not a file')
    proc = _run([exe, '-hide_banner', '-nostdin', '-i', path])  # always "fails": no output given
    info = parse_ffmpeg_info(proc.stderr)
    video = info['video']
    if video is None:
        if 'Input #0' not in proc.stderr:
            raise VideoReadError(f'{path}: not a readable video ({_error_tail(proc.stderr, 1)})')
        raise VideoReadError(f'{path}: no video stream')
    if not video['width'] or not video['height']:
        raise VideoReadError(f'{path}: the video stream has no frame size ({video["codec"]})')
    if video['fps'] is None:
        raise VideoReadError(f'{path}: the video stream has no frame rate')
    args = [exe, '-hide_banner', '-nostdin', '-nostats', '-i', path, '-map', f'0:{video["index"]}', '-c', 'copy']
    count = _run([*args, '-f', 'null', '-progress', 'pipe:1', '-'])
    frames = [int(m) for m in re.findall(r'^frame=(\d+)', count.stdout, re.M)]
    if count.returncode != 0 or not frames or frames[-1] == 0:
        raise VideoReadError(f'{path}: no video frames could be read ({_error_tail(count.stderr, 1)})')
    early = [line.strip() for line in count.stderr.splitlines() if _ENDED_EARLY.search(line)]
    duration = info['duration']
    return {
        'fps': video['fps'],
        'frames': frames[-1],
        'width': video['width'],
        'height': video['height'],
        'rotation': video['rotation'],
        'video_index': video['index'],
        'codec': video['codec'],
        'has_audio': bool(info['audio']),
        'audio_codecs': [a['codec'] for a in info['audio']],
        'duration': duration,
        'expected_frames': round(duration * video['fps']) if duration else None,
        'ended_early': early[0] if early else None,
    }


def read_frames(path, info):
    """Decode a video's frames one at a time through an ffmpeg ``rawvideo`` / ``bgr24`` pipe.

    Frames come out as decoded (``-fps_mode passthrough``: none duplicated or dropped), rotated for display.

    Args:
        path (str): The video.
        info (dict): Its :func:`probe` result (``width``, ``height``, ``video_index``).

    Yields:
        ndarray: (H, W, 3) uint8 BGR frames, in order.

    Raises:
        VideoReadError: ffmpeg fails, or the last frame is cut short.
    """
    w, h = info['width'], info['height']
    size = w * h * 3
    args = [ffmpeg_exe(), '-v', 'error', '-nostdin', '-i', path, '-map', f'0:{info["video_index"]}']
    args += ['-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'bgr24', 'pipe:1']
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        try:
            while True:
                data = proc.stdout.read(size)
                if not data:
                    break
                if len(data) < size:
                    raise VideoReadError(f'{path}: the last frame is cut short ({len(data)} of {size} bytes)')
                yield np.frombuffer(data, np.uint8).reshape(h, w, 3).copy()
            proc.stdout.close()
            if proc.wait() != 0:
                err.seek(0)
                message = _error_tail(err.read().decode('utf-8', 'replace'))
                raise VideoReadError(f'{path}: ffmpeg could not decode the video ({message})')
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


def encode_frames(frames_dir, fps, output, audio_source=None, audio_copy=False, crf=18):
    """Encode ``frames_dir/%06d.png`` (from 0) into an H.264 / yuv420p MP4 at ``fps``, with a source's audio.

    The file is written under a temporary name beside ``output`` and renamed to it once ffmpeg has succeeded.

    Args:
        frames_dir (str): Folder of ``000000.png``, ``000001.png``...
        fps (Fraction): Frame rate (exact: ``-framerate num/den``).
        output (str): The MP4 to write.
        audio_source (str | None): A file whose audio streams are muxed in (``-map 1:a?``); None: no audio.
        audio_copy (bool): Copy the audio as it is (AAC); otherwise re-encode it to AAC.
        crf (int): x264 quality (lower is better; 18 is visually lossless).

    Raises:
        VideoWriteError: ffmpeg fails (the message has its last lines).
    """
    fps = Fraction(fps)
    tmp = f'{output}.tmp{os.getpid()}'
    args = [ffmpeg_exe(), '-v', 'error', '-nostdin', '-y', '-framerate', f'{fps.numerator}/{fps.denominator}']
    args += ['-start_number', '0', '-i', os.path.join(frames_dir, FRAME_PATTERN)]
    if audio_source is not None:
        args += ['-i', audio_source, '-map', '0:v', '-map', '1:a?', '-map_metadata', '1']
        args += ['-c:a', 'copy'] if audio_copy else ['-c:a', 'aac', '-b:a', '192k']
    args += ['-vf', 'crop=trunc(iw/2)*2:trunc(ih/2)*2', '-c:v', 'libx264', '-crf', str(int(crf))]
    args += ['-preset', 'medium', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', '-f', 'mp4', tmp]
    try:
        proc = _run(args)
        if proc.returncode != 0:
            raise VideoWriteError(f'ffmpeg could not encode {output}: {_error_tail(proc.stderr)}')
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def network_fingerprint(net):
    """A short hash of a network's parameters and buffers (a resumed run must use the same weights)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def video_settings(restorer, only_center_face=False, tracker=None):
    """What makes a video's restored frames what they are; a work folder made with others is started again."""
    bg = restorer.bg_upsampler if isinstance(restorer.bg_upsampler, str) else type(restorer.bg_upsampler).__name__
    return json.loads(
        json.dumps(
            {
                'info': restorer.info,
                'weights': network_fingerprint(restorer.net),
                'upscale': restorer.upscale,
                'bg_upsampler': bg,
                'color_fix': restorer.color_fix,
                'det_model': restorer.det_model,
                'det_resize': restorer.det_resize,
                'conf_threshold': restorer.conf_threshold,
                'eye_dist_threshold': restorer.eye_dist_threshold,
                'box_source': restorer.box_source,
                'half': restorer.half,
                'only_center_face': bool(only_center_face),
                'tracker': {**DEFAULT_TRACKER, **(tracker or {})},
            },
            sort_keys=True,
            default=str,
        )
    )


def _source_id(path, info):
    st = os.stat(path)
    return {
        'path': os.path.realpath(path),
        'size': st.st_size,
        'mtime_ns': st.st_mtime_ns,
        'fps': str(info['fps']),
        'frames': info['frames'],
    }


def _frame_path(work, index):
    return os.path.join(work, FRAME_PATTERN % index)


def _done_frames(work):
    """How many frames ``work`` holds from 0 on without a gap (leftover temporary files are removed)."""
    names = set()
    for entry in os.listdir(work):
        if '.tmp' in entry:
            os.remove(os.path.join(work, entry))
        elif entry.endswith('.png'):
            names.add(entry)
    count = 0
    while FRAME_PATTERN % count in names:
        count += 1
    return count


def _resume(work, source, settings):
    """The frames already done in ``work`` and the journal to continue (``(0, None)``: start afresh).

    Returns:
        tuple[int, dict | None, str | None]: Frames done, the journal, and why an existing work folder is
        started again (None when it is not).
    """
    journal_path = os.path.join(work, 'journal.json')
    if not os.path.isdir(work):
        return 0, None, None
    reason = None
    try:
        with open(journal_path, encoding='utf-8') as f:
            journal = json.load(f)
    except (OSError, ValueError):
        journal, reason = None, 'it has no readable journal'
    if journal is not None:
        if journal.get('version') != JOURNAL_VERSION:
            reason = f'its journal is of version {journal.get("version")}'
        elif journal.get('source') != source:
            reason = 'the source video has changed'
        elif journal.get('settings') != settings:
            changed = sorted(k for k in settings if journal['settings'].get(k) != settings[k])
            reason = f'it was made with other settings ({", ".join(changed) or "options"})'
    if reason is None:
        done = _done_frames(work)
        states = journal.get('states', {})
        if done == 0 or str(done - 1) in states:
            return done, journal, None
        reason = f'its journal has no tracker state for frame {done - 1}'
    shutil.rmtree(work)
    return 0, None, reason


def check_video_output(output):
    """Check that ``output`` is (or can be made) a writable folder; create it.

    Raises:
        NotADirectoryError: ``output`` is a file.
        PermissionError: It cannot be written.
    """
    if os.path.exists(output) and not os.path.isdir(output):
        raise NotADirectoryError(f'output {output} is a file, not a folder: pass another -o')
    check_writable(os.path.join(output, 'x.mp4'), f'output {output}')
    os.makedirs(output, exist_ok=True)


def restore_video(
    path,
    output,
    restorer,
    name=None,
    only_center_face=False,
    suffix=None,
    progress=True,
    tracker=None,
    crf=18,
    settings=None,
):
    """Restore the faces of every frame of a video; write ``output/<name>.mp4`` with the source's audio.

    See the module's description for the pipeline, the work folder and resuming. The upscaled frame size is
    checked against the restorer's pixel limit before any frame is restored.

    Args:
        path (str): The video.
        output (str): Output folder (created).
        restorer (FaceSRRestorer): The restorer (its ``upscale``, detector and colour fix are used).
        name (str | None): Output stem (default: the file name without its extension).
        only_center_face (bool): Restore only the face nearest the centre of each frame.
        suffix (str | None): Added to the stem as ``_<suffix>``.
        progress (bool): Show a tqdm bar over the frames.
        tracker (dict | None): :class:`~facesr_kd.face.tracking.FaceTracker` settings over
            :data:`DEFAULT_TRACKER`.
        crf (int): x264 quality of the result.
        settings (dict | None): :func:`video_settings` already computed for this restorer (saves hashing the
            weights again in a batch).

    Returns:
        dict: ``status`` (``'done'``, or ``'exists'`` when the output was already there and nothing was done),
        ``output``, ``frames`` (restored frames in all), ``resumed_at`` (frames found done in the work folder),
        ``computed`` (frames restored by this call), ``faces`` (faces restored by this call), ``tracks`` (face
        tracks started by this call), ``fps`` (str), ``has_audio``, ``size`` (width, height of the result),
        ``restarted`` (why an existing work folder was started again, or None), ``ended_early`` (the file stops
        before the data its header announces: the frames there were restored, and the run said how many of the
        ``expected_frames``) and ``seconds``.

    Raises:
        FFmpegNotFoundError: No ffmpeg (``pip install "facesr_kd[video]"``).
        VideoReadError: The file cannot be read as a video.
        VideoWriteError: ffmpeg cannot encode the result.
        ImageTooLargeError: The upscaled frames would be over the restorer's pixel limit.
    """
    start_time = time.perf_counter()
    stem = name or os.path.splitext(os.path.basename(path))[0]
    stem += f'_{suffix}' if suffix else ''
    out_file = os.path.join(output, f'{stem}.mp4')
    summary = {'output': out_file, 'frames': 0, 'resumed_at': 0, 'computed': 0, 'faces': 0, 'tracks': 0}
    summary.update(restarted=None, fps=None, has_audio=None, status='done')
    if os.path.exists(out_file):
        tqdm.write(f'{path}: {out_file} exists, not redone (delete it to restore the video again)')
        summary['status'] = 'exists'
        summary['seconds'] = time.perf_counter() - start_time
        return summary
    info = probe(path)
    restorer.check_size(info['height'], info['width'])
    fps, total = info['fps'], info['frames']
    summary.update(fps=str(fps), has_audio=info['has_audio'])
    os.makedirs(output, exist_ok=True)
    work = os.path.join(output, f'.{stem}.frames')
    source = _source_id(path, info)
    settings = settings or video_settings(restorer, only_center_face, tracker)
    done, journal, restarted = _resume(work, source, settings)
    summary.update(resumed_at=done, restarted=restarted)
    if restarted:
        tqdm.write(f'{path}: the work folder {work} is started again: {restarted}')
    tracker_args = settings['tracker']
    if journal is not None and done:
        track = FaceTracker.from_state_dict(journal['states'][str(done - 1)])
    else:
        track = FaceTracker(fps=float(fps), **tracker_args)
    if done:
        tqdm.write(f'{path}: resuming at frame {done} of {total}')
    journal = {
        'version': JOURNAL_VERSION,
        'source': source,
        'settings': settings,
        'states': (journal or {}).get('states', {}),
        'complete': bool((journal or {}).get('complete')),
        'frames': (journal or {}).get('frames'),
    }
    os.makedirs(work, exist_ok=True)
    journal_path = os.path.join(work, 'journal.json')
    first_track = track.next_id
    if not (journal['complete'] and journal['frames'] == done):
        bar = tqdm(total=total, initial=done, desc=os.path.basename(path), unit='frame', disable=not progress)
        index = -1
        try:
            for index, frame in enumerate(read_frames(path, info)):
                if index < done:
                    continue
                faces = restorer.detect(frame, only_center_face)
                tracked = track.update(faces, frame=index)
                _, restored, out = restorer.enhance(frame, paste_back=True, faces=tracked)
                # The journal first: a run killed between the two writes finds the state of the frame it redoes.
                states = {k: v for k, v in journal['states'].items() if int(k) == index - 1}
                journal['states'] = {**states, str(index): track.state_dict()}
                write_json(journal_path, journal)
                write_image(_frame_path(work, index), out)
                summary['computed'] += 1
                summary['faces'] += len(restored)
                if progress and index >= bar.total:
                    bar.total = index + 1
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            kept = done + summary['computed']
            tqdm.write(f'{path}: interrupted with {kept} of {total} frames in {work}: run again to resume there')
            raise
        finally:
            bar.close()
        frames = index + 1
        if frames == 0:
            raise VideoReadError(f'{path}: no frame could be decoded')
        if frames < done:  # the work folder holds more frames than the video now decodes to
            for extra in range(frames, done):
                os.remove(_frame_path(work, extra))
        journal.update(complete=True, frames=frames)
        write_json(journal_path, journal)
    frames = journal['frames']
    summary['frames'] = frames
    summary['ended_early'] = bool(info.get('ended_early'))
    summary['expected_frames'] = info.get('expected_frames')
    if summary['ended_early']:
        expected = info.get('expected_frames')
        of = f' of the {expected} its header announces ({info["duration"]:.2f} s at {fps} fps)' if expected else ''
        tqdm.write(
            f'{path}: the file ended early (truncated?): {frames} frames read{of}; the result has those '
            f'{frames} frames (ffmpeg: {info["ended_early"]})'
        )
    summary['tracks'] = track.next_id - first_track
    oh, ow = int(round(info['height'] * restorer.upscale)), int(round(info['width'] * restorer.upscale))
    summary['size'] = (ow - ow % 2, oh - oh % 2)
    if ow % 2 or oh % 2:
        tqdm.write(f'{path}: {ow}x{oh} frames cropped to {ow - ow % 2}x{oh - oh % 2}: yuv420p needs even sides')
    audio_copy = bool(info['audio_codecs']) and all(c == 'aac' for c in info['audio_codecs'])
    encode_frames(work, fps, out_file, path if info['has_audio'] else None, audio_copy=audio_copy, crf=crf)
    shutil.rmtree(work, ignore_errors=True)
    summary['seconds'] = time.perf_counter() - start_time
    audio = ('audio copied' if audio_copy else 'audio re-encoded to AAC') if info['has_audio'] else 'no audio'
    tqdm.write(
        f'{path}: {frames} frames at {fps} fps ({summary["computed"]} restored now, {summary["faces"]} faces), '
        f'{audio} -> {out_file}'
    )
    return summary


def restore_videos(restorer, paths, output, only_center_face=False, suffix=None, progress=True, names=None):
    """Restore every video of ``paths`` (:func:`restore_video`); one that fails is reported and the batch goes on.

    Args:
        restorer (FaceSRRestorer): The restorer.
        paths (list[str]): Videos.
        output (str): Output folder.
        only_center_face (bool): Restore only the face nearest each frame's centre.
        suffix (str | None): Suffix of the output names.
        progress (bool): Show progress bars.
        names (dict[str, str] | None): Input -> output stem (e.g. :func:`facesr_kd.inference.output_names`).

    Returns:
        dict: ``videos`` (input -> :func:`restore_video` summary, for those done or already there) and
        ``skipped`` (input -> reason).
    """
    summary = {'videos': {}, 'skipped': {}}
    if not paths:
        return summary
    missing = ffmpeg_available()
    if missing:
        for path in paths:
            tqdm.write(f'skip {path}: {missing}')
            summary['skipped'][path] = missing
        return summary
    check_video_output(output)
    settings = video_settings(restorer, only_center_face)
    for path in paths:
        try:
            summary['videos'][path] = restore_video(
                path,
                output,
                restorer,
                name=(names or {}).get(path),
                only_center_face=only_center_face,
                suffix=suffix,
                progress=progress,
                settings=settings,
            )
        except VideoReadError as err:
            reason = str(err).removeprefix(f'{path}: ')
            tqdm.write(f'skip {path}: {reason}')
            summary['skipped'][path] = reason
        except Exception as err:  # noqa: BLE001  (a bad video is reported and skipped, never fatal to a batch)
            tqdm.write(f'skip {path}: {type(err).__name__}: {err}')
            summary['skipped'][path] = f'{type(err).__name__}: {err}'
    return summary
