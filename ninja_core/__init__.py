"""Backprop Ninja's engine: backward passes written by hand, node by node, checked against autograd.

    import ninja_core as nc
    run = nc.check()                      # the lecture's MLP, float32, chain: 26/26 bit-exact
    nc.check(nc.Config(net="wavenet"))    # the lecture's WaveNet (makemore part 5)
    run                                   # the cmp table (HTML in Jupyter)
    run.figure("hprebn")                  # value, manual, autograd, |diff| as a plotly Figure
    nc.check(nc.Config(variant="fused", dtype="float64"))
    nc.train(nc.TrainConfig(steps=20_000)).samples   # SGD with the manual backward only
    nc.judge(globals())                   # in your own notebook: every d<name> you defined, judged
    nc.cmp("dh", dh, h)                   # the lecture's cmp, shape-checked, None-safe, diagnosed
"""

from .compare import Comparison, compare
from .config import Config, ConfigError
from .data import DataError, Dataset, load_dataset, read_words
from .gradcheck import finite_differences
from .nets import NETS, Network, get_net
from .notebook import JudgeError, Judgement, cmp, judge, widget
from .run import NodeResult, Run, check
from .tape import FusedBlock, Grad, Step, Tape
from .train import TrainConfig, TrainResult, iter_training, load_model, train

__version__ = "0.1.0"

__all__ = [
    "NETS",
    "Comparison",
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "FusedBlock",
    "Grad",
    "JudgeError",
    "Judgement",
    "Network",
    "NodeResult",
    "Run",
    "Step",
    "Tape",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "check",
    "cmp",
    "compare",
    "finite_differences",
    "get_net",
    "iter_training",
    "judge",
    "load_dataset",
    "load_model",
    "read_words",
    "train",
    "widget",
]
