"""Prose in English and German: notes, diagnoses and error messages that a learner reads.

`tr("off by a factor of {name}: {hint}", name=..., hint=...)` returns a `Text`: a `str` holding the
English sentence (so every caller that treats it as a string keeps working) that also remembers its
template and arguments, so `localize(text, "de")` can render the same sentence from the German
template. The English template is the key (gettext's convention); each module registers the German
templates of its own sentences with `german({...})` beside them, and a test checks that every
`tr(...)` template in the code has one. Formulas and code are never translated.

Arguments that are themselves `Text` are rendered in the same language, so sentences can nest.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Literal

Lang = Literal["en", "de"]
LANGS: tuple[str, ...] = ("en", "de")

_GERMAN: dict[str, str] = {}


class _GermanNumbers(string.Formatter):
    """Fields with a thousands separator (`{n:,}`) in German style: 8.820.651, 1.234,5."""

    def format_field(self, value: Any, format_spec: str) -> str:
        text = super().format_field(value, format_spec)
        return text.translate(str.maketrans(",.", ".,")) if "," in format_spec else text


_GERMAN_NUMBERS = _GermanNumbers()


class Text(str):
    """An English sentence that can be rendered in another language (see the module docstring)."""

    template: str
    args: dict[str, Any]

    def __new__(cls, template: str, args: Mapping[str, Any] | None = None) -> Text:
        values = dict(args or {})
        self = super().__new__(cls, template.format(**values) if values else template)
        self.template = template
        self.args = values
        return self

    def to(self, lang: str) -> str:
        """This sentence in `lang` (English when no translation is registered)."""
        if lang == "en":
            return str.__str__(self)
        template = _GERMAN.get(self.template, self.template) if lang == "de" else self.template
        values = {k: localize(v, lang) for k, v in self.args.items()}
        if not values:
            return template
        return _GERMAN_NUMBERS.vformat(template, (), values) if lang == "de" else template.format(**values)

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (the dojo's process pool) keep the template
        return (Text, (self.template, self.args))


def tr(template: str, **args: Any) -> Text:
    """A translatable sentence: `template` is English with `{name}` fields (str.format syntax)."""
    return Text(template, args)


def german(templates: Mapping[str, str]) -> None:
    """Register German templates, keyed by their English template. Both must use the same fields."""
    _GERMAN.update(templates)


def has_german(template: str) -> bool:
    return template in _GERMAN


def localize(obj: Any, lang: str) -> Any:
    """`obj` with every `Text` inside it (lists, tuples, dict values) rendered in `lang`."""
    if isinstance(obj, Text):
        return obj.to(lang)
    if lang == "en" or isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, list):
        return [localize(x, lang) for x in obj]
    if isinstance(obj, tuple):
        return tuple(localize(x, lang) for x in obj)
    if isinstance(obj, dict):
        return {k: localize(v, lang) for k, v in obj.items()}
    return obj


def pick(lang: str | None) -> Lang:
    """`lang` if it is one of LANGS, else English."""
    return "de" if lang == "de" else "en"


german({
    "{names} ({count} names)": "{names} ({count} Namen)",
    "the closest of its {count}: {names}": "die nächsten seiner {count}: {names}",
})
# Up to this many names are listed whole in a message; beyond, the closest few (a GPT has 121 nodes).
LISTED_NAMES = 30


def name_choices(wrong: str, names: list[str]) -> Text:
    """The names to offer after an unknown `wrong` one: all of them when few, else the closest 5
    (difflib) and how many there are -- a banner naming 121 nodes helps nobody."""
    import difflib

    if len(names) <= LISTED_NAMES:
        return tr("{names} ({count} names)", names=", ".join(names), count=len(names))
    close = difflib.get_close_matches(wrong, names, n=5, cutoff=0.0)
    return tr("the closest of its {count}: {names}", count=len(names), names=", ".join(close))
