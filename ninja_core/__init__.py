"""Backprop Ninja's engine: the lecture's MLP, its backward pass by hand, checked against autograd.

    import ninja_core as nc
    run = nc.check()                      # float32, chain: 26/26 bit-exact
    run                                   # the cmp table (HTML in Jupyter)
    run.figure("hprebn")                  # value, manual, autograd, |diff| as a plotly Figure
    nc.check(nc.Config(variant="fused", dtype="float64"))
    nc.train(nc.TrainConfig(steps=20_000)).samples   # SGD with the manual backward only
"""

from .compare import Comparison, compare
from .config import Config, ConfigError
from .data import DataError, Dataset, load_dataset, read_words
from .gradcheck import finite_differences
from .run import NodeResult, Run, check
from .tape import ALIASES, FUSED_BLOCKS, MLP_TAPE, PARAMS, backward_order, resolve
from .train import TrainConfig, TrainResult, iter_training, load_model, train

__version__ = "0.1.0"

__all__ = [
    "ALIASES",
    "FUSED_BLOCKS",
    "MLP_TAPE",
    "PARAMS",
    "Comparison",
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "NodeResult",
    "Run",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "backward_order",
    "check",
    "compare",
    "finite_differences",
    "iter_training",
    "load_dataset",
    "load_model",
    "read_words",
    "resolve",
    "train",
]
