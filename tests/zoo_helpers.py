"""A model zoo of tiny LiteFaceStudents with RANDOM weights, published as the real zoo is (for the zoo tests).

The weights are random, never trained: the restored faces mean nothing. With ``perturb=False`` the final conv to RGB
keeps its zero initialisation, so each network outputs the bicubic upsampling of its input (``input_skip``): then
a restored photo measures the crop / paste pipeline alone.
"""

import os

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.archs.lite_student_arch import LiteFaceStudent
from facesr_kd.publish import publish_checkpoint
from facesr_kd.utils.checkpoint import save_sr_checkpoint

import torch

# Tiny stand-ins for the shipped lite-x8 (32 -> 256) and lite-x4 (64 -> 256): 16 -> 128 and 32 -> 128.
TINY = {'lite-x8': 8, 'lite-x4': 4}
OUT_SIZE = 128


def make_tiny_zoo(folder, perturb=False, out_size=OUT_SIZE, models=TINY):
    """Publish one tiny random-weight LiteFaceStudent per ``models`` entry (name -> scale) into ``folder``.

    Returns:
        dict[str, str]: Zoo name -> published ``.pth``.
    """
    os.makedirs(folder, exist_ok=True)
    out = {}
    for name, scale in models.items():
        torch.manual_seed(scale)
        arch = {'type': 'LiteFaceStudent', 'out_size': out_size, 'scale': scale, 'num_feat': 8, 'num_block': 1,
                'feat_channels': 4}  # fmt: skip
        net = LiteFaceStudent(**{k: v for k, v in arch.items() if k != 'type'})
        if perturb:
            with torch.no_grad():
                net.to_rgb.weight.normal_(0, 0.05)
        src = os.path.join(folder, f'.src_{name}.pth')
        save_sr_checkpoint(src, net, arch, scale=scale)
        out[name] = publish_checkpoint(src, folder, name=name)[0]
        os.remove(src)
    return out
