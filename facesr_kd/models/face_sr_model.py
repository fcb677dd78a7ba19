import json
import os
import statistics
import time
from collections import OrderedDict

from facesr_kd.utils.checkpoint import load_file, save_sr_checkpoint
from facesr_kd.utils.files import torch_save, write_json

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

# `train: amp` values: the autocast dtype.
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@MODEL_REGISTRY.register()
class FaceSRModel(SRModel):
    """BasicSR's ``SRModel`` for faces: the recipe of the teacher, the student without KD, RCAN and SRFBN.

    What differs from ``SRModel``:

    - networks with ``needs_boxes = True`` (the DFDNet-style teacher) get the component ``boxes`` of the batch;
    - the EMA network also copies the buffers (spectral-norm vectors) of ``net_g``;
    - networks that return one output per step in training (SRFBN) get the pixel loss on every step's output,
      summed, and the perceptual loss on the last one;
    - checkpoints carry an ``arch`` entry (the network options), so inference needs no option file; they and
      the training states are written atomically (a run killed while saving still resumes);
    - a test run (``basicsr/test.py``, ``facesr_kd.test``) writes ``metrics.json`` beside its log: metric
      averages per dataset, parameter count and median latency per face, for ``facesr-kd-table1``;
    - ``train: amp: bf16|fp16`` trains under autocast (networks, the frozen encoder and the teacher in that
      precision; the losses in fp32), fp16 with a gradient scaler whose state is saved in the training state
      and resumed. BasicSR has no mixed precision; without ``amp`` nothing changes.
    """

    @staticmethod
    def check_train_options(opt):
        """Validate this model's own training options (``train: amp``) before any work starts."""
        amp = (opt.get('train') or {}).get('amp')
        if amp is not None and amp not in AMP_DTYPES:
            raise ValueError(f'`train.amp` is {amp!r}; use one of {sorted(AMP_DTYPES)} or leave it out (fp32).')

    def init_training_settings(self):
        self.init_amp()
        super().init_training_settings()

    def init_amp(self):
        """The autocast dtype of ``train: amp`` and the fp16 gradient scaler (disabled otherwise)."""
        self.amp_dtype = AMP_DTYPES.get(self.opt['train'].get('amp'))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)

    def autocast(self):
        """The training forward's precision context: autocast in ``train: amp``'s dtype, or nothing."""
        dtype = getattr(self, 'amp_dtype', None)
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def backward_step(self, loss, optimizer):
        """Backward ``loss`` and step ``optimizer``, through the fp16 gradient scaler when there is one."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BasicSR's loading, plus a dictionary-free student initialised from a DFDNet-style teacher checkpoint.

        When ``load_path`` holds a ``DFDNetTeacher`` (its ``arch`` entry) and ``net`` is a DFDNet-style
        student, the teacher-only entries (the component dictionary and the confidence blocks) are dropped
        and listed in the log; everything else must match the student exactly (strict).
        """
        bare = self.get_bare_model(net)
        teacher_keys = getattr(bare, 'TEACHER_ONLY_PREFIXES', None)
        if teacher_keys is not None and not getattr(bare, 'needs_boxes', False):
            ckpt = load_file(load_path, mmap=True)  # mapped: a plain student checkpoint is read once more below
            arch = ckpt.get('arch') if isinstance(ckpt, dict) else None
            if isinstance(arch, dict) and arch.get('type') == 'DFDNetTeacher':
                state = ckpt.get(param_key) or ckpt['params']
                bare.load_from_teacher(state, arch, source=load_path)
                return
        super().load_network(net, load_path, strict, param_key)

    def setup_optimizers(self):
        # BasicSR warns once per frozen parameter; the frozen VGG encoder would flood the log.
        frozen = [n for n, p in self.net_g.named_parameters() if not p.requires_grad]
        if frozen:
            get_root_logger().info(f'{len(frozen)} frozen parameters (e.g. {frozen[0]}) are not optimized.')
        train_opt = self.opt['train']
        optim_type = train_opt['optim_g'].pop('type')
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer_g = self.get_optimizer(optim_type, params, **train_opt['optim_g'])
        self.optimizers.append(self.optimizer_g)

    def model_ema(self, decay=0.999):
        """BasicSR's parameter EMA, plus a copy of the buffers.

        BasicSR averages parameters only, so the EMA network would keep the random power-iteration vectors of
        its spectral norms (and, elsewhere, stale norm statistics) and compute wrong weights in eval mode.
        """
        super().model_ema(decay)
        buffers = dict(self.get_bare_model(self.net_g).named_buffers())
        for name, buf in self.net_g_ema.named_buffers():
            buf.copy_(buffers[name])

    def feed_data(self, data):
        super().feed_data(data)
        self.boxes = data['boxes'].to(self.device) if 'boxes' in data else None

    def run_network(self, net, **kwargs):
        """Run ``net`` on the current batch, with boxes if it needs them."""
        if getattr(self.get_bare_model(net), 'needs_boxes', False):
            if self.boxes is None:
                raise ValueError(
                    f'{type(self.get_bare_model(net)).__name__} needs component boxes but the batch '
                    'has none: give the dataset a `boxes_file` or `box_source: template`.'
                )
            return net(self.lq, self.boxes, **kwargs)
        return net(self.lq, **kwargs)

    def generator_outputs(self):
        """``net_g`` on the batch, as a list: one image per feedback step for SRFBN, else one."""
        outputs = self.run_network(self.net_g)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def content_losses(self, outputs, loss_dict, prefix='l_'):
        """The pixel loss summed over ``outputs`` and the perceptual (and style) loss on the last one.

        Adds them to ``loss_dict`` as ``{prefix}pix``, ``{prefix}percep``, ``{prefix}style`` and returns their sum.
        """
        l_total = 0
        outputs = [out.float() for out in outputs]  # losses in fp32 under autocast
        if self.cri_pix:
            loss_dict[f'{prefix}pix'] = sum(self.cri_pix(out, self.gt) for out in outputs)
            l_total += loss_dict[f'{prefix}pix']
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(outputs[-1], self.gt)
            for name, value in (('percep', l_percep), ('style', l_style)):
                if value is not None:
                    loss_dict[f'{prefix}{name}'] = value
                    l_total += value
        return l_total

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        loss_dict = OrderedDict()
        with self.autocast():
            outputs = self.generator_outputs()
            loss = self.content_losses(outputs, loss_dict)
        self.output = outputs[-1].float()
        self.backward_step(loss, self.optimizer_g)
        self.scaler.update()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        # The bare network, never the DDP wrapper: validation runs on rank 0 alone, and a DDP forward would
        # broadcast buffers (spectral-norm vectors, VGG mean/std) to ranks that are not there.
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            start = time.perf_counter()
            self.output = self.run_network(net)
            if self.output.is_cuda:
                torch.cuda.synchronize()
            self.latencies = getattr(self, 'latencies', [])
            self.latencies.append((time.perf_counter() - start) / self.lq.shape[0])
        net.train(was_training)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        self.latencies = []
        super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        if not self.opt['is_train']:
            self._write_test_summary(dataloader.dataset.opt['name'])

    @master_only
    def _write_test_summary(self, dataset_name):
        path = os.path.join(self.opt['path']['results_root'], 'metrics.json')
        summary = {}
        if os.path.exists(path):
            with open(path) as f:
                summary = json.load(f)
        net = self.get_bare_model(self.net_g)
        summary[dataset_name] = {
            'name': self.opt['name'],
            'arch': type(net).__name__,
            'metrics': {k: float(v) for k, v in getattr(self, 'metric_results', {}).items()},
            'num_images': len(self.latencies),
            'params': sum(p.numel() for p in net.parameters()),
            # Saved buffers: the teacher's component dictionary, for instance.
            'buffers_mb': sum(b.numel() * b.element_size() for b in net.buffers()) / 2**20,
            # The first face includes warm-up; the median ignores it.
            'latency_s_per_face': statistics.median(self.latencies) if self.latencies else None,
            'device': str(self.device),
        }
        write_json(path, summary, indent=2)

    @master_only
    def save_training_state(self, epoch, current_iter):
        """BasicSR's training state, written atomically: a run killed while saving still resumes."""
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
        }
        if self.scaler.is_enabled():
            state['scaler'] = self.scaler.state_dict()
        path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        torch_save(state, path)

    def resume_training(self, resume_state):
        """BasicSR's resumption (optimizers, schedulers), plus the fp16 gradient scaler's state."""
        super().resume_training(resume_state)
        if self.scaler.is_enabled() and 'scaler' in resume_state:
            self.scaler.load_state_dict(resume_state['scaler'])

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """Save like BasicSR (``{param_key: state_dict}``), plus ``arch`` and ``scale``, atomically."""
        nets = dict(
            zip(param_key if isinstance(param_key, list) else [param_key], net if isinstance(net, list) else [net])
        )
        name = 'latest' if current_iter == -1 else current_iter
        path = os.path.join(self.opt['path']['models'], f'{net_label}_{name}.pth')
        arch = self.opt[f'network_{net_label.removeprefix("net_")}']
        save_sr_checkpoint(
            path, nets.pop('params'), arch, ema=nets.pop('params_ema', None), scale=self.opt.get('scale'), extra=nets
        )
