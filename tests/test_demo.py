"""The web demo's server (facesr_kd.demo, facesr-kd-demo) without a browser: real HTTP on an ephemeral port.

Whole photos are read in place from ``../shared/data/faces`` and detected with the staged facexlib RetinaFace
mobilenet0.25 weights, offline; those tests skip (naming the folder) without them. The network is the tiny
random-weight student of ``conftest.student_ckpt`` (plus a tiny lite student and teacher): the faces it returns are
meaningless, the tests check the demo (parsing, results per file, messages, limits, isolation of requests).
"""

import base64
import http.client
import json
import socket
import threading
import uuid
from pathlib import Path

from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher
from facesr_kd.archs.lite_student_arch import LiteFaceStudent
from facesr_kd.cli import demo as cli
from facesr_kd.demo import DemoApp, UploadError, make_server, parse_multipart, parse_options
from facesr_kd.demo.server import INTERNAL_ERROR, STATIC_DIR
from facesr_kd.inference import FaceSRRestorer

import cv2
import numpy as np
import pytest
import torch

from .conftest import FACEXLIB_WEIGHTS, README_COUNTS, SHARED_DATA

FACES = SHARED_DATA / 'faces'
DET = {'det_model': 'retinaface_mobile0.25', 'model_root': str(FACEXLIB_WEIGHTS), 'offline': True, 'device': 'cpu'}
DET_ARGS = ['--det-model', 'retinaface_mobile0.25', '--model-root', str(FACEXLIB_WEIGHTS), '--offline']


# ---------------------------------------------------------------------------------------------------- helpers
def encode_multipart(fields=None, files=()):
    """A ``multipart/form-data`` body as a browser sends it: ``(body, content_type)``.

    Args:
        fields (dict[str, str] | None): Plain fields.
        files (list[tuple[str, bytes]]): ``(file name, content)`` of the ``files`` field.
    """
    boundary = f'----facesrkd{uuid.uuid4().hex}'
    chunks = []
    for name, value in (fields or {}).items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
            'Content-Type: application/octet-stream\r\n\r\n'
        )
        chunks.append(head.encode('utf-8') + data + b'\r\n')
    chunks.append(f'--{boundary}--\r\n'.encode())
    return b''.join(chunks), f'multipart/form-data; boundary={boundary}'


def request(server, method, path, body=None, headers=None):
    """One HTTP request to ``server``; returns ``(status, headers, text)``."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=120)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode('utf-8')
    finally:
        conn.close()


def post_files(server, files, **fields):
    """POST ``files`` (``(name, bytes)``) to ``/api/restore``; returns ``(status, JSON, raw text)``."""
    body, ctype = encode_multipart({k: str(v) for k, v in fields.items()}, files)
    status, _, text = request(server, 'POST', '/api/restore', body, {'Content-Type': ctype})
    return status, json.loads(text), text


def decode_data_url(url, flags=cv2.IMREAD_UNCHANGED):
    """The image of a ``data:image/png;base64,...`` URL."""
    assert url.startswith('data:image/png;base64,')
    return cv2.imdecode(np.frombuffer(base64.b64decode(url.split(',', 1)[1]), np.uint8), flags)


def start_server(app):
    """Serve ``app`` on 127.0.0.1, an ephemeral port, in a background thread; returns the server."""
    server = make_server(app, '127.0.0.1', 0)
    threading.Thread(target=server.serve_forever, name='demo-server', daemon=True).start()
    return server


def stop_server(server):
    server.shutdown()
    server.server_close()


def png_bytes(img):
    return cv2.imencode('.png', img)[1].tobytes()


def random_face(side, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------ no staged data needed
def test_parse_multipart_keeps_fields_files_and_bytes():
    binary = b'\r\n--not-the-boundary\r\n\x00\xff' * 50
    body, ctype = encode_multipart({'upscale': '4', 'aligned': '1'}, [('ph\u00f6to \u7167.png', binary), ('', b'')])
    parts = parse_multipart(body, ctype)
    assert [(p.name, p.filename) for p in parts] == [
        ('upscale', None),
        ('aligned', None),
        ('files', 'ph\u00f6to \u7167.png'),
        ('files', ''),
    ]
    assert parts[0].data == b'4' and parts[2].data == binary and parts[3].data == b''
    assert parts[2].content_type == 'application/octet-stream'


@pytest.mark.parametrize(
    'body, ctype, status, match',
    [
        (b'a=1', 'application/x-www-form-urlencoded', 415, 'expected multipart/form-data'),
        (b'--x\r\n', 'multipart/form-data', 400, 'boundary'),
        (b'garbage', 'multipart/form-data; boundary=x', 400, 'does not occur'),
        (b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1', 'multipart/form-data; boundary=x', 400,
         'truncated'),
        (b'--x\r\nContent-Disposition: form-data; name="a"\r\n1\r\n--x--', 'multipart/form-data; boundary=x', 400,
         'blank line'),
    ],
)  # fmt: skip
def test_parse_multipart_refuses_malformed_bodies(body, ctype, status, match):
    with pytest.raises(UploadError, match=match) as err:
        parse_multipart(body, ctype)
    assert err.value.status == status


def test_parse_options():
    assert parse_options({}) == {'upscale': 2, 'color_fix': 'wavelet', 'only_center_face': False, 'aligned': False}
    opts = parse_options({'upscale': '4', 'color_fix': 'none', 'only_center_face': 'on', 'aligned': '1'})
    assert opts == {'upscale': 4, 'color_fix': 'none', 'only_center_face': True, 'aligned': True}
    for bad in ('3', 'nan', 'inf', 'x', '-2'):
        with pytest.raises(UploadError, match='upscale must be one of 1, 2, 4'):
            parse_options({'upscale': bad})
    with pytest.raises(UploadError, match='colour fix must be one of'):
        parse_options({'color_fix': 'sepia'})


@pytest.fixture(scope='module')
def aligned_server(tmp_path_factory, student_ckpt):
    """A demo server whose restorer has no detector weights (an empty --model-root): only aligned crops work,
    and bad uploads are refused before any detection. Output limit 1 MP, upload limit 200 kB."""
    empty = tmp_path_factory.mktemp('no_weights')
    restorer = FaceSRRestorer(
        model_path=student_ckpt, det_model='retinaface_mobile0.25', model_root=str(empty), offline=True,
        device='cpu', max_pixels=1_000_000,
    )  # fmt: skip
    server = start_server(DemoApp(restorer, max_body_bytes=200_000))
    yield server
    stop_server(server)


def test_page_and_info(aligned_server):
    status, headers, html = request(aligned_server, 'GET', '/')
    assert status == 200 and headers['Content-Type'].startswith('text/html')
    assert 'id="files"' in html and 'multiple' in html and 'app.js' in html and 'style.css' in html
    assert "default-src 'none'" in headers['Content-Security-Policy']
    for path, kind in (('/app.js', 'text/javascript'), ('/style.css', 'text/css')):
        status, headers, _ = request(aligned_server, 'GET', path)
        assert status == 200 and headers['Content-Type'].startswith(kind)
    status, _, text = request(aligned_server, 'GET', '/api/info')
    info = json.loads(text)
    assert status == 200 and info['upscales'] == [1, 2, 4] and info['default_upscale'] == 2
    assert info['model']['type'] == 'DFDNetStudent' and info['model']['lq_size'] == 32
    assert info['color_fixes'] == ['none', 'meanstd', 'wavelet'] and info['max_body_bytes'] == 200_000
    for path in ('/../server.py', '/static/app.js', '/server.py', '/%2e%2e/server.py'):
        status, _, text = request(aligned_server, 'GET', path)
        assert status == 404 and 'error' in json.loads(text)
    # Offline and self-contained: no font, script or style from elsewhere.
    for name in ('index.html', 'app.js', 'style.css'):
        text = (Path(STATIC_DIR) / name).read_text(encoding='utf-8')
        assert 'http://' not in text and 'https://' not in text and '@import' not in text, name


def test_garbage_and_bad_requests_get_json_messages(aligned_server):
    status, payload, text = post_files(
        aligned_server, [('notes.txt', b'not an image at all'), ('empty.png', b'')], aligned=1
    )
    assert status == 200 and 'Traceback' not in text
    (garbage, empty) = payload['results']
    assert garbage == {'name': 'notes.txt', 'ok': False, 'error': garbage['error']}
    assert garbage['error'].startswith('not an image:') and 'facesr_kd_demo_' not in garbage['error']
    assert empty['ok'] is False and 'empty file' in empty['error']
    cases = [
        ({'Content-Type': 'text/plain'}, b'hello', 415, 'multipart/form-data'),
        (None, None, 400, 'upscale must be one of'),  # filled in below
        (None, None, 400, 'no photo in the upload'),
    ]
    body, ctype = encode_multipart({'upscale': '3'}, [('a.png', png_bytes(random_face(64)))])
    cases[1] = ({'Content-Type': ctype}, body, 400, 'upscale must be one of')
    body, ctype = encode_multipart({'upscale': '2'}, [('', b'')])  # a file input with nothing chosen
    cases[2] = ({'Content-Type': ctype}, body, 400, 'no photo in the upload')
    for headers, body, want_status, match in cases:
        status, resp_headers, text = request(aligned_server, 'POST', '/api/restore', body, headers)
        assert status == want_status and resp_headers['Content-Type'].startswith('application/json')
        assert match in json.loads(text)['error'] and 'Traceback' not in text
    status, _, text = request(aligned_server, 'POST', '/api/other', b'x', {'Content-Type': 'text/plain'})
    assert status == 404 and 'error' in json.loads(text)


def test_upload_over_the_limit_is_413_json(aligned_server):
    big = np.random.default_rng(1).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    body, ctype = encode_multipart({'aligned': '1'}, [('big.png', big)])
    status, headers, text = request(aligned_server, 'POST', '/api/restore', body, {'Content-Type': ctype})
    assert status == 413 and headers['Content-Type'].startswith('application/json')
    assert json.loads(text)['error'].startswith('the upload is 0.3 MB, over the limit of 0.2 MB')
    # No Content-Length at all (chunked): 411, with JSON.
    with socket.create_connection(aligned_server.server_address[:2], timeout=30) as sock:
        sock.sendall(b'POST /api/restore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
        answer = sock.makefile('rb').read().decode()
    assert answer.startswith('HTTP/1.0 411') and 'Content-Length' in answer.split('\r\n\r\n', 1)[1]


def test_too_large_not_square_and_internal_errors(aligned_server, caplog, monkeypatch):
    huge = png_bytes(np.zeros((1100, 1000, 3), np.uint8))  # 1.1 MP, over the 1 MP output limit even at x1
    wide = png_bytes(random_face(64)[:40])
    _, payload, text = post_files(aligned_server, [('huge.png', huge), ('wide.png', wide)], upscale=1, aligned=1)
    huge_r, wide_r = payload['results']
    assert huge_r['error'].startswith('too large: 1000x1100 is 1.1 MP, over the limit of 1 MP')
    assert wide_r['error'].startswith('64x40 is not square') and 'untick it' in wide_r['error']
    _, payload, _ = post_files(aligned_server, [('huge.png', huge)], upscale=2)
    assert 'at upscale x2 at most 0.25 MP can be restored' in payload['results'][0]['error']
    # An unexpected failure: logged with its traceback, the page gets a short reason.
    restorer = aligned_server.app.restorer

    def broken(*args, **kwargs):
        raise RuntimeError('secret internals')

    monkeypatch.setattr(restorer, 'enhance', broken)
    with caplog.at_level('INFO', logger='facesr_kd.demo'):
        _, payload, text = post_files(aligned_server, [('ok.png', png_bytes(random_face(64)))], aligned=1)
    assert payload['results'][0] == {'name': 'ok.png', 'ok': False, 'error': INTERNAL_ERROR}
    assert 'secret' not in text and 'Traceback' not in text
    assert 'secret internals' in caplog.text and 'RuntimeError' in caplog.text


def _tiny_lite():
    torch.manual_seed(0)
    net = LiteFaceStudent(out_size=128, scale=8, num_feat=8, num_block=1, feat_channels=4)
    return net.eval(), {'type': 'LiteFaceStudent', 'lq_size': 16, 'out_size': 128, 'scale': 8, 'needs_boxes': False}


def _tiny_teacher():
    torch.manual_seed(0)
    teacher = DFDNetTeacher(out_size=128, num_feat=8, num_atoms=2, vgg_pretrained=False)
    for name, buf in teacher.dictionary.named_buffers():
        buf.copy_(torch.tensor(True) if name == 'loaded' else torch.rand_like(buf))
    return teacher.eval(), {'type': 'DFDNetTeacher', 'lq_size': 16, 'out_size': 128, 'scale': 8, 'needs_boxes': True}


@pytest.mark.parametrize('arch', ['DFDNetStudent', 'LiteFaceStudent', 'DFDNetTeacher'])
def test_aligned_crop_with_every_kind_of_network(arch, student_ckpt, tmp_path):
    if arch == 'DFDNetStudent':
        restorer = FaceSRRestorer(model_path=student_ckpt, device='cpu', model_root=str(tmp_path), offline=True)
    else:
        net, info = _tiny_lite() if arch == 'LiteFaceStudent' else _tiny_teacher()
        restorer = FaceSRRestorer(net=net, info=info, device='cpu', box_source='template', offline=True)
    app = DemoApp(restorer)
    body, ctype = encode_multipart({'aligned': 'on', 'upscale': '4'}, [('face.png', png_bytes(random_face(100)))])
    status, payload = app.handle_restore(body, ctype)
    (result,) = payload['results']
    assert status == 200 and result['ok'] and result['faces'] == 1 and result['aligned']
    lq, out = restorer.lq_size, restorer.out_size
    assert decode_data_url(result['output']['url']).shape == (out, out, 3) == (result['output']['height'],) * 2 + (3,)
    assert decode_data_url(result['crops'][0]['input']).shape == (lq, lq, 3)
    assert decode_data_url(result['input']['url']).shape == (100, 100, 3)
    assert result['download'] == 'face_facesr.png'


# ------------------------------------------------------------------------------------- staged photos needed
@pytest.fixture(scope='module')
def photo_server(shared_data, student_ckpt):
    """A demo server with the tiny student and the staged mobilenet0.25 detector."""
    server = start_server(DemoApp(FaceSRRestorer(model_path=student_ckpt, **DET)))
    yield server
    stop_server(server)


@pytest.fixture(scope='module')
def mixed_upload(photo_server):
    """One POST of a whole photo, garbage bytes and a truncated JPEG, at upscale 2."""
    data = (FACES / 'whole' / 'codeformer_01.jpg').read_bytes()
    files = [('codeformer_01.jpg', data), ('garbage.jpg', b'\x00\x01garbage' * 10), ('cut.jpg', data[: len(data) // 3])]
    return post_files(photo_server, files, upscale=2)


def test_whole_photo_gives_faces_and_result(mixed_upload):
    status, payload, _ = mixed_upload
    assert status == 200 and payload['options']['upscale'] == 2
    photo = payload['results'][0]
    n = README_COUNTS['codeformer_01.jpg']
    assert photo['ok'] and photo['name'] == 'codeformer_01.jpg' and photo['faces'] == n and photo['message'] is None
    h, w = cv2.imread(str(FACES / 'whole' / 'codeformer_01.jpg')).shape[:2]
    assert (photo['input']['width'], photo['input']['height']) == (w, h)
    assert decode_data_url(photo['input']['url']).shape == (h, w, 3)
    assert decode_data_url(photo['output']['url']).shape == (2 * h, 2 * w, 3)
    assert (photo['output']['width'], photo['output']['height']) == (2 * w, 2 * h)
    assert photo['download'] == 'codeformer_01_facesr_x2.png'
    assert len(photo['crops']) == n
    for crop in photo['crops']:
        assert decode_data_url(crop['input']).shape == (32, 32, 3)
        assert decode_data_url(crop['restored']).shape == (256, 256, 3)
    assert photo['seconds']['detect'] > 0 and photo['seconds']['sr'] > 0


def test_bad_files_do_not_stop_the_others(mixed_upload):
    _, payload, text = mixed_upload
    _, garbage, cut = payload['results']
    assert not garbage['ok'] and garbage['error'].startswith('not an image:')
    assert not cut['ok'] and cut['error'].startswith('damaged image: truncated JPEG file')
    assert 'Traceback' not in text and 'facesr_kd_demo_' not in text


def test_no_face_is_said_and_still_upscaled(photo_server):
    data = (FACES / 'negative' / 'skimage_coffee.png').read_bytes()
    _, payload, _ = post_files(photo_server, [('coffee.png', data)], upscale=1, color_fix='none')
    (result,) = payload['results']
    assert result['ok'] and result['faces'] == 0 and result['crops'] == []
    assert result['message'] == 'No face found: the photo is only upscaled x1.'
    assert decode_data_url(result['output']['url']).shape == (400, 600, 3)


def test_concurrent_requests_get_their_own_results(photo_server):
    """Two requests at once (a barrier starts them together), different photos and options: each answer holds
    its own photo only."""
    jobs = {
        'skimage_astronaut.png': {'upscale': 1, 'only_center_face': 0},
        'codeformer_06.png': {'upscale': 2, 'only_center_face': 1, 'color_fix': 'meanstd'},
    }
    barrier, answers = threading.Barrier(len(jobs)), {}

    def worker(name, fields):
        data = (FACES / 'whole' / name).read_bytes()
        barrier.wait()
        answers[name] = post_files(photo_server, [(name, data)], **fields)

    threads = [threading.Thread(target=worker, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(answers) == sorted(jobs)
    for name, fields in jobs.items():
        status, payload, _ = answers[name]
        (result,) = payload['results']
        assert status == 200 and result['ok'] and result['name'] == name
        assert payload['options']['upscale'] == fields['upscale']
        img = cv2.imread(str(FACES / 'whole' / name), cv2.IMREAD_UNCHANGED)
        h, w, c = img.shape
        s = fields['upscale']
        assert decode_data_url(result['output']['url']).shape == (s * h, s * w, c)  # RGBA keeps its alpha
        assert result['faces'] == 1 == len(result['crops'])  # astronaut has one face; the other: centre only
    assert README_COUNTS['codeformer_06.png'] > 1


# ----------------------------------------------------------------------------------------------------- CLI
def test_cli_help_and_bad_options(capsys):
    with pytest.raises(SystemExit) as err:
        cli.parse_args(['--help'])
    assert err.value.code == 0 and '--offline' in capsys.readouterr().out
    for argv in (['--model', 'x.pth', '--port', '70000'], ['--model', 'x.pth', '--max-upload-mb', 'nan'], []):
        with pytest.raises(SystemExit) as err:
            cli.parse_args(argv)
        assert err.value.code == 2


def test_cli_missing_checkpoint(tmp_path, capsys):
    assert cli.main(['--model', str(tmp_path / 'none.pth'), '--offline', '--port', '0']) == 1
    assert 'error: checkpoint not found' in capsys.readouterr().err


def test_cli_missing_detector_weights(tmp_path, student_ckpt, capsys):
    argv = ['--model', student_ckpt, '--det-model', 'retinaface_mobile0.25', '--model-root', str(tmp_path),
            '--offline', '--port', '0']  # fmt: skip
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert 'detection_mobilenet0.25_Final.pth not found in' in err and str(tmp_path) in err and '--model-root' in err
    assert 'https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_mobilenet0.25_Final.pth' in err


def test_cli_port_taken(shared_data, student_ckpt, capsys):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli.main(['--model', student_ckpt, *DET_ARGS, '--port', str(port), '-q']) == 1
    assert f'error: cannot listen on 127.0.0.1:{port}:' in capsys.readouterr().err


def test_serve_builds_the_restorer_and_serves(shared_data, student_ckpt):
    """serve() (what facesr-kd-demo calls) answers on the port it got, and returns once shut down."""
    from facesr_kd.demo import serve

    seen = {}

    def ready(server):
        def client():
            try:
                seen['info'] = json.loads(request(server, 'GET', '/api/info')[2])
                seen['page'] = request(server, 'GET', '/')[0]
            finally:
                server.shutdown()

        threading.Thread(target=client, daemon=True).start()

    serve(student_ckpt, host='127.0.0.1', port=0, max_body_bytes=1234, ready=ready, **DET)
    assert seen['page'] == 200 and seen['info']['max_body_bytes'] == 1234
    assert seen['info']['detector'] == 'retinaface_mobile0.25'
