"""An autograd WaveNet written the way the lecture builds it, for a steps/s figure beside `bench`.

    python scripts/bench_lecture_wavenet.py [--steps N] [--json]

Layer objects (Embedding, FlattenConsecutive, Linear, BatchNorm1d with running statistics, Tanh,
Sequential) called in turn, batch statistics with torch.var, F.cross_entropy, loss.backward() and
`p.data += -lr * p.grad`: a plain training loop of makemore part 5, one torch thread, the bundled
names. `bench --net wavenet` compares against a leaner autograd loop (the network's own forward,
batch statistics as sums, no running statistics); this one is the yardstick a learner's code meets.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
import torch.nn.functional as F

from ninja_core.data import load_dataset


class Layer:
    def parameters(self) -> list[torch.Tensor]:
        return []


class Embedding(Layer):
    def __init__(self, n: int, dim: int, g: torch.Generator) -> None:
        self.weight = torch.randn((n, dim), generator=g)

    def __call__(self, ix: torch.Tensor) -> torch.Tensor:
        return self.weight[ix]

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight]


class FlattenConsecutive(Layer):
    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        return x.squeeze(1) if x.shape[1] == 1 else x


class Linear(Layer):
    def __init__(self, fan_in: int, fan_out: int, g: torch.Generator, bias: bool = True) -> None:
        self.weight = torch.randn((fan_in, fan_out), generator=g) / fan_in**0.5
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.weight
        return out + self.bias if self.bias is not None else out

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])


class BatchNorm1d(Layer):
    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.eps, self.momentum = eps, momentum
        self.gamma, self.beta = torch.ones(dim), torch.zeros(dim)
        self.running_mean, self.running_var = torch.zeros(dim), torch.ones(dim)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dim = 0 if x.ndim == 2 else (0, 1)
        xmean, xvar = x.mean(dim, keepdim=True), x.var(dim, keepdim=True)
        out = self.gamma * (x - xmean) / torch.sqrt(xvar + self.eps) + self.beta
        with torch.no_grad():
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * xmean
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * xvar
        return out

    def parameters(self) -> list[torch.Tensor]:
        return [self.gamma, self.beta]


class Tanh(Layer):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


def measure(steps: int, warmup: int = 200) -> dict[str, Any]:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2147483647)
    data = load_dataset(None, 8)
    V, E, H = data.vocab.size, 24, 128
    layers: list[Any] = [Embedding(V, E, g)]
    for fan_in in (2 * E, 2 * H, 2 * H):
        layers += [FlattenConsecutive(2), Linear(fan_in, H, g, bias=False), BatchNorm1d(H), Tanh()]
    layers.append(Linear(H, V, g))
    with torch.no_grad():
        layers[-1].weight *= 0.1  # the last layer less confident, as in the lecture
    params = [p for layer in layers for p in layer.parameters()]
    for p in params:
        p.requires_grad = True
    t0 = c0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0, c0 = time.perf_counter(), time.thread_time()
        ix = torch.randint(0, data.Xtr.shape[0], (32,), generator=g)
        x: Any = data.Xtr[ix]
        for layer in layers:
            x = layer(x)
        loss = F.cross_entropy(x, data.Ytr[ix])
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data += -0.1 * p.grad  # type: ignore[operator]
    cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
    return {"steps": steps, "params": sum(p.numel() for p in params), "steps_per_s": steps / cpu,
            "wall_steps_per_s": steps / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    doc = measure(args.steps)
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"lecture-style autograd WaveNet ({doc['params']} parameters): {doc['steps_per_s']:.0f} steps/s by the "
              f"thread's CPU time, {doc['wall_steps_per_s']:.0f} by wall time")


if __name__ == "__main__":
    main()
