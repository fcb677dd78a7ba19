from facesr_kd.models.face_srgan_model import FaceSRGANModel

import torch
from basicsr.archs import build_network
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn


@MODEL_REGISTRY.register()
class DictDistillModel(FaceSRGANModel):
    """Dictionary distillation: a frozen DFDNet-style teacher teaches a dictionary-free student adversarially.

    The discriminator ``net_d`` sees the last decoder feature maps (the input of the final conv to RGB) of the
    teacher, F_T, as real and of the student, F_S, as fake (LSGAN):

    - student: ``L_S = pixel(SR, GT) + perceptual(SR, GT) + gan(D(F_S), real)``;
    - discriminator: ``L_D = gan(D(F_T), real) + gan(D(F_S.detach()), fake)``.

    The teacher ``net_t`` comes from ``path: pretrain_network_t``; it stays in eval mode, gets no gradients,
    is in no optimizer, is not wrapped in DDP and is saved only with ``train: save_teacher: true``. It gets the
    component boxes of the batch, the student only the image. A student narrower than the teacher gets a 1x1
    ``adapter`` (trained with the student, saved in the ``net_g`` checkpoint under ``adapter``) that maps F_S
    to the teacher's channels. When both use the same frozen encoder weights (the usual case: the same ImageNet
    VGG19), the batch is encoded once for both. Everything else (the two optimisation steps, EMA,
    ``net_d_iters``, ``net_d_init_iters``, saving, resuming, validation) is ``FaceSRGANModel``'s.
    """

    def init_training_settings(self):
        self.net_t = self._build_teacher()
        channels_s = self.get_bare_model(self.net_g).feat_channels
        channels_t = self.net_t.feat_channels
        self.adapter = nn.Identity() if channels_s == channels_t else nn.Conv2d(channels_s, channels_t, 1)
        if isinstance(self.adapter, nn.Conv2d):
            self._load_adapter()
            self.adapter = self.model_to_device(self.adapter)
        self.share_encoder = self._same_encoder(self.get_bare_model(self.net_g), self.net_t)
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
            state = torch.load(path, map_location='cpu', weights_only=True)
            if 'adapter' in state:
                self.adapter.load_state_dict(state['adapter'])
                get_root_logger().info(f'Loading the feature adapter from {path}.')

    def setup_optimizers(self):
        super().setup_optimizers()  # the student's trainable parameters, and net_d's
        adapter_params = list(self.adapter.parameters())
        if adapter_params:
            self.optimizer_g.add_param_group({'params': adapter_params})

    def generator_forward(self):
        """Teacher features F_T (real, no gradient), then the student's output and adapted features F_S (fake)."""
        # Teacher and student share the frozen VGG19: encode the batch once for both.
        shared = {}
        with torch.no_grad():
            if self.share_encoder:
                shared['feats'] = self.get_bare_model(self.net_g).encode(self.lq)
            _, feat_t = self.run_network(self.net_t, return_feat=True, **shared)
        output, feat_s = self.net_g(self.lq, return_feat=True, **shared)
        return [output], self.adapter(feat_s), feat_t

    def save(self, epoch, current_iter):
        nets, keys = [self.net_g], ['params']
        if hasattr(self, 'net_g_ema'):
            nets, keys = nets + [self.net_g_ema], keys + ['params_ema']
        if isinstance(self.get_bare_model(self.adapter), nn.Conv2d):
            nets, keys = nets + [self.adapter], keys + ['adapter']
        self.save_network(nets, 'net_g', current_iter, param_key=keys)
        self.save_network(self.net_d, 'net_d', current_iter)
        if self.opt['train'].get('save_teacher', False):
            self.save_network(self.net_t, 'net_t', current_iter)
        self.save_training_state(epoch, current_iter)
