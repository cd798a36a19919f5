"""The lecture's MLP (makemore part 4, "becoming a backprop ninja"): the reference network.

    emb -> embcat -> hprebn -> batchnorm (bnmeani .. bnraw) -> hpreact -> h -> logits -> cross-entropy

Exactly the lecture's network and variable names (DESIGN.md has the table): three characters of
context, an embedding C, one hidden layer W1, b1 with batchnorm (bngain, bnbias; Bessel's n-1 in
the variance) and tanh, an output layer W2, b2. 26 gradients: 19 intermediates and 7 parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..i18n import german, tr
from ..tape import Tape
from .base import TORCH_DTYPES, Network, Params, Recipe, Size, resolve_device
from .layers import batchnorm, cross_entropy, embedding, fused_batchnorm, fused_cross_entropy, linear, tanh, view

if TYPE_CHECKING:
    from ..config import Config
    from .shared_train import TrainStep

german({
    'MLP (makemore part 4)': 'MLP (makemore Teil 4)',
    "minibatch size n (batchnorm's Bessel correction divides by n - 1)":
        'Minibatch-Größe n (Batchnorms Bessel-Korrektur teilt durch n - 1)',
    "dimensions of each character's embedding vector": 'Dimensionen des Embedding-Vektors jedes Zeichens',
    'hidden units (the lecture uses 64 for the exercise, 200 for training)':
        'versteckte Einheiten (die Vorlesung nimmt 64 für die Übung, 200 fürs Training)',
    'context length: how many characters predict the next one':
        'Kontextlänge: wie viele Zeichen das nächste vorhersagen',
})


german({
    "The lecture wrote (-dbndiff).sum(0): shape (H,) instead of (1, H). Its cmp compared with == and allclose, "
    "which broadcast, and printed 'exact' anyway.":
        "Die Vorlesung schrieb (-dbndiff).sum(0): Form (H,) statt (1, H). Ihr cmp verglich mit == und allclose, "
        "die broadcasten, und meldete trotzdem 'exact'.",
})


class MLP(Network):
    name = "mlp"
    title = tr("MLP (makemore part 4)")
    sizes = (
        Size("batch_size", 32, 2, 4096, "b", tr("minibatch size n (batchnorm's Bessel correction divides by n - 1)")),
        Size("n_embd", 10, 1, 64, "e", tr("dimensions of each character's embedding vector")),
        Size("n_hidden", 64, 1, 1024, "h", tr("hidden units (the lecture uses 64 for the exercise, 200 for training)")),
        Size("block_size", 3, 1, 8, "k", tr("context length: how many characters predict the next one")),
    )
    # The lecture's training: 200 000 SGD steps, batch 32, lr 0.1 then 0.01 after half, n_hidden 200.
    recipe = Recipe(steps=200_000, batch_size=32, lr=0.1, lr_decay_at=0.5, lr_decayed=0.01, sizes=(("n_hidden", 200),))
    steps_per_s = 4_000.0  # bench: ~14 000 at n_hidden 64; a stream's audits and statistics cost their share

    def build_tape(self, arch: tuple[int, ...]) -> Tape:
        steps = (
            embedding("emb", "C", "Xb"),  # (B, T, E)
            view("embcat", "emb", "emb.view(emb.shape[0], -1)", lambda v: (v["emb"].shape[0], -1)),  # (B, T*E)
            linear("hprebn", "embcat", "W1", "b1"),  # (B, H)
            *batchnorm("hprebn", "hpreact", "bngain", "bnbias", "n", mean_note=tr(
                "The lecture wrote (-dbndiff).sum(0): shape (H,) instead of (1, H). Its cmp compared with == and "
                "allclose, which broadcast, and printed 'exact' anyway.")),  # bnmeani .. hpreact (B, H)
            tanh("h", "hpreact"),  # (B, H)
            linear("logits", "h", "W2", "b2"),  # (B, V)
            *cross_entropy(),  # logit_maxes .. logprobs (B, V), loss ()
        )
        return Tape(
            steps=steps,
            params=("C", "W1", "b1", "W2", "b2", "bngain", "bnbias"),
            fused=(fused_cross_entropy(), fused_batchnorm("hprebn", "hpreact", "bngain", "n")),
            aliases={"zprebn": "hprebn", "apreact": "hpreact", "a": "h"},  # the seed notebook's names
        )

    def init_params(self, cfg: Config, vocab_size: int, g: torch.Generator) -> Params:
        """The lecture's initialisation, drawn in this order: C, W1, b1, W2, b2, bngain, bnbias."""
        fan_in = cfg.n_embd * cfg.block_size
        C = torch.randn((vocab_size, cfg.n_embd), generator=g)  # (V, E)
        W1 = torch.randn((fan_in, cfg.n_hidden), generator=g) * (5 / 3) / fan_in**0.5  # (T*E, H), tanh gain
        b1 = torch.randn(cfg.n_hidden, generator=g) * 0.1  # (H,) useless under batchnorm, kept as in the lecture
        W2 = torch.randn((cfg.n_hidden, vocab_size), generator=g) * 0.1  # (H, V) small: near-uniform first guess
        b2 = torch.randn(vocab_size, generator=g) * 0.1  # (V,)
        bngain = torch.randn((1, cfg.n_hidden), generator=g) * 0.1 + 1.0  # (1, H) not exactly 1, to expose bugs
        bnbias = torch.randn((1, cfg.n_hidden), generator=g) * 0.1  # (1, H) not exactly 0, likewise
        params = {"C": C, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "bngain": bngain, "bnbias": bnbias}
        device = resolve_device(cfg.device)
        return {k: v.to(device=device, dtype=TORCH_DTYPES[cfg.dtype]) for k, v in params.items()}

    def param_shapes(self, cfg: Config, vocab_size: int) -> dict[str, tuple[int, ...]]:
        E, H, T, V = cfg.n_embd, cfg.n_hidden, cfg.block_size, vocab_size
        return {"C": (V, E), "W1": (T * E, H), "b1": (H,), "W2": (H, V), "b2": (V,), "bngain": (1, H), "bnbias": (1, H)}

    def cells(self, cfg: Config) -> int:
        return cfg.batch_size * cfg.n_hidden  # hprebn .. h, the activations a server reduces for display

    def axes(self, name: str, rank: int) -> tuple[str, ...]:
        return ("batch", "time", "channel") if rank == 3 else ()

    # ---- training hooks (the code: mlp_train.py) ------------------------------------------------

    def train_step(self, cfg: Config, params: Params) -> TrainStep:
        from .mlp_train import MLPStep

        return MLPStep(cfg, params)

    def logits(self, cfg: Config, params: Params, X: torch.Tensor, stats: Params | None = None) -> torch.Tensor:
        from .mlp_train import logits

        return logits(cfg, params, X, stats)

    def calibrate(self, cfg: Config, params: Params, X: torch.Tensor) -> Params:
        from .mlp_train import calibrate

        return calibrate(cfg, params, X)

    def calibration_shapes(self, cfg: Config) -> dict[str, tuple[int, ...]]:
        return {"bnmean": (1, cfg.n_hidden), "bnvar": (1, cfg.n_hidden)}

    def calibration_variances(self, cfg: Config) -> tuple[str, ...]:
        return ("bnvar",)

    def tanh_nodes(self, cfg: Config) -> tuple[str, ...]:
        return ("h",)


NET = MLP()
