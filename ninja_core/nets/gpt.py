"""A small character-level GPT with llm.c's layer set: the transformer's backward, node by node.

    tok_emb = wte[Xb] -> encoded = tok_emb + wpe                                   (B, T, C)
    for each layer l:
        ln1_l      = layernorm(residual)          ln1_mean_l .. ln1_norm_l, ln1_l
        qkv_l      = ln1_l @ qkvw_l.T + qkvb_l                                      (B, T, 3C)
        q_l, k_l, v_l = the heads of each third of qkv_l                           (B, nh, T, hs)
        scores_l   = q_l @ k_l.transpose(-2, -1);  preatt_l = scores_l * scale      (B, nh, T, T)
        preatt_masked_l = causal mask;  att_l = softmax    att_maxes_l .. att_counts_sum_inv_l, att_l
        y_l        = att_l @ v_l;  atty_l = the heads merged                        (B, T, C)
        attproj_l  = atty_l @ attprojw_l.T + attprojb_l;  residual2_l = residual + attproj_l
        ln2_l      = layernorm(residual2_l)
        fch_l      = ln2_l @ fcw_l.T + fcb_l                                        (B, T, 4C)
        fch_gelu_l = GELU (tanh approximation)    fch_cube_l, fch_inner_l, fch_tanh_l
        fcproj_l   = fch_gelu_l @ fcprojw_l.T + fcprojb_l;  residual3_l = residual2_l + fcproj_l
    lnf = layernorm(residual3_last) -> logits = lnf.view(-1, C) @ wte.T (B*T, V) -> the lecture's cross-entropy

GPT-2's pre-LayerNorm block as llm.c's train_gpt2.c writes it (gpt2_forward, gpt2_backward), with
its activation and parameter names. Every primitive is a node in the chain variant: layernorm is
decomposed like the lecture's batchnorm, the attention softmax like its cross-entropy, GELU into
cube, inner and tanh. The fused variant has llm.c's one-step backwards: layernorm_backward, the
softmax of attention_backward, gelu_backward, and the lecture's fused cross-entropy. The output
layer is the token table itself (weight tying, as GPT-2, nanoGPT and llm.c), so dwte gathers two
gradients. The loss tail is the MLP's seven cross-entropy nodes on (B*T, V) logits: n = B*T.

Names: llm.c's name, then the layer: `ln1_0`, `qkvw_1`. The layer always follows an underscore, so
`ln1_0` (layernorm 1 of layer 0) never reads as a `ln10`, and `dln1_0` reads as llm.c's
`grads_acts.ln1` of layer 0. The final layernorm (`lnf`, `lnfw`) and the tail have no layer.

Data: the words of the training split joined into one stream, each word followed by "." as in the
MLP's targets ("emma.olivia.ava."), cut into windows of block_size characters; every position
predicts the character after it (nanoGPT's character-level scheme). Every target is one of the
characters the MLP predicts, each word's letters and its ending ".", so the loss is per character
and comparable with the MLP's; no position is padding, so no target is ignored and n = B*T is
fixed. Xb is (B, T), Yb the B*T targets flattened as the logits are (nanoGPT's targets.view(-1)).
A window may start inside a word or reach back into the previous one (a "." says where a word
starts); an evaluation that wants each target once with its longest context slides the window
one position at a time and scores its last position.

Defaults: block_size 8 (the WaveNet's context), n_embd 32 with 4 heads of 8 channels, 2 layers (so
the second block's backward runs through the first one's residual stream), batch 32 (the
lecture's): 121 gradients (93 intermediates, 28 parameters) of 26 592 parameters, so a full check
is instant on the page (its median time: scripts/bench_engine.py --only gpt).

Initialisation: GPT-2's (nanoGPT's _init_weights and llm.c's): weights normal(0, 0.02), the two
residual projections (attprojw, fcprojw) scaled by 1/sqrt(2*n_layer), biases 0. The layernorm
gains are drawn near 1 (1 + 0.1 * normal) instead of exactly 1, as the MLP and the WaveNet do for
batchnorm: a gain of exactly 1 would let a backward that forgets it pass. Every draw comes from the
config's generator, in the order of `params`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from ..config import ConfigError
from ..i18n import german, tr
from ..tape import Step, Tape
from .base import TORCH_DTYPES, Network, Params, Recipe, Size, resolve_device
from .layers import cross_entropy, fused_cross_entropy
from .transformer import (
    add_positions,
    attend,
    causal_mask,
    fused_gelu,
    fused_layernorm,
    fused_softmax,
    gelu,
    layernorm,
    lm_head,
    matmul,
    merge_heads,
    residual,
    scale_scores,
    scores,
    softmax,
    split_heads,
    token_embedding,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from .shared_train import TrainStep

MAX_POSITIONS = 32  # rows of the largest position table (wpe) a config may ask for

german({
    "GPT (llm.c's layers)": 'GPT (die Schichten von llm.c)',
    'sequences per minibatch B; the loss averages over n = B*T positions':
        'Sequenzen pro Minibatch B; der Loss mittelt über n = B*T Positionen',
    'channels C of the residual stream (divisible by n_head)': 'Kanäle C des Residualstroms (durch n_head teilbar)',
    'context length T: rows of the position table wpe': 'Kontextlänge T: Zeilen der Positionstabelle wpe',
    'attention heads; each gets n_embd / n_head channels': 'Attention-Köpfe; jeder bekommt n_embd / n_head Kanäle',
    'transformer blocks': 'Transformer-Blöcke',
})


german({
    "n_embd {n_embd} is not divisible by n_head {n_head}: each head gets n_embd / n_head channels":
        "n_embd {n_embd} ist nicht durch n_head {n_head} teilbar: jeder Kopf bekommt n_embd / n_head Kanäle",
    "block_size {value} is beyond the position table: wpe has one row per position and at most {hi} rows here":
        "block_size {value} geht über die Positionstabelle hinaus: wpe hat eine Zeile pro Position und hier "
        "höchstens {hi} Zeilen",
})

LAYER_PARAMS = ("ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb")


def block(l: int, x: str) -> list[Step]:
    """Layer `l` of the GPT, reading the residual stream `x`: attention, then the MLP (both pre-LN)."""
    s = f"_{l}"
    return [
        # attention: x + attproj(attention(ln1(x)))
        *layernorm(x, "ln1", f"ln1w{s}", f"ln1b{s}", s, residual=True),  # ln1_mean_l .. ln1_l (B, T, C)
        matmul(f"qkv{s}", f"ln1{s}", f"qkvw{s}", f"qkvb{s}", "3*C", "C"),  # (B, T, 3C)
        split_heads(f"q{s}", f"qkv{s}", "q", first=False),  # (B, nh, T, hs)
        split_heads(f"k{s}", f"qkv{s}", "k", first=False),
        split_heads(f"v{s}", f"qkv{s}", "v", first=True),  # the backward meets v first
        scores(f"scores{s}", f"q{s}", f"k{s}"),  # (B, nh, T, T)
        scale_scores(f"preatt{s}", f"scores{s}"),  # (B, nh, T, T) llm.c's preatt: scaled
        causal_mask(f"preatt_masked{s}", f"preatt{s}"),  # -inf above the diagonal
        *softmax(f"preatt_masked{s}", "att", s),  # att_maxes_l .. att_l (B, nh, T, T)
        attend(f"y{s}", f"att{s}", f"v{s}"),  # (B, nh, T, hs)
        merge_heads(f"atty{s}", f"y{s}"),  # (B, T, C)
        matmul(f"attproj{s}", f"atty{s}", f"attprojw{s}", f"attprojb{s}", "C", "C"),  # (B, T, C)
        residual(f"residual2{s}", x, f"attproj{s}", first=True),  # (B, T, C)
        # MLP: residual2 + fcproj(gelu(fc(ln2(residual2))))
        *layernorm(f"residual2{s}", "ln2", f"ln2w{s}", f"ln2b{s}", s, residual=True),  # ln2_l (B, T, C)
        matmul(f"fch{s}", f"ln2{s}", f"fcw{s}", f"fcb{s}", "4*C", "C"),  # (B, T, 4C)
        *gelu(f"fch{s}", f"fch_gelu{s}", s),  # fch_cube_l, fch_inner_l, fch_tanh_l, fch_gelu_l (B, T, 4C)
        matmul(f"fcproj{s}", f"fch_gelu{s}", f"fcprojw{s}", f"fcprojb{s}", "C", "4*C"),  # (B, T, C)
        residual(f"residual3{s}", f"residual2{s}", f"fcproj{s}", first=True),  # (B, T, C)
    ]


class GPT(Network):
    name = "gpt"
    title = tr("GPT (llm.c's layers)")
    # The ranges keep the largest activation at the MLP's largest (4096 x 1024 = 4.2M entries): at the
    # maxima fch (256, 32, 4*128) and att (256, 16, 32, 32) both hold 4.2M. One layer is 50 gradients.
    sizes = (
        Size("batch_size", 32, 1, 256, "b", tr("sequences per minibatch B; the loss averages over n = B*T positions")),
        Size("n_embd", 32, 1, 128, "e", tr("channels C of the residual stream (divisible by n_head)")),
        Size("block_size", 8, 1, MAX_POSITIONS, "k", tr("context length T: rows of the position table wpe")),
        Size("n_head", 4, 1, 16, "nh", tr("attention heads; each gets n_embd / n_head channels")),
        Size("n_layer", 2, 1, 6, "nl", tr("transformer blocks")),
    )
    # Training: the check's sizes with block_size 16 (26 592 -> 26 848 parameters), 32 windows of 16
    # characters a step (512 predictions), 40 000 AdamW steps, lr 1e-3 then 1e-4 from step 30 000,
    # weight decay 0.1 on the matrices (nanoGPT's), torch's betas. Why, measured here on one thread:
    # - block 16 not 8: the evaluation slides windows block_size // 2 apart, so every scored
    #   character sees at least 9 characters (a whole name, mostly) rather than 5;
    # - n_embd 32, not the autograd reference's 64: at 64 the four matmuls of a layer
    #   dominate both sides, and the manual step is 221 steps/s against autograd's 184 (1.20x); at 32
    #   it is ~570 against ~380 (1.5x, `bench --net gpt`), and 40 000 of its steps reach val 2.014 in
    #   71 s (167 s at load average 5; evaluation and samples included), which leaves room under the
    #   issue's 5 minutes on a busy machine;
    # - lr 1e-3 with a tenfold drop for the last quarter: 40 000 steps at 2e-3 -> 2e-4 gave val
    #   2.017, at 1e-3 -> 1e-4 val 2.014, at the issue reference's constant 5e-4 val 2.040.
    recipe = Recipe(steps=40_000, batch_size=32, lr=1e-3, lr_decay_at=0.75, lr_decayed=1e-4, optimizer="adamw",
                    weight_decay=0.1, sizes=(("block_size", 16),))
    steps_per_s = 150.0  # bench: ~580; in a stream with its audits and statistics ~150

    # At GPT-2's initialisation the residual stream is ~0.03 in scale, and each layernorm divides it by
    # that: the loss bends on a scale of ~0.03 in the residual parameters (attprojb, wpe). The default
    # step 3e-3 is a tenth of that; measured over 8 seeds its 4th-order truncation error reached 2.1e-6
    # (attprojb_0, seed 7), against <= 1.7e-8 with 1e-3; the MLP keeps 3e-3 (its b1 noise grows as 1/h).
    fd_step = 1e-3

    def check_sizes(self, values: dict[str, int]) -> None:
        """Each size's range, then the rules across sizes. Raises ConfigError naming the rule."""
        if values["block_size"] > MAX_POSITIONS:
            raise ConfigError("block_size", tr("block_size {value} is beyond the position table: wpe has one row per "
                                               "position and at most {hi} rows here", value=values["block_size"],
                                               hi=MAX_POSITIONS))
        super().check_sizes(values)
        if values["n_embd"] % values["n_head"]:
            raise ConfigError("n_head", tr("n_embd {n_embd} is not divisible by n_head {n_head}: each head gets "
                                           "n_embd / n_head channels", n_embd=values["n_embd"], n_head=values["n_head"]))

    def arch(self, cfg: Config) -> tuple[int, ...]:
        return (cfg.n_layer,)

    def build_tape(self, arch: tuple[int, ...]) -> Tape:
        (n_layer,) = arch
        steps: list[Step] = [
            token_embedding("tok_emb", "wte", "Xb", tied=True),  # (B, T, C)
            add_positions("encoded", "tok_emb", "wpe"),  # (B, T, C) llm.c's encoder_forward
        ]
        x = "encoded"
        for l in range(n_layer):
            steps += block(l, x)
            x = f"residual3_{l}"
        steps += [
            *layernorm(x, "lnf", "lnfw", "lnfb"),  # lnf_mean .. lnf (B, T, C)
            lm_head("logits", "lnf", "wte"),  # (B*T, V)
            *cross_entropy(),  # logit_maxes .. logprobs (B*T, V), loss ()
        ]
        fused = [fused_cross_entropy(), fused_layernorm(x, "lnf", "lnfw")]
        for l in reversed(range(n_layer)):
            s = f"_{l}"
            fused += [
                fused_gelu(f"fch{s}", f"fch_gelu{s}", s),
                fused_layernorm(f"residual2{s}", "ln2", f"ln2w{s}", s, residual=True),
                fused_softmax(f"preatt{s}", f"preatt_masked{s}", "att", s),
                fused_layernorm("encoded" if l == 0 else f"residual3_{l - 1}", "ln1", f"ln1w{s}", s, residual=True),
            ]
        params = ("wte", "wpe", *(f"{p}_{l}" for l in range(n_layer) for p in LAYER_PARAMS), "lnfw", "lnfb")
        return Tape(steps=tuple(steps), params=params, fused=tuple(fused))

    def init_params(self, cfg: Config, vocab_size: int, g: torch.Generator) -> Params:
        """GPT-2's initialisation (see the module docstring), drawn in the order of the tape's params."""
        std, proj_std = 0.02, 0.02 / math.sqrt(2 * cfg.n_layer)
        params: dict[str, torch.Tensor] = {}
        for name, shape in self.param_shapes(cfg, vocab_size).items():
            kind = name.rsplit("_", 1)[0] if name[-1].isdigit() else name
            if kind in ("ln1w", "ln2w", "lnfw"):
                params[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)  # near 1, not exactly 1
            elif kind.endswith("b"):
                params[name] = torch.zeros(shape)  # biases, layernorm biases: 0 (no draw)
            else:  # wte, wpe, qkvw, attprojw, fcw, fcprojw
                params[name] = torch.randn(shape, generator=g) * (proj_std if kind in ("attprojw", "fcprojw") else std)
        device = resolve_device(cfg.device)
        return {k: v.to(device=device, dtype=TORCH_DTYPES[cfg.dtype]) for k, v in params.items()}

    def param_shapes(self, cfg: Config, vocab_size: int) -> dict[str, tuple[int, ...]]:
        C, V = cfg.n_embd, vocab_size
        per_layer = {"ln1w": (C,), "ln1b": (C,), "qkvw": (3 * C, C), "qkvb": (3 * C,), "attprojw": (C, C),
                     "attprojb": (C,), "ln2w": (C,), "ln2b": (C,), "fcw": (4 * C, C), "fcb": (4 * C,),
                     "fcprojw": (C, 4 * C), "fcprojb": (C,)}
        shapes: dict[str, tuple[int, ...]] = {"wte": (V, C), "wpe": (cfg.block_size, C)}
        for l in range(cfg.n_layer):
            shapes.update({f"{p}_{l}": per_layer[p] for p in LAYER_PARAMS})
        shapes.update({"lnfw": (C,), "lnfb": (C,)})
        return shapes

    def batch(self, cfg: Config, data: Dataset, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """B windows of the training stream, drawn from `g` after the parameters: Xb (B, T), Yb (B*T,),
        Yb[b*T + t] the character after Xb[b, t]. The stream is the MLP's targets in order (every word
        and its ending "."), so it is the dataset's Ytr itself."""
        T = cfg.block_size
        stream = data.Ytr  # (N,) "emma.olivia.ava...."
        ix = torch.randint(0, stream.shape[0] - T, (cfg.batch_size,), generator=g)  # (B,) window starts
        pos = ix[:, None] + torch.arange(T)  # (B, T)
        device = resolve_device(cfg.device)
        return stream[pos].to(device), stream[pos + 1].reshape(-1).to(device)

    def batch_text(self, Xb: torch.Tensor, Yb: torch.Tensor, chars: tuple[str, ...]) -> list[dict[str, str]]:
        """Each window and the characters its positions should predict (the window shifted by one)."""
        targets = Yb.view(Xb.shape).tolist()
        return [{"context": "".join(chars[i] for i in ctx), "target": "".join(chars[i] for i in ys)}
                for ctx, ys in zip(Xb.tolist(), targets, strict=True)]

    def constants(self, cfg: Config, Xb: torch.Tensor) -> dict[str, Any]:
        """n = B*T (the rows the loss averages over), the sizes the formulas use (B, T, C, nh, hs),
        llm.c's scale = 1/sqrt(hs), and tril: (T, T) bool, True where position t may look (s <= t)."""
        B, T = Xb.shape
        C, nh = cfg.n_embd, cfg.n_head
        hs = C // nh
        tril = torch.ones(T, T, dtype=torch.bool, device=Xb.device).tril()
        return {"n": B * T, "B": B, "T": T, "C": C, "nh": nh, "hs": hs, "scale": 1.0 / math.sqrt(hs), "tril": tril}

    def constant_axes(self, name: str) -> tuple[str, ...]:
        # n = B*T positions: the loss averages over batch *and* time (dividing by B alone is a classic slip)
        return {"n": ("batch", "time"), "B": ("batch",), "T": ("time",), "C": ("channel",)}.get(name, ())

    def cells(self, cfg: Config) -> int:
        B, T, C = cfg.batch_size, cfg.block_size, cfg.n_embd
        return max(B * T * 4 * C, B * cfg.n_head * T * T)  # fch (B, T, 4C) or att (B, nh, T, T)

    def axes(self, name: str, rank: int) -> tuple[str, ...]:
        kind = name.rsplit("_", 1)[0] if name[-1].isdigit() else name
        if rank == 4:  # per head: q, k, v, y (B, nh, T, hs); attention: scores .. att (B, nh, T, T)
            return ("batch", "head", "time", "head channel") if kind in ("q", "k", "v", "y") else \
                ("batch", "head", "query time", "key time")
        if rank == 3:
            return ("batch", "time", "channel")
        if rank == 2:
            return _MATRIX_AXES.get(kind, ("output channel", "input channel") if kind.endswith("w") else
                                    ("position (batch·time)", "vocabulary"))  # logits .. logprobs (B*T, V)
        return ("channel",) if rank == 1 else ()

    # ---- training hooks (the code: gpt_train.py) ------------------------------------------------

    def train_step(self, cfg: Config, params: Params) -> TrainStep:
        from .gpt_train import GPTStep

        return GPTStep(cfg, params)

    def logits(self, cfg: Config, params: Params, X: torch.Tensor, stats: Params | None = None) -> torch.Tensor:
        from .gpt_train import logits

        return logits(cfg, params, X, stats)

    def eval_windows(self, cfg: Config, X: torch.Tensor, Y: torch.Tensor,
                     rows: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """Windows of the split's text Y, EVAL_STRIDE apart (see the module docstring); X is not read."""
        from .gpt_train import eval_windows

        return eval_windows(cfg, Y, rows, max(1, cfg.block_size // 2))

    def sample_context(self, cfg: Config, stop: int) -> list[int]:
        """One ".": a window of the training text that starts at a word's start (more "." in a row
        never occur in the text, so a window of them is nothing the GPT has seen)."""
        return [stop]


_MATRIX_AXES = {"wte": ("token", "channel"), "wpe": ("time", "channel")}


NET = GPT()
