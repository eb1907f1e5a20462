#!/usr/bin/env python3
"""Reference trajectory for promptsweep's Adafactor (tests/worker/optimizer_test.cc).

Implements, independently of the C++ code, the update of transformers'
optimization.Adafactor (src/transformers/optimization.py) for one 2-D float32
parameter with scale_parameter=False, relative_step=False, warmup_init=False,
beta1=None, decay_rate=-0.8, clip_threshold=1.0, eps=(1e-30, 1e-3), and writes
the starting parameter, the gradients and learning rates fed to it, and the
parameter after every step to adafactor_reference.safetensors.

Run with Debian's /usr/bin/python3 (python3-torch only; transformers is not
needed). Deterministic: rerunning rewrites identical bytes.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from make_tiny_models import write_safetensors  # noqa: E402  (the tests' one safetensors writer)

STEPS = 20
ROWS, COLS = 6, 10
WEIGHT_DECAY = 1e-5
DECAY_RATE = -0.8
CLIP_THRESHOLD = 1.0
EPS1 = 1e-30


def rms(t):
    return t.norm(2) / (t.numel() ** 0.5)


def adafactor_step(p, grad, state, lr):
    """One step of transformers' Adafactor.step for a factored parameter."""
    state["step"] += 1
    beta2t = 1.0 - math.pow(state["step"], DECAY_RATE)
    update = (grad ** 2) + EPS1
    row, col = state["row"], state["col"]
    row.mul_(beta2t).add_(update.mean(dim=-1), alpha=(1.0 - beta2t))
    col.mul_(beta2t).add_(update.mean(dim=-2), alpha=(1.0 - beta2t))
    r_factor = (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
    c_factor = col.unsqueeze(-2).rsqrt()
    update = torch.mul(r_factor, c_factor)
    update.mul_(grad)
    update.div_((rms(update) / CLIP_THRESHOLD).clamp_(min=1.0))
    update.mul_(lr)
    p.add_(p, alpha=(-WEIGHT_DECAY * lr))
    p.add_(-update)


def main():
    g = torch.Generator().manual_seed(0)
    param = torch.randn(ROWS, COLS, generator=g)
    # Rows and columns of very different scales, so the factored estimate
    # differs from the unfactored one, and a few tiny gradients.
    scale = torch.logspace(-2, 1, ROWS).unsqueeze(1) * torch.logspace(0, 1, COLS).unsqueeze(0)
    grads = torch.randn(STEPS, ROWS, COLS, generator=g) * scale
    grads[3] *= 1e-6
    # A warmup then constant 0.3 (Lester et al.), so the lr reaches the update.
    lrs = torch.tensor([min(0.3, 0.3 * (s + 1) / 5) for s in range(STEPS)], dtype=torch.float32)

    p = param.clone()
    state = {"step": 0, "row": torch.zeros(ROWS), "col": torch.zeros(COLS)}
    trajectory = []
    for s in range(STEPS):
        adafactor_step(p, grads[s], state, float(lrs[s]))
        trajectory.append(p.clone())
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adafactor_reference.safetensors")
    write_safetensors(out, {
        "param": param, "grads": grads, "lrs": lrs,
        "trajectory": torch.stack(trajectory),
        "exp_avg_sq_row": state["row"], "exp_avg_sq_col": state["col"],
    })
    print("wrote", out)


if __name__ == "__main__":
    main()
