"""The gradient audit (manual vs autograd on the same minibatch) and the lecture's health statistics.

Generic: autograd's reference runs the network's tape (its definition of the forward pass), so
any network is audited the same way.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from ..backward import deterministic, forward
from ..config import Config
from ..nets import get_net
from ..nets.shared_train import Params

SATURATION = 0.97  # |h| above this counts as a saturated tanh (the lecture's threshold for its histogram)


def autograd_param_grads(params: Params, Xb: torch.Tensor, Yb: torch.Tensor,
                         cfg: Config | None = None) -> dict[str, torch.Tensor]:
    """Autograd's gradient of every parameter for one minibatch Xb (B, T), Yb (B,): the tape of
    `cfg`'s network (default: the lecture's MLP), on detached copies (the training parameters are
    untouched). Raises RuntimeError if a parameter gets no gradient (the tape is broken)."""
    cfg = cfg or Config()
    net = get_net(cfg.net)
    tape = net.tape(cfg)
    leaves = {name: params[name].detach().clone().requires_grad_(True) for name in tape.params}
    # the training loop draws minibatches in inference mode; autograd may not save such tensors
    Xb, Yb = Xb.clone(), Yb.clone()
    # Autograd accumulates a large embedding gradient with parallel atomic adds when it has more
    # than one thread; deterministic() orders them. On one thread (training's default) the order
    # is fixed already, and skipping the switch saves its first use: torch imports ~850 modules
    # for it (0.75-2 s here), a stall at the first audit of a live run.
    switch = deterministic() if torch.get_num_threads() > 1 else nullcontext()
    with switch, torch.enable_grad():
        values = forward(tape, leaves, Xb, Yb, net.constants(cfg, Xb))
        values[tape.loss].backward()
    grads: dict[str, torch.Tensor] = {}
    for name in tape.params:
        grad = leaves[name].grad
        if grad is None:  # cannot happen: every parameter reaches the loss
            raise RuntimeError(f"autograd produced no gradient for {name}")
        grads[name] = grad.detach()
    return grads


def audit_grads(manual: dict[str, torch.Tensor],
                reference: dict[str, torch.Tensor]) -> tuple[dict[str, float], dict[str, float], float]:
    """(max_rel_diff, max_abs_diff, scale) of manual against autograd for every parameter of
    `reference`, as AuditEvent documents them."""
    with torch.no_grad():
        scale = max(float(g.abs().max()) for g in reference.values())
        absdiff = {name: float((manual[name] - g).abs().max()) for name, g in reference.items()}
    if scale > 0:
        rel = {name: d / scale for name, d in absdiff.items()}
    else:
        rel = {name: 0.0 if d == 0 else math.inf for name, d in absdiff.items()}
    return rel, absdiff, scale


def health(params: Params, grads: Params, activations: Params,
           lr: float) -> tuple[dict[str, float], float, dict[str, float]]:
    """(update_ratio per parameter, saturation, saturation per tanh node): log10(std(lr*grad) /
    std(param)) (the lecture's update-to-data ratio, ~-3 is healthy; NaN for a parameter of one
    value) and the fraction of tanh outputs with |h| > 0.97 (NaN without any)."""
    ratios: dict[str, float] = {}
    with torch.no_grad():
        for name, p in params.items():
            if p.numel() < 2:  # a spread needs two values (n_hidden 1 makes b1 a single number)
                ratios[name] = math.nan
                continue
            r = lr * float(grads[name].std()) / float(p.std())
            ratios[name] = math.log10(r) if r > 0 else (-math.inf if r == 0 else math.nan)
        counts = {name: (int((h.abs() > SATURATION).sum()), h.numel()) for name, h in activations.items()}
    by_node = {name: hit / total for name, (hit, total) in counts.items()}
    total = sum(t for _, t in counts.values())
    saturation = sum(hit for hit, _ in counts.values()) / total if total else math.nan
    return ratios, saturation, by_node
