"""MIDI-B's rule for comparing text: lower-cased, numbers as numbers, the whole string first,
then meaningful word tokens (English stop words and punctuation dropped), each looked for in the
value as TCIA's validation program does."""

from __future__ import annotations

import re

# The common English stop-word list (as in NLTK's), which MIDI-B's validator drops.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing a an the and
but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here
there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now d ll m o re ve y ain aren couldn didn
doesn hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn
""".split())
# A token: a number (signed, decimal) or a run of letters and digits in any script.
TOKEN = re.compile(r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)|[^\W_]+")
NUMBER = re.compile(r"\d*\.?\d+")


def _number(text: str) -> float | None:
    """The value of a text that is one unsigned number ("12", "12.0", ".5"), else None."""
    text = text.strip()
    return float(text) if NUMBER.fullmatch(text) else None


def meaningful_tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOP_WORDS]


def _kept(expected: str, value: str) -> list[bool]:
    """What of the expected text survives in the value, in MIDI-B's order: two numbers compare
    as numbers; the whole expected text found in the value survives whole; else each meaningful
    token of it is looked for in the value (a name glued to other letters is still there)."""
    expected, value = expected.lower(), value.lower()
    expected_number, value_number = _number(expected), _number(value)
    if expected_number is not None and value_number is not None:
        return [expected_number == value_number]
    if expected.strip() and expected in value:
        return [True]
    return [token in value for token in meaningful_tokens(expected)]


def is_retained(expected: str, value: str) -> bool:
    return all(_kept(expected, value))


def is_removed(original: str, value: str) -> bool:
    return not value.strip() or not any(_kept(original, value))
