"""The translatable-sentence mechanism: English by default, German where registered, nesting."""

import pickle

from ninja_core.i18n import Text, german, localize, tr


def test_text_is_its_english_sentence_and_renders_german():
    german({"test: {n} of {total} entries differ": "Test: {n} von {total} Einträgen weichen ab"})
    text = tr("test: {n} of {total} entries differ", n=3, total=10)
    assert text == "test: 3 of 10 entries differ"
    assert isinstance(text, str)
    assert text.to("de") == "Test: 3 von 10 Einträgen weichen ab"
    assert text.to("en") == "test: 3 of 10 entries differ"


def test_nested_text_and_containers_are_localized():
    german({"test inner": "Test innen", "test outer: {inner}": "Test außen: {inner}"})
    outer = tr("test outer: {inner}", inner=tr("test inner"))
    assert outer == "test outer: test inner"
    assert localize({"a": [outer, "plain"], "b": 1}, "de") == {"a": ["Test außen: Test innen", "plain"], "b": 1}


def test_untranslated_falls_back_to_english_and_pickles():
    text = tr("test never translated {x}", x=1)
    assert text.to("de") == "test never translated 1"
    again = pickle.loads(pickle.dumps(text))
    assert isinstance(again, Text) and again == text and again.template == text.template


def test_german_numbers_group_thousands_with_points() -> None:
    """A German reader sees 8.820.651-mal, not the English 8,820,651; plain fields are left as they are."""
    german({"{n:,} of {m}; {x:,.1f}": "{n:,} von {m}; {x:,.1f}"})
    text = tr("{n:,} of {m}; {x:,.1f}", n=8820651, m=1234, x=1234.5)
    assert localize(text, "de") == "8.820.651 von 1234; 1.234,5"
    assert localize(text, "en") == "8,820,651 of 1234; 1,234.5"
