"""Run under torchrun: BasicSR's train pipeline with our model, then each rank writes a checksum of net_g."""

import os
import sys

import facesr_kd  # noqa: F401

import torch
from basicsr import train as basicsr_train
from basicsr.models import base_model

_models = []
_original_init = base_model.BaseModel.__init__


def _remember(self, opt):
    _original_init(self, opt)
    _models.append(self)


if __name__ == '__main__':
    base_model.BaseModel.__init__ = _remember
    basicsr_train.train_pipeline(os.getcwd())
    net = _models[0].get_bare_model(_models[0].net_g)
    assert isinstance(_models[0].net_g, torch.nn.parallel.DistributedDataParallel), type(_models[0].net_g)
    total = sum(p.double().sum().item() for p in net.parameters())
    with open(f'rank{torch.distributed.get_rank()}.txt', 'w') as f:
        f.write(repr(total))
    sys.exit(0)
