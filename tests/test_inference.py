"""Inference on real photos: facesr-kd-infer and facesr_kd.inference.FaceSRRestorer.

Photos are read in place from ``../shared/data/faces`` (symlinked into temporary folders, never copied into the
project); detection uses the staged facexlib RetinaFace mobilenet0.25 weights, offline.

The networks are tiny and randomly initialised, with random VGG19 encoder weights passed explicitly
(``vgg_pretrained=False``): the restored faces are meaningless, the tests check the pipeline (detection
counts, alignment, paste-back geometry, file layout, bad input), not quality. Geometry is checked with a
"network" that is plain bicubic x8 upsampling, so that a correct paste-back reproduces the bicubic photo.
"""

import os

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher
from facesr_kd.archs.face_rcan_arch import FaceRCAN
from facesr_kd.archs.lite_student_arch import LiteFaceStudent
from facesr_kd.cli import inference as cli
from facesr_kd.inference import FaceSRRestorer, ImageTooLargeError, prepare_network, to_memory_format
from facesr_kd.utils.checkpoint import load_sr_network, save_sr_checkpoint

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from .conftest import FACEXLIB_WEIGHTS, README_COUNTS, SHARED_DATA

# Every test here reads the staged faces or detector weights in ../shared/data.
pytestmark = pytest.mark.usefixtures('shared_data')

FACES = SHARED_DATA / 'faces'
DET = {'det_model': 'retinaface_mobile0.25', 'model_root': str(FACEXLIB_WEIGHTS), 'offline': True, 'device': 'cpu'}
DET_ARGS = ['--det-model', 'retinaface_mobile0.25', '--model-root', str(FACEXLIB_WEIGHTS), '--offline']


class BicubicX8(torch.nn.Module):
    """Stand-in SR network: bicubic x8 (32 -> 256), so restored faces are the aligned input, only blurred."""

    def forward(self, lq):
        return F.interpolate(lq, scale_factor=8, mode='bicubic', align_corners=False).clamp(0, 1)


BICUBIC_INFO = {'type': 'BicubicX8', 'lq_size': 32, 'out_size': 256, 'scale': 8, 'needs_boxes': False}


@pytest.fixture(scope='module')
def bicubic_restorer(shared_data):
    return FaceSRRestorer(net=BicubicX8(), info=BICUBIC_INFO, upscale=2, **DET)


def link_inputs(folder, sources):
    folder.mkdir(parents=True, exist_ok=True)
    for src in sources:
        os.symlink(src, folder / os.path.basename(src))
    return folder


@pytest.mark.parametrize('name', sorted(README_COUNTS))
def test_whole_photo_face_counts(bicubic_restorer, name):
    """Every photo's faces, as counted in the data README (+-1). Whole-photo outputs: see the CLI tests."""
    img = cv2.imread(str(FACES / 'whole' / name), cv2.IMREAD_UNCHANGED)
    cropped, restored, out = bicubic_restorer.enhance(img, paste_back=False)
    assert abs(len(restored) - README_COUNTS[name]) <= 1, f'{name}: {len(restored)} faces'
    assert len(cropped) == len(restored) and out is None
    assert all(c.shape == (32, 32, 3) for c in cropped) and all(r.shape == (256, 256, 3) for r in restored)


def test_paste_back_geometry(bicubic_restorer):
    """Pasting bicubic-upsampled aligned inputs back must reproduce the bicubic photo: no shift, no seam."""
    img = cv2.imread(str(FACES / 'whole' / 'codeformer_00.jpg'))
    _, restored, out = bicubic_restorer.enhance(img)
    ref = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    assert len(restored) == 4
    for det in bicubic_restorer.detect(img):
        x0, y0, x1, y1 = (det['box'] * 2).astype(int)
        a = cv2.cvtColor(out[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
        b = cv2.cvtColor(ref[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
        assert np.abs(a - b).mean() < 8  # the restored face is the 32x32 input enlarged: blurrier, same place
        (dx, dy), _ = cv2.phaseCorrelate(a, cv2.GaussianBlur(b, (7, 7), 0), cv2.createHanningWindow(a.shape[::-1], 5))
        assert np.hypot(dx, dy) < 1.0, (dx, dy)


def test_only_center_face_and_size_limit(bicubic_restorer):
    img = cv2.imread(str(FACES / 'whole' / 'codeformer_01.jpg'))
    _, restored, out = bicubic_restorer.enhance(img, only_center_face=True)
    assert len(restored) == 1 and out.shape == (378, 496, 3)
    big = FaceSRRestorer(net=BicubicX8(), info=BICUBIC_INFO, upscale=4, max_pixels=500_000, **DET)
    with pytest.raises(ImageTooLargeError, match=r'248x189 upscaled x4 is 0.7 MP, over the 0.5 MP limit'):
        big.enhance(img)


@pytest.fixture(scope='module')
def whole_run(tmp_path_factory, student_ckpt):
    """One CLI run over whole photos (RGBA among them), gray and 16-bit versions, a photo with no face, a
    truncated JPEG and a text file."""
    root = tmp_path_factory.mktemp('whole_run')
    sources = [FACES / 'whole' / 'codeformer_00.jpg', FACES / 'whole' / 'codeformer_06.png']
    inputs = link_inputs(root / 'in', [*sources, FACES / 'negative' / 'skimage_coffee.png'])
    astronaut = cv2.imread(str(FACES / 'whole' / 'skimage_astronaut.png'))
    cv2.imwrite(str(inputs / 'astronaut_gray.png'), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(inputs / 'astronaut_16bit.png'), astronaut.astype(np.uint16) * 257)
    data = (FACES / 'whole' / 'codeformer_01.jpg').read_bytes()
    (inputs / 'truncated.jpg').write_bytes(data[: len(data) // 3])
    (inputs / 'notes.txt').write_text('not an image')
    out = root / 'out'
    extra = ['--upscale', '2', '--before-after', str(out / 'before_after.png'), '--before-after-width', '600']
    args = cli.parse_args(['-i', str(inputs), '-o', str(out), '--model', student_ckpt, *extra, *DET_ARGS])
    summary = cli.run(args)
    return inputs, out, summary


def test_cli_whole_photos(whole_run, capsys):
    inputs, out, summary = whole_run
    counts = {os.path.basename(k): v for k, v in summary['faces'].items()}
    assert counts == {
        'codeformer_00.jpg': 4, 'codeformer_06.png': 2, 'skimage_coffee.png': 0, 'astronaut_gray.png': 1,
        'astronaut_16bit.png': 1,
    }  # fmt: skip
    for sub, shape in (('cropped_faces', (32, 32, 3)), ('restored_faces', (256, 256, 3)), ('cmp', (256, 512, 3))):
        files = sorted(os.listdir(out / sub))
        assert len(files) == 8, sub
        assert cv2.imread(str(out / sub / files[0])).shape == shape
    for name in ('codeformer_00.jpg', 'codeformer_06.png', 'skimage_coffee.png'):
        src = cv2.imread(str(inputs / name), cv2.IMREAD_UNCHANGED)
        res = cv2.imread(str(out / 'restored_imgs' / name), cv2.IMREAD_UNCHANGED)
        assert res.shape == (src.shape[0] * 2, src.shape[1] * 2, *src.shape[2:]), name
    # One "input | result" row per whole photo (5 of them), 600 pixels wide.
    picture = cv2.imread(str(out / 'before_after.png'))
    assert picture.shape[1] == 600 and picture.shape[0] > 5 * 100


def test_cli_rgba_alpha_kept(whole_run):
    inputs, out, _ = whole_run
    src = cv2.imread(str(inputs / 'codeformer_06.png'), cv2.IMREAD_UNCHANGED)
    res = cv2.imread(str(out / 'restored_imgs' / 'codeformer_06.png'), cv2.IMREAD_UNCHANGED)
    assert src.shape[2] == 4 and res.shape[2] == 4
    alpha = cv2.resize(src[..., 3], res.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    assert np.abs(res[..., 3].astype(int) - alpha).max() <= 1


def test_cli_gray_and_16bit(whole_run):
    _, out, _ = whole_run
    gray = cv2.imread(str(out / 'restored_imgs' / 'astronaut_gray.png'), cv2.IMREAD_UNCHANGED)
    assert gray.shape == (1024, 1024) and gray.dtype == np.uint8
    deep = cv2.imread(str(out / 'restored_imgs' / 'astronaut_16bit.png'), cv2.IMREAD_UNCHANGED)
    assert deep.shape == (1024, 1024, 3) and deep.dtype == np.uint16
    assert deep.max() > 255  # the 16-bit range is used, not an 8-bit image stored in 16 bits


def test_cli_bad_input_reported_not_fatal(whole_run):
    _, out, summary = whole_run
    assert summary['no_face'] == [str(whole_run[0] / 'skimage_coffee.png')]
    assert sorted(os.path.basename(p) for p in summary['skipped']) == ['notes.txt', 'truncated.jpg']
    assert 'truncated' in summary['skipped'][str(whole_run[0] / 'truncated.jpg')]
    assert not (out / 'restored_imgs' / 'truncated.jpg').exists()


def test_cli_no_face_message(tmp_path, student_ckpt, capsys):
    args = cli.parse_args(['-i', str(FACES / 'negative' / 'skimage_coffee.png'), '-o', str(tmp_path), '--model',
                           student_ckpt, *DET_ARGS])  # fmt: skip
    summary = cli.run(args)
    assert 'no face found' in capsys.readouterr().out
    assert summary['faces'] == {str(FACES / 'negative' / 'skimage_coffee.png'): 0}
    assert cv2.imread(str(tmp_path / 'restored_imgs' / 'skimage_coffee.png')).shape == (800, 1200, 3)


def test_cli_aligned_real_lq(tmp_path, student_ckpt):
    names = ['codeformer_0143.png', 'gfpgan_Adele_crop.png', 'codeformer_Solvay_conference_1927_0018.png']
    inputs = link_inputs(tmp_path / 'in', [FACES / 'real_lq' / n for n in names])
    # No detector is needed for aligned faces: an empty --model-root must not matter.
    args = cli.parse_args(['-i', str(inputs), '-o', str(tmp_path / 'out'), '--model', student_ckpt, '--aligned',
                           '--suffix', 'sr', '--model-root', str(tmp_path), '--offline'])  # fmt: skip
    summary = cli.run(args)
    assert sum(summary['faces'].values()) == 3 and not summary['skipped']
    for n in names:
        stem = os.path.splitext(n)[0]
        assert cv2.imread(str(tmp_path / 'out' / 'cropped_faces' / f'{stem}_00.png')).shape == (32, 32, 3)
        assert cv2.imread(str(tmp_path / 'out' / 'restored_faces' / f'{stem}_00_sr.png')).shape == (256, 256, 3)
    assert not (tmp_path / 'out' / 'restored_imgs').exists()


def test_cli_missing_detector_weights(tmp_path, student_ckpt):
    det = ['--det-model', 'retinaface_mobile0.25', '--model-root', str(tmp_path), '--offline']
    args = cli.parse_args(['-i', str(FACES / 'negative'), '-o', str(tmp_path / 'out'), '--model', student_ckpt, *det])
    with pytest.raises(SystemExit) as err:
        cli.run(args)
    msg = str(err.value)
    assert 'detection_mobilenet0.25_Final.pth' in msg and str(tmp_path) in msg and '--model-root' in msg
    assert 'https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_mobilenet0.25_Final.pth' in msg


def test_cli_wrong_scale_checkpoint_refused(tmp_path, student_ckpt):
    args = cli.parse_args(['-i', str(FACES / 'negative'), '-o', str(tmp_path), '--model', student_ckpt, '--scale',
                           '4', *DET_ARGS])  # fmt: skip
    with pytest.raises(SystemExit, match=r'holds arch DFDNetStudent.*x8 \(32 -> 256\); expected x4'):
        cli.run(args)


@pytest.fixture(scope='module')
def tiny_teacher():
    """A tiny DFDNetTeacher (x8, 16 -> 128, 2 atoms), random weights, random VGG encoder and dictionary."""
    torch.manual_seed(0)
    teacher = DFDNetTeacher(out_size=128, num_feat=8, num_atoms=2, vgg_pretrained=False)
    for name, buf in teacher.dictionary.named_buffers():
        buf.copy_(torch.tensor(True) if name == 'loaded' else torch.rand_like(buf))
    return teacher.eval()


@pytest.mark.parametrize('box_source', ['detect', 'template'])
def test_teacher_finds_its_boxes(tiny_teacher, box_source):
    info = {'type': 'DFDNetTeacher', 'lq_size': 16, 'out_size': 128, 'scale': 8, 'needs_boxes': True}
    restorer = FaceSRRestorer(net=tiny_teacher, info=info, box_source=box_source, **DET)
    face = cv2.imread(str(FACES / 'real_lq' / 'gfpgan_Julia_Roberts_crop.png'))
    cropped, restored, out = restorer.enhance(face, aligned=True)
    assert out is None and cropped[0].shape == (16, 16, 3) and restored[0].shape == (128, 128, 3)
    stats = restorer.last_stats
    assert stats['boxes_s'] > 0 and stats['box_fallbacks'] in (0, 1)
    if box_source == 'template':
        assert stats['box_fallbacks'] == 0


def _perturbed_lite():
    """A tiny LiteFaceStudent (16 -> 128) with a random ``to_rgb``, so its output is not its bicubic skip."""
    torch.manual_seed(0)
    net = LiteFaceStudent(out_size=128, scale=8, num_feat=8, num_block=1, feat_channels=4)
    torch.nn.init.normal_(net.to_rgb.weight, std=0.05)
    return net.eval()


@pytest.mark.parametrize('which', ['DFDNetStudent', 'LiteFaceStudent'])
def test_prepare_network_is_the_same_network_cheaper(which):
    """Baked spectral norms, no gradients, channels-last on the CPU (the students): the same outputs."""
    if which == 'DFDNetStudent':
        torch.manual_seed(0)
        net, lq = DFDNetStudent(out_size=64, num_feat=8, vgg_pretrained=False).eval(), torch.rand(2, 3, 8, 8)
    else:
        net, lq = _perturbed_lite(), torch.rand(2, 3, 16, 16)
    had_sn = any(parametrize.is_parametrized(m) for m in net.modules())
    assert had_sn == (which == 'DFDNetStudent')
    with torch.no_grad():
        ref = net(lq)
    net, channels_last = prepare_network(net, 'cpu')
    assert channels_last and not net.training
    assert not any(parametrize.is_parametrized(m) for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters() if p.dim() == 4)
    with torch.inference_mode():
        out = net(to_memory_format(lq, channels_last))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_channels_last_only_where_measured(tiny_teacher):
    """The teacher subclasses DFDNetStudent but was not measured: it keeps the contiguous format, as RCAN does."""
    assert prepare_network(tiny_teacher, 'cpu', arch_type='DFDNetTeacher')[1] is False
    assert prepare_network(BicubicX8(), 'cpu')[1] is False
    assert prepare_network(_perturbed_lite(), 'cpu', channels_last=False)[1] is False


def test_restorer_refuses_info_contradicting_the_network():
    info = {'type': 'LiteFaceStudent', 'lq_size': 32, 'out_size': 128, 'scale': 4, 'needs_boxes': False}
    with pytest.raises(ValueError, match=r'takes 16x16 faces but info says lq_size 32'):
        FaceSRRestorer(net=_perturbed_lite(), info=info, device='cpu')


def test_restorer_runs_a_lite_checkpoint_on_aligned_faces(tmp_path):
    """The restorer feeds the lite student exactly out_size / scale (channels-last) and returns its output."""
    net = _perturbed_lite()
    path = tmp_path / 'lite.pth'
    arch = {'type': 'LiteFaceStudent', 'out_size': 128, 'scale': 8, 'num_feat': 8, 'num_block': 1, 'feat_channels': 4}
    save_sr_checkpoint(str(path), net, arch)
    restorer = FaceSRRestorer(model_path=str(path), device='cpu', batch_size=2)
    assert restorer.channels_last and (restorer.lq_size, restorer.out_size) == (16, 128)
    face = cv2.imread(str(FACES / 'real_lq' / 'gfpgan_Julia_Roberts_crop.png'))
    cropped, restored, _ = restorer.enhance(face, aligned=True)
    lq = torch.from_numpy(np.ascontiguousarray(cropped[0][..., ::-1].transpose(2, 0, 1))).float()[None] / 255
    assert restored[0].shape == (128, 128, 3)
    with torch.no_grad():
        ref = net(lq).clamp(0, 1)[0].permute(1, 2, 0).numpy()[..., ::-1] * 255
    assert np.abs(restored[0].astype(np.float32) - ref).mean() < 1.0  # the saved uint8 input vs the float one


def test_restorer_accepts_face_rcan_checkpoints(tmp_path):
    """FaceRCAN checkpoints load like RCAN's; options it passes on to RCAN (here ``upscale``) default as RCAN's."""
    opt = {'type': 'FaceRCAN', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_group': 1, 'num_block': 1,
           'squeeze_factor': 4, 'upscale': 8, 'input_skip': True}  # fmt: skip
    torch.manual_seed(0)
    net = FaceRCAN(**{k: v for k, v in opt.items() if k != 'type'})
    path = tmp_path / 'face_rcan.pth'
    save_sr_checkpoint(str(path), net, opt)
    restorer = FaceSRRestorer(model_path=str(path), device='cpu')
    assert restorer.info['type'] == 'FaceRCAN' and not restorer.channels_last
    assert (restorer.lq_size, restorer.out_size) == (32, 256)
    face = cv2.imread(str(FACES / 'real_lq' / 'gfpgan_Julia_Roberts_crop.png'))
    cropped, restored, _ = restorer.enhance(face, aligned=True)
    # Untrained with input_skip, FaceRCAN is bicubic upsampling of its 32x32 input.
    bicubic = cv2.resize(cropped[0], (256, 256), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    assert restored[0].shape == (256, 256, 3) and np.abs(restored[0] - bicubic).mean() < 0.5

    no_upscale = {k: v for k, v in opt.items() if k != 'upscale'}
    torch.manual_seed(0)
    save_sr_checkpoint(str(path), FaceRCAN(**{k: v for k, v in no_upscale.items() if k != 'type'}), no_upscale)
    _, info = load_sr_network(str(path))
    assert (info['scale'], info['lq_size'], info['out_size']) == (4, 32, 128)  # RCAN's default upscale
