"""facesr-kd-export-onnx: the student to ONNX with a dynamic batch, checked against PyTorch with onnxruntime.

The student is tiny (out_size 64, num_feat 8) with random weights and a random VGG19 encoder passed explicitly
(``vgg_pretrained=False``): the test checks the export, not any quality.
"""

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
from facesr_kd.cli import export_onnx as export_cli
from facesr_kd.export import export_onnx
from facesr_kd.utils.checkpoint import save_sr_checkpoint

import numpy as np
import pytest
import torch


def test_student_onnx_matches_pytorch(tmp_path, capsys):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    net = DFDNetStudent(out_size=64, num_feat=8, vgg_pretrained=False).eval()
    ckpt = tmp_path / 'student.pth'
    save_sr_checkpoint(str(ckpt), net, {'type': 'DFDNetStudent', 'out_size': 64, 'num_feat': 8}, scale=8)
    out = tmp_path / 'student.onnx'
    assert export_cli.main(['--model', str(ckpt), '-o', str(out), '--check']) == 0
    printed = capsys.readouterr().out
    assert 'at batch 1: max abs difference' in printed and 'at batch 3: max abs difference' in printed

    model = onnx.load(str(out), load_external_data=False)
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert model.graph.input[0].name == 'lq' and batch_dim.dim_param == 'batch'
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    for batch in (1, 3):  # dynamic batch
        lq = torch.rand(batch, 3, 8, 8, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            ref = net(lq).numpy()
        got = session.run(['sr'], {'lq': lq.numpy()})[0]
        assert got.shape == (batch, 3, 64, 64)
        assert np.abs(got - ref).max() < 1e-4
    # Baking spectral norm for the export leaves the network itself untouched.
    with torch.no_grad():
        net(torch.rand(1, 3, 8, 8))


def test_teacher_not_exported(tmp_path):
    class Teacher(torch.nn.Module):
        needs_boxes = True

    with pytest.raises(ValueError, match='needs component boxes'):
        export_onnx(Teacher(), 32, str(tmp_path / 't.onnx'))
