"""The lecture's hierarchical "WaveNet" (makemore part 5): three levels of pairs, then the output.

    emb (B, 8, E) -> x1 (B, 4, 2E) -> hprebn1 -> batchnorm over (0, 1) -> h1 (B, 4, H)
                  -> x2 (B, 2, 2H) -> hprebn2 -> batchnorm over (0, 1) -> h2 (B, 2, H)
                  -> x3 (B, 2H)    -> hprebn3 -> batchnorm over 0      -> h3 (B, H) -> logits -> cross-entropy

Each level is the lecture's FlattenConsecutive(2) (`x<k>`: two neighbouring positions side by
side), Linear without bias (`W<k>`), BatchNorm1d and Tanh; the last FlattenConsecutive leaves a
single position, which the lecture squeezes away, so level 3 is 2-D. The part-5 trap: batchnorm on
a 3-D input must reduce over batch *and* time, dims (0, 1) -- the lecture's first version reduced
over dim 0 only. Bessel's n-1 in the variance, as the lecture's torch.var. Names follow the MLP's
(hprebn, bnmeani .. bnraw, hpreact, h) with the level as suffix; n1 = n*4 and n2 = n*2 are how
many entries each level's statistics average over. 76 579 parameters at the defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..i18n import german, tr
from ..tape import Tape
from .base import TORCH_DTYPES, Network, Params, Recipe, Size, resolve_device
from .layers import batchnorm, cross_entropy, embedding, fused_batchnorm, fused_cross_entropy, linear, tanh, view

if TYPE_CHECKING:
    from ..config import Config
    from .shared_train import TrainStep

german({
    'WaveNet (makemore part 5)': 'WaveNet (makemore Teil 5)',
    "dimensions of each character's embedding vector": 'Dimensionen des Embedding-Vektors jedes Zeichens',
    'minibatch size n': 'Minibatch-Größe n',
    'hidden units of every level': 'versteckte Einheiten jeder Ebene',
    'context length: 8 characters, paired up by each of the three levels':
        'Kontextlänge: 8 Zeichen, von jeder der drei Ebenen paarweise zusammengefasst',
})


german({
    "Over batch and time, dims (0, 1): the mean of each channel over all {count} positions of the minibatch. "
    "Summing over dim 0 only (the lecture's first WaveNet) leaves one mean per time step, shape (1, {t}, H).":
        "Über Batch und Zeit, Dimensionen (0, 1): der Mittelwert jedes Kanals über alle {count} Positionen des "
        "Minibatches. Nur über Dimension 0 zu summieren (das erste WaveNet der Vorlesung) lässt einen Mittelwert "
        "pro Zeitschritt übrig, Form (1, {t}, H).",
})


def _mean_note(count: str, t: int) -> str:
    return tr("Over batch and time, dims (0, 1): the mean of each channel over all {count} positions of the "
              "minibatch. Summing over dim 0 only (the lecture's first WaveNet) leaves one mean per time step, "
              "shape (1, {t}, H).", count=count, t=t)


class WaveNet(Network):
    name = "wavenet"
    title = tr("WaveNet (makemore part 5)")
    sizes = (
        Size("batch_size", 32, 2, 1024, "b", tr("minibatch size n")),
        Size("n_embd", 24, 1, 64, "e", tr("dimensions of each character's embedding vector")),
        Size("n_hidden", 128, 1, 512, "h", tr("hidden units of every level")),
        Size("block_size", 8, 8, 8, "k", tr("context length: 8 characters, paired up by each of the three levels")),
    )
    # The lecture's training: 200 000 SGD steps, batch 32, lr 0.1, then 0.01 after step 150 000.
    recipe = Recipe(steps=200_000, batch_size=32, lr=0.1, lr_decay_at=0.75, lr_decayed=0.01)
    steps_per_s = 900.0  # bench: ~2 800; in a stream with its audits ~900

    def build_tape(self, arch: tuple[int, ...]) -> Tape:
        steps = (
            embedding("emb", "C", "Xb"),  # (B, 8, E)
            # level 1: FlattenConsecutive(2) -> Linear -> BatchNorm1d over (0, 1) -> Tanh
            view("x1", "emb", "emb.view(emb.shape[0], emb.shape[1]//2, -1)",
                 lambda v: (v["emb"].shape[0], v["emb"].shape[1] // 2, -1)),  # (B, 4, 2E)
            linear("hprebn1", "x1", "W1", rank=3),  # (B, 4, H)
            *batchnorm("hprebn1", "hpreact1", "bngain1", "bnbias1", "n1", (0, 1), "1", param_keepdim=False,
                       mean_note=_mean_note("n1", 4)),
            tanh("h1", "hpreact1"),  # (B, 4, H)
            # level 2
            view("x2", "h1", "h1.view(h1.shape[0], h1.shape[1]//2, -1)",
                 lambda v: (v["h1"].shape[0], v["h1"].shape[1] // 2, -1)),  # (B, 2, 2H)
            linear("hprebn2", "x2", "W2", rank=3),  # (B, 2, H)
            *batchnorm("hprebn2", "hpreact2", "bngain2", "bnbias2", "n2", (0, 1), "2", param_keepdim=False,
                       mean_note=_mean_note("n2", 2)),
            tanh("h2", "hpreact2"),  # (B, 2, H)
            # level 3: the last pair flattens to one position, squeezed away as in the lecture
            view("x3", "h2", "h2.view(h2.shape[0], -1)", lambda v: (v["h2"].shape[0], -1)),  # (B, 2H)
            linear("hprebn3", "x3", "W3"),  # (B, H)
            *batchnorm("hprebn3", "hpreact3", "bngain3", "bnbias3", "n", (0,), "3", param_keepdim=False),
            tanh("h3", "hpreact3"),  # (B, H)
            linear("logits", "h3", "W4", "b4"),  # (B, V)
            *cross_entropy(),  # logit_maxes .. logprobs (B, V), loss ()
        )
        return Tape(
            steps=steps,
            params=("C", "W1", "bngain1", "bnbias1", "W2", "bngain2", "bnbias2", "W3", "bngain3", "bnbias3", "W4", "b4"),
            fused=(
                fused_cross_entropy(),
                fused_batchnorm("hprebn3", "hpreact3", "bngain3", "n", (0,), "3"),
                fused_batchnorm("hprebn2", "hpreact2", "bngain2", "n2", (0, 1), "2"),
                fused_batchnorm("hprebn1", "hpreact1", "bngain1", "n1", (0, 1), "1"),
            ),
        )

    def init_params(self, cfg: Config, vocab_size: int, g: torch.Generator) -> Params:
        """The lecture's initialisation (Linear: randn / sqrt(fan_in), no tanh gain; the last layer
        scaled by 0.1; its bias 0), drawn layer by layer. The BatchNorm gains and biases are drawn
        near 1 and 0 (randn * 0.1) instead of exactly 1 and 0, as the MLP does: with gain 1 a
        backward that forgets the gain, and with bias 0 one that mixes it up, would still pass."""
        E, H, V = cfg.n_embd, cfg.n_hidden, vocab_size
        params: dict[str, torch.Tensor] = {"C": torch.randn((V, E), generator=g)}  # (V, E)
        for k, fan_in in ((1, 2 * E), (2, 2 * H), (3, 2 * H)):
            params[f"W{k}"] = torch.randn((fan_in, H), generator=g) / fan_in**0.5  # (2E or 2H, H)
            params[f"bngain{k}"] = torch.randn(H, generator=g) * 0.1 + 1.0  # (H,)
            params[f"bnbias{k}"] = torch.randn(H, generator=g) * 0.1  # (H,)
        params["W4"] = torch.randn((H, V), generator=g) / H**0.5 * 0.1  # (H, V) last layer less confident
        params["b4"] = torch.zeros(V)  # (V,)
        device = resolve_device(cfg.device)
        return {k: v.to(device=device, dtype=TORCH_DTYPES[cfg.dtype]) for k, v in params.items()}

    def param_shapes(self, cfg: Config, vocab_size: int) -> dict[str, tuple[int, ...]]:
        E, H, V = cfg.n_embd, cfg.n_hidden, vocab_size
        shapes: dict[str, tuple[int, ...]] = {"C": (V, E)}
        for k, fan_in in ((1, 2 * E), (2, 2 * H), (3, 2 * H)):
            shapes.update({f"W{k}": (fan_in, H), f"bngain{k}": (H,), f"bnbias{k}": (H,)})
        shapes.update({"W4": (H, V), "b4": (V,)})
        return shapes

    def constants(self, cfg: Config, Xb: torch.Tensor) -> dict[str, Any]:
        n = Xb.shape[0]
        return {"n": n, "n1": n * 4, "n2": n * 2}  # entries per batchnorm statistic at levels 1 and 2

    def cells(self, cfg: Config) -> int:
        return cfg.batch_size * 4 * max(cfg.n_hidden, 2 * cfg.n_embd)  # level 1: (B, 4, H)

    def axes(self, name: str, rank: int) -> tuple[str, ...]:
        return ("batch", "time", "channel") if rank == 3 else ()

    def constant_axes(self, name: str) -> tuple[str, ...]:
        # n1 = n*4 and n2 = n*2: the entries of batch *and* time that levels 1 and 2 average over
        return {"n": ("batch",), "n1": ("batch", "time"), "n2": ("batch", "time")}.get(name, ())

    # ---- training hooks (the code: wavenet_train.py) --------------------------------------------

    def train_step(self, cfg: Config, params: Params) -> TrainStep:
        from .wavenet_train import WaveNetStep

        return WaveNetStep(cfg, params)

    def logits(self, cfg: Config, params: Params, X: torch.Tensor, stats: Params | None = None) -> torch.Tensor:
        from .wavenet_train import logits

        return logits(cfg, params, X, stats)

    def calibrate(self, cfg: Config, params: Params, X: torch.Tensor) -> Params:
        from .wavenet_train import calibrate

        return calibrate(cfg, params, X)

    def calibration_shapes(self, cfg: Config) -> dict[str, tuple[int, ...]]:
        return {f"bn{stat}{k}": (cfg.n_hidden,) for k in (1, 2, 3) for stat in ("mean", "var")}

    def calibration_variances(self, cfg: Config) -> tuple[str, ...]:
        return ("bnvar1", "bnvar2", "bnvar3")

    def tanh_nodes(self, cfg: Config) -> tuple[str, ...]:
        return ("h1", "h2", "h3")


NET = WaveNet()
