"""The one exception the dojo raises for anything wrong with a learner's code."""

from __future__ import annotations

from typing import Any, Literal

from ..i18n import german, localize, tr

ErrorKind = Literal["forbidden", "limit", "timeout", "runtime", "syntax", "no_answer"]
ERROR_KINDS: tuple[str, ...] = ("forbidden", "limit", "timeout", "runtime", "syntax", "no_answer")

german({
    "line {line}, column {col}: {message}": "Zeile {line}, Spalte {col}: {message}",
    "line {line}: {message}": "Zeile {line}: {message}",
})


class DojoError(ValueError):
    """Something in the learner's code: refused before running (syntax, forbidden, some limits) or
    stopped while running (runtime, limit, timeout), or no answer found. `line` and `col` are
    1-based like an editor's, None when no place applies. A ValueError, so callers that already
    turn ValueErrors into "bad request" do the right thing without knowing the dojo. `message` is
    a translatable sentence (`ninja_core.i18n.Text`) where the dojo wrote it, torch's or Python's
    own words where they explain a runtime error."""

    def __init__(self, kind: ErrorKind, message: str, line: int | None = None, col: int | None = None) -> None:
        self.kind: ErrorKind = kind
        self.message = message
        self.line = line
        self.col = col
        self.events: list[Any] = []  # what the interpreter noticed before the error (trace.py)
        super().__init__(self.text())

    def text(self, lang: str = "en") -> str:
        """The message with its place ("line 3, column 5: ..."), in `lang`."""
        return localize(self.sentence(), lang)

    def sentence(self) -> str:
        """The message with its place as a translatable sentence (a Text: English until localized)."""
        if self.line is None:
            return self.message
        if self.col is None:
            return tr("line {line}: {message}", line=self.line, message=self.message)
        return tr("line {line}, column {col}: {message}", line=self.line, col=self.col, message=self.message)

    def at(self, line: int | None, col: int | None) -> DojoError:
        """This error, placed at (line, col) unless it already knows where it happened."""
        if self.line is None and line is not None:
            placed = DojoError(self.kind, self.message, line, col)
            placed.events = self.events
            return placed
        return self

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {"kind": self.kind, "message": localize(self.message, lang), "line": self.line, "col": self.col,
                "text": self.text(lang)}

    def __reduce__(self) -> tuple[Any, ...]:  # pickles keep kind and place (ValueError's own keeps only args)
        return (DojoError, (self.kind, self.message, self.line, self.col))


class UnknownNodeError(ValueError):
    """The node asked for is not one of the network's gradients (nor one of its aliases)."""
