"""Sentence boundaries in passages and answers, aware of numbers, abbreviations and initials.

A plain "split at . ! ?" cuts "22.392 km2", "St. Louis", "U.S.A." and "il 3.
posto" in two, which breaks quoted citations and the sentence re-score. A
sentence here ends at . ! ? (closing quotes and brackets included) followed by
white space or the end, or at a line break (titles, headings), unless the word
before a full stop is a known abbreviation or an initial, or the next word
starts in lower case, or the full stop sits inside a number written with a
space after its separator ("4. 500 euro", "alle 17. 30": spacing some archives
rebuild; ``join_spaced_numbers`` writes them back as "4.500", "17.30").
"""

from __future__ import annotations

import re

# Closing quotes and brackets that belong to the sentence before them.
CLOSERS = "\"»”’)]"
CLOSING = f"[{re.escape(CLOSERS)}]*"
_END = re.compile(rf"[.!?]+{CLOSING}(?=\s|$)|\n")
_TOKEN_BEFORE = re.compile(r"[\w.]+$")
# How far back to look for the word before a full stop: a fixed window keeps
# the split linear in the text (searching from the start made it quadratic).
_TOKEN_WINDOW = 32
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Z]")
# "4. 500" / "1. 250. 000" / "4. 500,00" (thousands) and "17. 30" (a time): digits, ". ",
# then exactly three (or, after one or two digits, minutes: 00-59) more digits. Inside a sentence only
# (a word and a space before it: not "1. 100 metri" opening a list item), and not a date
# ("il 25. 06. 1989" keeps its day, month and year apart).
_SPACED_NUMBER = re.compile(
    r"(?<=\S )(?<![\d.,])(?:\d{1,3}(?:\. \d{3}(?!\d))+(?:,\d+)?(?![\d.]\d)|\d{1,2}\. [0-5]\d(?!\d)(?!\. ?\d))"
)
_SPACED_AFTER_STOP = re.compile(r" (?:\d{3}|\d{2})(?!\d)")
# Italian and English abbreviations that take a full stop inside a sentence;
# words that can also end one ("no", "art", "on", "cap") are left out.
ABBREVIATIONS = frozenset(
    "st dr mr mrs ms jr sr prof dott dott.ssa sig sigg sig.ra ing avv sen gen mons "
    "ecc etc es cfr pag pagg nr vol fig ca vs approx e.g i.e".split()
)


def _is_end(text: str, m: re.Match[str]) -> bool:
    if m.group() == "\n":
        return True
    if m.group().rstrip(CLOSERS) != ".":  # "?", "!", "..." always end a sentence
        return True
    token = _TOKEN_BEFORE.search(text, max(0, m.start() - _TOKEN_WINDOW), m.start())
    word = token.group() if token else ""
    if word.lower() in ABBREVIATIONS or _INITIALS.fullmatch(word):
        return False
    if word.isdigit() and len(word) <= 3 and _spaced_number_at(text, m.start()):
        return False
    following = text[m.end() :].lstrip()
    return not following or not following[0].islower()


def _spaced_number_at(text: str, stop: int) -> bool:
    """The full stop at ``stop`` is the separator of a spaced number ("4. 500")."""
    if not _SPACED_AFTER_STOP.match(text, stop + 1):
        return False
    # A window around the stop, wide enough for "1. 250. 000. 000" and the look-arounds.
    start = max(0, stop - 3 - 5 * 4)
    return any(m.start() <= stop < m.end() for m in _SPACED_NUMBER.finditer(text, start, stop + 32))


def join_spaced_numbers(text: str) -> str:
    """"4. 500 euro" → "4.500 euro", "alle 17. 30" → "alle 17.30"; the rest unchanged."""
    return _SPACED_NUMBER.sub(lambda m: m.group().replace(". ", "."), text)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Char spans of the sentences of ``text``, white space trimmed; the whole text if none."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        if _is_end(text, m):
            spans.append((start, m.end()))
            start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out or [(0, len(text))]
