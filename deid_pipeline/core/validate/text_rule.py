"""MIDI-B's rule for comparing text: lower-cased, numbers as numbers, the whole string first,
then meaningful word tokens (English stop words and punctuation dropped)."""

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
TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def _normal(token: str) -> str:
    """Numbers compare as numbers: 007 and 7.0 are the same token."""
    try:
        number = float(token)
    except ValueError:
        return token
    return repr(int(number)) if number.is_integer() else repr(number)


def meaningful_tokens(text: str) -> list[str]:
    return [_normal(t) for t in TOKEN.findall(text.lower()) if t not in STOP_WORDS]


def share_of_tokens_kept(expected: str, value: str) -> float:
    """1.0 when the whole expected text occurs in the value, else the share of its meaningful
    tokens found among the value's tokens (1.0 for an expected text with none)."""
    if not expected.strip():
        return 1.0
    if expected.lower() in value.lower():
        return 1.0
    wanted = meaningful_tokens(expected)
    if not wanted:
        return 1.0
    present = set(meaningful_tokens(value))
    return sum(token in present for token in wanted) / len(wanted)


def is_retained(expected: str, value: str) -> bool:
    return share_of_tokens_kept(expected, value) == 1.0


def is_removed(original: str, value: str) -> bool:
    if not value.strip():
        return True
    if original.strip() and original.lower() in value.lower():
        return False
    present = set(meaningful_tokens(value))
    return not any(token in present for token in meaningful_tokens(original))
