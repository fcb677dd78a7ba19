from facesr_kd.archs.component_dictionary import crop_resize, feature_boxes
from facesr_kd.face.components import COMPONENTS
from facesr_kd.models.face_srgan_model import FaceSRGANModel
from facesr_kd.utils.checkpoint import load_file

import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn

# ``train: distill:`` options, beyond the paper; their defaults are the paper's method.
DISTILL_DEFAULTS = {
    'feat_norm': 'none',  # none | teacher | self: per-channel standardisation of F_T and F_S before any D
    'adapter': 'auto',  # auto: 1x1 conv only when widths differ; identity: always a 1x1 conv, identity at start
    'gan_start_iters': 0,  # no adversarial term at all (lambda_adv = 0) up to this iteration
    'gan_ramp_iters': 0,  # then lambda_adv grows linearly from 0 to its value over this many iterations
    'feat_match_weight': 0.0,  # weight of ||F_S - F_T||^2 (after feat_norm)
    'output_weight': 0.0,  # weight of ||SR_S - SR_T||^2
    'hint_weight': 0.0,  # weight of the decoder hints: each up-block's output of S regressed on T's (standardised)
    'region_weight': 1.0,  # weight of the region discriminator's generator term (with `network_d_region`)
    'region_size': None,  # side of the component crops the region D sees; None: out_size / 8
}
FEAT_NORMS = ('none', 'teacher', 'self')
ADAPTERS = ('auto', 'identity')


def check_distill_options(distill, where='train.distill'):
    """Validate ``train: distill:`` and return it with defaults filled in.

    Raises:
        ValueError: An unknown key or a bad value, naming the key and what it takes.
    """
    distill = dict(distill or {})
    unknown = sorted(set(distill) - set(DISTILL_DEFAULTS))
    if unknown:
        raise ValueError(f'`{where}`: unknown key(s) {unknown}; known keys are {sorted(DISTILL_DEFAULTS)}.')
    out = {**DISTILL_DEFAULTS, **distill}
    if out['feat_norm'] not in FEAT_NORMS:
        raise ValueError(f'`{where}.feat_norm` is {out["feat_norm"]!r}; use one of {list(FEAT_NORMS)}.')
    if out['adapter'] not in ADAPTERS:
        raise ValueError(f'`{where}.adapter` is {out["adapter"]!r}; use one of {list(ADAPTERS)}.')
    for key in (
        'gan_start_iters',
        'gan_ramp_iters',
        'feat_match_weight',
        'output_weight',
        'hint_weight',
        'region_weight',
    ):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f'`{where}.{key}` must be a number >= 0, got {value!r}.')
    size = out['region_size']
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 4):
        raise ValueError(f'`{where}.region_size` must be an integer >= 4 (or ~ for out_size / 8), got {size!r}.')
    return out


def standardize_channels(x, stats):
    """``(x - mean) / std`` per channel with ``stats = (mean, std)``, each (1, C, 1, 1)."""
    mean, std = stats
    return (x - mean) / std


def channel_stats(x, eps=1e-10):
    """Per-channel mean and std over batch and space: two (1, C, 1, 1) tensors."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = (x.var(dim=(0, 2, 3), keepdim=True, correction=0) + eps).sqrt()
    return mean, std


def component_crops(feat, boxes, size):
    """The component regions of a full-resolution feature map, each resized to ``size`` x ``size``.

    Only pixels inside each (integer, clamped) box enter its crop.

    Args:
        feat (Tensor): (B, C, H, W) feature at the output resolution.
        boxes (Tensor): (B, 4, 4) component boxes ``[x1, y1, x2, y2]`` in output pixels, COMPONENTS order.
        size (int): Crop side.

    Returns:
        Tensor: (B * 4, C, size, size), sample-major (sample 0's four components first).
    """
    fb = feature_boxes(boxes, 1, feat.shape[2], feat.shape[3])
    crops = [crop_resize(feat, fb[:, ci], (size, size)) for ci in range(len(COMPONENTS))]
    return torch.stack(crops, 1).flatten(0, 1)


@MODEL_REGISTRY.register()
class DictDistillModel(FaceSRGANModel):
    """Dictionary distillation: a frozen DFDNet-style teacher teaches a dictionary-free student adversarially.

    The discriminator ``net_d`` sees the last decoder feature maps (the input of the final conv to RGB) of the
    teacher, F_T, as real and of the student, F_S, as fake (LSGAN):

    - student: ``L_S = pixel(SR, GT) + perceptual(SR, GT) + gan(D(F_S), real)``;
    - discriminator: ``L_D = gan(D(F_T), real) + gan(D(F_S.detach()), fake)``.

    The teacher ``net_t`` comes from ``path: pretrain_network_t``; it stays in eval mode, gets no gradients,
    is in no optimizer, is not wrapped in DDP and is saved only with ``train: save_teacher: true``. It gets the
    component boxes of the batch, the student only the image. When a feature term reads F_S (``network_d``,
    feature matching), a student narrower than the teacher gets a 1x1 ``adapter`` (trained with the student,
    saved in the ``net_g`` checkpoint under ``adapter``) that maps F_S to the teacher's channels. When both use
    the same frozen encoder weights (the usual case: the same ImageNet VGG19), the batch is encoded once for both.

    Variants beyond the paper, all off by default (``train: distill:``, see :data:`DISTILL_DEFAULTS`):
    ``feat_norm`` standardises F_T and F_S per channel before D (``teacher``: both with F_T's batch statistics;
    ``self``: each with its own, so D cannot tell them apart by channel scales); ``adapter: identity``; a linear
    ramp of the adversarial weight (``gan_ramp_iters``; a D warm-up is BasicSR's ``net_d_init_iters``); direct
    feature matching (``l_g_feat``) and output distillation (``l_g_out``); and, with ``network_d_region``, a
    second discriminator on F_T / F_S cropped at the batch's component boxes (``l_g_gan_region``,
    ``l_d_region_real``, ``l_d_region_fake``). A student initialised from the teacher is ``path:
    pretrain_network_g`` pointing at a teacher checkpoint (see ``FaceSRModel.load_network``).

    Without ``network_d`` (and ``gan_opt``, ``optim_d``) there is no adversarial term and no discriminator step:
    the student learns from the content losses and the direct terms only (``hint_weight``, ``feat_match_weight``,
    ``output_weight``; at least one must be set), as ``options/distill_hint_vggface2.yml`` does.
    """

    discriminator_optional = True

    @staticmethod
    def check_train_options(opt):
        """Validate this model's own training options (``train: distill:``, ``train: amp``) before any work starts."""
        FaceSRGANModel.check_train_options(opt)
        distill = check_distill_options((opt.get('train') or {}).get('distill'))
        if opt.get('network_d') is None:
            if opt.get('network_d_region') is not None:
                raise ValueError('`network_d_region` is a second adversarial term: it needs `network_d` too.')
            if not any(distill[k] > 0 for k in ('hint_weight', 'feat_match_weight', 'output_weight')):
                raise ValueError(
                    'DictDistillModel without `network_d` distils through its direct terms only, but none is set: '
                    'give `train.distill` a `hint_weight`, `feat_match_weight` or `output_weight` > 0, or add '
                    '`network_d`, `train.gan_opt` and `train.optim_d` for the adversarial term.'
                )
        if opt.get('network_d_region') is not None and not any(
            'boxes_file' in ds or ds.get('box_source') for ds in (opt.get('datasets') or {}).values()
        ):
            raise ValueError('`network_d_region` crops features at component boxes: the datasets need a `boxes_file`.')

    def init_training_settings(self):
        self.distill = check_distill_options(self.opt['train'].get('distill'))
        self.net_t = self._build_teacher()
        channels_s = self.get_bare_model(self.net_g).feat_channels
        channels_t = self.net_t.feat_channels
        # Only the feature terms (D, region D, feature matching) read F_S: an output-only recipe needs no adapter.
        uses_features = self.opt.get('network_d') is not None or self.distill['feat_match_weight'] > 0
        if uses_features and (self.distill['adapter'] == 'identity' or channels_s != channels_t):
            self.adapter = nn.Conv2d(channels_s, channels_t, 1)
            if self.distill['adapter'] == 'identity':
                with torch.no_grad():
                    self.adapter.weight.zero_()
                    self.adapter.bias.zero_()
                    n = min(channels_s, channels_t)
                    self.adapter.weight[range(n), range(n)] = 1.0
            self._load_adapter()
            self.adapter = self.model_to_device(self.adapter)
        else:
            self.adapter = nn.Identity()
        self.share_encoder = self._same_encoder(self.get_bare_model(self.net_g), self.net_t)
        self.hints = {'on': False, 'student': [], 'teacher': []}  # filled by hooks during generator_forward only
        if self.distill['hint_weight'] > 0:
            self._register_hints(self.get_bare_model(self.net_g), 'student')
            self._register_hints(self.net_t, 'teacher')
        self.net_d_region = None
        if self.opt.get('network_d_region') is not None:
            self.net_d_region = self.model_to_device(build_network(self.opt['network_d_region']))
            path = self.opt['path'].get('pretrain_network_d_region')
            if path is not None:
                self.load_network(self.net_d_region, path, self.opt['path'].get('strict_load_d', True), 'params')
            self.net_d_region.train()
            if self.distill['region_size'] is None:
                self.distill['region_size'] = max(4, self.net_t.out_size // 8)
        super().init_training_settings()

    def _build_teacher(self):
        path = self.opt['path'].get('pretrain_network_t')
        if path is None:
            raise ValueError(
                'DictDistillModel needs a trained teacher: set `path: pretrain_network_t` to its '
                'checkpoint (see options/train_teacher_vggface2.yml).'
            )
        net_t = build_network(self.opt['network_t']).to(self.device)
        self.load_network(
            net_t, path, self.opt['path'].get('strict_load_t', True), self.opt['path'].get('param_key_t', 'params')
        )
        net_t.eval()
        for p in net_t.parameters():
            p.requires_grad = False
        return net_t

    def _register_hints(self, net, role):
        """Keep the output of each decoder up-block of ``net`` in ``self.hints[role]`` while hints are on."""
        ups = getattr(getattr(net, 'decoder', None), 'ups', None)
        if ups is None:
            raise ValueError(
                f'`train.distill.hint_weight` needs a DFDNet decoder (`decoder.ups`) in the {role}, but '
                f'{type(net).__name__} has none: set hint_weight to 0 for this network.'
            )
        hints = self.hints

        def keep(module, args, output):
            if hints['on']:
                hints[role].append(output)

        for block in ups:
            block.register_forward_hook(keep)

    @staticmethod
    def _same_encoder(student, teacher):
        """Whether both networks encode the input identically (same frozen encoder weights and input size)."""
        if not all(hasattr(n, 'encode') and hasattr(n, 'encoder') for n in (student, teacher)):
            return False
        if getattr(student, 'out_size', None) != getattr(teacher, 'out_size', None):
            return False
        if any(p.requires_grad for p in student.encoder.parameters()):
            return False
        s_state, t_state = student.encoder.state_dict(), teacher.encoder.state_dict()
        return s_state.keys() == t_state.keys() and all(
            torch.equal(s_state[k], t_state[k].to(s_state[k].device)) for k in s_state
        )

    def _load_adapter(self):
        path = self.opt['path'].get('pretrain_network_g')
        if path is not None:
            state = load_file(path, mmap=True)
            if 'adapter' in state:
                self.adapter.load_state_dict(state['adapter'])
                get_root_logger().info(f'Loading the feature adapter from {path}.')

    def setup_optimizers(self):
        super().setup_optimizers()  # the student's trainable parameters, and the discriminators'
        adapter_params = list(self.adapter.parameters())
        if adapter_params:
            self.optimizer_g.add_param_group({'params': adapter_params})

    def discriminator_parameters(self):
        params = super().discriminator_parameters()
        if getattr(self, 'net_d_region', None) is not None:
            params += list(self.net_d_region.parameters())
        return params

    def generator_forward(self):
        """Teacher features F_T (real, no gradient), then the student's output and adapted features F_S (fake).

        Both are standardised as ``feat_norm`` says; the teacher's image is kept as ``self.output_t``.
        """
        # Teacher and student share the frozen VGG19: encode the batch once for both.
        shared = {}
        self.hints['student'].clear()
        self.hints['teacher'].clear()
        self.hints['on'] = self.distill['hint_weight'] > 0
        with torch.no_grad():
            if self.share_encoder:
                shared['feats'] = self.get_bare_model(self.net_g).encode(self.lq)
            self.output_t, feat_t = self.run_network(self.net_t, return_feat=True, **shared)
        output, feat_s = self.net_g(self.lq, return_feat=True, **shared)
        self.hints['on'] = False
        feat_s = self.adapter(feat_s)
        norm = self.distill['feat_norm']
        if norm == 'teacher':
            stats = tuple(s.detach() for s in channel_stats(feat_t))
            feat_t, feat_s = standardize_channels(feat_t, stats), standardize_channels(feat_s, stats)
        elif norm == 'self':
            feat_t = standardize_channels(feat_t, channel_stats(feat_t))
            feat_s = standardize_channels(feat_s, channel_stats(feat_s))
        return [output], feat_s, feat_t

    def gan_weight(self, current_iter):
        """Multiplier of the adversarial terms at ``current_iter``: 0 up to ``gan_start_iters``, then the
        ``gan_ramp_iters`` ramp, else 1.

        A zero-initialised residual output (``input_skip``) passes no content gradient to the decoder until its
        ``to_rgb`` has grown, and Adam turns even a tiny adversarial gradient into full-size steps there: the
        delay lets the content losses shape the decoder first.
        """
        start, ramp = self.distill['gan_start_iters'], self.distill['gan_ramp_iters']
        if current_iter <= start:
            return 0.0
        return 1.0 if ramp <= 0 else min(1.0, (current_iter - start) / ramp)

    def generator_losses(self, outputs, fake, real, loss_dict, current_iter):
        l_g_total = self.content_losses(outputs, loss_dict, prefix='l_g_')
        weight = self.gan_weight(current_iter)
        if self.net_d is not None:
            loss_dict['l_g_gan'] = weight * self.cri_gan(self.net_d(fake).float(), True, is_disc=False)
            l_g_total = l_g_total + loss_dict['l_g_gan']
        if self.net_d_region is not None:
            pred = self.net_d_region(self._regions(fake)).float()
            loss_dict['l_g_gan_region'] = (
                weight * self.distill['region_weight'] * self.cri_gan(pred, True, is_disc=False)
            )
            l_g_total = l_g_total + loss_dict['l_g_gan_region']
        if self.distill['feat_match_weight'] > 0:
            loss_dict['l_g_feat'] = self.distill['feat_match_weight'] * F.mse_loss(fake.float(), real.detach().float())
            l_g_total = l_g_total + loss_dict['l_g_feat']
        if self.distill['hint_weight'] > 0:
            loss_dict['l_g_hint'] = self.distill['hint_weight'] * self.hint_loss()
            l_g_total = l_g_total + loss_dict['l_g_hint']
        if self.distill['output_weight'] > 0:
            l_out = F.mse_loss(outputs[-1].float(), self.output_t.float())
            loss_dict['l_g_out'] = self.distill['output_weight'] * l_out
            l_g_total = l_g_total + loss_dict['l_g_out']
        return l_g_total

    def hint_loss(self):
        """Mean over the decoder levels of ``||h_S - h_T||^2``, both standardised per channel with the teacher's
        batch statistics (so every level weighs the same, whatever its scale)."""
        hints_s, hints_t = self.hints['student'], self.hints['teacher']
        if len(hints_s) != len(hints_t) or not hints_s:
            raise RuntimeError(
                f'decoder hints: the student gave {len(hints_s)} and the teacher {len(hints_t)} levels; '
                'hints need two DFDNet decoders of the same depth.'
            )
        losses = []
        for h_s, h_t in zip(hints_s, hints_t):
            if h_s.shape != h_t.shape:
                raise ValueError(
                    f'decoder hints: student level {tuple(h_s.shape)} vs teacher {tuple(h_t.shape)}; hints need '
                    'the same `num_feat` in student and teacher.'
                )
            stats = tuple(s.detach() for s in channel_stats(h_t.float()))
            losses.append(
                F.mse_loss(standardize_channels(h_s.float(), stats), standardize_channels(h_t.float(), stats))
            )
        return sum(losses) / len(losses)

    def discriminator_losses(self, fake, real, loss_dict):
        l_d_total = super().discriminator_losses(fake, real, loss_dict)
        if self.net_d_region is not None:
            real_pred = self.net_d_region(self._regions(real.detach())).float()
            fake_pred = self.net_d_region(self._regions(fake.detach())).float()
            loss_dict['l_d_region_real'] = self.cri_gan(real_pred, True, is_disc=True)
            loss_dict['l_d_region_fake'] = self.cri_gan(fake_pred, False, is_disc=True)
            l_d_total = l_d_total + loss_dict['l_d_region_real'] + loss_dict['l_d_region_fake']
        return l_d_total

    def _regions(self, feat):
        if self.boxes is None:
            raise ValueError(
                'the region discriminator (`network_d_region`) crops the batch at its component boxes, but the '
                'batch has none: give the training dataset a `boxes_file` or `box_source: template`.'
            )
        return component_crops(feat, self.boxes, self.distill['region_size'])

    def save(self, epoch, current_iter):
        nets, keys = [self.net_g], ['params']
        if hasattr(self, 'net_g_ema'):
            nets, keys = nets + [self.net_g_ema], keys + ['params_ema']
        if isinstance(self.get_bare_model(self.adapter), nn.Conv2d):
            nets, keys = nets + [self.adapter], keys + ['adapter']
        self.save_network(nets, 'net_g', current_iter, param_key=keys)
        if self.net_d is not None:
            self.save_network(self.net_d, 'net_d', current_iter)
        if self.net_d_region is not None:
            self.save_network(self.net_d_region, 'net_d_region', current_iter)
        if self.opt['train'].get('save_teacher', False):
            self.save_network(self.net_t, 'net_t', current_iter)
        self.save_training_state(epoch, current_iter)
