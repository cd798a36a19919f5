"""The one exception the dojo raises for anything wrong with a learner's code."""

from __future__ import annotations

from typing import Any, Literal

ErrorKind = Literal["forbidden", "limit", "timeout", "runtime", "syntax", "no_answer"]
ERROR_KINDS: tuple[str, ...] = ("forbidden", "limit", "timeout", "runtime", "syntax", "no_answer")


class DojoError(ValueError):
    """Something in the learner's code: refused before running (syntax, forbidden, some limits) or
    stopped while running (runtime, limit, timeout), or no answer found. `line` and `col` are
    1-based like an editor's, None when no place applies. A ValueError, so callers that already
    turn ValueErrors into "bad request" do the right thing without knowing the dojo."""

    def __init__(self, kind: ErrorKind, message: str, line: int | None = None, col: int | None = None) -> None:
        self.kind: ErrorKind = kind
        self.message = message
        self.line = line
        self.col = col
        super().__init__(self.text())

    def text(self) -> str:
        where = ""
        if self.line is not None:
            where = f"line {self.line}" + (f", column {self.col}" if self.col is not None else "") + ": "
        return where + self.message

    def at(self, line: int | None, col: int | None) -> DojoError:
        """This error, placed at (line, col) unless it already knows where it happened."""
        if self.line is None and line is not None:
            return DojoError(self.kind, self.message, line, col)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "line": self.line, "col": self.col, "text": self.text()}


class UnknownNodeError(ValueError):
    """The node asked for is not one of the 26 gradients (nor one of the seed notebook's aliases)."""
