"""DFDNet-style student: the teacher's encoder and decoder without the dictionary path (no boxes needed)."""

from facesr_kd.archs.arch_util import upsample_input
from facesr_kd.archs.component_dictionary import LEVEL_CHANNELS, LEVELS
from facesr_kd.archs.dfdnet_blocks import DFDNetDecoder
from facesr_kd.archs.vgg19 import VGG19Features
from facesr_kd.utils.checkpoint import strip_module_prefix

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class DFDNetStudent(nn.Module):
    """Frozen VGG19 encoder on the bicubic-upsampled input and the DFDNet decoder; SFT conditions are the raw
    encoder features.

    Args:
        out_size (int): Output size (a multiple of 16, e.g. 128, 256, 512). The input is bicubic-upsampled to it.
        num_feat (int): Decoder base width (DFDNet: 64); smaller values give compact students. The distillation
            feature has ``num_feat`` channels.
        vgg_pretrained (bool): Load ImageNet VGG19 weights. False gives random encoder weights, for tests only
            (a teacher or student checkpoint holds its encoder weights too).
        vgg_weights (str | None): Local VGG19 weights file; None: torchvision's cache.
        vgg_download (bool): Allow torchvision to download the weights when they are missing.
        input_skip (bool): Beyond the paper (off in the paper-scale option files): add the bicubic-upsampled
            input to the output, the decoder predicting a residual through a zero-initialised ``to_rgb``
            instead of a tanh image, so an untrained network starts as bicubic upsampling. A lever for short
            runs; every figure made with it says so.

    Shapes:
        lq: (B, 3, h, w) in [0, 1]. Output: (B, 3, out_size, out_size) in [0, 1], and with ``return_feat`` the
        feature (B, num_feat, out_size, out_size) that enters the final conv to RGB. ``feats``: the output of
        :meth:`encode` for ``lq``, when the caller already has it.
    """

    needs_boxes = False
    # State-dict entries of DFDNetTeacher that the student does not have: its dictionary and confidence blocks.
    TEACHER_ONLY_PREFIXES = ('dictionary.', 'transfer.')

    def __init__(
        self, out_size=256, num_feat=64, vgg_pretrained=True, vgg_weights=None, vgg_download=False, input_skip=False
    ):
        super().__init__()
        if out_size % 16 or out_size < 32:
            raise ValueError(f'out_size must be a multiple of 16 and at least 32, got {out_size}')
        self.out_size = out_size
        self.num_feat = num_feat
        self.feat_channels = num_feat
        self.input_skip = input_skip
        self.encoder = VGG19Features(
            LEVELS, pretrained=vgg_pretrained, weights_path=vgg_weights, allow_download=vgg_download
        )
        cond_channels = tuple(LEVEL_CHANNELS[level] for level in LEVELS[::-1])
        self.decoder = DFDNetDecoder(
            num_feat, enc_channels=LEVEL_CHANNELS['conv5_4'], cond_channels=cond_channels, residual=input_skip
        )

    def load_from_teacher(self, state, arch=None, source='teacher checkpoint'):
        """Initialise from a :class:`DFDNetTeacher` state dict: every shared entry, strictly.

        The teacher's dictionary and confidence-block entries are dropped and listed in the log; the student
        then equals the teacher with its dictionary path bypassed.

        Args:
            state (dict): The teacher's state dict.
            arch (dict | None): The teacher's network options (checked against this student when given).
            source (str): Named in the log and in errors.

        Returns:
            list[str]: The dropped keys.

        Raises:
            ValueError: The teacher's out_size, num_feat or input_skip differ from the student's.
        """
        from basicsr.utils import get_root_logger

        if arch is not None:
            for key, mine in (
                ('out_size', self.out_size),
                ('num_feat', self.num_feat),
                ('input_skip', self.input_skip),
            ):
                theirs = arch.get(key, {'input_skip': False}.get(key))
                if theirs is not None and theirs != mine:
                    raise ValueError(
                        f'{source}: a teacher with {key}={theirs!r} cannot initialise a student with {key}={mine!r}; '
                        f"set the student's `{key}` to {theirs!r} or start from another checkpoint."
                    )
        state = strip_module_prefix(state)
        dropped = sorted(k for k in state if k.startswith(self.TEACHER_ONLY_PREFIXES))
        self.load_state_dict({k: v for k, v in state.items() if k not in dropped}, strict=True)
        get_root_logger().info(
            f'Initialised {type(self).__name__} from the teacher {source}; dropped {len(dropped)} teacher-only '
            f'entries (dictionary and confidence blocks): {", ".join(dropped)}'
        )
        return dropped

    def encode(self, lq):
        """Encoder features of the input bicubic-upsampled to ``out_size``.

        Returns:
            OrderedDict[str, Tensor]: ``{level: (B, C, out_size / stride, out_size / stride)}`` for :data:`LEVELS`.
        """
        return self.encoder(upsample_input(lq, self.out_size))

    def conditions(self, feats, boxes=None):
        """SFT conditions, coarse to fine (conv5_4, relu4_4, relu3_4, relu2_2): the raw encoder features."""
        return [feats[level] for level in LEVELS[::-1]]

    def decode(self, feats, conds, return_feat=False, lq=None):
        """Decode encoder features and conditions to an RGB image in [0, 1] (and the distillation feature).

        ``lq`` is needed with ``input_skip`` (its bicubic upsampling is added to the decoder's residual).
        """
        out, feat = self.decoder(feats['conv5_4'], conds)
        if self.input_skip:
            if lq is None:
                raise ValueError('input_skip needs the input: call decode(..., lq=lq)')
            img = upsample_input(lq, self.out_size) + out
        else:
            img = (out + 1) / 2
        return (img, feat) if return_feat else img

    def forward(self, lq, return_feat=False, feats=None):
        """Super-resolve ``lq``; ``feats`` may pass a precomputed :meth:`encode` of it (shared encoder pass)."""
        feats = self.encode(lq) if feats is None else feats
        return self.decode(feats, self.conditions(feats), return_feat, lq=lq)
