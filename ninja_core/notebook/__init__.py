"""Backprop Ninja in the learner's own notebook: judge the cell they just wrote.

    from ninja_core import cmp, judge
    cmp("dh", dh, h)          # the lecture's cmp line, shape-checked, None-safe, with status and diagnosis
    judge(globals())          # every d<name> of the notebook, end to end and locally, as the page's table
    judge(globals()).widget() # the table, the forward graph and the selected node's heatmaps (anywidget)
    widget(check())           # the same view of a check() run

judge and cmp need torch only; the widget needs the notebook extra (`pip install 'backprop-ninja[notebook]'`:
anywidget, ipywidgets). How each decides what it can see: judging.py, lecture_cmp.py, history.py.
"""

from __future__ import annotations

from typing import Any

from .judging import Judgement, Row, judge
from .lecture_cmp import CmpLine, cmp, cmp_line
from .namespace import Found, JudgeError, find
from .rerun import ForwardCheck, Rebuilt, rebuild


def widget(result: Any) -> Any:
    """The interactive view of a judge() result or a check() run (needs anywidget)."""
    from .widget import NinjaWidget

    return NinjaWidget.of(result)


__all__ = ["CmpLine", "ForwardCheck", "Found", "JudgeError", "Judgement", "Rebuilt", "Row", "cmp", "cmp_line", "find",
           "judge", "rebuild", "widget"]
