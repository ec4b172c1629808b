"""Offline language identification for questions, answers and articles.

Short questions fool statistical identifiers, so Italian/English function
words decide first when they clearly point one way; ``py3langid`` (bundled
model, no download) decides otherwise and names other languages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

SUPPORTED = ("it", "en")
LANGUAGE_NAMES = {"it": "Italian", "en": "English"}

_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*", re.UNICODE)  # "Jong-un" is one word, not "un"
_IT_WORDS = frozenset(
    """il lo la i gli le un uno una di del dello della dei degli delle da dal dalla
    in nel nella nei con su sul sulla per tra fra che chi cosa quale quali quanto quanta
    quanti quante quando dove come perché perche è e ed o ma non ha hanno ho sono era
    erano questo questa quello quella cui si anche più molto dell all nell sull dall
    ci ne al alle agli ai cosa qual articolo sono stato stata stati""".split()
)
_EN_WORDS = frozenset(
    """the a an of to in on at for from by with about into over is are was were be been
    being do does did has have had what who whom whose which when where why how this
    that these those it its and or but not no than then there their they he she his her
    him them you your we our can could would should will shall may might must article
    did many much""".split()
)
# Words both lists share only by accident ("a", "in") carry no vote.
_SHARED = _IT_WORDS & _EN_WORDS


@dataclass(frozen=True)
class LanguageChoice:
    """The language to answer in, and what was detected."""

    answer_language: str  # always one of SUPPORTED
    detected: str  # ISO code, "und" when unknown
    supported: bool
    script_supported: bool


def _latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0
    latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
    return latin / len(letters)


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _function_word_vote(text: str) -> str | None:
    words = [w.lower().split("'")[0] for w in _WORD.findall(text)]
    it = sum(1 for w in words if w in _IT_WORDS and w not in _SHARED)
    en = sum(1 for w in words if w in _EN_WORDS and w not in _SHARED)
    if (it >= 1 and it >= 2 * en + 1) or (it >= 2 and en == 0):
        return "it"
    if (en >= 1 and en >= 2 * it + 1) or (en >= 2 and it == 0):
        return "en"
    return None


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text`` ("und" if there is nothing to judge)."""
    sample = text[:5000]
    if not _WORD.search(sample):
        return "und"
    if _latin_share(sample) >= 0.8:
        vote = _function_word_vote(sample)
        if vote and len(sample) < 400:
            return vote
    lang, prob = _identifier().classify(sample)
    if len(sample) < 400 and lang not in SUPPORTED and _latin_share(sample) >= 0.8:
        # Short Latin-script text: trust the function words when langid hesitates.
        vote = _function_word_vote(sample)
        if vote and prob < 0.99:
            return vote
    return str(lang)


# A text this short with no function-word vote ("Kim Jong-un.", "Vladimir Putin.",
# "Economic sanctions.") has no language of its own; identifiers guess (fr, fo, it).
NAMES_ONLY_MAX_WORDS = 6


def written_in(text: str, language: str) -> bool:
    """Whether ``text`` can stand as an answer written in ``language``: names and
    bare noun phrases pass, anything with function words must be in ``language``."""
    if len(_WORD.findall(text)) <= NAMES_ONLY_MAX_WORDS and _function_word_vote(text) is None:
        return True
    return detect_language(text) in (language, "und")


def choose_answer_language(question: str, default: str = "en") -> LanguageChoice:
    """Answer in the question's language when supported, otherwise in English.

    A few Latin-script words ("Putin?") say nothing about the language: those
    get ``default`` (the page's language) rather than a wrong guess.
    """
    detected = detect_language(question)
    script_ok = _latin_share(question) >= 0.5
    if detected not in SUPPORTED and script_ok and len(_WORD.findall(question)) <= 3:
        detected = default
    supported = detected in SUPPORTED
    return LanguageChoice(
        answer_language=detected if supported else "en",
        detected=detected,
        supported=supported,
        script_supported=script_ok,
    )
