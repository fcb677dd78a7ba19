from collections import OrderedDict

from facesr_kd.models.face_sr_model import FaceSRModel

from basicsr.models.sr_model import SRModel
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class FaceSRGANModel(FaceSRModel, SRGANModel):
    """``FaceSRModel`` with BasicSR's adversarial training: the teacher's optional image GAN term.

    The discriminator ``net_d`` scores what :meth:`generator_forward` hands it; here the super-resolved image
    is fake and the ground truth real:

    - generator: ``pixel(SR, GT) + perceptual(SR, GT) + gan(D(fake), real)`` every ``net_d_iters`` iterations
      after ``net_d_init_iters``;
    - discriminator: ``gan(D(real), real) + gan(D(fake.detach()), fake)``.

    Boxes, per-step pixel losses (SRFBN), EMA, atomic checkpoints and test summaries are ``FaceSRModel``'s;
    building ``net_d``, the losses, saving and resuming are ``SRGANModel``'s. Subclasses change what the
    discriminator sees by overriding :meth:`generator_forward` (``DictDistillModel``: decoder features).
    """

    # Whether a subclass may run without ``network_d`` (no adversarial term, no discriminator step at all).
    discriminator_optional = False

    def init_training_settings(self):
        if self.discriminator_optional and self.opt.get('network_d') is None:
            self.net_d = None
            self.net_d_iters, self.net_d_init_iters = 1, 0
            self.init_amp()
            SRModel.init_training_settings(self)  # EMA, pixel and perceptual losses, optimizer of net_g, schedulers
            return
        missing = [key for key in ('network_d', 'train:gan_opt', 'train:optim_d') if not _has(self.opt, key)]
        if missing:
            raise ValueError(
                f'{type(self).__name__} trains adversarially and needs {", ".join(f"`{k}`" for k in missing)} in '
                'its options; without an adversarial term use `model_type: FaceSRModel` (as the teacher and '
                'the "without KD" student recipes do).'
            )
        super().init_training_settings()

    def setup_optimizers(self):
        super().setup_optimizers()  # FaceSRModel's: net_g's trainable parameters only
        if self.net_d is None:
            return
        optim_d = dict(self.opt['train']['optim_d'])
        self.optimizer_d = self.get_optimizer(optim_d.pop('type'), self.discriminator_parameters(), **optim_d)
        self.optimizers.append(self.optimizer_d)

    def generator_forward(self):
        """Run ``net_g`` on the batch.

        Returns:
            tuple: ``outputs`` (list of (B, 3, H, W) images; the pixel loss is summed over them, the last one
            is ``self.output``), ``fake`` (what D scores as fake; carries the generator's gradient) and
            ``real`` (what D scores as real).
        """
        outputs = self.generator_outputs()
        return outputs, outputs[-1], self.gt

    def generator_step_due(self, current_iter):
        """Whether the generator is optimised at ``current_iter`` (BasicSR's ``net_d_iters``, ``net_d_init_iters``)."""
        return current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters

    def generator_losses(self, outputs, fake, real, loss_dict, current_iter):
        """The generator's losses, added to ``loss_dict``; returns their sum. Subclasses add terms here."""
        l_g_total = self.content_losses(outputs, loss_dict, prefix='l_g_')
        loss_dict['l_g_gan'] = self.cri_gan(self.net_d(fake).float(), True, is_disc=False)
        return l_g_total + loss_dict['l_g_gan']

    def discriminator_losses(self, fake, real, loss_dict):
        """The discriminators' losses on detached inputs, added to ``loss_dict``; returns their sum."""
        real_d_pred = self.net_d(real.detach()).float()
        loss_dict['l_d_real'] = self.cri_gan(real_d_pred, True, is_disc=True)
        loss_dict['out_d_real'] = real_d_pred.detach().mean()
        fake_d_pred = self.net_d(fake.detach()).float()
        loss_dict['l_d_fake'] = self.cri_gan(fake_d_pred, False, is_disc=True)
        loss_dict['out_d_fake'] = fake_d_pred.detach().mean()
        return loss_dict['l_d_real'] + loss_dict['l_d_fake']

    def discriminator_parameters(self):
        """Every parameter the discriminator step optimises (frozen during the generator step)."""
        return [] if self.net_d is None else list(self.net_d.parameters())

    def optimize_parameters(self, current_iter):
        d_params = self.discriminator_parameters()
        for p in d_params:
            p.requires_grad = False
        self.optimizer_g.zero_grad()
        loss_dict = OrderedDict()
        with self.autocast():
            outputs, fake, real = self.generator_forward()
            step_g = self.generator_step_due(current_iter)
            if step_g:
                l_g = self.generator_losses(outputs, fake, real, loss_dict, current_iter)
        self.output = outputs[-1].float()
        if step_g:
            self.backward_step(l_g, self.optimizer_g)

        if self.net_d is not None:  # no discriminator step in a `discriminator_optional` model without one
            for p in d_params:
                p.requires_grad = True
            self.optimizer_d.zero_grad()
            with self.autocast():
                l_d = self.discriminator_losses(fake, real, loss_dict)
            self.backward_step(l_d, self.optimizer_d)
        self.scaler.update()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)


def _has(opt, key):
    for part in key.split(':'):
        if not isinstance(opt, dict) or opt.get(part) is None:
            return False
        opt = opt[part]
    return True
