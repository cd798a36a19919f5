"""What every network provides (generic): its sizes, tape, parameters, minibatch and training recipe.

A network module (`nets/mlp.py`, `nets/wavenet.py`, ...) defines one subclass of `Network` and one
instance of it; `nets/__init__.py` finds it by name. Everything network-specific lives there;
the engine, the dojo, training, the CLI, the API and the page only ever call these methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..config import ConfigError
from ..i18n import german, localize, tr
from ..tape import Tape

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from .shared_train import TrainStep

Params = dict[str, torch.Tensor]
TORCH_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}

german({
    "must be in {lo}..{hi} for {net}, got {value}": "muss für {net} in {lo}..{hi} liegen, nicht {value}",
    "must be {lo} for {net} (fixed by its architecture), got {value}":
        "muss für {net} {lo} sein (durch die Architektur festgelegt), nicht {value}",
    "{net} has no {field}; its sizes are: {sizes}": "{net} hat kein {field}; seine Größen sind: {sizes}",
    "cuda was asked for, but torch sees no CUDA device here; use cpu":
        "cuda wurde verlangt, aber torch sieht hier kein CUDA-Gerät; nimm cpu",
})


@dataclass(frozen=True)
class Size:
    """One integer size of a network's config, with its default and allowed range."""

    name: str  # the Config field: batch_size, n_embd, n_hidden, block_size, n_head, n_layer
    default: int
    lo: int
    hi: int
    code: str  # its letter(s) in a run id: b, e, h, k, nh, nl
    help: str  # one line for --help and the API schema


@dataclass(frozen=True)
class Recipe:
    """How the network is trained by default (the lecture's recipe where it has one)."""

    steps: int  # optimizer steps
    batch_size: int
    lr: float  # learning rate until lr_decay_at
    lr_decay_at: float  # fraction of the steps after which the rate drops
    lr_decayed: float
    optimizer: str = "sgd"  # "sgd" (the lecture's p.data += -lr * grad) or "adamw"
    weight_decay: float = 0.0  # AdamW only
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW only (torch's defaults)
    sizes: tuple[tuple[str, int], ...] = ()  # sizes that differ from the gradient check's defaults


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", tr("cuda was asked for, but torch sees no CUDA device here; use cpu"))
    return torch.device(name)


def generator(cfg: Config) -> torch.Generator:
    """The one generator a config draws everything from: the parameters first, then the minibatch."""
    return torch.Generator().manual_seed(cfg.seed)


class Network:
    """Base class: one network's architecture, described for the generic engine."""

    name: ClassVar[str]  # the `net` value: "mlp"
    title: ClassVar[str]  # a short human title: "MLP (makemore part 4)"
    sizes: ClassVar[tuple[Size, ...]]  # batch_size first, then the network's own sizes
    recipe: ClassVar[Recipe]
    # the finite-difference step h of gradcheck (float64): small enough for the truncation error
    # (~h⁴) on the scale the loss bends on, large enough for rounding (~1e-16 · loss / h)
    fd_step: ClassVar[float] = 3e-3
    # manual-backward training steps/s at the recipe's sizes on one thread of a 2-core machine
    # (`bench --net`, rounded down): what a server estimates a training's time from until it has timed one
    steps_per_s: ClassVar[float] = 150.0

    # ---- config -------------------------------------------------------------------------------

    def size(self, name: str) -> Size | None:
        return next((s for s in self.sizes if s.name == name), None)

    def check_sizes(self, values: dict[str, int]) -> None:
        """Range of every size this network has; subclasses add rules across sizes. Raises ConfigError."""
        for s in self.sizes:
            value = values[s.name]
            if s.lo == s.hi and value != s.lo:
                raise ConfigError(s.name, tr("must be {lo} for {net} (fixed by its architecture), got {value}",
                                             lo=s.lo, net=self.name, value=value))
            if not s.lo <= value <= s.hi:
                raise ConfigError(s.name, tr("must be in {lo}..{hi} for {net}, got {value}", lo=s.lo, hi=s.hi,
                                             net=self.name, value=value))

    # ---- the network ----------------------------------------------------------------------------

    def tape(self, cfg: Config) -> Tape:
        """The forward pass with its local backward for this config (cached per architecture)."""
        return _tape(self, self.arch(cfg))

    def arch(self, cfg: Config) -> tuple[int, ...]:
        """The sizes that change the tape's steps (GPT: n_layer); () when the tape is always the same."""
        return ()

    def build_tape(self, arch: tuple[int, ...]) -> Tape:
        raise NotImplementedError

    def init_params(self, cfg: Config, vocab_size: int, g: torch.Generator) -> Params:
        """Every parameter, drawn from `g` in the tape's `params` order (float32 on the CPU, then
        converted, so a float64 run is the same network as the float32 run of its config)."""
        raise NotImplementedError

    def context_length(self, cfg: Config) -> int:
        """How many characters of context the network reads (the dataset's block_size)."""
        return cfg.block_size

    def batch(self, cfg: Config, data: Dataset, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The minibatch (Xb, Yb), drawn from `g` after the parameters (the lecture's way)."""
        ix = torch.randint(0, data.Xtr.shape[0], (cfg.batch_size,), generator=g)  # (B,)
        device = resolve_device(cfg.device)
        return data.Xtr[ix].to(device), data.Ytr[ix].to(device)  # (B, T), (B,)

    def batch_text(self, Xb: torch.Tensor, Yb: torch.Tensor, chars: tuple[str, ...]) -> list[dict[str, str]]:
        """The minibatch as text: each context and the character it should predict."""
        return [{"context": "".join(chars[i] for i in ctx), "target": chars[y]}
                for ctx, y in zip(Xb.tolist(), Yb.tolist(), strict=True)]

    def constants(self, cfg: Config, Xb: torch.Tensor) -> dict[str, Any]:
        """Numbers the formulas use besides tensors: at least `n`, the rows the loss averages over."""
        return {"n": Xb.shape[0]}

    def cells(self, cfg: Config) -> int:
        """The element count of the largest activation: what makes a run heavy for a server."""
        raise NotImplementedError

    def n_params(self, cfg: Config, vocab_size: int) -> int:
        shapes = self.param_shapes(cfg, vocab_size)
        total = 0
        for shape in shapes.values():
            count = 1
            for s in shape:
                count *= s
            total += count
        return total

    def param_shapes(self, cfg: Config, vocab_size: int) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape, without drawing it."""
        raise NotImplementedError

    def axes(self, name: str, rank: int) -> tuple[str, ...]:
        """What each dimension of a node's tensor means ("batch", "time", "channel", ...), for figures
        and diagnoses; () when the network does not say."""
        return ()

    def constant_axes(self, name: str) -> tuple[str, ...]:
        """The dimensions whose entries a constant of `constants()` counts ("n": the batch), so a
        diagnosis can say which dimension a wrong count leaves out; () when it counts none."""
        return ("batch",) if name == "n" else ()

    # ---- training (ninja_core.train calls these; the code lives in nets/<name>_train.py) -------

    def train_step(self, cfg: Config, params: Params) -> TrainStep | None:
        """The network's fast training step: forward and hand-written backward of a minibatch into
        preallocated gradients, no autograd (`shared_train.TrainStep`). `params` are copied into the
        step's own storage. None: the network has none yet, and training runs the tape's fused
        manual backward instead (correct, slower)."""
        return None

    def logits(self, cfg: Config, params: Params, X: torch.Tensor, stats: Params | None = None) -> torch.Tensor:
        """X (N, t) -> next-character logits, one row per prediction, in the order of the minibatch's
        targets: (N, V) for a network that predicts once per context (MLP, WaveNet: t =
        context_length), (N*t, V) for one that predicts at every position (the GPT: any t <=
        context_length); a sample's last row is its prediction after the whole context. The forward
        pass as written with autograd. stats None: batchnorm (if any) with the batch's statistics, as
        in training (the benchmark's autograd baseline runs this); else with `calibrate`'s
        statistics (evaluation, sampling)."""
        raise NotImplementedError

    def eval_windows(self, cfg: Config, X: torch.Tensor, Y: torch.Tensor,
                     rows: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """How evaluation covers a split: X (N, context_length), Y (N,) its contexts and targets (Y in
        order is the split's text, each word followed by "."). Yields (Xw (n, t), Yw, keep), n <= rows:
        inputs for `logits`, the targets of its rows, and how many of each sample's last predictions
        are scored (against the last `keep` targets of its row of Yw.view(n, -1)), such that every
        target of Y is scored exactly once: the loss is per character. Default: the split's own rows,
        one prediction each."""
        for i in range(0, X.shape[0], rows):
            yield X[i:i + rows], Y[i:i + rows], 1

    def sample_context(self, cfg: Config, stop: int) -> list[int]:
        """The context a sampled name starts from (`stop` is the separator's index); sampling appends
        each drawn character and keeps the last context_length. Default: context_length separators,
        the lecture's."""
        return [stop] * self.context_length(cfg)

    def calibrate(self, cfg: Config, params: Params, X: torch.Tensor) -> Params:
        """The statistics inference uses instead of the batch's, over a whole split X (N, T):
        batchnorm's mean and variance per layer. {} for a network without batchnorm."""
        return {}

    def calibration_shapes(self, cfg: Config) -> dict[str, tuple[int, ...]]:
        """Each statistic `calibrate` returns, with its shape (a model file is checked against it)."""
        return {}

    def calibration_variances(self, cfg: Config) -> tuple[str, ...]:
        """The statistics that are variances (never negative in a sound model file)."""
        return ()

    def tanh_nodes(self, cfg: Config) -> tuple[str, ...]:
        """The nodes whose saturation (|h| > 0.97) training reports; () when there is no tanh."""
        return ()

    def decays(self, name: str, shape: tuple[int, ...]) -> bool:
        """Whether AdamW's weight decay applies to this parameter: matrices (embeddings included) yes;
        biases and gains no, also when kept as (1, H) rows (nanoGPT's rule: decay what has >= 2 dims)."""
        return sum(1 for s in shape if s > 1) >= 2

    def describe(self, lang: str = "en") -> dict[str, Any]:
        """What a client needs to offer this network: its sizes with defaults and ranges, the title and
        each size's help in `lang` ("en" or "de")."""
        return {"name": self.name, "title": localize(self.title, lang),
                "sizes": [{"name": s.name, "default": s.default, "min": s.lo, "max": s.hi,
                           "help": localize(s.help, lang)} for s in self.sizes]}


@lru_cache(maxsize=32)
def _tape(net: Network, arch: tuple[int, ...]) -> Tape:
    return net.build_tape(arch)
