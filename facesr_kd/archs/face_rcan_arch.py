"""BasicSR's RCAN with the optional global skip from the bicubic-upsampled input."""

from facesr_kd.archs.arch_util import upsample_input, zero_init_

from basicsr.archs.rcan_arch import RCAN
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class FaceRCAN(RCAN):
    """BasicSR's ``RCAN``, unchanged unless ``input_skip``.

    Args:
        num_in_ch, num_out_ch, num_feat, num_group, num_block, squeeze_factor, upscale, res_scale, img_range,
            rgb_mean: ``RCAN``'s, with its defaults (3 channels in and out).
        input_skip (bool): Beyond RCAN (off in the paper-scale option files): add the bicubic-upsampled input
            to the output, ``conv_last`` starting at zero, so an untrained network is bicubic upsampling.

    Shapes:
        x: (B, 3, h, w) in [0, 1] -> (B, 3, h * upscale, w * upscale).
    """

    def __init__(
        self,
        num_in_ch=3,
        num_out_ch=3,
        num_feat=64,
        num_group=10,
        num_block=16,
        squeeze_factor=16,
        upscale=4,
        res_scale=1,
        img_range=255.0,
        rgb_mean=(0.4488, 0.4371, 0.4040),
        input_skip=False,
    ):
        super().__init__(
            num_in_ch, num_out_ch, num_feat, num_group, num_block, squeeze_factor, upscale, res_scale, img_range,
            rgb_mean,
        )  # fmt: skip
        self.input_skip = input_skip
        if input_skip:
            zero_init_(self.conv_last)

    def forward(self, x):
        out = super().forward(x)
        if not self.input_skip:
            return out
        # RCAN adds its mean back to the output; with the skip, the input's upsampling takes its place.
        return out - self.mean + upsample_input(x, tuple(out.shape[-2:]))
