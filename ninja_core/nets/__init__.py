"""The networks, found by name: one module per network, each defining one `Network` object.

    from ninja_core.nets import get_net
    net = get_net("wavenet")
    tape = net.tape(Config(net="wavenet"))
"""

from __future__ import annotations

from ..config import ConfigError
from ..i18n import tr
from . import gpt, mlp, wavenet
from .base import Network, Params, Recipe, Size, generator, resolve_device

NETS: dict[str, Network] = {net.name: net for net in (mlp.NET, wavenet.NET, gpt.NET)}


def get_net(name: str) -> Network:
    """The network called `name`. Raises ConfigError (field "net") naming the allowed ones."""
    try:
        return NETS[name]
    except (KeyError, TypeError):
        raise ConfigError("net", tr("unknown network {value}; the networks are: {allowed}", value=repr(name),
                                    allowed=", ".join(NETS))) from None


__all__ = ["NETS", "Network", "Params", "Recipe", "Size", "generator", "get_net", "resolve_device"]
